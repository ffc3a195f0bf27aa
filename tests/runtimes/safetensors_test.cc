// The safetensors reader and writer: round trips, and every way a file can be broken.

#include "safetensors.h"

#include <cstring>
#include <fstream>

#include "gtest/gtest.h"
#include "kh/protocols/tensor.h"
#include "test_util.h"

namespace kh::runtimes {
namespace {

std::string f32Bytes(std::initializer_list<float> values) {
  std::string out;
  for (float v : values) out.append(reinterpret_cast<const char*>(&v), 4);
  return out;
}

std::string u16Bytes(std::initializer_list<float> values, uint16_t (*encode)(float)) {
  std::string out;
  for (float v : values) {
    uint16_t h = encode(v);
    out.append(reinterpret_cast<const char*>(&h), 2);
  }
  return out;
}

SafeTensorsFile sample() {
  SafeTensorsFile f;
  f.tensors["a"] = {"F32", {2, 2}, f32Bytes({1, 2, 3, 4})};
  f.tensors["b"] = {"F16", {3}, u16Bytes({0.5f, -2.0f, 65504.0f}, protocols::floatToHalf)};
  f.tensors["c"] = {"BF16", {1, 2}, u16Bytes({1.0f, 3.0f}, protocols::floatToBf16)};
  f.metadata["format"] = "pt";
  return f;
}

std::string serialized(const SafeTensorsFile& f) {
  auto bytes = serializeSafeTensors(f);
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  return bytes.ok() ? *bytes : std::string();
}

// A file from a raw header string and payload.
std::string withHeader(const std::string& header, const std::string& payload) {
  uint64_t len = header.size();
  return std::string(reinterpret_cast<const char*>(&len), 8) + header + payload;
}

// The error message of parsing `bytes`, or "OK".
std::string parseError(const std::string& bytes) {
  auto r = parseSafeTensors(bytes, "f.safetensors");
  if (r.ok()) return "OK";
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  return std::string(r.status().message());
}

#define EXPECT_PARSE_ERROR(bytes, fragment)                                                \
  do {                                                                                     \
    std::string message_ = parseError(bytes);                                              \
    EXPECT_NE(message_.find(fragment), std::string::npos) << message_;                     \
    EXPECT_EQ(message_.rfind("f.safetensors: ", 0), 0u) << "names the file: " << message_; \
  } while (false)

TEST(SafeTensors, RoundTripF32F16Bf16) {
  auto parsed = parseSafeTensors(serialized(sample()), "x");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->metadata, (std::map<std::string, std::string>{{"format", "pt"}}));
  ASSERT_EQ(parsed->tensors.size(), 3u);
  EXPECT_EQ(parsed->tensors.at("a").dtype, "F32");
  EXPECT_EQ(parsed->tensors.at("a").shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(*parsed->tensors.at("a").toFloats(), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(parsed->tensors.at("b").dtype, "F16");
  EXPECT_EQ(*parsed->tensors.at("b").toFloats(), (std::vector<float>{0.5f, -2.0f, 65504.0f}));
  EXPECT_EQ(parsed->tensors.at("c").dtype, "BF16");
  EXPECT_EQ(parsed->tensors.at("c").shape, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(*parsed->tensors.at("c").toFloats(), (std::vector<float>{1.0f, 3.0f}));
}

TEST(SafeTensors, LayoutFollowsTheFormat) {
  std::string bytes = serialized(sample());
  uint64_t len;
  std::memcpy(&len, bytes.data(), 8);
  EXPECT_EQ(len % 8, 0u) << "header padded so the data is 8-byte aligned";
  EXPECT_EQ(bytes[8], '{');
  // Data follows the header contiguously, in name order: a (16 bytes), b (6), c (4).
  EXPECT_EQ(bytes.size(), 8 + len + 16 + 6 + 4);
  float first;
  std::memcpy(&first, bytes.data() + 8 + len, 4);
  EXPECT_EQ(first, 1.0f);
}

TEST(SafeTensors, OtherDtypesEmptyTensorsAndNoMetadata) {
  SafeTensorsFile f;
  double d[] = {1.5, -2.25};
  f.tensors["f64"] = {"F64", {2}, std::string(reinterpret_cast<const char*>(d), sizeof d)};
  int64_t i[] = {7};
  f.tensors["i64"] = {"I64", {}, std::string(reinterpret_cast<const char*>(i), sizeof i)};
  f.tensors["empty"] = {"F32", {0, 3}, ""};
  auto parsed = parseSafeTensors(serialized(f), "x");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(parsed->metadata.empty());
  EXPECT_EQ(*parsed->tensors.at("f64").toFloats(), (std::vector<float>{1.5f, -2.25f}));
  EXPECT_TRUE(parsed->tensors.at("empty").toFloats()->empty());
  EXPECT_TRUE(parsed->tensors.at("i64").shape.empty());
  auto ints = parsed->tensors.at("i64").toFloats();
  EXPECT_EQ(ints.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(SafeTensors, FileRoundTripAndMissingFiles) {
  auto dir = testing::freshDir("st");
  ASSERT_TRUE(writeSafeTensors(dir / "m.safetensors", sample()).ok());
  auto read = readSafeTensors(dir / "m.safetensors");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->tensors.at("a").bytes, sample().tensors.at("a").bytes);
  EXPECT_EQ(readSafeTensors(dir / "nope.safetensors").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(readSafeTensors(dir).status().code(), absl::StatusCode::kNotFound);
  // A broken file's message starts with its path.
  std::ofstream(dir / "bad.safetensors") << "short";
  auto bad = readSafeTensors(dir / "bad.safetensors");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(bad.status().message()).rfind((dir / "bad.safetensors").string(), 0), 0u)
      << bad.status();
}

TEST(SafeTensors, WriterRefusesInconsistentTensors) {
  SafeTensorsFile f;
  f.tensors["a"] = {"F32", {3}, f32Bytes({1, 2})};
  EXPECT_EQ(serializeSafeTensors(f).status().code(), absl::StatusCode::kInvalidArgument);
  f.tensors["a"] = {"Q8", {2}, f32Bytes({1, 2})};
  EXPECT_EQ(serializeSafeTensors(f).status().code(), absl::StatusCode::kInvalidArgument);
  f.tensors.clear();
  f.tensors["__metadata__"] = {"F32", {1}, f32Bytes({1})};
  EXPECT_EQ(serializeSafeTensors(f).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(writeSafeTensors("/nonexistent-dir/x.safetensors", sample()).code(),
            absl::StatusCode::kInternal);
}

TEST(SafeTensors, EveryTruncationIsAnErrorNeverACrash) {
  std::string bytes = serialized(sample());
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto parsed = parseSafeTensors(std::string_view(bytes).substr(0, n), "cut");
    EXPECT_FALSE(parsed.ok()) << "truncated to " << n << " bytes";
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << n;
  }
}

TEST(SafeTensors, CorruptedBytesNeverCrash) {
  // Every byte replaced by a few values that matter to the parser: either a clean error or, for
  // a change inside the data (or the header's padding), a file that still parses.
  std::string bytes = serialized(sample());
  int errors = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (char c : {'\0', '\xff', '{', '"', '9', ' '}) {
      std::string copy = bytes;
      copy[i] = c;
      auto parsed = parseSafeTensors(copy, "x");
      if (!parsed.ok()) {
        ++errors;
        EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
      }
    }
  }
  EXPECT_GT(errors, 0);
}

TEST(SafeTensors, CorruptHeaders) {
  std::string payload = f32Bytes({1, 2});
  EXPECT_PARSE_ERROR(withHeader("{not json", payload), "not valid JSON");
  EXPECT_PARSE_ERROR(withHeader("[1,2]", payload), "JSON object");
  EXPECT_PARSE_ERROR(
      withHeader(R"({"a":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}})", payload),
      "unknown dtype 'Q7'");
  EXPECT_PARSE_ERROR(withHeader(R"({"a":{"dtype":"F32"}})", payload), "data_offsets");
  EXPECT_PARSE_ERROR(withHeader(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", payload),
                     "data_offsets [begin, end]");
  EXPECT_PARSE_ERROR(
      withHeader(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", payload),
      "non-negative integers");
  EXPECT_PARSE_ERROR(
      withHeader(R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", payload),
      "non-negative integers");
  EXPECT_PARSE_ERROR(
      withHeader(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,"8"]}})", payload),
      "data_offsets must be non-negative integers");
  EXPECT_PARSE_ERROR(
      withHeader(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"__metadata__":[1]})",
                 payload),
      "__metadata__ must be an object");
  EXPECT_PARSE_ERROR(withHeader(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                R"("__metadata__":{"k":1}})",
                                payload),
                     "__metadata__ value 'k' is not a string");
  EXPECT_PARSE_ERROR(withHeader(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                payload),
                     "names 'a' twice");
  // A shape whose byte size overflows 64 bits.
  EXPECT_PARSE_ERROR(
      withHeader(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})",
                 payload),
      "overflows");
}

TEST(SafeTensors, OffsetsOutOfRangeOverlappingOrNotMatchingTheShape) {
  std::string payload = f32Bytes({1, 2});
  EXPECT_PARSE_ERROR(
      withHeader(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", payload),
      "data_offsets [0, 16] fall outside the 8 bytes of data");
  EXPECT_PARSE_ERROR(
      withHeader(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,4]}})", payload),
      "fall outside");
  EXPECT_PARSE_ERROR(
      withHeader(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", payload),
      "holds 8 bytes but F32 [3] needs 12");
  EXPECT_PARSE_ERROR(
      withHeader(R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,8]}})", payload), "needs 4");
  EXPECT_PARSE_ERROR(withHeader(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                R"("b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}})",
                                payload),
                     "overlap");
  EXPECT_PARSE_ERROR(withHeader(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                                payload),
                     "overlap");
  // The reference implementation also refuses gaps and bytes that belong to no tensor.
  EXPECT_PARSE_ERROR(
      withHeader(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", payload),
      "gap in tensor data: bytes 0 to 4");
  EXPECT_PARSE_ERROR(
      withHeader(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", payload),
      "the tensors cover 4 of the 8 data bytes");
  EXPECT_PARSE_ERROR(withHeader("{}", payload), "cover 0 of the 8");
  // Header only, no tensors, no data: a valid (empty) file.
  EXPECT_EQ(parseError(withHeader("{}", "")), "OK");
  EXPECT_EQ(
      parseError(withHeader(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", payload)),
      "OK");
}

TEST(SafeTensors, HeaderLengthBeyondTheFileOrAbsurd) {
  std::string head(8, '\0');
  uint64_t len = 1ull << 40;
  std::memcpy(head.data(), &len, 8);
  EXPECT_PARSE_ERROR(head + "{}", "implausibly large");
  len = kMaxSafeTensorsHeaderBytes + 1;
  std::memcpy(head.data(), &len, 8);
  EXPECT_PARSE_ERROR(head + "{}", "implausibly large");
  len = 1000;
  std::memcpy(head.data(), &len, 8);
  EXPECT_PARSE_ERROR(head + "{}", "header length 1000 runs past the end of the 10-byte file");
  EXPECT_PARSE_ERROR(std::string("\x02\0\0", 3), "shorter than the 8-byte header length");
}

}  // namespace
}  // namespace kh::runtimes
