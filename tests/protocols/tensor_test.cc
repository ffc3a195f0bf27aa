// Datatypes, shapes, half precision and the JSON writer.

#include "kh/protocols/tensor.h"

#include <cmath>

#include "gtest/gtest.h"
#include "kh/protocols/json_writer.h"

namespace kh::protocols {
namespace {

TEST(DataTypes, NamesRoundTripAndAreCaseSensitive) {
  for (auto t : kAllDataTypes) EXPECT_EQ(parseDataType(dataTypeName(t)), t);
  EXPECT_FALSE(parseDataType("fp32").has_value());
  EXPECT_FALSE(parseDataType("FP8").has_value());
  EXPECT_EQ(dataTypeSize(DataType::kBf16), 2u);
  EXPECT_EQ(dataTypeSize(DataType::kBytes), 0u);
}

TEST(Shapes, ElementCountRejectsNegativeAndOverflow) {
  EXPECT_EQ(*elementCount(std::vector<int64_t>{2, 3, 4}), 24);
  EXPECT_EQ(*elementCount(std::vector<int64_t>{}), 1);
  EXPECT_EQ(*elementCount(std::vector<int64_t>{5, 0}), 0);
  EXPECT_FALSE(elementCount(std::vector<int64_t>{2, -1}).ok());
  EXPECT_FALSE(elementCount(std::vector<int64_t>{1ll << 40, 1ll << 40}).ok());
  EXPECT_EQ(shapeToString(std::vector<int64_t>{2, 4}), "[2,4]");
}

TEST(HalfPrecision, KnownValues) {
  EXPECT_EQ(floatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(floatToHalf(-2.5f), 0xc100);
  EXPECT_EQ(floatToHalf(65504.0f), 0x7bff);
  EXPECT_EQ(floatToHalf(1e6f), 0x7c00);  // overflow to infinity
  EXPECT_EQ(floatToHalf(INFINITY), 0x7c00);
  EXPECT_TRUE(std::isnan(halfToFloat(floatToHalf(NAN))));
  EXPECT_EQ(halfToFloat(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(floatToHalf(std::ldexp(1.0f, -24)), 0x0001);
  // 1 + 2^-11 lies halfway between 1 and 1 + 2^-10: ties go to even (1.0).
  EXPECT_EQ(floatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(floatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  for (float v : {0.5f, -0.25f, 3.140625f, 1024.0f}) EXPECT_EQ(halfToFloat(floatToHalf(v)), v);
  EXPECT_EQ(floatToBf16(1.0f), 0x3f80);
  EXPECT_EQ(bf16ToFloat(floatToBf16(-3.0f)), -3.0f);
  EXPECT_TRUE(std::isnan(bf16ToFloat(floatToBf16(NAN))));
}

TEST(TensorChecks, DataMustMatchShapeAndMetadata) {
  std::vector<float> four = {1, 2, 3, 4};
  Tensor t = Tensor::fromValues<float>("x", DataType::kFp32, {2, 2}, four);
  EXPECT_TRUE(validateTensorData(t).ok());
  t.shape = {3, 2};
  EXPECT_NE(std::string(validateTensorData(t).message()).find("6 elements"), std::string::npos);
  t.shape = {2, 2};
  EXPECT_TRUE(checkAgainstMetadata(t, {"x", DataType::kFp32, {-1, 2}}).ok());
  EXPECT_FALSE(checkAgainstMetadata(t, {"x", DataType::kFp32, {-1, 3}}).ok());
  EXPECT_FALSE(checkAgainstMetadata(t, {"x", DataType::kFp64, {-1, 2}}).ok());
  EXPECT_FALSE(checkAgainstMetadata(t, {"x", DataType::kFp32, {-1}}).ok());
  auto floats = toFloatVector(t);
  EXPECT_EQ(*floats, four);
  Tensor bytes;
  bytes.datatype = DataType::kBytes;
  EXPECT_FALSE(toFloatVector(bytes).ok());
}

TEST(JsonWriter, EscapesAndShortFloats) {
  std::string out;
  JsonWriter w(out);
  w.beginObject();
  w.key("s");
  w.string("a\"b\\c\n\x01");
  w.key("f");
  w.number(0.1f);
  w.key("nan");
  w.number(std::nan(""));
  w.key("bad");
  w.string(std::string("ok\xff", 3));
  w.endObject();
  EXPECT_EQ(out, R"({"s":"a\"b\\c\n\u0001","f":0.1,"nan":null,"bad":"ok\ufffd"})");
}

}  // namespace
}  // namespace kh::protocols
