// V2 JSON and the binary tensor data extension: round trips of every datatype, every error.

#include "kh/protocols/v2_json.h"

#include <limits>
#include <random>

#include "gtest/gtest.h"

namespace kh::protocols {
namespace {

std::string message(const absl::Status& s) { return std::string(s.message()); }

// One tensor of each datatype with awkward values.
std::vector<Tensor> everyDatatype() {
  std::vector<Tensor> out;
  auto add = [&](DataType t, auto values) {
    using V = typename decltype(values)::value_type;
    out.push_back(Tensor::fromValues<V>(std::string(dataTypeName(t)), t,
                                        {static_cast<int64_t>(values.size())}, values));
  };
  add(DataType::kBool, std::vector<uint8_t>{1, 0, 1});
  add(DataType::kUint8, std::vector<uint8_t>{0, 255});
  add(DataType::kUint16, std::vector<uint16_t>{0, 65535});
  add(DataType::kUint32, std::vector<uint32_t>{0, 4294967295u});
  add(DataType::kUint64, std::vector<uint64_t>{0, std::numeric_limits<uint64_t>::max()});
  add(DataType::kInt8, std::vector<int8_t>{-128, 127});
  add(DataType::kInt16, std::vector<int16_t>{-32768, 32767});
  add(DataType::kInt32, std::vector<int32_t>{std::numeric_limits<int32_t>::min(), 7});
  add(DataType::kInt64, std::vector<int64_t>{std::numeric_limits<int64_t>::min(), 42});
  add(DataType::kFp32, std::vector<float>{0.1f, -1.5f, 3e-7f});
  add(DataType::kFp64, std::vector<double>{0.1, -1e300});
  add(DataType::kFp16, std::vector<uint16_t>{floatToHalf(0.5f), floatToHalf(-2.0f)});
  add(DataType::kBf16, std::vector<uint16_t>{floatToBf16(1.0f)});
  Tensor bytes;
  bytes.name = "BYTES";
  bytes.datatype = DataType::kBytes;
  bytes.shape = {3};
  bytes.bytes = {"plain", "quote \" and \\", "caf\xc3\xa9"};
  out.push_back(bytes);
  return out;
}

bool sameTensor(const Tensor& a, const Tensor& b) {
  return a.name == b.name && a.datatype == b.datatype && a.shape == b.shape && a.raw == b.raw &&
         a.bytes == b.bytes;
}

TEST(V2Json, ResponseRoundTripForEveryDatatypeJsonAndBinary) {
  InferenceResponse r;
  r.model_name = "m";
  r.id = "42";
  r.outputs = everyDatatype();
  // Half precision cannot travel as JSON (KServe refuses it), so binary for those two.
  std::vector<bool> binary;
  for (const auto& t : r.outputs) binary.push_back(t.datatype == DataType::kFp16 || t.datatype == DataType::kBf16);
  auto encoded = encodeV2Response(r, binary);
  ASSERT_TRUE(encoded.json_length.has_value());
  auto decoded = decodeV2Response(encoded.body, encoded.json_length);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_EQ(decoded->outputs.size(), r.outputs.size());
  for (size_t i = 0; i < r.outputs.size(); ++i) {
    EXPECT_TRUE(sameTensor(decoded->outputs[i], r.outputs[i])) << r.outputs[i].name;
  }
  EXPECT_EQ(decoded->id, "42");
  // All binary.
  encoded = encodeV2Response(r, std::vector<bool>(r.outputs.size(), true));
  decoded = decodeV2Response(encoded.body, encoded.json_length);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  for (size_t i = 0; i < r.outputs.size(); ++i) EXPECT_TRUE(sameTensor(decoded->outputs[i], r.outputs[i]));
}

TEST(V2Json, RequestRoundTripKeepsInputOrderWithMixedBinary) {
  InferenceRequest req;
  req.id = "abc";
  req.has_id = true;
  req.parameters["priority"] = int64_t{3};
  req.parameters["flag"] = true;
  req.parameters["ratio"] = 0.25;
  req.parameters["tag"] = std::string("x");
  req.inputs = everyDatatype();
  std::vector<bool> binary;
  for (size_t i = 0; i < req.inputs.size(); ++i) binary.push_back(i % 2 == 0 || req.inputs[i].datatype == DataType::kFp16 || req.inputs[i].datatype == DataType::kBf16);
  req.outputs.push_back({"out", {{"binary_data", true}}});
  auto encoded = encodeV2Request(req, binary);
  auto decoded = decodeV2Request(encoded.body, encoded.json_length);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->id, "abc");
  EXPECT_EQ(decoded->parameters, req.parameters);
  ASSERT_EQ(decoded->inputs.size(), req.inputs.size());
  for (size_t i = 0; i < req.inputs.size(); ++i) EXPECT_TRUE(sameTensor(decoded->inputs[i], req.inputs[i]));
  ASSERT_EQ(decoded->outputs.size(), 1u);
  EXPECT_EQ(boolParameter(decoded->outputs[0].parameters, "binary_data"), true);
}

TEST(V2Json, NestedAndFlatDataGiveTheSameTensor) {
  auto nested = decodeV2Request(
      R"({"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1,2],[3,4]]}]})", std::nullopt);
  auto flat = decodeV2Request(
      R"({"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[1,2,3,4]}]})", std::nullopt);
  ASSERT_TRUE(nested.ok() && flat.ok());
  EXPECT_TRUE(sameTensor(nested->inputs[0], flat->inputs[0]));
}

TEST(V2Json, FloatsPrintShortest) {
  InferenceResponse r;
  r.model_name = "m";
  r.id = "i";
  std::vector<float> v = {0.1f};
  r.outputs.push_back(Tensor::fromValues<float>("y", DataType::kFp32, {1}, v));
  EXPECT_NE(encodeV2Response(r).body.find("[0.1]"), std::string::npos);
}

TEST(V2Json, BinaryOutputChoice) {
  InferenceRequest req;
  req.parameters["binary_data_output"] = true;
  req.outputs.push_back({"b", {{"binary_data", false}}});
  InferenceResponse resp;
  resp.outputs.resize(2);
  resp.outputs[0].name = "a";
  resp.outputs[1].name = "b";
  EXPECT_EQ(binaryOutputChoice(req, resp), (std::vector<bool>{true, false}));
  req.parameters.clear();
  req.outputs[0].parameters["binary_data"] = true;
  EXPECT_EQ(binaryOutputChoice(req, resp), (std::vector<bool>{false, true}));
}

struct BadCase {
  const char* body;
  const char* expect;  // a word the message must contain
  std::optional<size_t> header = std::nullopt;
};

TEST(V2Json, EveryRequestErrorHasAClearMessage) {
  const BadCase cases[] = {
      {R"({"inputs": [)", "Unrecognized request format"},
      {R"([1,2])", "JSON object"},
      {R"({"id":"x"})", "'inputs'"},
      {R"({"inputs": 5})", "must be a list"},
      {R"({"inputs": [5]})", "must be an object"},
      {R"({"inputs":[{"shape":[1],"datatype":"FP32","data":[1]}]})", "'name'"},
      {R"({"inputs":[{"name":"x","shape":[1],"data":[1]}]})", "'datatype'"},
      {R"({"inputs":[{"name":"x","datatype":"FP32","data":[1]}]})", "'shape'"},
      {R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP8","data":[1]}]})", "invalid datatype 'FP8'"},
      {R"({"inputs":[{"name":"x","shape":[1],"datatype":"fp32","data":[1]}]})", "invalid datatype"},
      {R"({"inputs":[{"name":"x","shape":[-1],"datatype":"FP32","data":[1]}]})", "non-negative"},
      {R"({"inputs":[{"name":"x","shape":[1.5],"datatype":"FP32","data":[1]}]})", "non-negative"},
      {R"({"inputs":[{"name":"x","shape":4,"datatype":"FP32","data":[1]}]})", "list of integers"},
      {R"({"inputs":[{"name":"x","shape":[3],"datatype":"FP32","data":[1,2]}]})", "3 elements"},
      {R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1,2]}]})", "2 elements"},
      {R"({"inputs":[{"name":"x","shape":[1],"datatype":"UINT8","data":[256]}]})", "not a valid UINT8"},
      {R"({"inputs":[{"name":"x","shape":[1],"datatype":"UINT8","data":[-1]}]})", "not a valid UINT8"},
      {R"({"inputs":[{"name":"x","shape":[1],"datatype":"INT8","data":[128]}]})", "not a valid INT8"},
      {R"({"inputs":[{"name":"x","shape":[1],"datatype":"INT32","data":[1.5]}]})", "not a valid INT32"},
      {R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":["a"]}]})", "not a number"},
      {R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[null]}]})", "not a number"},
      {R"({"inputs":[{"name":"x","shape":[1],"datatype":"BYTES","data":[1]}]})", "not a string"},
      {R"({"inputs":[{"name":"x","shape":[1],"datatype":"BOOL","data":[1]}]})", "not a BOOL"},
      {R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP16","data":[1]}]})", "Sending FP16 data via JSON is not supported"},
      {R"({"inputs":[{"name":"x","shape":[1],"datatype":"BF16","data":[1]}]})", "BF16"},
      {R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32"}]})", "'data' field is missing"},
      {R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1],"parameters":{"binary_data_size":4}}]})", "both 'data' and 'binary_data_size'"},
      {R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}]})", "inference-header-content-length"},
      {R"({"id":5,"inputs":[]})", "'id' must be a string"},
      {R"({"parameters":[1],"inputs":[]})", "must be an object"},
      {R"({"parameters":{"a":[1]},"inputs":[]})", "string, number or boolean"},
      {R"({"inputs":[],"outputs":[{"parameters":{}}]})", "'name'"},
      {R"({"inputs":[],"outputs":{}})", "must be a list"},
  };
  for (const auto& c : cases) {
    auto r = decodeV2Request(c.body, c.header);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.body;
    EXPECT_NE(message(r.status()).find(c.expect), std::string::npos)
        << c.body << "\n  got: " << r.status();
  }
}

TEST(V2Json, BinarySizeErrors) {
  std::string header = R"({"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}}]})";
  std::string blob(8, '\0');
  EXPECT_TRUE(decodeV2Request(header + blob, header.size()).ok());
  // Too short, leftover bytes, header length past the body.
  EXPECT_NE(message(decodeV2Request(header + blob.substr(0, 4), header.size()).status()).find("remain"), std::string::npos);
  EXPECT_NE(message(decodeV2Request(header + blob + "xx", header.size()).status()).find("no input claims"), std::string::npos);
  EXPECT_NE(message(decodeV2Request(header, header.size() + 10).status()).find("larger than the body"), std::string::npos);
  // A BYTES blob that ends inside an element length.
  std::string bytes_header = R"({"inputs":[{"name":"s","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":3}}]})";
  EXPECT_NE(message(decodeV2Request(bytes_header + "abc", bytes_header.size()).status()).find("element length"), std::string::npos);
}

TEST(V2Json, MutatedBodiesNeverCrashAndFailCleanly) {
  InferenceRequest req;
  std::vector<float> v = {1, 2, 3, 4};
  req.inputs.push_back(Tensor::fromValues<float>("x", DataType::kFp32, {2, 2}, v));
  Tensor s;
  s.name = "s";
  s.datatype = DataType::kBytes;
  s.shape = {2};
  s.bytes = {"ab", "c"};
  req.inputs.push_back(s);
  auto json_body = encodeV2Request(req);
  auto binary_body = encodeV2Request(req, {true, true});
  std::mt19937 rng(1);
  for (int i = 0; i < 2000; ++i) {
    const auto& base = i % 2 ? json_body : binary_body;
    std::string body = base.body;
    switch (rng() % 3) {
      case 0: body[rng() % body.size()] = static_cast<char>(rng()); break;
      case 1: body.resize(rng() % body.size()); break;
      case 2: body.insert(rng() % body.size(), 1, static_cast<char>(rng())); break;
    }
    auto r = decodeV2Request(body, base.json_length);
    if (!r.ok()) EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(ModelMetadataJson, RoundTrip) {
  ModelMetadata m;
  m.name = "iris";
  m.platform = "xgboost";
  m.versions = {"1"};
  m.inputs.push_back({"input-0", DataType::kFp32, {-1, 4}});
  m.outputs.push_back({"output-0", DataType::kInt64, {-1}});
  m.properties["k"] = "v";
  auto decoded = decodeModelMetadata(encodeModelMetadata(m));
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->name, "iris");
  EXPECT_EQ(decoded->inputs[0].shape, (Shape{-1, 4}));
  EXPECT_EQ(decoded->outputs[0].datatype, DataType::kInt64);
  EXPECT_FALSE(decodeModelMetadata(R"({"name":"x"})").ok());
}

TEST(V2Json, ErrorBody) { EXPECT_EQ(encodeV2Error("bad \"x\""), R"({"error":"bad \"x\""})"); }

}  // namespace
}  // namespace kh::protocols
