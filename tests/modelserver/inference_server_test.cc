// The transport-neutral core: model lifecycle, validation against metadata, output selection.

#include "kh/modelserver/inference_server.h"

#include "gtest/gtest.h"
#include "kh/common/strings.h"
#include "support/modelserver_process.h"

namespace kh::modelserver {
namespace {

using protocols::DataType;
using protocols::InferenceRequest;
using protocols::Tensor;

std::string message(const absl::Status& s) { return std::string(common::toStd(s.message())); }

Tensor irisInput(int64_t rows = 2, std::string name = "input-0") {
  std::vector<float> values;
  for (int64_t r = 0; r < rows; ++r) {
    for (float v : {6.8f, 2.8f, 4.8f, 1.4f}) values.push_back(v);
  }
  return Tensor::fromValues<float>(std::move(name), DataType::kFp32, {rows, 4}, values);
}

class InferenceServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.registerModel("iris", "auto", testing::modelDir("xgboost-iris"));
    ASSERT_TRUE(server_.loadModel("iris").ok());
  }
  InferenceServer server_{"test", "0"};
};

TEST_F(InferenceServerTest, UnknownModelIsNotFoundWithKServeWording) {
  InferenceRequest req;
  req.inputs.push_back(irisInput());
  auto r = server_.infer("nope", std::move(req));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(message(r.status()), "Model with name nope does not exist.");
  EXPECT_EQ(statusToHttp(r.status()), 404);
}

TEST_F(InferenceServerTest, UnloadedModelIsUnavailable) {
  ASSERT_TRUE(server_.unloadModel("iris").ok());
  EXPECT_FALSE(server_.ready());
  InferenceRequest req;
  req.inputs.push_back(irisInput());
  auto r = server_.infer("iris", std::move(req));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(message(r.status()), "Model with name iris is not ready.");
  ASSERT_TRUE(server_.loadModel("iris").ok());
  EXPECT_TRUE(server_.ready());
}

TEST_F(InferenceServerTest, EchoesIdOrMakesAUuid) {
  InferenceRequest with_id;
  with_id.id = "abc";
  with_id.has_id = true;
  with_id.inputs.push_back(irisInput());
  auto r = server_.infer("iris", std::move(with_id));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->id, "abc");
  EXPECT_EQ(r->model_name, "iris");
  InferenceRequest without;
  without.inputs.push_back(irisInput());
  r = server_.infer("iris", std::move(without));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->id.size(), 36u);
  EXPECT_EQ(r->id[14], '4');  // version 4
}

TEST_F(InferenceServerTest, ChecksInputsAgainstMetadata) {
  InferenceRequest wrong_name;
  wrong_name.inputs.push_back(irisInput(2, "x"));
  auto r = server_.infer("iris", std::move(wrong_name));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(message(r.status()).find("input-0"), std::string::npos);

  InferenceRequest two;
  two.inputs.push_back(irisInput());
  two.inputs.push_back(irisInput());
  EXPECT_EQ(server_.infer("iris", std::move(two)).status().code(),
            absl::StatusCode::kInvalidArgument);

  InferenceRequest wrong_type;
  Tensor t = irisInput();
  t.datatype = DataType::kInt32;
  wrong_type.inputs.push_back(t);
  r = server_.infer("iris", std::move(wrong_type));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(message(r.status()).find("FP32"), std::string::npos);

  InferenceRequest wrong_shape;
  std::vector<float> three = {1, 2, 3};
  wrong_shape.inputs.push_back(
      Tensor::fromValues<float>("input-0", DataType::kFp32, {1, 3}, three));
  r = server_.infer("iris", std::move(wrong_shape));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(message(r.status()).find("[1,3]"), std::string::npos);
}

TEST_F(InferenceServerTest, SelectsRequestedOutputs) {
  InferenceRequest req;
  req.inputs.push_back(irisInput());
  req.outputs.push_back({"output-0", {}});
  auto r = server_.infer("iris", std::move(req));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->outputs.size(), 1u);
  EXPECT_EQ(r->outputs[0].shape, (protocols::Shape{2}));

  InferenceRequest unknown;
  unknown.inputs.push_back(irisInput());
  unknown.outputs.push_back({"nope", {}});
  auto bad = server_.infer("iris", std::move(unknown));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(message(bad.status()).find("output-0"), std::string::npos);
}

TEST_F(InferenceServerTest, VersionsAreNotImplementedLikeKServe) {
  EXPECT_EQ(server_.modelReady("iris", "1").status().code(), absl::StatusCode::kUnimplemented);
  InferenceRequest req;
  req.model_version = "1";
  req.inputs.push_back(irisInput());
  auto r = server_.infer("iris", std::move(req));
  EXPECT_EQ(statusToHttp(r.status()), 501);
}

TEST_F(InferenceServerTest, V1PredictUsesTheSingleInput) {
  auto out = server_.predictV1("iris", R"({"instances": [[6.8,2.8,4.8,1.4],[6.0,3.4,4.5,1.6]]})");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->shape, (protocols::Shape{2}));
  auto bad = server_.predictV1("iris", R"({"instances": 3})");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(message(bad.status()).find("to be a list"), std::string::npos);
}

TEST(StatusToHttp, MapsEveryCodeTheFrontendsUse) {
  EXPECT_EQ(statusToHttp(absl::OkStatus()), 200);
  EXPECT_EQ(statusToHttp(absl::InvalidArgumentError("")), 400);
  EXPECT_EQ(statusToHttp(absl::NotFoundError("")), 404);
  EXPECT_EQ(statusToHttp(absl::ResourceExhaustedError("")), 413);
  EXPECT_EQ(statusToHttp(absl::InternalError("")), 500);
  EXPECT_EQ(statusToHttp(absl::UnimplementedError("")), 501);
  EXPECT_EQ(statusToHttp(absl::UnavailableError("")), 503);
  EXPECT_EQ(statusToHttp(absl::DeadlineExceededError("")), 504);
}

}  // namespace
}  // namespace kh::modelserver
