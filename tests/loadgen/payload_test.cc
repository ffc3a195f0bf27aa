// Request files in every accepted form come out as the same tensors on every protocol.

#include "kh/loadgen/payload.h"

#include <fstream>

#include "gtest/gtest.h"
#include "kh/protocols/grpc_predict_v2.pb.h"
#include "kh/protocols/proto_convert.h"
#include "kh/protocols/v2_json.h"

namespace kh::loadgen {
namespace {

using protocols::DataType;

std::string write(const std::string& name, const std::string& text) {
  std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

std::vector<float> firstInput(const Payload& p) {
  auto req = protocols::decodeV2Request(
      p.http.body, p.http.headers.empty() ? std::nullopt
                                          : std::optional<size_t>(std::stoul(p.http.headers[0].second)));
  EXPECT_TRUE(req.ok()) << req.status();
  return *protocols::toFloatVector(req->inputs[0]);
}

TEST(Payload, JsonBinaryAndTextProtoFilesAgree) {
  const std::vector<float> want = {6.8f, 2.8f, 4.8f, 1.4f};
  std::string json_path = write("req.json",
      R"({"inputs":[{"name":"input-0","shape":[1,4],"datatype":"FP32","data":[6.8,2.8,4.8,1.4]}]})");
  protocols::InferenceRequest req;
  req.inputs.push_back(protocols::Tensor::fromValues<float>("input-0", DataType::kFp32, {1, 4}, want));
  auto binary = protocols::encodeV2Request(req, {true});
  std::string bin_path = write("req.bin", binary.body);
  std::string pbtxt_path = write("req.pbtxt", R"(
    model_name: "iris"
    inputs { name: "input-0" datatype: "FP32" shape: 1 shape: 4
             contents { fp32_contents: [6.8, 2.8, 4.8, 1.4] } })");
  for (const auto& path : {json_path, bin_path, pbtxt_path}) {
    for (auto protocol : {WireProtocol::kV2, WireProtocol::kV2Binary}) {
      auto p = payloadFromFile(path, protocol, "iris");
      ASSERT_TRUE(p.ok()) << path << ": " << p.status();
      EXPECT_EQ(firstInput(*p), want) << path;
      EXPECT_EQ(p->http.path, "/v2/models/iris/infer");
    }
    auto grpc = payloadFromFile(path, WireProtocol::kGrpc, "iris");
    ASSERT_TRUE(grpc.ok());
    inference::ModelInferRequest proto;
    ASSERT_TRUE(proto.ParseFromString(grpc->grpc.serialized_request));
    EXPECT_EQ(proto.model_name(), "iris");
    auto back = protocols::requestFromProto(proto);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*protocols::toFloatVector(back->inputs[0]), want);
  }
}

TEST(Payload, V1BodiesOnlyWithV1AndClearErrors) {
  std::string v1 = write("v1.json", R"({"instances": [[1, 2, 3, 4]]})");
  EXPECT_TRUE(payloadFromFile(v1, WireProtocol::kV1, "m").ok());
  auto wrong = payloadFromFile(v1, WireProtocol::kV2, "m");
  EXPECT_FALSE(wrong.ok());
  EXPECT_NE(std::string(wrong.status().message()).find("--protocol v1"), std::string::npos);
  EXPECT_EQ(payloadFromFile("/nonexistent.json", WireProtocol::kV2, "m").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_FALSE(payloadFromFile(write("bad.pbtxt", "inputs {"), WireProtocol::kV2, "m").ok());
}

TEST(Payload, GeneratedRequestsFollowMetadataAndSeed) {
  protocols::ModelMetadata meta;
  meta.inputs.push_back({"x", DataType::kFp32, {-1, 4}});
  meta.inputs.push_back({"y", DataType::kInt64, {-1}});
  auto a = generateRequest(meta, 8, 3), b = generateRequest(meta, 8, 3), c = generateRequest(meta, 8, 4);
  ASSERT_EQ(a.inputs.size(), 2u);
  EXPECT_EQ(a.inputs[0].shape, (protocols::Shape{8, 4}));
  EXPECT_EQ(a.inputs[1].shape, (protocols::Shape{8}));
  EXPECT_EQ(a.inputs[0].raw, b.inputs[0].raw);
  EXPECT_NE(a.inputs[0].raw, c.inputs[0].raw);
  auto v1 = encodePayload(a, WireProtocol::kV1, "m", "gen");
  EXPECT_EQ(v1.http.path, "/v1/models/m:predict");
  EXPECT_EQ(v1.http.body.rfind(R"({"instances":[[)", 0), 0u);
}

}  // namespace
}  // namespace kh::loadgen
