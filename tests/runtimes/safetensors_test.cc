// The safetensors reader: round trips and every way a file can be broken.

#include "safetensors.h"

#include <cstring>

#include "gtest/gtest.h"
#include "kh/protocols/tensor.h"

namespace kh::runtimes {
namespace {

std::string f32Bytes(std::initializer_list<float> values) {
  std::string out;
  for (float v : values) out.append(reinterpret_cast<const char*>(&v), 4);
  return out;
}

SafeTensorsFile sample() {
  SafeTensorsFile f;
  f.tensors["a"] = {"F32", {2, 2}, f32Bytes({1, 2, 3, 4})};
  std::string half;
  for (float v : {0.5f, -2.0f, 65504.0f}) {
    uint16_t h = protocols::floatToHalf(v);
    half.append(reinterpret_cast<const char*>(&h), 2);
  }
  f.tensors["b"] = {"F16", {3}, half};
  std::string bf;
  for (float v : {1.0f, 3.0f}) {
    uint16_t h = protocols::floatToBf16(v);
    bf.append(reinterpret_cast<const char*>(&h), 2);
  }
  f.tensors["c"] = {"BF16", {1, 2}, bf};
  f.metadata["format"] = "pt";
  return f;
}

// Builds a file from a raw header string and payload.
std::string withHeader(const std::string& header, const std::string& payload) {
  uint64_t len = header.size();
  return std::string(reinterpret_cast<const char*>(&len), 8) + header + payload;
}

TEST(SafeTensors, RoundTripF32F16Bf16) {
  std::string bytes = serializeSafeTensors(sample());
  auto parsed = parseSafeTensors(bytes, "x");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->metadata.at("format"), "pt");
  EXPECT_EQ(*parsed->tensors.at("a").toFloats(), (std::vector<float>{1, 2, 3, 4}));
  EXPECT_EQ(*parsed->tensors.at("b").toFloats(), (std::vector<float>{0.5f, -2.0f, 65504.0f}));
  EXPECT_EQ(*parsed->tensors.at("c").toFloats(), (std::vector<float>{1.0f, 3.0f}));
  EXPECT_EQ(parsed->tensors.at("a").shape, (std::vector<int64_t>{2, 2}));
}

TEST(SafeTensors, EveryTruncationIsAnErrorNeverACrash) {
  std::string bytes = serializeSafeTensors(sample());
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto parsed = parseSafeTensors(std::string_view(bytes).substr(0, n), "cut");
    EXPECT_FALSE(parsed.ok()) << "truncated to " << n << " bytes";
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(SafeTensors, CorruptHeaders) {
  std::string payload = f32Bytes({1, 2});
  auto err = [](const absl::StatusOr<SafeTensorsFile>& r) {
    return r.ok() ? std::string("OK") : std::string(r.status().message());
  };
  EXPECT_NE(err(parseSafeTensors(withHeader("{not json", payload), "f")).find("not valid JSON"),
            std::string::npos);
  EXPECT_NE(err(parseSafeTensors(withHeader("[1,2]", payload), "f")).find("JSON object"),
            std::string::npos);
  EXPECT_NE(err(parseSafeTensors(
                    withHeader(R"({"a":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}})", payload),
                    "f"))
                .find("unknown dtype"),
            std::string::npos);
  EXPECT_NE(err(parseSafeTensors(
                    withHeader(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", payload),
                    "f"))
                .find("outside"),
            std::string::npos);
  EXPECT_NE(err(parseSafeTensors(
                    withHeader(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", payload),
                    "f"))
                .find("needs 12"),
            std::string::npos);
  EXPECT_NE(err(parseSafeTensors(
                    withHeader(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                               R"("b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}})",
                               payload),
                    "f"))
                .find("overlap"),
            std::string::npos);
  EXPECT_NE(err(parseSafeTensors(withHeader(R"({"a":{"dtype":"F32"}})", payload), "f"))
                .find("data_offsets"),
            std::string::npos);
  // A header length far beyond the file.
  std::string huge(8, '\0');
  uint64_t len = 1ull << 40;
  std::memcpy(huge.data(), &len, 8);
  EXPECT_NE(err(parseSafeTensors(huge + "{}", "f")).find("implausibly large"), std::string::npos);
  len = 1000;
  std::memcpy(huge.data(), &len, 8);
  EXPECT_NE(err(parseSafeTensors(huge + "{}", "f")).find("runs past"), std::string::npos);
}

TEST(SafeTensors, MissingFileIsNotFound) {
  EXPECT_EQ(readSafeTensors("/nonexistent/model.safetensors").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace kh::runtimes
