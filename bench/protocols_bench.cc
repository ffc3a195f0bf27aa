// Micro-benchmarks of the protocol codecs on the request sizes the harness sends: the KServe iris
// request ([2,4] FP32) and a 64x32 FP32 batch, and responses with a [2] INT64 output (iris
// classes) and a [64,10] FP32 output (class probabilities).
//
//   ./build/release/bench/protocols_bench --benchmark_min_time=0.2
//
// Each benchmark decodes/encodes once before timing and stops with an error if that fails, so a
// number is never the cost of an early error return.

#include <random>

#include "benchmark/benchmark.h"
#include "kh/common/strings.h"
#include "kh/protocols/proto_convert.h"
#include "kh/protocols/v1_json.h"
#include "kh/protocols/v2_json.h"

namespace kh::protocols {
namespace {

// KServe's test/e2e/data/iris_input_v2.json, compacted.
constexpr std::string_view kIrisV2 =
    R"({"inputs":[{"name":"input-0","shape":[2,4],"datatype":"FP32","data":[[6.8,2.8,4.8,1.4],[6.0,3.4,4.5,1.6]]}]})";
constexpr std::string_view kIrisV1 = R"({"instances":[[6.8,2.8,4.8,1.4],[6.0,3.4,4.5,1.6]]})";

InferenceRequest fp32Request(int rows, int cols) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-10, 10);
  std::vector<float> v(static_cast<size_t>(rows * cols));
  for (auto& x : v) x = dist(rng);
  InferenceRequest r;
  r.model_name = "m";
  r.inputs.push_back(Tensor::fromValues<float>("input-0", DataType::kFp32, {rows, cols}, v));
  return r;
}

InferenceResponse classesResponse() {
  InferenceResponse r;
  r.model_name = "sklearn-iris";
  r.id = "d3b5f5bd-0b57-4f2a-8d2c-5a1a3f8e9c1d";
  std::vector<int64_t> classes = {1, 1};
  r.outputs.push_back(Tensor::fromValues<int64_t>("output-0", DataType::kInt64, {2}, classes));
  return r;
}

InferenceResponse probabilitiesResponse(int rows, int cols) {
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> dist(0, 1);
  std::vector<float> p(static_cast<size_t>(rows * cols));
  for (auto& x : p) x = dist(rng);
  InferenceResponse r;
  r.model_name = "m";
  r.id = "d3b5f5bd-0b57-4f2a-8d2c-5a1a3f8e9c1d";
  r.outputs.push_back(Tensor::fromValues<float>("output-0", DataType::kFp32, {rows, cols}, p));
  return r;
}

template <typename StatusOrT>
bool checkOk(benchmark::State& state, const StatusOrT& r) {
  if (r.ok()) return true;
  state.SkipWithError(std::string(common::toStd(r.status().message())).c_str());
  return false;
}

// ---------------------------------------------------------------- V2 JSON decode

void BM_V2JsonDecode_Iris(benchmark::State& state) {
  if (!checkOk(state, decodeV2Request(kIrisV2, std::nullopt))) return;
  for (auto _ : state) benchmark::DoNotOptimize(decodeV2Request(kIrisV2, std::nullopt));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kIrisV2.size()));
}
BENCHMARK(BM_V2JsonDecode_Iris);

void BM_V2JsonDecode_64x32(benchmark::State& state) {
  std::string body = encodeV2Request(fp32Request(64, 32)).body;
  if (!checkOk(state, decodeV2Request(body, std::nullopt))) return;
  for (auto _ : state) benchmark::DoNotOptimize(decodeV2Request(body, std::nullopt));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
  state.counters["body_bytes"] = static_cast<double>(body.size());
}
BENCHMARK(BM_V2JsonDecode_64x32);

// ---------------------------------------------------------------- binary extension decode

void BM_V2BinaryDecode_64x32(benchmark::State& state) {
  EncodedBody body = encodeV2Request(fp32Request(64, 32), {true});
  if (!checkOk(state, decodeV2Request(body.body, body.json_length))) return;
  for (auto _ : state) benchmark::DoNotOptimize(decodeV2Request(body.body, body.json_length));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.body.size()));
  state.counters["body_bytes"] = static_cast<double>(body.body.size());
}
BENCHMARK(BM_V2BinaryDecode_64x32);

// ---------------------------------------------------------------- V2 JSON encode

void BM_V2JsonEncode_Int64x2(benchmark::State& state) {
  InferenceResponse r = classesResponse();
  size_t size = encodeV2Response(r).body.size();
  for (auto _ : state) benchmark::DoNotOptimize(encodeV2Response(r));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
}
BENCHMARK(BM_V2JsonEncode_Int64x2);

void BM_V2JsonEncode_Fp32_64x10(benchmark::State& state) {
  InferenceResponse r = probabilitiesResponse(64, 10);
  size_t size = encodeV2Response(r).body.size();
  for (auto _ : state) benchmark::DoNotOptimize(encodeV2Response(r));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
  state.counters["body_bytes"] = static_cast<double>(size);
}
BENCHMARK(BM_V2JsonEncode_Fp32_64x10);

void BM_V2BinaryEncode_Fp32_64x10(benchmark::State& state) {
  InferenceResponse r = probabilitiesResponse(64, 10);
  size_t size = encodeV2Response(r, {true}).body.size();
  for (auto _ : state) benchmark::DoNotOptimize(encodeV2Response(r, {true}));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
}
BENCHMARK(BM_V2BinaryEncode_Fp32_64x10);

// ---------------------------------------------------------------- gRPC proto conversion

// Arg 0: typed contents, 1: raw_input_contents.
void BM_ProtoRequestFromProto_Iris(benchmark::State& state) {
  inference::ModelInferRequest proto;
  requestToProto(fp32Request(2, 4), state.range(0) != 0, &proto);
  if (!checkOk(state, requestFromProto(proto))) return;
  for (auto _ : state) benchmark::DoNotOptimize(requestFromProto(proto));
  state.SetLabel(state.range(0) ? "raw" : "typed");
}
BENCHMARK(BM_ProtoRequestFromProto_Iris)->Arg(0)->Arg(1);

void BM_ProtoRequestFromProto_64x32(benchmark::State& state) {
  inference::ModelInferRequest proto;
  requestToProto(fp32Request(64, 32), state.range(0) != 0, &proto);
  if (!checkOk(state, requestFromProto(proto))) return;
  for (auto _ : state) benchmark::DoNotOptimize(requestFromProto(proto));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * proto.ByteSizeLong()));
  state.SetLabel(state.range(0) ? "raw" : "typed");
}
BENCHMARK(BM_ProtoRequestFromProto_64x32)->Arg(0)->Arg(1);

void BM_ProtoResponseToProto_Int64x2(benchmark::State& state) {
  InferenceResponse r = classesResponse();
  for (auto _ : state) {
    inference::ModelInferResponse proto;
    responseToProto(r, state.range(0) != 0, &proto);
    benchmark::DoNotOptimize(proto);
  }
  state.SetLabel(state.range(0) ? "raw" : "typed");
}
BENCHMARK(BM_ProtoResponseToProto_Int64x2)->Arg(0)->Arg(1);

void BM_ProtoResponseToProto_Fp32_64x10(benchmark::State& state) {
  InferenceResponse r = probabilitiesResponse(64, 10);
  for (auto _ : state) {
    inference::ModelInferResponse proto;
    responseToProto(r, state.range(0) != 0, &proto);
    benchmark::DoNotOptimize(proto);
  }
  state.SetLabel(state.range(0) ? "raw" : "typed");
}
BENCHMARK(BM_ProtoResponseToProto_Fp32_64x10)->Arg(0)->Arg(1);

// ---------------------------------------------------------------- V1

void BM_V1Decode_Iris(benchmark::State& state) {
  const TensorMetadata meta{"input-0", DataType::kFp32, {-1, 4}};
  if (!checkOk(state, decodeV1Request(kIrisV1, meta))) return;
  for (auto _ : state) benchmark::DoNotOptimize(decodeV1Request(kIrisV1, meta));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kIrisV1.size()));
}
BENCHMARK(BM_V1Decode_Iris);

}  // namespace
}  // namespace kh::protocols

BENCHMARK_MAIN();
