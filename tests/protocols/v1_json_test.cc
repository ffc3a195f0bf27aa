// V1 (TF-Serving-style) bodies: "instances"/"inputs", shapes from nesting, conversion into the
// model input's datatype, KServe's error messages, and predictions nested by shape.

#include "kh/protocols/v1_json.h"

#include <limits>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kh/common/strings.h"
#include "nlohmann/json.hpp"

namespace kh::protocols {
namespace {

using ::testing::HasSubstr;

std::string message(const absl::Status& s) { return std::string(common::toStd(s.message())); }

const TensorMetadata kIrisInput{"input-0", DataType::kFp32, {-1, 4}};

std::string errorOf(std::string_view body, const TensorMetadata& meta = kIrisInput) {
  auto r = decodeV1Request(body, meta);
  if (r.ok()) return "OK";
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << body;
  return message(r.status());
}

TEST(V1Decode, IrisInstancesBecomeOneFp32Batch) {
  auto t = decodeV1Request(R"({"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]})",
                           kIrisInput);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->name, "input-0");  // name and datatype come from the model's metadata
  EXPECT_EQ(t->datatype, DataType::kFp32);
  EXPECT_EQ(t->shape, (Shape{2, 4}));
  const float want[] = {6.8f, 2.8f, 4.8f, 1.4f, 6.0f, 3.4f, 4.5f, 1.6f};
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(t->at<float>(i), want[i]) << i;
}

TEST(V1Decode, InputsKeyIsEquivalentAndWinsOverInstances) {
  // KServe's get_predict_input uses "inputs" when present, else "instances".
  auto a = decodeV1Request(R"({"inputs": [[1,2,3,4]]})", kIrisInput);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->shape, (Shape{1, 4}));
  auto b = decodeV1Request(R"({"instances": [[9,9,9,9],[9,9,9,9]], "inputs": [[1,2,3,4]]})",
                           kIrisInput);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->shape, (Shape{1, 4}));
  EXPECT_EQ(b->at<float>(0), 1.0f);
  // "instances" is not even looked at when "inputs" is there.
  EXPECT_EQ(errorOf(R"({"inputs": [[1,2,3,4]], "instances": 5})"), "OK");
}

TEST(V1Decode, ShapeComesFromTheNesting) {
  auto scalars = decodeV1Request(R"({"instances": [1, 2, 3]})", {"x", DataType::kInt64, {-1}});
  ASSERT_TRUE(scalars.ok()) << scalars.status();
  EXPECT_EQ(scalars->shape, (Shape{3}));
  EXPECT_EQ(scalars->at<int64_t>(2), 3);
  auto cube = decodeV1Request(R"({"instances": [[[1,2],[3,4],[5,6]],[[7,8],[9,10],[11,12]]]})",
                              {"x", DataType::kFp32, {-1, 3, 2}});
  ASSERT_TRUE(cube.ok()) << cube.status();
  EXPECT_EQ(cube->shape, (Shape{2, 3, 2}));
  for (size_t i = 0; i < 12; ++i) EXPECT_EQ(cube->at<float>(i), static_cast<float>(i + 1));
  auto one = decodeV1Request(R"({"instances": [[5]]})", {"x", DataType::kInt32, {-1, 1}});
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->shape, (Shape{1, 1}));
  // Empty rows are rectangular too.
  auto empty_rows = decodeV1Request(R"({"instances": [[], []]})", kIrisInput);
  ASSERT_TRUE(empty_rows.ok()) << empty_rows.status();
  EXPECT_EQ(empty_rows->shape, (Shape{2, 0}));
}

TEST(V1Decode, ValuesConvertIntoTheInputsDatatype) {
  // Integers into FP32 and into INT64 (full range); floats into FP64.
  auto f = decodeV1Request(R"({"instances": [[1, -2, 3, 4]]})", kIrisInput);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->at<float>(1), -2.0f);
  auto i = decodeV1Request(R"({"instances": [9223372036854775807, -9223372036854775808, 0]})",
                           {"x", DataType::kInt64, {-1}});
  ASSERT_TRUE(i.ok()) << i.status();
  EXPECT_EQ(i->datatype, DataType::kInt64);
  EXPECT_EQ(i->at<int64_t>(0), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(i->at<int64_t>(1), std::numeric_limits<int64_t>::min());
  auto d = decodeV1Request(R"({"instances": [0.1]})", {"x", DataType::kFp64, {-1}});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->at<double>(0), 0.1);
  auto b = decodeV1Request(R"({"instances": [true, false]})", {"x", DataType::kBool, {-1}});
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->raw, std::string("\x01\x00", 2));
  auto s = decodeV1Request(R"({"instances": ["caf\u00e9", "a\"b"]})", {"x", DataType::kBytes, {-1}});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->bytes, (std::vector<std::string>{"caf\xc3\xa9", "a\"b"}));
}

TEST(V1Decode, ValuesThatDoNotFitTheDatatypeAreRejected) {
  const TensorMetadata int64_input{"x", DataType::kInt64, {-1}};
  EXPECT_THAT(errorOf(R"({"instances": [1.5]})", int64_input), HasSubstr("not a valid INT64"));
  EXPECT_THAT(errorOf(R"({"instances": [9223372036854775808]})", int64_input),
              HasSubstr("not a valid INT64"));
  EXPECT_THAT(errorOf(R"({"instances": [["a","b","c","d"]]})"), HasSubstr("not a number"));
  EXPECT_THAT(errorOf(R"({"instances": [[1,2,3,null]]})"), HasSubstr("not a number"));
  EXPECT_THAT(errorOf(R"({"instances": [300]})", {"x", DataType::kUint8, {-1}}),
              HasSubstr("not a valid UINT8"));
  EXPECT_THAT(errorOf(R"({"instances": [1]})", {"x", DataType::kFp16, {-1}}),
              HasSubstr("Sending FP16 data via JSON is not supported"));
}

TEST(V1Decode, MalformedBodiesAndWrongKeys) {
  EXPECT_THAT(errorOf("{"), HasSubstr("Unrecognized request format"));
  EXPECT_THAT(errorOf(""), HasSubstr("Unrecognized request format"));
  EXPECT_THAT(errorOf(R"({"instances": [1e400]})"), HasSubstr("Unrecognized request format"));
  EXPECT_THAT(errorOf("[1]"), HasSubstr("JSON object"));
  EXPECT_THAT(errorOf(R"({"x": []})"), HasSubstr(R"(Expected "instances" or "inputs")"));
}

TEST(V1Decode, InstancesMustBeANonEmptyList) {
  // KServe's Model.validate: InvalidInput('Expected "instances" to be a list').
  EXPECT_EQ(errorOf(R"({"instances": 5})"), R"(Expected "instances" to be a list)");
  EXPECT_EQ(errorOf(R"({"instances": {"a": 1}})"), R"(Expected "instances" to be a list)");
  EXPECT_EQ(errorOf(R"({"instances": "abc"})"), R"(Expected "instances" to be a list)");
  EXPECT_EQ(errorOf(R"({"inputs": 5})"), R"(Expected "inputs" to be a list)");
  EXPECT_THAT(errorOf(R"({"instances": []})"), HasSubstr("\"instances\" is empty"));
  EXPECT_THAT(errorOf(R"({"inputs": []})"), HasSubstr("\"inputs\" is empty"));
}

TEST(V1Decode, RaggedInstancesAreRejected) {
  for (const char* body : {
           R"({"instances": [[1,2,3,4],[1,2]]})",     // short row
           R"({"instances": [[1,2],[1,2,3,4]]})",     // long row
           R"({"instances": [[1,2,3,4],5]})",         // row then scalar
           R"({"instances": [5,[1,2,3,4]]})",         // scalar then row
           R"({"instances": [5,[1]]})",               // would pass as [2,1] if read carelessly
           R"({"instances": [[1],[[2]]]})",           // deeper second row
           R"({"instances": [[[1,2],[3,4]],[[5,6]]]})",
           R"({"instances": [[[1,2],[3,4]],[[5,6],[7]]]})",
           R"({"instances": [[], [1]]})",
       }) {
    std::string e = errorOf(body, {"x", DataType::kFp32, {}});
    EXPECT_THAT(e, HasSubstr("ragged")) << body;
  }
}

TEST(V1Decode, DeepNestingIsRefused) {
  std::string deep = std::string(40, '[') + "1" + std::string(40, ']');
  EXPECT_THAT(errorOf(R"({"instances": )" + deep + "}"), HasSubstr("nested too deeply"));
}

TEST(V1Decode, MutatedBodiesNeverCrash) {
  const std::string base = R"({"instances": [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]})";
  std::mt19937 rng(99);
  int ok = 0;
  for (int i = 0; i < 1000; ++i) {
    std::string body = base;
    for (int e = 0; e <= static_cast<int>(rng() % 2); ++e) {
      size_t pos = rng() % body.size();
      switch (rng() % 3) {
        case 0: body[pos] = "[]{},.0-e\" 1"[rng() % 12]; break;
        case 1: body.erase(pos, 1 + rng() % 4); break;
        case 2: body.insert(pos, 1, "[]{},.0-e\" 1"[rng() % 12]); break;
      }
      if (body.empty()) body = "{";
    }
    try {
      auto r = decodeV1Request(body, kIrisInput);
      if (r.ok()) {
        ++ok;
        ASSERT_TRUE(validateTensorData(*r).ok()) << body;
        ASSERT_FALSE(r->shape.empty()) << body;
      } else {
        ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << body;
      }
    } catch (const std::exception& e) {
      FAIL() << body << " threw " << e.what();
    }
  }
  EXPECT_GT(ok, 10);
}

// ---------------------------------------------------------------- predictions

template <typename T>
std::string predictions(DataType type, Shape shape, std::vector<T> values) {
  return encodeV1Predictions(Tensor::fromValues<T>("y", type, std::move(shape), values));
}

TEST(V1Predictions, OneEntryPerRowNestedByShape) {
  EXPECT_EQ(predictions<int64_t>(DataType::kInt64, {2}, {1, 1}), R"({"predictions":[1,1]})");
  EXPECT_EQ(predictions<float>(DataType::kFp32, {2, 2}, {0.5f, 0.25f, 0.125f, 1.0f}),
            R"({"predictions":[[0.5,0.25],[0.125,1]]})");
  EXPECT_EQ(predictions<int32_t>(DataType::kInt32, {2, 1, 2}, {1, 2, 3, 4}),
            R"({"predictions":[[[1,2]],[[3,4]]]})");
  EXPECT_EQ(predictions<float>(DataType::kFp32, {1, 3}, {0.1f, 0.2f, 0.7f}),
            R"({"predictions":[[0.1,0.2,0.7]]})");
}

TEST(V1Predictions, ScalarsEmptyShapesAndOtherDatatypes) {
  // A scalar output still gives a list, as "predictions" is always one.
  EXPECT_EQ(predictions<double>(DataType::kFp64, {}, {2.5}), R"({"predictions":[2.5]})");
  EXPECT_EQ(predictions<float>(DataType::kFp32, {0}, {}), R"({"predictions":[]})");
  EXPECT_EQ(predictions<float>(DataType::kFp32, {2, 0}, {}), R"({"predictions":[[],[]]})");
  EXPECT_EQ(predictions<uint8_t>(DataType::kBool, {2}, {1, 0}), R"({"predictions":[true,false]})");
  EXPECT_EQ(predictions<uint64_t>(DataType::kUint64, {1}, {std::numeric_limits<uint64_t>::max()}),
            R"({"predictions":[18446744073709551615]})");
  EXPECT_EQ(predictions<int8_t>(DataType::kInt8, {2}, {-128, 127}), R"({"predictions":[-128,127]})");
  EXPECT_EQ(predictions<uint16_t>(DataType::kFp16, {1}, {0xc100}), R"({"predictions":[-2.5]})");
  EXPECT_EQ(predictions<uint16_t>(DataType::kBf16, {1}, {0x3f80}), R"({"predictions":[1]})");
  EXPECT_EQ(predictions<float>(DataType::kFp32, {1}, {std::nanf("")}), R"({"predictions":[null]})");
  Tensor s;
  s.name = "labels";
  s.datatype = DataType::kBytes;
  s.shape = {2, 1};
  s.bytes = {"setosa", "vir\"ginica"};
  EXPECT_EQ(encodeV1Predictions(s), R"({"predictions":[["setosa"],["vir\"ginica"]]})");
}

TEST(V1Predictions, DecodeOfPredictionsRowsGivesTheSameTensor) {
  // What the server writes as predictions, read back as instances, is the same batch.
  std::vector<float> v = {0.5f, 0.1f, 2.0f, -3.25f, 1e-3f, 7.0f};
  Tensor t = Tensor::fromValues<float>("y", DataType::kFp32, {3, 2}, v);
  auto json = nlohmann::json::parse(encodeV1Predictions(t));
  nlohmann::json request = {{"instances", json["predictions"]}};
  auto back = decodeV1Request(request.dump(), {"y", DataType::kFp32, {-1, 2}});
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->shape, t.shape);
  EXPECT_EQ(back->raw, t.raw);
}

}  // namespace
}  // namespace kh::protocols
