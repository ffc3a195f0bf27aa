// V2 JSON decode/encode, binary extension, protobuf conversion, V1 decode, and the xgboost
// iris prediction they wrap.

#include <random>

#include "benchmark/benchmark.h"
#include "kh/protocols/proto_convert.h"
#include "kh/protocols/v1_json.h"
#include "kh/protocols/v2_json.h"
#include "kh/runtimes/model.h"

namespace kh::protocols {
namespace {

const char* kIrisRequest =
    R"({"inputs":[{"name":"input-0","shape":[2,4],"datatype":"FP32","data":[[6.8,2.8,4.8,1.4],[6.0,3.4,4.5,1.6]]}]})";

InferenceRequest batchRequest(int rows, int cols) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1, 1);
  std::vector<float> v(static_cast<size_t>(rows * cols));
  for (auto& x : v) x = dist(rng);
  InferenceRequest r;
  r.inputs.push_back(Tensor::fromValues<float>("input-0", DataType::kFp32, {rows, cols}, v));
  return r;
}

InferenceResponse response(int rows, int cols) {
  InferenceResponse r;
  r.model_name = "m";
  r.id = "bench";
  std::vector<int64_t> classes(static_cast<size_t>(rows), 1);
  if (cols == 0) {
    r.outputs.push_back(Tensor::fromValues<int64_t>("output-0", DataType::kInt64, {rows}, classes));
  } else {
    std::vector<float> p(static_cast<size_t>(rows * cols), 0.125f);
    r.outputs.push_back(Tensor::fromValues<float>("output-0", DataType::kFp32, {rows, cols}, p));
  }
  return r;
}

void BM_V2DecodeIris(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(decodeV2Request(kIrisRequest, std::nullopt));
}
BENCHMARK(BM_V2DecodeIris);

void BM_V2DecodeBatch64x32(benchmark::State& state) {
  auto body = encodeV2Request(batchRequest(64, 32)).body;
  for (auto _ : state) benchmark::DoNotOptimize(decodeV2Request(body, std::nullopt));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_V2DecodeBatch64x32);

void BM_V2DecodeBinary64x32(benchmark::State& state) {
  auto body = encodeV2Request(batchRequest(64, 32), {true});
  for (auto _ : state) benchmark::DoNotOptimize(decodeV2Request(body.body, body.json_length));
}
BENCHMARK(BM_V2DecodeBinary64x32);

void BM_V2EncodeIrisResponse(benchmark::State& state) {
  auto r = response(2, 0);
  for (auto _ : state) benchmark::DoNotOptimize(encodeV2Response(r));
}
BENCHMARK(BM_V2EncodeIrisResponse);

void BM_V2EncodeResponse64x10(benchmark::State& state) {
  auto r = response(64, 10);
  for (auto _ : state) benchmark::DoNotOptimize(encodeV2Response(r));
}
BENCHMARK(BM_V2EncodeResponse64x10);

void BM_ProtoRequestFromProto64x32(benchmark::State& state) {
  inference::ModelInferRequest proto;
  requestToProto(batchRequest(64, 32), false, &proto);
  for (auto _ : state) benchmark::DoNotOptimize(requestFromProto(proto));
}
BENCHMARK(BM_ProtoRequestFromProto64x32);

void BM_ProtoRequestFromRaw64x32(benchmark::State& state) {
  inference::ModelInferRequest proto;
  requestToProto(batchRequest(64, 32), true, &proto);
  for (auto _ : state) benchmark::DoNotOptimize(requestFromProto(proto));
}
BENCHMARK(BM_ProtoRequestFromRaw64x32);

void BM_ProtoResponseToProto64x10(benchmark::State& state) {
  auto r = response(64, 10);
  for (auto _ : state) {
    inference::ModelInferResponse proto;
    responseToProto(r, false, &proto);
    benchmark::DoNotOptimize(proto);
  }
}
BENCHMARK(BM_ProtoResponseToProto64x10);

void BM_V1DecodeIris(benchmark::State& state) {
  const char* body = R"({"instances":[[6.8,2.8,4.8,1.4],[6.0,3.4,4.5,1.6]]})";
  TensorMetadata meta{"input-0", DataType::kFp32, {-1, 4}};
  for (auto _ : state) benchmark::DoNotOptimize(decodeV1Request(body, meta));
}
BENCHMARK(BM_V1DecodeIris);

void BM_XgboostIrisPredict(benchmark::State& state) {
  auto model = runtimes::loadModel("xgboost", "iris", KH_SOURCE_DIR "/reference-impl/models/xgboost-iris");
  std::vector<float> x = {6.8f, 2.8f, 4.8f, 1.4f, 6.0f, 3.4f, 4.5f, 1.6f};
  Tensor in = Tensor::fromValues<float>("input-0", DataType::kFp32, {2, 4}, x);
  for (auto _ : state) benchmark::DoNotOptimize((*model)->predict({&in, 1}));
}
BENCHMARK(BM_XgboostIrisPredict);

}  // namespace
}  // namespace kh::protocols

BENCHMARK_MAIN();
