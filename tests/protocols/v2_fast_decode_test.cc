// The V2 request fast path (protocols/src/v2_fast_decode.h) against the general decoder: for
// every body, decodeV2Request() (fast path first) and decodeV2RequestWithoutFastPath() agree,
// error or value; and the fast path does take the requests it exists for.

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "kh/protocols/v2_json.h"
#include "v2_fast_decode.h"

namespace kh::protocols {
namespace {

void expectSameTensor(const Tensor& a, const Tensor& b, const std::string& body) {
  EXPECT_EQ(a.name, b.name) << body;
  EXPECT_EQ(a.datatype, b.datatype) << body;
  EXPECT_EQ(a.shape, b.shape) << body;
  EXPECT_EQ(a.parameters.size(), b.parameters.size()) << body;
  // Byte for byte: the sign of a zero and the rounding of each value count.
  EXPECT_EQ(a.raw, b.raw) << body;
  EXPECT_EQ(a.bytes, b.bytes) << body;
}

// Both decoders on one body; returns whether the fast path took it.
bool expectAgree(const std::string& body) {
  auto general = decodeV2RequestWithoutFastPath(body, std::nullopt);
  auto chosen = decodeV2Request(body, std::nullopt);
  EXPECT_EQ(general.ok(), chosen.ok()) << body;
  if (general.ok() && chosen.ok()) {
    EXPECT_EQ(general->id, chosen->id) << body;
    EXPECT_EQ(general->has_id, chosen->has_id) << body;
    EXPECT_EQ(general->parameters.size(), chosen->parameters.size()) << body;
    EXPECT_EQ(general->outputs.size(), chosen->outputs.size()) << body;
    EXPECT_EQ(general->inputs.size(), chosen->inputs.size()) << body;
    for (size_t i = 0; i < general->inputs.size() && i < chosen->inputs.size(); ++i) {
      expectSameTensor(general->inputs[i], chosen->inputs[i], body);
    }
  } else if (!general.ok() && !chosen.ok()) {
    EXPECT_EQ(general.status(), chosen.status()) << body;
  }
  auto fast = internal::decodeV2RequestFast(body);
  // The fast path never accepts what the general decoder refuses.
  if (fast) {
    EXPECT_TRUE(general.ok()) << body;
  }
  return fast.has_value();
}

TEST(V2FastDecode, TakesTheCommonRequestsAndAgreesWithTheGeneralDecoder) {
  const std::vector<std::string> taken = {
      R"({"inputs":[{"name":"input-0","shape":[2,4],"datatype":"FP32","data":[6.8,2.8,4.8,1.4,6.0,3.4,4.5,1.6]}]})",
      R"({"id":"r1","inputs":[{"name":"x","shape":[2,2],"datatype":"FP64","data":[[1,2],[3,4]]}]})",
      R"( { "inputs" : [ { "data" : [ [ 0.1 , -0 ] ] , "datatype" : "FP32" , "shape" : [ 1 , 2 ] , "name" : "a" } ] , "id" : null } )",
      R"({"inputs":[{"name":"a","shape":[3],"datatype":"FP32","data":[1e-5,-2.5E+3,123456789012345678]},)"
      R"({"name":"b","shape":[0],"datatype":"FP64","data":[]}]})",
      R"({"inputs":[]})",
      "{\n\t\"inputs\": [{\"name\": \"n\", \"shape\": [1], \"datatype\": \"FP32\", \"data\": [3.4028234663852886e38]}]\r\n}",
  };
  for (const auto& body : taken) EXPECT_TRUE(expectAgree(body)) << "not taken: " << body;

  const std::vector<std::string> declined = {
      // Outside the subset, valid: the general decoder's.
      R"({"inputs":[{"name":"a","shape":[2],"datatype":"INT64","data":[1,2]}]})",
      R"({"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1],"parameters":{}}]})",
      R"({"parameters":{"k":1},"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]}]})",
      R"({"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]}],"outputs":[{"name":"o"}]})",
      R"({"inputs":[{"name":"\u0061","shape":[1],"datatype":"FP32","data":[1]}]})",
      R"({"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":5}]})",
      R"({"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1234567890123456789012]}]})",
      R"({"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1e-400]}]})",
      R"({"id":"a","id":"b","inputs":[]})",
      // Errors: the general decoder's message.
      R"({"inputs":[{"name":"a","shape":[3],"datatype":"FP32","data":[1,2]}]})",
      R"({"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1e400]}]})",
      R"({"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[01]}]})",
      R"({"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1.]}]})",
      R"({"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[true]}]})",
      R"({"inputs":[{"name":"a","shape":[-1],"datatype":"FP32","data":[1]}]})",
      R"({"inputs":[{"name":"a","datatype":"FP32","data":[1]}]})",
      R"({"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]}]} x)",
      R"({"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]})",
      R"({"id":5,"inputs":[]})",
      R"({})",
      R"([])",
      "",
  };
  for (const auto& body : declined) EXPECT_FALSE(expectAgree(body)) << "taken: " << body;
}

// Seeded random numbers in every JSON spelling, round-tripped through both decoders: the values
// must match bit for bit (rounding to FP32, -0 as an integer and as a float, exponents).
TEST(V2FastDecode, NumbersAgreeBitForBit) {
  std::mt19937_64 rng(20261207);
  std::uniform_int_distribution<int> kind(0, 5);
  std::uniform_int_distribution<int> exponent(-320, 310);
  std::uniform_int_distribution<int64_t> integer(-999'999'999'999'999'999, 999'999'999'999'999'999);
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  int taken = 0;
  for (int round = 0; round < 200; ++round) {
    std::string data;
    const int n = 50;
    for (int i = 0; i < n; ++i) {
      if (i) data += ",";
      char buf[64];
      switch (kind(rng)) {
        case 0: std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(integer(rng))); break;
        case 1: std::snprintf(buf, sizeof buf, "%.17g", unit(rng)); break;
        case 2: std::snprintf(buf, sizeof buf, "%.9e", unit(rng) * 1e10); break;
        case 3: std::snprintf(buf, sizeof buf, "%.3fE%d", unit(rng), exponent(rng)); break;
        case 4: std::snprintf(buf, sizeof buf, "%s", (rng() & 1) ? "-0" : "-0.0"); break;
        default: std::snprintf(buf, sizeof buf, "%d", static_cast<int>(rng() % 1000)); break;
      }
      data += buf;
    }
    for (const char* type : {"FP32", "FP64"}) {
      std::string body = std::string(R"({"inputs":[{"name":"x","datatype":")") + type + R"(","shape":[)" +
                         std::to_string(n) + R"(],"data":[)" + data + "]}]}";
      taken += expectAgree(body) ? 1 : 0;
    }
  }
  // Most rounds have no out-of-range value; those the fast path takes.
  EXPECT_GT(taken, 100);
}

}  // namespace
}  // namespace kh::protocols
