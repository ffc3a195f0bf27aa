// V2 / Open Inference Protocol REST bodies and the binary tensor data extension: round trips of
// every datatype, exact wire layout, every decode error, model metadata, and mutation robustness.

#include "kh/protocols/v2_json.h"

#include <limits>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kh/common/strings.h"
#include "nlohmann/json.hpp"

namespace kh::protocols {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string message(const absl::Status& s) { return std::string(common::toStd(s.message())); }

template <typename T>
Tensor make(std::string name, DataType type, Shape shape, std::vector<T> values) {
  return Tensor::fromValues<T>(std::move(name), type, std::move(shape), values);
}

Tensor bytesTensor(std::string name, Shape shape, std::vector<std::string> elements) {
  Tensor t;
  t.name = std::move(name);
  t.datatype = DataType::kBytes;
  t.shape = std::move(shape);
  t.bytes = std::move(elements);
  return t;
}

// One tensor of every datatype JSON can carry (all but FP16/BF16), with boundary values and
// several ranks.
std::vector<Tensor> jsonDatatypes() {
  using L = std::numeric_limits<float>;
  using D = std::numeric_limits<double>;
  return {
      make<uint8_t>("bool", DataType::kBool, {3}, {1, 0, 1}),
      make<uint8_t>("uint8", DataType::kUint8, {2}, {0, 255}),
      make<uint16_t>("uint16", DataType::kUint16, {2}, {0, 65535}),
      make<uint32_t>("uint32", DataType::kUint32, {2}, {0, 4294967295u}),
      make<uint64_t>("uint64", DataType::kUint64, {2}, {0, std::numeric_limits<uint64_t>::max()}),
      make<int8_t>("int8", DataType::kInt8, {2}, {-128, 127}),
      make<int16_t>("int16", DataType::kInt16, {2}, {-32768, 32767}),
      make<int32_t>("int32", DataType::kInt32, {1, 2},
                    {std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()}),
      make<int64_t>("int64", DataType::kInt64, {2, 1},
                    {std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()}),
      make<float>("fp32", DataType::kFp32, {2, 3},
                  {0.1f, -1.5f, 3e-7f, L::max(), L::denorm_min(), 6.8f}),
      make<double>("fp64", DataType::kFp64, {4}, {0.1, -1e300, D::max(), D::denorm_min()}),
      bytesTensor("bytes", {2, 4},
                  {"plain", R"(quote " and \ backslash)", "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac",
                   "\xf0\x9f\x98\x80", "", std::string("nul\0inside", 10), "line\nbreak\ttab",
                   "{\"json\":[1]}"}),
  };
}

std::vector<Tensor> halfDatatypes() {
  return {
      make<uint16_t>("fp16", DataType::kFp16, {5},
                     {floatToHalf(0.5f), floatToHalf(-2.0f), 0x7bff, 0x0001, 0x7c00}),
      make<uint16_t>("bf16", DataType::kBf16, {2, 1}, {floatToBf16(1.0f), floatToBf16(-3.0f)}),
  };
}

std::vector<Tensor> allDatatypes() {
  auto all = jsonDatatypes();
  for (auto& t : halfDatatypes()) all.push_back(t);
  return all;
}

void expectSameTensors(const std::vector<Tensor>& got, const std::vector<Tensor>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(want[i].name);
    EXPECT_EQ(got[i].name, want[i].name);
    EXPECT_EQ(got[i].datatype, want[i].datatype);
    EXPECT_EQ(got[i].shape, want[i].shape);
    EXPECT_EQ(got[i].raw, want[i].raw);
    EXPECT_EQ(got[i].bytes, want[i].bytes);
  }
}

InferenceResponse responseOf(std::vector<Tensor> outputs) {
  InferenceResponse r;
  r.model_name = "m";
  r.model_version = "3";
  r.id = "req-42";
  r.parameters = {{"took_ms", int64_t{5}}, {"cached", false}};
  r.outputs = std::move(outputs);
  return r;
}

InferenceRequest requestOf(std::vector<Tensor> inputs) {
  InferenceRequest r;
  r.id = "abc";
  r.has_id = true;
  r.parameters = {{"priority", int64_t{-3}}, {"flag", true}, {"ratio", 0.25},
                  {"tag", std::string("x \"y\"")}, {"big", std::numeric_limits<uint64_t>::max()}};
  r.inputs = std::move(inputs);
  r.outputs.push_back({"out", {{"binary_data", true}}});
  r.outputs.push_back({"plain", {}});
  return r;
}

// ---------------------------------------------------------------- round trips

TEST(V2JsonRoundTrip, ResponseWithEveryJsonDatatype) {
  InferenceResponse r = responseOf(jsonDatatypes());
  EncodedBody encoded = encodeV2Response(r);
  EXPECT_FALSE(encoded.json_length.has_value());  // no binary: no header length
  auto decoded = decodeV2Response(encoded.body, std::nullopt);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  expectSameTensors(decoded->outputs, r.outputs);
  EXPECT_EQ(decoded->model_name, "m");
  EXPECT_EQ(decoded->model_version, "3");
  EXPECT_EQ(decoded->id, "req-42");
  EXPECT_EQ(decoded->parameters, r.parameters);
}

TEST(V2JsonRoundTrip, RequestWithEveryJsonDatatype) {
  InferenceRequest r = requestOf(jsonDatatypes());
  EncodedBody encoded = encodeV2Request(r);
  EXPECT_FALSE(encoded.json_length.has_value());
  auto decoded = decodeV2Request(encoded.body, std::nullopt);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  expectSameTensors(decoded->inputs, r.inputs);
  EXPECT_EQ(decoded->id, "abc");
  EXPECT_TRUE(decoded->has_id);
  EXPECT_EQ(decoded->parameters, r.parameters);
  ASSERT_EQ(decoded->outputs.size(), 2u);
  EXPECT_EQ(decoded->outputs[0].name, "out");
  EXPECT_EQ(boolParameter(decoded->outputs[0].parameters, kBinaryData), true);
  EXPECT_EQ(decoded->outputs[1].name, "plain");
  EXPECT_TRUE(decoded->outputs[1].parameters.empty());
}

TEST(V2JsonRoundTrip, EachDatatypeAloneAsJsonAndAsBinary) {
  // One tensor at a time, so a failure names the datatype and no neighbour can mask it.
  for (const Tensor& t : allDatatypes()) {
    SCOPED_TRACE(t.name);
    bool half = t.datatype == DataType::kFp16 || t.datatype == DataType::kBf16;
    for (bool binary : {false, true}) {
      if (half && !binary) continue;  // half precision cannot be sent as JSON
      auto req = encodeV2Request(requestOf({t}), {binary});
      EXPECT_EQ(req.json_length.has_value(), binary);
      auto in = decodeV2Request(req.body, req.json_length);
      ASSERT_TRUE(in.ok()) << in.status();
      expectSameTensors(in->inputs, {t});
      auto resp = encodeV2Response(responseOf({t}), {binary});
      auto out = decodeV2Response(resp.body, resp.json_length);
      ASSERT_TRUE(out.ok()) << out.status();
      expectSameTensors(out->outputs, {t});
    }
  }
}

TEST(V2JsonRoundTrip, EveryDatatypeAllBinaryIncludingHalfPrecision) {
  auto tensors = allDatatypes();
  std::vector<bool> all(tensors.size(), true);
  auto req = encodeV2Request(requestOf(tensors), all);
  ASSERT_TRUE(req.json_length.has_value());
  auto in = decodeV2Request(req.body, req.json_length);
  ASSERT_TRUE(in.ok()) << in.status();
  expectSameTensors(in->inputs, tensors);
  auto resp = encodeV2Response(responseOf(tensors), all);
  auto out = decodeV2Response(resp.body, resp.json_length);
  ASSERT_TRUE(out.ok()) << out.status();
  expectSameTensors(out->outputs, tensors);
}

TEST(V2JsonRoundTrip, HalfPrecisionKeepsItsExactBitsThroughBinary) {
  // Every bit pattern, NaN payloads included: binary data is copied, never converted.
  std::vector<uint16_t> every(65536);
  for (size_t i = 0; i < every.size(); ++i) every[i] = static_cast<uint16_t>(i);
  for (DataType type : {DataType::kFp16, DataType::kBf16}) {
    Tensor t = make<uint16_t>("h", type, {256, 256}, every);
    auto body = encodeV2Request(requestOf({t}), {true});
    auto in = decodeV2Request(body.body, body.json_length);
    ASSERT_TRUE(in.ok()) << in.status();
    expectSameTensors(in->inputs, {t});
  }
}

TEST(V2JsonRoundTrip, FloatsSurviveJsonExactlyForRandomBitPatterns) {
  // FP32 is printed in its shortest form and read back through double: the float must come back
  // bit for bit.
  std::mt19937 rng(11);
  std::vector<float> values;
  while (values.size() < 4096) {
    float f = std::bit_cast<float>(static_cast<uint32_t>(rng()));
    if (std::isfinite(f) && !(f == 0 && std::signbit(f))) values.push_back(f);
  }
  std::vector<double> doubles;
  while (doubles.size() < 1024) {
    double d = std::bit_cast<double>((uint64_t{rng()} << 32) | rng());
    if (std::isfinite(d) && !(d == 0 && std::signbit(d))) doubles.push_back(d);
  }
  std::vector<Tensor> tensors = {make<float>("f", DataType::kFp32, {64, 64}, values),
                                 make<double>("d", DataType::kFp64, {1024}, doubles)};
  auto body = encodeV2Response(responseOf(tensors));
  auto out = decodeV2Response(body.body, std::nullopt);
  ASSERT_TRUE(out.ok()) << out.status();
  expectSameTensors(out->outputs, tensors);
}

TEST(V2JsonRoundTrip, ZeroElementTensors) {
  std::vector<Tensor> tensors = {make<float>("empty", DataType::kFp32, {0}, {}),
                                 make<int64_t>("rows", DataType::kInt64, {2, 0}, {}),
                                 bytesTensor("s", {0, 3}, {})};
  auto in = decodeV2Request(encodeV2Request(requestOf(tensors)).body, std::nullopt);
  ASSERT_TRUE(in.ok()) << in.status();
  expectSameTensors(in->inputs, tensors);
  auto bin = encodeV2Request(requestOf(tensors), {true, true, true});
  auto in2 = decodeV2Request(bin.body, bin.json_length);
  ASSERT_TRUE(in2.ok()) << in2.status();
  expectSameTensors(in2->inputs, tensors);
}

// ---------------------------------------------------------------- JSON text details

TEST(V2JsonText, IntegerExtremesArePrintedExactly) {
  auto body = encodeV2Response(responseOf(
      {make<uint64_t>("u", DataType::kUint64, {1}, {std::numeric_limits<uint64_t>::max()}),
       make<int64_t>("i", DataType::kInt64, {1}, {std::numeric_limits<int64_t>::min()})}));
  EXPECT_THAT(body.body, HasSubstr("[18446744073709551615]"));
  EXPECT_THAT(body.body, HasSubstr("[-9223372036854775808]"));
  // And parsed back as integers, not through a double (which would round them).
  auto in = decodeV2Request(
      R"({"inputs":[{"name":"u","shape":[1],"datatype":"UINT64","data":[18446744073709551615]},)"
      R"({"name":"i","shape":[1],"datatype":"INT64","data":[-9223372036854775808]},)"
      R"({"name":"j","shape":[1],"datatype":"INT64","data":[9007199254740993]}]})",
      std::nullopt);
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_EQ(in->inputs[0].at<uint64_t>(0), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(in->inputs[1].at<int64_t>(0), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(in->inputs[2].at<int64_t>(0), 9007199254740993);  // 2^53 + 1
}

TEST(V2JsonText, Fp32PrintsItsShortestForm) {
  auto body = encodeV2Response(responseOf(
      {make<float>("y", DataType::kFp32, {4}, {0.1f, 6.8f, 2.8f, 1.0f / 3.0f})}));
  EXPECT_THAT(body.body, HasSubstr("[0.1,6.8,2.8,0.33333334]"));
  EXPECT_THAT(body.body, Not(HasSubstr("0.10000000149011612")));
}

TEST(V2JsonText, IrisResponseIsExactlyTheKServeShape) {
  InferenceResponse r;
  r.model_name = "sklearn-iris";
  r.id = "d3b5f5bd-0b57-4f2a-8d2c-5a1a3f8e9c1d";
  r.outputs.push_back(make<int64_t>("output-0", DataType::kInt64, {2}, {1, 1}));
  EXPECT_EQ(encodeV2Response(r).body,
            R"({"model_name":"sklearn-iris","id":"d3b5f5bd-0b57-4f2a-8d2c-5a1a3f8e9c1d",)"
            R"("outputs":[{"name":"output-0","datatype":"INT64","shape":[2],"data":[1,1]}]})");
}

TEST(V2JsonText, BoolsAndBytesUseJsonLiteralsAndEscapes) {
  auto body = encodeV2Response(responseOf(
      {make<uint8_t>("b", DataType::kBool, {2}, {1, 0}),
       bytesTensor("s", {3}, {"a\"b", "c\\d", "caf\xc3\xa9"})}));
  EXPECT_THAT(body.body, HasSubstr(R"("data":[true,false])"));
  EXPECT_THAT(body.body, HasSubstr(R"("data":["a\"b","c\\d","caf)" "\xc3\xa9" R"("])"));
}

TEST(V2JsonText, RequestIdIsWrittenWhenSetEvenIfEmpty) {
  InferenceRequest r = requestOf({make<float>("x", DataType::kFp32, {1}, {1})});
  r.id = "";
  r.has_id = true;
  auto in = decodeV2Request(encodeV2Request(r).body, std::nullopt);
  ASSERT_TRUE(in.ok());
  EXPECT_TRUE(in->has_id);
  EXPECT_EQ(in->id, "");
  r.has_id = false;
  EXPECT_THAT(encodeV2Request(r).body, Not(HasSubstr("\"id\"")));
  auto no_id = decodeV2Request(R"({"id":null,"inputs":[]})", std::nullopt);
  ASSERT_TRUE(no_id.ok());
  EXPECT_FALSE(no_id->has_id);
}

// ---------------------------------------------------------------- nested vs flat data

TEST(V2JsonData, NestedAndFlatDataGiveTheSameTensor) {
  // OIP: tensor data may be nested by shape or flat, in row-major order.
  const std::pair<const char*, const char*> cases[] = {
      {R"("shape":[2,3],"datatype":"FP32","data":[[1,2,3],[4,5,6]])",
       R"("shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,6])"},
      {R"("shape":[2,2,2],"datatype":"INT64","data":[[[1,2],[3,4]],[[5,6],[7,8]]])",
       R"("shape":[2,2,2],"datatype":"INT64","data":[1,2,3,4,5,6,7,8])"},
      {R"("shape":[2,2],"datatype":"BOOL","data":[[true,false],[false,true]])",
       R"("shape":[2,2],"datatype":"BOOL","data":[true,false,false,true])"},
      {R"("shape":[2,1,2],"datatype":"BYTES","data":[[["a","b"]],[["c","d"]]])",
       R"("shape":[2,1,2],"datatype":"BYTES","data":["a","b","c","d"])"},
      {R"("shape":[1,1,1],"datatype":"UINT8","data":[[[200]]])",
       R"("shape":[1,1,1],"datatype":"UINT8","data":[200])"},
      {R"("shape":[],"datatype":"FP64","data":[2.5])",  // a scalar
       R"("shape":[],"datatype":"FP64","data":2.5)"},
  };
  for (const auto& [nested, flat] : cases) {
    auto wrap = [](const char* t) {
      return common::strCat(R"({"inputs":[{"name":"x",)", t, "}]}");
    };
    auto a = decodeV2Request(wrap(nested), std::nullopt);
    auto b = decodeV2Request(wrap(flat), std::nullopt);
    ASSERT_TRUE(a.ok()) << nested << ": " << a.status();
    ASSERT_TRUE(b.ok()) << flat << ": " << b.status();
    expectSameTensors(a->inputs, b->inputs);
  }
}

TEST(V2JsonData, ValuesLandInRowMajorOrderWithTheirTypes) {
  auto r = decodeV2Request(
      R"({"inputs":[{"name":"input-0","shape":[2,4],"datatype":"FP32",)"
      R"("data":[[6.8,2.8,4.8,1.4],[6.0,3.4,4.5,1.6]]}]})",
      std::nullopt);
  ASSERT_TRUE(r.ok()) << r.status();
  const Tensor& t = r->inputs[0];
  EXPECT_EQ(t.shape, (Shape{2, 4}));
  const float want[] = {6.8f, 2.8f, 4.8f, 1.4f, 6.0f, 3.4f, 4.5f, 1.6f};
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(t.at<float>(i), want[i]) << i;
  // Integers are accepted for float tensors.
  auto ints = decodeV2Request(R"({"inputs":[{"name":"x","shape":[2],"datatype":"FP64","data":[1,-2]}]})",
                              std::nullopt);
  ASSERT_TRUE(ints.ok());
  EXPECT_EQ(ints->inputs[0].at<double>(1), -2.0);
}

// ---------------------------------------------------------------- binary extension

std::string le32(uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); }

TEST(V2Binary, HandBuiltMixedBodyDecodesInOrder) {
  // JSON and binary inputs interleaved; blobs follow the JSON in the order their inputs appear.
  std::string header =
      R"({"inputs":[)"
      R"({"name":"a","shape":[2],"datatype":"FP32","data":[1.5,2.5]},)"
      R"({"name":"b","shape":[2],"datatype":"INT32","parameters":{"binary_data_size":8,"foo":"bar"}},)"
      R"({"name":"c","shape":[1],"datatype":"BYTES","data":["json"]},)"
      R"({"name":"d","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":10}},)"
      R"({"name":"e","shape":[3],"datatype":"BOOL","parameters":{"binary_data_size":3}}]})";
  std::string blobs = le32(7) + le32(0xffffffffu) + le32(2) + "ab" + le32(0) +
                      std::string("\x01\x00\x01", 3);
  auto r = decodeV2Request(header + blobs, header.size());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->inputs.size(), 5u);
  const char* names[] = {"a", "b", "c", "d", "e"};
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(r->inputs[i].name, names[i]);
  EXPECT_EQ(r->inputs[0].at<float>(1), 2.5f);
  EXPECT_EQ(r->inputs[1].at<int32_t>(0), 7);
  EXPECT_EQ(r->inputs[1].at<int32_t>(1), -1);
  EXPECT_EQ(r->inputs[2].bytes, std::vector<std::string>{"json"});
  EXPECT_EQ(r->inputs[3].bytes, (std::vector<std::string>{"ab", ""}));
  EXPECT_EQ(r->inputs[4].raw, std::string("\x01\x00\x01", 3));
  // binary_data_size is transport detail and is dropped; other parameters stay.
  EXPECT_FALSE(r->inputs[1].parameters.contains(kBinaryDataSize));
  EXPECT_EQ(std::get<std::string>(r->inputs[1].parameters.at("foo")), "bar");
}

TEST(V2Binary, EncodedRequestLayoutIsHeaderThenBlobsInInputOrder) {
  std::string long_element(300, 'z');
  std::vector<Tensor> inputs = {
      make<float>("j1", DataType::kFp32, {1}, {1.0f}),
      make<int16_t>("b1", DataType::kInt16, {2}, {1, -2}),
      bytesTensor("j2", {1}, {"json"}),
      bytesTensor("b2", {3}, {"ab", "", long_element}),
      make<uint16_t>("b3", DataType::kFp16, {1}, {0x3c00}),
  };
  auto body = encodeV2Request(requestOf(inputs), {false, true, false, true, true});
  ASSERT_TRUE(body.json_length.has_value());
  std::string json_text = body.body.substr(0, *body.json_length);
  auto header = nlohmann::json::parse(json_text);  // the header alone is a JSON document
  auto& in = header["inputs"];
  EXPECT_TRUE(in[0].contains("data"));
  EXPECT_FALSE(in[1].contains("data"));
  EXPECT_EQ(in[1]["parameters"]["binary_data_size"], 4);
  EXPECT_EQ(in[3]["parameters"]["binary_data_size"], 4 + 2 + 4 + 0 + 4 + 300);
  EXPECT_EQ(in[4]["parameters"]["binary_data_size"], 2);
  // BYTES elements: a 4-byte little-endian length before each; 300 = 0x012c.
  std::string want = std::string("\x01\x00\xfe\xff", 4) + std::string("\x02\x00\x00\x00", 4) +
                     "ab" + std::string(4, '\0') + std::string("\x2c\x01\x00\x00", 4) +
                     long_element + std::string("\x00\x3c", 2);
  EXPECT_EQ(body.body.substr(*body.json_length), want);
}

TEST(V2Binary, EncodedResponseMarksBinaryOutputsAndOmitsTheirData) {
  InferenceResponse r = responseOf({make<int64_t>("classes", DataType::kInt64, {2}, {1, 2}),
                                    make<float>("probs", DataType::kFp32, {2}, {0.25f, 0.75f})});
  auto body = encodeV2Response(r, {false, true});
  ASSERT_TRUE(body.json_length.has_value());
  auto header = nlohmann::json::parse(body.body.substr(0, *body.json_length));
  EXPECT_EQ(header["outputs"][0]["data"], nlohmann::json::parse("[1,2]"));
  EXPECT_FALSE(header["outputs"][1].contains("data"));
  EXPECT_EQ(header["outputs"][1]["parameters"]["binary_data_size"], 8);
  EXPECT_EQ(body.body.substr(*body.json_length), r.outputs[1].raw);
  // Flags all false, or none given: no binary section and no header length.
  EXPECT_FALSE(encodeV2Response(r, {false, false}).json_length.has_value());
  EXPECT_FALSE(encodeV2Response(r).json_length.has_value());
}

TEST(V2Binary, HeaderLengthWithoutBinaryDataIsFine) {
  std::string body = R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]})";
  EXPECT_TRUE(decodeV2Request(body, body.size()).ok());
}

TEST(V2Binary, OutputChoiceRequestWideAndPerOutput) {
  InferenceResponse resp;
  resp.outputs.resize(3);
  resp.outputs[0].name = "a";
  resp.outputs[1].name = "b";
  resp.outputs[2].name = "c";
  InferenceRequest req;
  EXPECT_EQ(binaryOutputChoice(req, resp), (std::vector<bool>{false, false, false}));
  // binary_data_output applies to all outputs...
  req.parameters[std::string(kBinaryDataOutput)] = true;
  EXPECT_EQ(binaryOutputChoice(req, resp), (std::vector<bool>{true, true, true}));
  // ...but an output's own binary_data wins, either way.
  req.outputs.push_back({"b", {{"binary_data", false}}});
  EXPECT_EQ(binaryOutputChoice(req, resp), (std::vector<bool>{true, false, true}));
  req.parameters.clear();
  req.outputs.push_back({"c", {{"binary_data", true}}});
  EXPECT_EQ(binaryOutputChoice(req, resp), (std::vector<bool>{false, false, true}));
  // Not bools (e.g. the string "true") are ignored, as are names the response does not have.
  req.outputs.push_back({"a", {{"binary_data", std::string("true")}}});
  req.outputs.push_back({"zzz", {{"binary_data", true}}});
  EXPECT_EQ(binaryOutputChoice(req, resp), (std::vector<bool>{false, false, true}));
}

TEST(V2Binary, KServeE2eRequestsChooseBinaryOutputs) {
  // The shapes of KServe's iris_input_v2_binary.json and iris_input_v2_all_binary.json.
  const char* per_output =
      R"({"inputs":[{"name":"input-0","shape":[2,4],"datatype":"FP32","data":[[6.8,2.8,4.8,1.4],[6.0,3.4,4.5,1.6]]}],)"
      R"("outputs":[{"name":"output-0","parameters":{"binary_data":true}}]})";
  const char* all =
      R"({"parameters":{"binary_data_output":true},)"
      R"("inputs":[{"name":"input-0","shape":[2,4],"datatype":"FP32","data":[[6.8,2.8,4.8,1.4],[6.0,3.4,4.5,1.6]]}]})";
  InferenceResponse resp = responseOf({make<int64_t>("output-0", DataType::kInt64, {2}, {1, 1}),
                                       make<float>("extra", DataType::kFp32, {1}, {0.5f})});
  for (auto [body, want] : {std::pair{per_output, std::vector<bool>{true, false}},
                            std::pair{all, std::vector<bool>{true, true}}}) {
    auto req = decodeV2Request(body, std::nullopt);
    ASSERT_TRUE(req.ok()) << req.status();
    auto choice = binaryOutputChoice(*req, resp);
    EXPECT_EQ(choice, want);
    // And the client side reads the mixed response back.
    auto encoded = encodeV2Response(resp, choice);
    auto decoded = decodeV2Response(encoded.body, encoded.json_length);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    expectSameTensors(decoded->outputs, resp.outputs);
  }
}

// ---------------------------------------------------------------- request errors

struct BadRequest {
  std::string body;
  std::string expect;  // words the message must contain
  std::optional<size_t> header = std::nullopt;
};

std::string input(const std::string& fields) {
  return R"({"inputs":[{"name":"x",)" + fields + "}]}";
}

void expectInvalid(const BadRequest& c) {
  auto r = decodeV2Request(c.body, c.header);
  ASSERT_FALSE(r.ok()) << c.body;
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.body;
  EXPECT_THAT(message(r.status()), HasSubstr(c.expect)) << c.body;
}

TEST(V2RequestErrors, MalformedJsonIsUnrecognizedRequestFormat) {
  for (const char* body : {R"({"inputs": [)", "", "not json", "{\"inputs\":[]", "{'a':1}",
                           "{\"inputs\":[]} trailing"}) {
    expectInvalid({body, "Unrecognized request format"});
  }
}

TEST(V2RequestErrors, NumberTooLargeForADoubleIsAnErrorNotACrash) {
  // nlohmann throws out_of_range (not parse_error) for 1e400; it must become InvalidArgument.
  expectInvalid({input(R"("shape":[1],"datatype":"FP32","data":[1e400])"), "Unrecognized request format"});
  expectInvalid({input(R"("shape":[1],"datatype":"FP64","data":[-1e999])"), "Unrecognized request format"});
}

TEST(V2RequestErrors, BodyAndListStructure) {
  const BadRequest cases[] = {
      {"[1,2]", "JSON object"},
      {"\"inputs\"", "JSON object"},
      {"null", "JSON object"},
      {R"({"id":"x"})", "no 'inputs' list"},
      {R"({"inputs":5})", "'inputs' must be a list"},
      {R"({"inputs":{"name":"x"}})", "'inputs' must be a list"},
      {R"({"inputs":[5]})", "input 0 must be an object"},
      {R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]},"y"]})",
       "input 1 must be an object"},
  };
  for (const auto& c : cases) expectInvalid(c);
}

TEST(V2RequestErrors, MissingOrMistypedTensorFields) {
  const BadRequest cases[] = {
      {R"({"inputs":[{"shape":[1],"datatype":"FP32","data":[1]}]})", "needs a string 'name'"},
      {R"({"inputs":[{"name":5,"shape":[1],"datatype":"FP32","data":[1]}]})", "needs a string 'name'"},
      {input(R"("shape":[1],"data":[1])"), "needs a string 'datatype'"},
      {input(R"("shape":[1],"datatype":32,"data":[1])"), "needs a string 'datatype'"},
      {input(R"("datatype":"FP32","data":[1])"), "needs a 'shape'"},
      {input(R"("shape":[1],"datatype":"FP32")"), "'data' field is missing for input 'x'"},
  };
  for (const auto& c : cases) expectInvalid(c);
}

TEST(V2RequestErrors, DatatypeNamesAreExactAndCaseSensitive) {
  expectInvalid({input(R"("shape":[1],"datatype":"FP8","data":[1])"), "invalid datatype 'FP8'"});
  expectInvalid({input(R"("shape":[1],"datatype":"fp32","data":[1])"), "invalid datatype 'fp32'"});
  expectInvalid({input(R"("shape":[1],"datatype":"Int64","data":[1])"), "invalid datatype"});
  expectInvalid({input(R"("shape":[1],"datatype":"","data":[1])"), "invalid datatype"});
}

TEST(V2RequestErrors, ShapeMustBeAListOfNonNegativeIntegers) {
  const BadRequest cases[] = {
      {input(R"("shape":4,"datatype":"FP32","data":[1])"), "list of integers"},
      {input(R"("shape":"[1]","datatype":"FP32","data":[1])"), "list of integers"},
      {input(R"("shape":[-1],"datatype":"FP32","data":[1])"), "non-negative integers"},
      {input(R"("shape":[2,-3],"datatype":"FP32","data":[1])"), "non-negative integers"},
      {input(R"("shape":[1.5],"datatype":"FP32","data":[1])"), "non-negative integers"},
      {input(R"("shape":[1.0],"datatype":"FP32","data":[1])"), "non-negative integers"},
      {input(R"("shape":["2"],"datatype":"FP32","data":[1])"), "non-negative integers"},
      {input(R"("shape":[null],"datatype":"FP32","data":[1])"), "non-negative integers"},
      {input(R"("shape":[[1]],"datatype":"FP32","data":[1])"), "non-negative integers"},
      {input(R"("shape":[4294967296,4294967296],"datatype":"FP32","data":[1])"), "too many elements"},
  };
  for (const auto& c : cases) expectInvalid(c);
  // A dimension beyond int64 must not wrap into something accepted.
  auto r = decodeV2Request(input(R"("shape":[18446744073709551615],"datatype":"FP32","data":[1])"),
                           std::nullopt);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(V2RequestErrors, ElementCountMustMatchTheShape) {
  expectInvalid({input(R"("shape":[3],"datatype":"FP32","data":[1,2])"),
                 "has shape [3] (3 elements) but its data has 2 elements"});
  expectInvalid({input(R"("shape":[1],"datatype":"FP32","data":[1,2])"),
                 "has shape [1] (1 elements) but its data has 2 elements"});
  expectInvalid({input(R"("shape":[2,2],"datatype":"INT32","data":[[1,2],[3]])"), "but its data has 3"});
  expectInvalid({input(R"("shape":[0],"datatype":"INT32","data":[1])"), "but its data has 1"});
  expectInvalid({input(R"("shape":[2],"datatype":"BYTES","data":["a","b","c"])"), "but its data has 3"});
  expectInvalid({input(R"("shape":[1],"datatype":"FP32","data":[])"), "but its data has 0"});
}

TEST(V2RequestErrors, IntegerValuesMustFitTheDatatype) {
  const BadRequest cases[] = {
      {input(R"("shape":[1],"datatype":"UINT8","data":[256])"), "element 0 (256) is not a valid UINT8"},
      {input(R"("shape":[2],"datatype":"UINT8","data":[0,-1])"), "element 1 (-1) is not a valid UINT8"},
      {input(R"("shape":[1],"datatype":"INT8","data":[128])"), "(128) is not a valid INT8"},
      {input(R"("shape":[1],"datatype":"INT8","data":[-129])"), "not a valid INT8"},
      {input(R"("shape":[1],"datatype":"INT16","data":[32768])"), "not a valid INT16"},
      {input(R"("shape":[1],"datatype":"UINT16","data":[65536])"), "not a valid UINT16"},
      {input(R"("shape":[1],"datatype":"UINT32","data":[4294967296])"), "not a valid UINT32"},
      {input(R"("shape":[1],"datatype":"INT32","data":[2147483648])"), "not a valid INT32"},
      {input(R"("shape":[1],"datatype":"UINT64","data":[-1])"), "not a valid UINT64"},
      {input(R"("shape":[1],"datatype":"INT64","data":[9223372036854775808])"), "not a valid INT64"},
      {input(R"("shape":[1],"datatype":"INT32","data":[1.5])"), "(1.5) is not a valid INT32"},
      {input(R"("shape":[1],"datatype":"INT64","data":["1"])"), "not a valid INT64"},
      {input(R"("shape":[1],"datatype":"INT32","data":[true])"), "not a valid INT32"},
      {input(R"("shape":[1],"datatype":"UINT8","data":[null])"), "not a valid UINT8"},
  };
  for (const auto& c : cases) expectInvalid(c);
}

TEST(V2RequestErrors, ValuesOfTheWrongKind) {
  const BadRequest cases[] = {
      {input(R"("shape":[1],"datatype":"FP32","data":["a"])"), "(\"a\") is not a number"},
      {input(R"("shape":[1],"datatype":"FP32","data":[null])"), "not a number"},
      {input(R"("shape":[1],"datatype":"FP64","data":[true])"), "not a number"},
      {input(R"("shape":[1],"datatype":"FP32","data":[{"v":1}])"), "not a number"},
      {input(R"("shape":[1],"datatype":"BYTES","data":[1])"), "element 0 (1) is not a string"},
      {input(R"("shape":[1],"datatype":"BYTES","data":[null])"), "not a string"},
      {input(R"("shape":[1],"datatype":"BOOL","data":[1])"), "element 0 (1) is not a BOOL"},
      {input(R"("shape":[1],"datatype":"BOOL","data":["true"])"), "not a BOOL"},
      {input(R"("shape":[1],"datatype":"BOOL","data":[0])"), "not a BOOL"},
  };
  for (const auto& c : cases) expectInvalid(c);
}

TEST(V2RequestErrors, HalfPrecisionInJsonIsRefusedWithKServesMessage) {
  expectInvalid({input(R"("shape":[1],"datatype":"FP16","data":[1])"),
                 "Sending FP16 data via JSON is not supported. Please use the binary data format "
                 "for input x"});
  expectInvalid({input(R"("shape":[1],"datatype":"BF16","data":[1])"), "Sending BF16 data via JSON"});
}

TEST(V2RequestErrors, DataNestedTooDeeply) {
  std::string deep = std::string(100, '[') + "1" + std::string(100, ']');
  expectInvalid({input(R"("shape":[1],"datatype":"FP32","data":)" + deep), "nested too deeply"});
}

TEST(V2RequestErrors, ABodyNestedDeeperThanAThousandLevelsIsRefusedNotOverflowed) {
  // Parsing is iterative, but printing the shape into the error message recursed: a shape of a
  // million levels (2 MB) overflowed the stack.
  std::string deep = std::string(1000000, '[') + std::string(1000000, ']');
  expectInvalid({input(R"("datatype":"FP32","data":[1],"shape":)" + deep), "nested deeper than 1000 levels"});
  expectInvalid({R"({"id":)" + deep + "}", "Unrecognized request format"});
}

TEST(V2RequestErrors, IdParametersAndOutputs) {
  const BadRequest cases[] = {
      {R"({"id":5,"inputs":[]})", "'id' must be a string"},
      {R"({"id":true,"inputs":[]})", "'id' must be a string"},
      {R"({"id":{},"inputs":[]})", "'id' must be a string"},
      {R"({"parameters":[1],"inputs":[]})", "'parameters' of the request must be an object"},
      {R"({"parameters":"x","inputs":[]})", "must be an object"},
      {R"({"parameters":{"a":[1]},"inputs":[]})", "parameter 'a' of the request must be a string, number or boolean"},
      {R"({"parameters":{"a":{"b":1}},"inputs":[]})", "string, number or boolean"},
      {R"({"parameters":{"a":null},"inputs":[]})", "string, number or boolean"},
      {input(R"("shape":[1],"datatype":"FP32","data":[1],"parameters":[])"), "'parameters' of input 'x' must be an object"},
      {input(R"("shape":[1],"datatype":"FP32","data":[1],"parameters":{"p":[true]})"), "parameter 'p' of input 'x'"},
      {R"({"inputs":[],"outputs":{}})", "'outputs' must be a list"},
      {R"({"inputs":[],"outputs":[{"parameters":{}}]})", "needs a string 'name'"},
      {R"({"inputs":[],"outputs":[{"name":5}]})", "needs a string 'name'"},
      {R"({"inputs":[],"outputs":["y"]})", "needs a string 'name'"},
      {R"({"inputs":[],"outputs":[{"name":"y","parameters":[1]}]})", "'parameters' of output 'y' must be an object"},
  };
  for (const auto& c : cases) expectInvalid(c);
}

TEST(V2RequestErrors, DataAndBinaryDataSizeTogether) {
  expectInvalid({input(R"("shape":[1],"datatype":"FP32","data":[1],"parameters":{"binary_data_size":4})"),
                 "input 'x' has both 'data' and 'binary_data_size'",
                 std::nullopt});
}

TEST(V2RequestErrors, BinaryDataWithoutTheHeaderUsesKServesMessage) {
  std::string header = input(R"("shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4})");
  auto r = decodeV2Request(header + std::string(4, '\0'), std::nullopt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(message(r.status()),
            "received byte inputs, but the'inference-header-content-length' header is missing.");
}

TEST(V2RequestErrors, BinarySizesMustAddUp) {
  std::string header = input(R"("shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8})");
  std::string blob(8, '\0');
  ASSERT_TRUE(decodeV2Request(header + blob, header.size()).ok());
  // Header length past the end of the body.
  expectInvalid({header + blob, "is larger than the body", header.size() + blob.size() + 1});
  // Too short: fewer bytes follow than binary_data_size claims.
  expectInvalid({header + blob.substr(0, 4), "declares binary_data_size 8 but only 4 bytes", header.size()});
  expectInvalid({header, "but only 0 bytes", header.size()});
  // Leftover bytes nobody claims.
  expectInvalid({header + blob + "xx", "2 bytes of binary data follow the JSON but no input claims them",
                 header.size()});
  // A header length that cuts the JSON short makes it malformed.
  expectInvalid({header + blob, "Unrecognized request format", header.size() - 1});
  // A negative size.
  std::string neg = input(R"("shape":[2],"datatype":"FP32","parameters":{"binary_data_size":-4})");
  expectInvalid({neg + blob, "binary_data_size -4", neg.size()});
  // A size that is not a whole number of elements of the shape.
  std::string six = input(R"("shape":[2],"datatype":"FP32","parameters":{"binary_data_size":6})");
  expectInvalid({six + blob.substr(0, 6), "needs 8 bytes but 6", six.size()});
  // A size matching the bytes but not the shape.
  std::string four = input(R"("shape":[2],"datatype":"FP32","parameters":{"binary_data_size":4})");
  expectInvalid({four + blob.substr(0, 4), "(2 elements) but 1", four.size()});
  // The first input claiming too much starves the second.
  std::string two =
      R"({"inputs":[{"name":"a","shape":[3],"datatype":"FP32","parameters":{"binary_data_size":12}},)"
      R"({"name":"b","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}]})";
  expectInvalid({two + std::string(12, '\0'), "input 'b' declares binary_data_size 4 but only 0", two.size()});
}

TEST(V2RequestErrors, BinaryBytesElementsMustBeWellFormed) {
  auto bytes_input = [](int size, int count) {
    return common::strCat(R"({"inputs":[{"name":"s","shape":[)", count,
                          R"(],"datatype":"BYTES","parameters":{"binary_data_size":)", size, "}}]}");
  };
  // Ends inside a 4-byte length.
  std::string h = bytes_input(3, 1);
  expectInvalid({h + "abc", "BYTES data ends inside an element length", h.size()});
  // A length that runs past the blob.
  h = bytes_input(6, 1);
  expectInvalid({h + le32(5) + "ab", "BYTES element of length 5 runs past the data", h.size()});
  // Well formed, but one element where the shape says two.
  h = bytes_input(6, 2);
  expectInvalid({h + le32(2) + "ab", "(2 elements) but 1", h.size()});
  // A huge length must not be trusted.
  h = bytes_input(5, 1);
  expectInvalid({h + le32(0xffffffffu) + "a", "runs past", h.size()});
}

TEST(V2RequestErrors, EveryErrorIsInvalidArgument) {
  // Spot check on codes across the families above (messages are checked there).
  for (const std::string& body :
       {std::string("{"), std::string(R"({"inputs":[5]})"),
        input(R"("shape":[1],"datatype":"UINT8","data":[300])"),
        input(R"("shape":[1],"datatype":"FP16","data":[1])")}) {
    EXPECT_EQ(decodeV2Request(body, std::nullopt).status().code(), absl::StatusCode::kInvalidArgument);
  }
}

// ---------------------------------------------------------------- response errors

TEST(V2ResponseErrors, StructureAndBinary) {
  auto err = [](std::string_view body, std::optional<size_t> header = std::nullopt) {
    auto r = decodeV2Response(body, header);
    EXPECT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    return message(r.status());
  };
  EXPECT_THAT(err("{"), HasSubstr("Unrecognized request format"));
  EXPECT_THAT(err("[]"), HasSubstr("JSON object"));
  EXPECT_THAT(err(R"({"model_name":"m"})"), HasSubstr("'outputs'"));
  EXPECT_THAT(err(R"({"model_name":5,"outputs":[]})"), HasSubstr("'model_name' must be a string"));
  EXPECT_THAT(err(R"({"id":[],"outputs":[]})"), HasSubstr("'id' must be a string"));
  EXPECT_THAT(err(R"({"model_name":"m","outputs":[{"name":"y","shape":[1],"datatype":"FP32"}]})"),
              HasSubstr("'data' field is missing for output 'y' for model 'm'"));
  std::string h = R"({"outputs":[]})";
  EXPECT_THAT(err(h + "zz", h.size()), HasSubstr("no output claims them"));
}

// ---------------------------------------------------------------- mutation robustness

struct Seed {
  std::string body;
  std::optional<size_t> json_length;
};

std::vector<Seed> seeds() {
  InferenceRequest r = requestOf({make<float>("x", DataType::kFp32, {2, 2}, {1, 2, 3, 4}),
                                  bytesTensor("s", {2}, {"ab", "c"}),
                                  make<int64_t>("i", DataType::kInt64, {3}, {-1, 0, 1}),
                                  make<uint8_t>("b", DataType::kBool, {2}, {1, 0}),
                                  make<uint16_t>("h", DataType::kFp16, {1}, {0x3c00})});
  std::vector<Seed> out;
  for (const auto& flags : {std::vector<bool>{false, false, false, false, true},
                            std::vector<bool>{true, true, true, true, true},
                            std::vector<bool>{false, true, false, true, true}}) {
    auto e = encodeV2Request(r, flags);
    out.push_back({e.body, e.json_length});
  }
  // Without the half-precision input, a body with no binary section at all.
  r.inputs.pop_back();
  auto plain = encodeV2Request(r);
  out.push_back({plain.body, plain.json_length});
  return out;
}

std::string mutate(std::string body, std::mt19937& rng) {
  static const char kInteresting[] = "{}[]\",:0-9e.\\ \x00\xff\x80tfn";
  int edits = 1 + static_cast<int>(rng() % 3);
  for (int e = 0; e < edits; ++e) {
    size_t pos = body.empty() ? 0 : rng() % body.size();
    switch (rng() % 6) {
      case 0:  // flip bits
        if (!body.empty()) body[pos] = static_cast<char>(body[pos] ^ (1u << (rng() % 8)));
        break;
      case 1:  // overwrite with a JSON-significant byte
        if (!body.empty()) body[pos] = kInteresting[rng() % (sizeof kInteresting - 1)];
        break;
      case 2:  // truncate
        body.resize(pos);
        break;
      case 3:  // insert a byte
        body.insert(pos, 1, static_cast<char>(rng()));
        break;
      case 4:  // delete a run
        body.erase(pos, rng() % 8);
        break;
      case 5:  // duplicate a run
        body.insert(pos, body.substr(pos, rng() % 16));
        break;
    }
  }
  return body;
}

TEST(V2Robustness, MutatedRequestsNeverCrashAndFailOnlyWithInvalidArgument) {
  const auto bases = seeds();
  std::mt19937 rng(20240601);
  int ok = 0, invalid = 0;
  for (int i = 0; i < 2000; ++i) {
    const Seed& base = bases[static_cast<size_t>(i) % bases.size()];
    std::string body = mutate(base.body, rng);
    std::optional<size_t> header = base.json_length;
    // Now and then the header length is off too, or missing, or present without binary data.
    switch (rng() % 8) {
      case 0: if (header) header = *header + rng() % 5 - 2; break;
      case 1: header.reset(); break;
      case 2: if (!header) header = body.size(); break;
      default: break;
    }
    try {
      auto r = decodeV2Request(body, header);
      if (!r.ok()) {
        ++invalid;
        ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << "mutation " << i;
        ASSERT_FALSE(r.status().message().empty());
        continue;
      }
      ++ok;
      // Whatever was accepted is self-consistent and encodes back to something decodable.
      for (const Tensor& t : r->inputs) {
        ASSERT_TRUE(validateTensorData(t).ok()) << "mutation " << i << ": " << t.name;
      }
      auto again = encodeV2Request(*r, std::vector<bool>(r->inputs.size(), true));
      auto r2 = decodeV2Request(again.body, again.json_length);
      ASSERT_TRUE(r2.ok()) << "mutation " << i << ": " << r2.status();
      expectSameTensors(r2->inputs, r->inputs);
    } catch (const std::exception& e) {
      FAIL() << "mutation " << i << " threw " << e.what();
    }
  }
  // Both outcomes happen, so the mutations are neither all harmless nor all fatal.
  EXPECT_GT(ok, 20);
  EXPECT_GT(invalid, 1000);
}

TEST(V2Robustness, MutatedResponsesNeverCrash) {
  auto tensors = jsonDatatypes();
  std::vector<bool> flags(tensors.size());
  for (size_t i = 0; i < flags.size(); i += 2) flags[i] = true;
  auto base = encodeV2Response(responseOf(tensors), flags);
  std::mt19937 rng(5);
  for (int i = 0; i < 500; ++i) {
    std::string body = mutate(base.body, rng);
    try {
      auto r = decodeV2Response(body, base.json_length);
      if (!r.ok()) {
        ASSERT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << "mutation " << i;
      }
    } catch (const std::exception& e) {
      FAIL() << "mutation " << i << " threw " << e.what();
    }
  }
}

// ---------------------------------------------------------------- model metadata

ModelMetadata irisMetadata() {
  ModelMetadata m;
  m.name = "sklearn-iris";
  m.versions = {"1", "2"};
  m.platform = "sklearn";
  m.inputs.push_back({"input-0", DataType::kFp32, {-1, 4}});
  m.outputs.push_back({"output-0", DataType::kInt64, {-1}});
  m.outputs.push_back({"names", DataType::kBytes, {}});
  m.properties = {{"objective", "multi:softmax"}, {"quote", "a\"b"}};
  return m;
}

TEST(ModelMetadataJson, EncodesTheOipShape) {
  ModelMetadata m;
  m.name = "iris";
  m.inputs.push_back({"input-0", DataType::kFp32, {-1, 4}});
  m.outputs.push_back({"output-0", DataType::kInt64, {-1}});
  // KServe's reference server: platform "", no versions, no properties.
  EXPECT_EQ(encodeModelMetadata(m),
            R"({"name":"iris","platform":"","inputs":[{"name":"input-0","datatype":"FP32","shape":[-1,4]}],)"
            R"("outputs":[{"name":"output-0","datatype":"INT64","shape":[-1]}]})");
}

TEST(ModelMetadataJson, RoundTripKeepsEveryField) {
  ModelMetadata m = irisMetadata();
  auto d = decodeModelMetadata(encodeModelMetadata(m));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->name, m.name);
  EXPECT_EQ(d->versions, m.versions);
  EXPECT_EQ(d->platform, m.platform);
  ASSERT_EQ(d->inputs.size(), 1u);
  EXPECT_EQ(d->inputs[0].name, "input-0");
  EXPECT_EQ(d->inputs[0].datatype, DataType::kFp32);
  EXPECT_EQ(d->inputs[0].shape, (Shape{-1, 4}));
  ASSERT_EQ(d->outputs.size(), 2u);
  EXPECT_EQ(d->outputs[0].datatype, DataType::kInt64);
  EXPECT_EQ(d->outputs[1].datatype, DataType::kBytes);
  EXPECT_EQ(d->outputs[1].shape, Shape{});
  EXPECT_EQ(d->properties, m.properties);
}

TEST(ModelMetadataJson, DecodeErrors) {
  auto err = [](const char* json) {
    auto r = decodeModelMetadata(json);
    EXPECT_FALSE(r.ok()) << json;
    return message(r.status());
  };
  EXPECT_THAT(err("{"), HasSubstr("Unrecognized request format"));
  EXPECT_THAT(err("[]"), HasSubstr("JSON object"));
  EXPECT_THAT(err(R"({"name":"x"})"), HasSubstr("'inputs'"));
  EXPECT_THAT(err(R"({"name":"x","inputs":[]})"), HasSubstr("'outputs'"));
  EXPECT_THAT(err(R"({"name":5,"inputs":[],"outputs":[]})"), HasSubstr("'name' must be a string"));
  EXPECT_THAT(err(R"({"inputs":[{"name":"a","datatype":"FP32"}],"outputs":[]})"),
              HasSubstr("needs name, datatype and shape"));
  EXPECT_THAT(err(R"({"inputs":[{"name":"a","datatype":"fp32","shape":[1]}],"outputs":[]})"),
              HasSubstr("unknown datatype"));
  EXPECT_THAT(err(R"({"inputs":[],"outputs":[{"name":"a","datatype":"FP32","shape":[1.5]}]})"),
              HasSubstr("integers"));
}

TEST(V2ErrorBody, IsTheOipErrorObject) {
  EXPECT_EQ(encodeV2Error("bad \"x\""), R"({"error":"bad \"x\""})");
  EXPECT_EQ(encodeV2Error("Model with name foo does not exist."),
            R"({"error":"Model with name foo does not exist."})");
  // Binary junk echoed into a message still yields parsable JSON.
  EXPECT_TRUE(nlohmann::json::accept(encodeV2Error("bad byte \xff\x00 here")));
}

}  // namespace
}  // namespace kh::protocols

namespace kh::protocols {
namespace {

TEST(V2Json, NullParametersAreNotGiven) {
  // KServe's own server answers "parameters": null (pydantic writes unset optional fields), and
  // its clients may send them: null is "not given", not a malformed object.
  auto response = decodeV2Response(
      R"({"model_name":"iris","model_version":null,"id":"1","parameters":null,)"
      R"("outputs":[{"name":"output-0","shape":[2],"datatype":"FP32","parameters":null,"data":[1,1]}]})",
      std::nullopt);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_TRUE(response->parameters.empty());
  EXPECT_TRUE(response->outputs.at(0).parameters.empty());
  auto request = decodeV2Request(
      R"({"parameters":null,"inputs":[{"name":"input-0","shape":[1,4],"datatype":"FP32","parameters":null,)"
      R"("data":[1,2,3,4]}],"outputs":[{"name":"output-0","parameters":null}]})",
      std::nullopt);
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_TRUE(request->parameters.empty());
  // Anything else that is not an object is still refused.
  EXPECT_FALSE(decodeV2Request(R"({"parameters":[],"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]}]})",
                               std::nullopt)
                   .ok());
}

}  // namespace
}  // namespace kh::protocols
