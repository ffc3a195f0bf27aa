// Datatypes, shapes, parameters, tensor checks and the half-precision conversions.

#include "kh/protocols/tensor.h"

#include <bit>
#include <cmath>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kh/common/strings.h"

namespace kh::protocols {
namespace {

using ::testing::HasSubstr;

std::string message(const absl::Status& s) { return std::string(common::toStd(s.message())); }

// ---------------------------------------------------------------- datatypes

TEST(DataTypes, EveryNameRoundTripsAndHasTheProtocolSize) {
  // Sizes from the OIP datatype table (BYTES is variable: 0 here).
  const std::pair<const char*, size_t> expected[] = {
      {"BOOL", 1},  {"UINT8", 1}, {"UINT16", 2}, {"UINT32", 4}, {"UINT64", 8},
      {"INT8", 1},  {"INT16", 2}, {"INT32", 4},  {"INT64", 8},  {"FP16", 2},
      {"BF16", 2},  {"FP32", 4},  {"FP64", 8},   {"BYTES", 0}};
  ASSERT_EQ(std::size(kAllDataTypes), std::size(expected));
  for (size_t i = 0; i < std::size(expected); ++i) {
    DataType t = kAllDataTypes[i];
    EXPECT_EQ(dataTypeName(t), expected[i].first);
    EXPECT_EQ(dataTypeSize(t), expected[i].second) << expected[i].first;
    EXPECT_EQ(parseDataType(expected[i].first), t);
  }
}

TEST(DataTypes, ParsingIsCaseSensitiveAndRejectsUnknownNames) {
  // The protocol says datatype strings are case-sensitive; KServe answers "invalid datatype".
  for (const char* bad : {"fp32", "Fp32", "FP8", "STRING", "", "FP32 ", "INT", "float32"}) {
    EXPECT_FALSE(parseDataType(bad).has_value()) << bad;
  }
}

// ---------------------------------------------------------------- shapes

TEST(ElementCount, ProductOfDimensionsWithScalarsAndZeros) {
  EXPECT_EQ(*elementCount(Shape{2, 3, 4}), 24);
  EXPECT_EQ(*elementCount(Shape{}), 1);  // a scalar
  EXPECT_EQ(*elementCount(Shape{0}), 0);
  EXPECT_EQ(*elementCount(Shape{5, 0}), 0);
  // A zero dimension first makes later huge dimensions harmless.
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(*elementCount(Shape{0, kMax, kMax}), 0);
  EXPECT_EQ(*elementCount(Shape{kMax}), kMax);
  EXPECT_EQ(*elementCount(Shape{1ll << 31, 1ll << 31}), 1ll << 62);
}

TEST(ElementCount, NegativeDimensionsAreInvalid) {
  for (const Shape& s : {Shape{-1}, Shape{2, -1}, Shape{-1, 0}, Shape{3, 4, -5}}) {
    auto c = elementCount(s);
    ASSERT_FALSE(c.ok()) << shapeToString(s);
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(message(c.status()), HasSubstr("negative"));
  }
}

TEST(ElementCount, OverflowIsInvalidNotWrapped) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  for (const Shape& s : {Shape{1ll << 32, 1ll << 32}, Shape{kMax, 2}, Shape{2, kMax},
                         Shape{1ll << 21, 1ll << 21, 1ll << 21}}) {
    auto c = elementCount(s);
    ASSERT_FALSE(c.ok()) << shapeToString(s);
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(message(c.status()), HasSubstr("too many elements"));
  }
}

TEST(ShapeToString, BracketsAndCommas) {
  EXPECT_EQ(shapeToString(Shape{2, 4}), "[2,4]");
  EXPECT_EQ(shapeToString(Shape{}), "[]");
  EXPECT_EQ(shapeToString(Shape{-1, 3}), "[-1,3]");
}

// ---------------------------------------------------------------- parameters

TEST(ParameterHelpers, BoolOnlyForBoolsAndIntOnlyForIntegers) {
  Parameters p{{"b", true},
               {"i", int64_t{-7}},
               {"u", uint64_t{9}},
               {"big", std::numeric_limits<uint64_t>::max()},
               {"d", 1.0},
               {"s", std::string("true")}};
  EXPECT_EQ(boolParameter(p, "b"), true);
  EXPECT_FALSE(boolParameter(p, "s").has_value());  // the string "true" is not a bool
  EXPECT_FALSE(boolParameter(p, "i").has_value());
  EXPECT_FALSE(boolParameter(p, "missing").has_value());
  EXPECT_EQ(intParameter(p, "i"), -7);
  EXPECT_EQ(intParameter(p, "u"), 9);
  EXPECT_FALSE(intParameter(p, "big").has_value());  // does not fit int64
  EXPECT_FALSE(intParameter(p, "d").has_value());
  EXPECT_FALSE(intParameter(p, "b").has_value());
  EXPECT_FALSE(intParameter(p, "missing").has_value());
}

// ---------------------------------------------------------------- tensors

TEST(Tensor, FromValuesAndAtUseTheLittleEndianLayout) {
  std::vector<int32_t> v = {1, -2, 0x01020304};
  Tensor t = Tensor::fromValues<int32_t>("x", DataType::kInt32, {3}, v);
  EXPECT_EQ(t.raw.size(), 12u);
  EXPECT_EQ(t.heldElements(), 3);
  EXPECT_EQ(t.at<int32_t>(1), -2);
  EXPECT_EQ(t.raw.substr(8, 4), std::string("\x04\x03\x02\x01", 4));
  Tensor b;
  b.datatype = DataType::kBytes;
  b.bytes = {"a", "b"};
  EXPECT_EQ(b.heldElements(), 2);
}

TEST(ValidateTensorData, MatchingDataIsOk) {
  std::vector<float> four = {1, 2, 3, 4};
  EXPECT_TRUE(validateTensorData(Tensor::fromValues<float>("x", DataType::kFp32, {2, 2}, four)).ok());
  Tensor empty = Tensor::fromValues<float>("x", DataType::kFp32, {0, 4}, std::span<const float>{});
  EXPECT_TRUE(validateTensorData(empty).ok());
  Tensor s;
  s.name = "s";
  s.datatype = DataType::kBytes;
  s.shape = {1, 2};
  s.bytes = {"", "x"};
  EXPECT_TRUE(validateTensorData(s).ok());
}

TEST(ValidateTensorData, MismatchesNameTheTensorAndTheCounts) {
  std::vector<float> four = {1, 2, 3, 4};
  Tensor t = Tensor::fromValues<float>("x", DataType::kFp32, {3, 2}, four);
  std::string m = message(validateTensorData(t));
  EXPECT_THAT(m, HasSubstr("'x'"));
  EXPECT_THAT(m, HasSubstr("(6 elements) but 4 elements"));
  // A byte count that is not a whole number of elements.
  t.shape = {2, 2};
  t.raw.resize(14);
  EXPECT_THAT(message(validateTensorData(t)), HasSubstr("needs 16 bytes but 14"));
  // BYTES must use `bytes`, fixed-size types must use `raw`.
  Tensor s;
  s.name = "s";
  s.datatype = DataType::kBytes;
  s.shape = {2};
  s.bytes = {"a"};
  EXPECT_THAT(message(validateTensorData(s)), HasSubstr("(2 elements) but 1"));
  s.bytes = {"a", "b"};
  s.raw = "zz";
  EXPECT_FALSE(validateTensorData(s).ok());
  Tensor f = Tensor::fromValues<float>("f", DataType::kFp32, {1}, std::span<const float>(four.data(), 1));
  f.bytes = {"stray"};
  EXPECT_FALSE(validateTensorData(f).ok());
  // A negative dimension is reported, naming the tensor.
  f.bytes.clear();
  f.shape = {-1};
  EXPECT_THAT(message(validateTensorData(f)), HasSubstr("'f'"));
}

TEST(ValidateTensorData, HugeShapeWithEmptyDataIsNotAcceptedThroughByteSizeWraparound) {
  // 2^61 FP64 elements are 2^64 bytes: the byte size wraps to 0 in size_t, so a check on bytes
  // alone would accept an empty buffer and later readers would run off its end.
  Tensor t;
  t.name = "huge";
  t.datatype = DataType::kFp64;
  t.shape = {1ll << 61};
  EXPECT_FALSE(validateTensorData(t).ok());
  t.datatype = DataType::kInt32;
  t.shape = {1ll << 62};
  EXPECT_FALSE(validateTensorData(t).ok());
  t.raw = "abc";  // not a whole element, and the byte total must not overflow in the message
  auto s = validateTensorData(t);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(message(s), HasSubstr("'huge'"));
}

TEST(CheckAgainstMetadata, DatatypeRankAndFixedDimensions) {
  std::vector<float> four = {1, 2, 3, 4};
  Tensor t = Tensor::fromValues<float>("x", DataType::kFp32, {2, 2}, four);
  EXPECT_TRUE(checkAgainstMetadata(t, {"x", DataType::kFp32, {-1, 2}}).ok());
  EXPECT_TRUE(checkAgainstMetadata(t, {"x", DataType::kFp32, {2, 2}}).ok());
  EXPECT_TRUE(checkAgainstMetadata(t, {"x", DataType::kFp32, {-1, -1}}).ok());
  auto wrong_dim = checkAgainstMetadata(t, {"x", DataType::kFp32, {-1, 3}});
  EXPECT_THAT(message(wrong_dim), HasSubstr("[2,2]"));
  EXPECT_THAT(message(wrong_dim), HasSubstr("[-1,3]"));
  auto wrong_type = checkAgainstMetadata(t, {"x", DataType::kFp64, {-1, 2}});
  EXPECT_THAT(message(wrong_type), HasSubstr("FP32"));
  EXPECT_THAT(message(wrong_type), HasSubstr("FP64"));
  EXPECT_FALSE(checkAgainstMetadata(t, {"x", DataType::kFp32, {-1}}).ok());       // rank 1
  EXPECT_FALSE(checkAgainstMetadata(t, {"x", DataType::kFp32, {-1, 2, 1}}).ok());  // rank 3
}

TEST(ToFloatVector, EveryNumericDatatype) {
  auto one = [](DataType type, auto value) {
    using V = decltype(value);
    std::vector<V> v = {value};
    return *toFloatVector(Tensor::fromValues<V>("x", type, {1}, v));
  };
  EXPECT_EQ(one(DataType::kBool, uint8_t{1}), std::vector<float>{1.0f});
  EXPECT_EQ(one(DataType::kUint8, uint8_t{255}), std::vector<float>{255.0f});
  EXPECT_EQ(one(DataType::kUint16, uint16_t{65535}), std::vector<float>{65535.0f});
  EXPECT_EQ(one(DataType::kUint32, uint32_t{7}), std::vector<float>{7.0f});
  EXPECT_EQ(one(DataType::kUint64, std::numeric_limits<uint64_t>::max()),
            std::vector<float>{18446744073709551616.0f});
  EXPECT_EQ(one(DataType::kInt8, int8_t{-128}), std::vector<float>{-128.0f});
  EXPECT_EQ(one(DataType::kInt16, int16_t{-300}), std::vector<float>{-300.0f});
  EXPECT_EQ(one(DataType::kInt32, int32_t{-5}), std::vector<float>{-5.0f});
  EXPECT_EQ(one(DataType::kInt64, int64_t{1} << 40), std::vector<float>{1099511627776.0f});
  EXPECT_EQ(one(DataType::kFp16, uint16_t{0xc100}), std::vector<float>{-2.5f});
  EXPECT_EQ(one(DataType::kBf16, uint16_t{0x3f80}), std::vector<float>{1.0f});
  EXPECT_EQ(one(DataType::kFp32, 0.1f), std::vector<float>{0.1f});
  EXPECT_EQ(one(DataType::kFp64, 0.5), std::vector<float>{0.5f});
  Tensor bytes;
  bytes.name = "s";
  bytes.datatype = DataType::kBytes;
  auto r = toFloatVector(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(message(r.status()), HasSubstr("BYTES"));
}

// ---------------------------------------------------------------- FP16

float pow2(int e) { return std::ldexp(1.0f, e); }

TEST(Fp16, KnownValues) {
  EXPECT_EQ(floatToHalf(0.0f), 0x0000);
  EXPECT_EQ(floatToHalf(-0.0f), 0x8000);  // the sign of zero survives
  EXPECT_EQ(floatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(floatToHalf(-2.5f), 0xc100);
  EXPECT_EQ(floatToHalf(0.5f), 0x3800);
  EXPECT_EQ(floatToHalf(65504.0f), 0x7bff);  // largest finite half
  EXPECT_EQ(floatToHalf(-65504.0f), 0xfbff);
  EXPECT_EQ(halfToFloat(0x3c00), 1.0f);
  EXPECT_EQ(halfToFloat(0xc100), -2.5f);
  EXPECT_EQ(halfToFloat(0x7bff), 65504.0f);
  EXPECT_EQ(halfToFloat(0x3555), 0.333251953125f);
  EXPECT_TRUE(std::signbit(halfToFloat(0x8000)));
  EXPECT_EQ(halfToFloat(0x8000), 0.0f);
}

TEST(Fp16, OverflowGoesToInfinityAtTheRoundingBoundary) {
  // Halfway between 65504 and the next step (65536) is 65520: below it rounds down, at it ties to
  // even, which is infinity (0x7bff is odd).
  EXPECT_EQ(floatToHalf(65519.0f), 0x7bff);
  EXPECT_EQ(floatToHalf(65520.0f), 0x7c00);
  EXPECT_EQ(floatToHalf(1e6f), 0x7c00);
  EXPECT_EQ(floatToHalf(-1e6f), 0xfc00);
  EXPECT_EQ(floatToHalf(std::numeric_limits<float>::max()), 0x7c00);
}

TEST(Fp16, InfinityAndNaN) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(floatToHalf(kInf), 0x7c00);
  EXPECT_EQ(floatToHalf(-kInf), 0xfc00);
  EXPECT_EQ(halfToFloat(0x7c00), kInf);
  EXPECT_EQ(halfToFloat(0xfc00), -kInf);
  // NaN must stay NaN: exponent all ones and a non-zero mantissa, even for a NaN whose payload
  // lives only in the low float mantissa bits that a plain shift would drop.
  for (uint32_t bits : {0x7fc00000u, 0x7f800001u, 0xffc00000u, 0x7fffffffu}) {
    uint16_t h = floatToHalf(std::bit_cast<float>(bits));
    EXPECT_EQ(h & 0x7c00, 0x7c00) << std::hex << bits;
    EXPECT_NE(h & 0x03ff, 0) << std::hex << bits;
    EXPECT_TRUE(std::isnan(halfToFloat(h)));
  }
  EXPECT_TRUE(std::isnan(halfToFloat(0x7e00)));
  EXPECT_TRUE(std::isnan(halfToFloat(0xfc01)));
}

TEST(Fp16, SubnormalsAndUnderflow) {
  EXPECT_EQ(halfToFloat(0x0001), pow2(-24));          // smallest subnormal
  EXPECT_EQ(halfToFloat(0x03ff), 1023 * pow2(-24));   // largest subnormal
  EXPECT_EQ(halfToFloat(0x0400), pow2(-14));          // smallest normal
  EXPECT_EQ(halfToFloat(0x8001), -pow2(-24));
  EXPECT_EQ(floatToHalf(pow2(-24)), 0x0001);
  EXPECT_EQ(floatToHalf(1023 * pow2(-24)), 0x03ff);
  EXPECT_EQ(floatToHalf(pow2(-14)), 0x0400);
  EXPECT_EQ(floatToHalf(-pow2(-24)), 0x8001);
  // 2^-25 is exactly halfway between 0 and the smallest subnormal: ties to even give 0; a hair
  // more rounds up.
  EXPECT_EQ(floatToHalf(pow2(-25)), 0x0000);
  EXPECT_EQ(floatToHalf(std::nextafter(pow2(-25), 1.0f)), 0x0001);
  EXPECT_EQ(floatToHalf(-pow2(-25)), 0x8000);
  EXPECT_EQ(floatToHalf(pow2(-30)), 0x0000);
  EXPECT_EQ(floatToHalf(std::numeric_limits<float>::denorm_min()), 0x0000);
  // 1.5 * 2^-24 ties between subnormals 1 and 2: even is 2. 2.5 * 2^-24 ties between 2 and 3: 2.
  EXPECT_EQ(floatToHalf(1.5f * pow2(-24)), 0x0002);
  EXPECT_EQ(floatToHalf(2.5f * pow2(-24)), 0x0002);
  // 1023.5 * 2^-24 ties between the largest subnormal (odd) and the smallest normal: rounding
  // carries into the exponent.
  EXPECT_EQ(floatToHalf(1023.5f * pow2(-24)), 0x0400);
}

TEST(Fp16, RoundsToNearestEven) {
  // The half step at 1.0 is 2^-10. 1 + 2^-11 ties between 1 (even) and 1 + 2^-10 (odd).
  EXPECT_EQ(floatToHalf(1.0f + pow2(-11)), 0x3c00);
  EXPECT_EQ(floatToHalf(std::nextafter(1.0f + pow2(-11), 2.0f)), 0x3c01);
  EXPECT_EQ(floatToHalf(std::nextafter(1.0f + pow2(-11), 0.0f)), 0x3c00);
  // 1 + 3 * 2^-11 ties between 0x3c01 (odd) and 0x3c02 (even).
  EXPECT_EQ(floatToHalf(1.0f + 3 * pow2(-11)), 0x3c02);
  // 2047.5 ties between 2047 (odd, 0x67ff) and 2048 (even, next exponent 0x6800).
  EXPECT_EQ(floatToHalf(2047.5f), 0x6800);
  EXPECT_EQ(floatToHalf(0.1f), 0x2e66);
}

TEST(Fp16, EveryHalfValueRoundTripsThroughFloat) {
  // Exhaustive: each of the 63,490 non-NaN halves is exactly representable as a float.
  int checked = 0;
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    float f = halfToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(floatToHalf(f), h) << std::hex << h;
    ++checked;
  }
  EXPECT_EQ(checked, 65536 - 2 * 1023);
}

// ---------------------------------------------------------------- BF16

TEST(Bf16, KnownValues) {
  EXPECT_EQ(floatToBf16(1.0f), 0x3f80);
  EXPECT_EQ(floatToBf16(-2.5f), 0xc020);
  EXPECT_EQ(floatToBf16(0.0f), 0x0000);
  EXPECT_EQ(floatToBf16(-0.0f), 0x8000);
  // BF16 keeps float's exponent range: 65504 rounds to 65536, not infinity.
  EXPECT_EQ(floatToBf16(65504.0f), 0x4780);
  EXPECT_EQ(bf16ToFloat(0x4780), 65536.0f);
  EXPECT_EQ(bf16ToFloat(0xc020), -2.5f);
  EXPECT_EQ(floatToBf16(0.1f), 0x3dcd);
}

TEST(Bf16, RoundsToNearestEvenAndOverflowsToInfinity) {
  auto bf = [](uint32_t bits) { return floatToBf16(std::bit_cast<float>(bits)); };
  EXPECT_EQ(bf(0x3f808000u), 0x3f80);  // exact tie, 0x3f80 is even
  EXPECT_EQ(bf(0x3f818000u), 0x3f82);  // exact tie, 0x3f81 is odd
  EXPECT_EQ(bf(0x3f808001u), 0x3f81);  // just past the tie
  EXPECT_EQ(bf(0x3f807fffu), 0x3f80);  // just before it
  EXPECT_EQ(bf(0x7f7fffffu), 0x7f80);  // FLT_MAX rounds to infinity
  EXPECT_EQ(bf(0xff7fffffu), 0xff80);
  EXPECT_EQ(bf(0x7f7f0000u), 0x7f7f);  // the largest finite bf16 stays
}

TEST(Bf16, InfinityNaNAndSubnormals) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(floatToBf16(kInf), 0x7f80);
  EXPECT_EQ(floatToBf16(-kInf), 0xff80);
  EXPECT_EQ(bf16ToFloat(0x7f80), kInf);
  // A NaN with payload only in the low 16 bits must not truncate to infinity.
  for (uint32_t bits : {0x7fc00000u, 0x7f800001u, 0xff800001u, 0x7fffffffu}) {
    EXPECT_TRUE(std::isnan(bf16ToFloat(floatToBf16(std::bit_cast<float>(bits)))))
        << std::hex << bits;
  }
  EXPECT_EQ(floatToBf16(std::bit_cast<float>(0x00010000u)), 0x0001);  // a float subnormal
  EXPECT_EQ(bf16ToFloat(0x0001), std::bit_cast<float>(0x00010000u));
  EXPECT_EQ(floatToBf16(std::numeric_limits<float>::denorm_min()), 0x0000);
}

TEST(Bf16, EveryBf16ValueRoundTripsThroughFloat) {
  for (uint32_t b = 0; b <= 0xffff; ++b) {
    float f = bf16ToFloat(static_cast<uint16_t>(b));
    if (std::isnan(f)) continue;
    ASSERT_EQ(floatToBf16(f), b) << std::hex << b;
  }
}

}  // namespace
}  // namespace kh::protocols
