// V1 bodies: instances/inputs, shapes from nesting, errors, predictions nested by shape.

#include "kh/protocols/v1_json.h"

#include "gtest/gtest.h"

namespace kh::protocols {
namespace {

const TensorMetadata kFloatInput{"input-0", DataType::kFp32, {-1, 4}};

TEST(V1Json, InstancesAndInputsKeys) {
  auto a = decodeV1Request(R"({"instances": [[1,2,3,4],[5,6,7,8]]})", kFloatInput);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->shape, (Shape{2, 4}));
  EXPECT_EQ(a->at<float>(7), 8.0f);
  auto b = decodeV1Request(R"({"inputs": [[1,2,3,4]], "instances": 5})", kFloatInput);
  ASSERT_TRUE(b.ok()) << b.status();  // "inputs" wins, as in KServe
  EXPECT_EQ(b->shape, (Shape{1, 4}));
}

TEST(V1Json, ShapesFromNesting) {
  auto scalars = decodeV1Request(R"({"instances": [1, 2, 3]})", {"x", DataType::kInt64, {-1}});
  ASSERT_TRUE(scalars.ok());
  EXPECT_EQ(scalars->shape, (Shape{3}));
  EXPECT_EQ(scalars->at<int64_t>(2), 3);
  auto cube = decodeV1Request(R"({"instances": [[[1,2],[3,4]],[[5,6],[7,8]]]})", {"x", DataType::kFp32, {-1, 2, 2}});
  ASSERT_TRUE(cube.ok());
  EXPECT_EQ(cube->shape, (Shape{2, 2, 2}));
}

TEST(V1Json, Errors) {
  auto msg = [](const char* body) {
    auto r = decodeV1Request(body, kFloatInput);
    return r.ok() ? std::string("OK") : std::string(r.status().message());
  };
  EXPECT_NE(msg("{").find("Unrecognized request format"), std::string::npos);
  EXPECT_NE(msg(R"({"instances": 5})").find(R"(Expected "instances" to be a list)"), std::string::npos);
  EXPECT_NE(msg(R"({"x": []})").find("instances"), std::string::npos);
  EXPECT_NE(msg(R"({"instances": []})").find("empty"), std::string::npos);
  EXPECT_NE(msg(R"({"instances": [[1,2,3,4],[1,2]]})").find("ragged"), std::string::npos);
  EXPECT_NE(msg(R"({"instances": [[1,2,3,4],5]})").find("ragged"), std::string::npos);
  EXPECT_NE(msg(R"({"instances": [["a","b","c","d"]]})").find("not a number"), std::string::npos);
  EXPECT_NE(msg("[1]").find("JSON object"), std::string::npos);
}

TEST(V1Json, PredictionsNestByShape) {
  std::vector<int64_t> classes = {1, 1};
  EXPECT_EQ(encodeV1Predictions(Tensor::fromValues<int64_t>("y", DataType::kInt64, {2}, classes)),
            R"({"predictions":[1,1]})");
  std::vector<float> probs = {0.5f, 0.25f, 0.125f, 1.0f};
  EXPECT_EQ(encodeV1Predictions(Tensor::fromValues<float>("y", DataType::kFp32, {2, 2}, probs)),
            R"({"predictions":[[0.5,0.25],[0.125,1]]})");
}

}  // namespace
}  // namespace kh::protocols
