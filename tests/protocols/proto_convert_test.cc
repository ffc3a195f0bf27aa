// inference.GRPCInferenceService messages: every datatype through typed contents and raw
// contents, FP16/BF16 forced to raw, the proto's rules with KServe's error messages, parameters
// of every kind, and model metadata.

#include "kh/protocols/proto_convert.h"

#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kh/common/strings.h"
#include "kh/protocols/v2_json.h"

namespace kh::protocols {
namespace {

using ::testing::HasSubstr;

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

// Every datatype with typed contents, at the edges of its range.
std::vector<Tensor> typedDatatypes() {
  return {
      make<uint8_t>("BOOL", DataType::kBool, {3}, {1, 0, 1}),
      make<uint8_t>("UINT8", DataType::kUint8, {2}, {0, 255}),
      make<uint16_t>("UINT16", DataType::kUint16, {2}, {0, 65535}),
      make<uint32_t>("UINT32", DataType::kUint32, {1, 2}, {0, 4294967295u}),
      make<uint64_t>("UINT64", DataType::kUint64, {1}, {std::numeric_limits<uint64_t>::max()}),
      make<int8_t>("INT8", DataType::kInt8, {2}, {-128, 127}),
      make<int16_t>("INT16", DataType::kInt16, {2}, {-32768, 32767}),
      make<int32_t>("INT32", DataType::kInt32, {2},
                    {std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max()}),
      make<int64_t>("INT64", DataType::kInt64, {2, 1},
                    {std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()}),
      make<float>("FP32", DataType::kFp32, {2, 2}, {0.1f, -2.5f, std::numeric_limits<float>::max(),
                                                    std::numeric_limits<float>::denorm_min()}),
      make<double>("FP64", DataType::kFp64, {2}, {-1e300, 0.1}),
      bytesTensor("BYTES", {3}, {"", std::string("a\0b", 3), std::string(300, 'x')}),
  };
}

std::vector<Tensor> halfDatatypes() {
  return {make<uint16_t>("FP16", DataType::kFp16, {3}, {0x3c00, 0x7e00, 0x0001}),
          make<uint16_t>("BF16", DataType::kBf16, {1}, {0x3f80})};
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
    EXPECT_EQ(got[i].parameters, want[i].parameters);
  }
}

const Parameters kEveryKind = {{"b", true},
                               {"i", int64_t{-3}},
                               {"imax", std::numeric_limits<int64_t>::max()},
                               {"u", std::numeric_limits<uint64_t>::max()},
                               {"d", 0.5},
                               {"s", std::string("caf\xc3\xa9 \"q\"")}};

InferenceRequest requestOf(std::vector<Tensor> inputs) {
  InferenceRequest r;
  r.model_name = "m";
  r.model_version = "2";
  r.id = "7";
  r.has_id = true;
  r.parameters = kEveryKind;
  r.inputs = std::move(inputs);
  r.outputs.push_back({"y", {{"binary_data", true}, {"classification", int64_t{3}}}});
  r.outputs.push_back({"z", {}});
  return r;
}

InferenceResponse responseOf(std::vector<Tensor> outputs) {
  InferenceResponse r;
  r.model_name = "m";
  r.model_version = "2";
  r.id = "7";
  r.parameters = kEveryKind;
  r.outputs = std::move(outputs);
  return r;
}

// ---------------------------------------------------------------- round trips

TEST(ProtoRoundTrip, RequestEveryDatatypeTypedAndRaw) {
  auto tensors = typedDatatypes();
  tensors[0].parameters = {{"per_tensor", std::string("kept")}};
  InferenceRequest req = requestOf(tensors);
  for (bool raw : {false, true}) {
    SCOPED_TRACE(raw ? "raw" : "typed");
    inference::ModelInferRequest proto;
    requestToProto(req, raw, &proto);
    EXPECT_EQ(proto.raw_input_contents_size(), raw ? static_cast<int>(tensors.size()) : 0);
    auto back = requestFromProto(proto);
    ASSERT_TRUE(back.ok()) << back.status();
    expectSameTensors(back->inputs, tensors);
    EXPECT_EQ(back->model_name, "m");
    EXPECT_EQ(back->model_version, "2");
    EXPECT_EQ(back->id, "7");
    EXPECT_TRUE(back->has_id);
    EXPECT_EQ(back->parameters, kEveryKind);
    ASSERT_EQ(back->outputs.size(), 2u);
    EXPECT_EQ(back->outputs[0].name, "y");
    EXPECT_EQ(back->outputs[0].parameters, req.outputs[0].parameters);
    EXPECT_EQ(back->outputs[1].name, "z");
  }
}

TEST(ProtoRoundTrip, ResponseEveryDatatypeTypedAndRaw) {
  auto tensors = typedDatatypes();
  for (bool raw : {false, true}) {
    SCOPED_TRACE(raw ? "raw" : "typed");
    inference::ModelInferResponse proto;
    responseToProto(responseOf(tensors), raw, &proto);
    EXPECT_EQ(proto.raw_output_contents_size(), raw ? static_cast<int>(tensors.size()) : 0);
    auto back = responseFromProto(proto);
    ASSERT_TRUE(back.ok()) << back.status();
    expectSameTensors(back->outputs, tensors);
    EXPECT_EQ(back->parameters, kEveryKind);
  }
}

TEST(ProtoRoundTrip, EachDatatypeUsesItsOwnTypedField) {
  // The proto's table: INT8/16/32 in int_contents, UINT8/16/32 in uint_contents, and so on.
  auto tensors = typedDatatypes();
  inference::ModelInferRequest proto;
  requestToProto(requestOf(tensors), /*raw=*/false, &proto);
  ASSERT_EQ(proto.inputs_size(), static_cast<int>(tensors.size()));
  auto c = [&](int i) { return proto.inputs(i).contents(); };
  EXPECT_EQ(c(0).bool_contents_size(), 3);
  EXPECT_EQ(c(1).uint_contents(1), 255u);
  EXPECT_EQ(c(2).uint_contents(1), 65535u);
  EXPECT_EQ(c(3).uint_contents(1), 4294967295u);
  EXPECT_EQ(c(4).uint64_contents(0), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(c(5).int_contents(0), -128);
  EXPECT_EQ(c(6).int_contents(0), -32768);
  EXPECT_EQ(c(7).int_contents(0), std::numeric_limits<int32_t>::min());
  EXPECT_EQ(c(8).int64_contents(0), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(c(9).fp32_contents(0), 0.1f);
  EXPECT_EQ(c(10).fp64_contents(0), -1e300);
  EXPECT_EQ(c(11).bytes_contents(1), std::string("a\0b", 3));
  for (int i = 0; i < proto.inputs_size(); ++i) {
    EXPECT_EQ(proto.inputs(i).datatype(), tensors[static_cast<size_t>(i)].name);
  }
}

TEST(ProtoRoundTrip, RawBytesUseLittleEndianLengthPrefixes) {
  inference::ModelInferRequest proto;
  requestToProto(requestOf({bytesTensor("s", {2}, {"ab", std::string(300, 'z')})}), true, &proto);
  ASSERT_EQ(proto.raw_input_contents_size(), 1);
  EXPECT_EQ(proto.raw_input_contents(0),
            std::string("\x02\x00\x00\x00", 4) + "ab" + std::string("\x2c\x01\x00\x00", 4) +
                std::string(300, 'z'));
  inference::ModelInferRequest p2;
  requestToProto(requestOf({make<int32_t>("i", DataType::kInt32, {1}, {0x01020304})}), true, &p2);
  EXPECT_EQ(p2.raw_input_contents(0), std::string("\x04\x03\x02\x01", 4));
}

TEST(ProtoRoundTrip, HalfPrecisionForcesRawForEveryTensor) {
  // FP16/BF16 have no typed field, and raw and typed cannot be mixed, so one half tensor moves
  // every tensor of the message to raw contents.
  std::vector<Tensor> tensors = halfDatatypes();
  tensors.push_back(make<float>("f", DataType::kFp32, {1}, {2.0f}));
  tensors.push_back(bytesTensor("s", {1}, {"x"}));
  inference::ModelInferResponse resp;
  responseToProto(responseOf(tensors), /*raw=*/false, &resp);
  EXPECT_EQ(resp.raw_output_contents_size(), 4);
  for (const auto& o : resp.outputs()) EXPECT_FALSE(o.has_contents() && o.contents().ByteSizeLong());
  auto back = responseFromProto(resp);
  ASSERT_TRUE(back.ok()) << back.status();
  expectSameTensors(back->outputs, tensors);
  inference::ModelInferRequest req;
  requestToProto(requestOf(tensors), /*raw=*/false, &req);
  EXPECT_EQ(req.raw_input_contents_size(), 4);
  auto in = requestFromProto(req);
  ASSERT_TRUE(in.ok()) << in.status();
  expectSameTensors(in->inputs, tensors);
}

TEST(ProtoRoundTrip, EmptyIdMeansNoId) {
  InferenceRequest r = requestOf({});
  r.id = "";
  inference::ModelInferRequest proto;
  requestToProto(r, false, &proto);
  auto back = requestFromProto(proto);
  ASSERT_TRUE(back.ok());
  EXPECT_FALSE(back->has_id);  // proto3 cannot tell "" from unset
}

// ---------------------------------------------------------------- errors

inference::ModelInferRequest fp32Request(int values, int64_t dim) {
  inference::ModelInferRequest p;
  p.set_model_name("m");
  auto* in = p.add_inputs();
  in->set_name("x");
  in->set_datatype("FP32");
  in->add_shape(dim);
  for (int i = 0; i < values; ++i) in->mutable_contents()->add_fp32_contents(1.0f);
  return p;
}

std::string error(const inference::ModelInferRequest& p) {
  auto r = requestFromProto(p);
  if (r.ok()) return "OK";
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  return message(r.status());
}

TEST(ProtoErrors, RawCountMustMatchInputsWithKServesMessage) {
  auto p = fp32Request(0, 1);
  p.add_raw_input_contents(std::string(4, '\0'));
  p.add_raw_input_contents(std::string(4, '\0'));
  EXPECT_EQ(error(p),
            "the number of inputs (1) does not match the expected number of raw input contents "
            "(2) for model 'm'.");
  auto two = fp32Request(0, 1);
  *two.add_inputs() = two.inputs(0);
  two.add_raw_input_contents(std::string(4, '\0'));
  EXPECT_EQ(error(two),
            "the number of inputs (2) does not match the expected number of raw input contents "
            "(1) for model 'm'.");
  // The response side words it for outputs.
  inference::ModelInferResponse resp;
  resp.set_model_name("r");
  resp.add_outputs()->set_datatype("FP32");
  resp.add_raw_output_contents("");
  resp.add_raw_output_contents("");
  auto r = responseFromProto(resp);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(message(r.status()),
            "the number of outputs (1) does not match the expected number of raw output contents "
            "(2) for model 'r'.");
}

TEST(ProtoErrors, RawAndTypedContentsNeverTogether) {
  auto p = fp32Request(1, 1);
  p.add_raw_input_contents(std::string(4, '\0'));
  EXPECT_THAT(error(p), HasSubstr("contents field must not be specified when using "
                                  "raw_input_contents for 'x' for model 'm'"));
  // Even when the contents sit on a different input from the one with data.
  auto two = fp32Request(0, 1);
  auto* second = two.add_inputs();
  *second = two.inputs(0);
  second->set_name("y");
  second->mutable_contents()->add_fp32_contents(1.0f);
  two.add_raw_input_contents(std::string(4, '\0'));
  two.add_raw_input_contents(std::string(4, '\0'));
  EXPECT_THAT(error(two), HasSubstr("for 'y'"));
}

TEST(ProtoErrors, TypedValuesMustBeInTheDatatypesField) {
  struct Case {
    const char* datatype;
    void (*fill)(inference::InferTensorContents*);
  };
  const Case cases[] = {
      {"FP32", [](inference::InferTensorContents* c) { c->add_fp64_contents(1); }},
      {"FP32", [](inference::InferTensorContents* c) { c->add_int_contents(1); }},
      {"FP64", [](inference::InferTensorContents* c) { c->add_fp32_contents(1); }},
      {"INT64", [](inference::InferTensorContents* c) { c->add_int_contents(1); }},
      {"INT32", [](inference::InferTensorContents* c) { c->add_int64_contents(1); }},
      {"UINT8", [](inference::InferTensorContents* c) { c->add_int_contents(1); }},
      {"UINT64", [](inference::InferTensorContents* c) { c->add_uint_contents(1); }},
      {"BOOL", [](inference::InferTensorContents* c) { c->add_int_contents(1); }},
      {"BYTES", [](inference::InferTensorContents* c) { c->add_uint_contents(1); }},
      {"INT8", [](inference::InferTensorContents* c) { c->add_bool_contents(true); }},
  };
  for (const auto& c : cases) {
    auto p = fp32Request(0, 1);
    p.mutable_inputs(0)->set_datatype(c.datatype);
    c.fill(p.mutable_inputs(0)->mutable_contents());
    EXPECT_THAT(error(p), HasSubstr(common::strCat("'x' of ", c.datatype,
                                                   " has values in the wrong contents field")))
        << c.datatype;
  }
}

TEST(ProtoErrors, NarrowIntegersMustFit) {
  auto with = [](const char* datatype, auto add) {
    auto p = fp32Request(0, 1);
    p.mutable_inputs(0)->set_datatype(datatype);
    add(p.mutable_inputs(0)->mutable_contents());
    return error(p);
  };
  using C = inference::InferTensorContents;
  EXPECT_THAT(with("INT8", [](C* c) { c->add_int_contents(128); }),
              HasSubstr("tensor 'x': value 128 does not fit INT8"));
  EXPECT_THAT(with("INT8", [](C* c) { c->add_int_contents(-129); }), HasSubstr("-129 does not fit INT8"));
  EXPECT_THAT(with("INT16", [](C* c) { c->add_int_contents(32768); }), HasSubstr("does not fit INT16"));
  EXPECT_THAT(with("INT16", [](C* c) { c->add_int_contents(-32769); }), HasSubstr("does not fit INT16"));
  EXPECT_THAT(with("UINT8", [](C* c) { c->add_uint_contents(256); }), HasSubstr("256 does not fit UINT8"));
  EXPECT_THAT(with("UINT16", [](C* c) { c->add_uint_contents(65536); }),
              HasSubstr("65536 does not fit UINT16"));
  // The edges themselves are fine.
  EXPECT_EQ(with("INT8", [](C* c) { c->add_int_contents(-128); }), "OK");
  EXPECT_EQ(with("UINT16", [](C* c) { c->add_uint_contents(65535); }), "OK");
}

TEST(ProtoErrors, HalfPrecisionOnlyAsRaw) {
  for (const char* type : {"FP16", "BF16"}) {
    auto p = fp32Request(1, 1);
    p.mutable_inputs(0)->set_datatype(type);
    EXPECT_THAT(error(p), HasSubstr(common::strCat(type, " data must be sent in raw_input_contents")));
    // Raw is accepted.
    auto raw = fp32Request(0, 2);
    raw.mutable_inputs(0)->set_datatype(type);
    raw.add_raw_input_contents(std::string("\x00\x3c\x00\x40", 4));
    EXPECT_EQ(error(raw), "OK");
  }
}

TEST(ProtoErrors, ElementCountMustMatchTheShape) {
  EXPECT_EQ(error(fp32Request(2, 2)), "OK");
  EXPECT_THAT(error(fp32Request(1, 2)), HasSubstr("tensor 'x' has shape [2] (2 elements) but 1"));
  EXPECT_THAT(error(fp32Request(3, 2)), HasSubstr("(2 elements) but 3"));
  auto raw_short = fp32Request(0, 2);
  raw_short.add_raw_input_contents(std::string(4, '\0'));
  EXPECT_THAT(error(raw_short), HasSubstr("(2 elements) but 1"));
  auto raw_ragged = fp32Request(0, 2);
  raw_ragged.add_raw_input_contents(std::string(7, '\0'));
  EXPECT_THAT(error(raw_ragged), HasSubstr("needs 8 bytes but 7"));
  auto bytes = fp32Request(0, 2);
  bytes.mutable_inputs(0)->set_datatype("BYTES");
  bytes.mutable_inputs(0)->mutable_contents()->add_bytes_contents("one");
  EXPECT_THAT(error(bytes), HasSubstr("(2 elements) but 1"));
  // No data at all for a non-empty shape.
  EXPECT_THAT(error(fp32Request(0, 3)), HasSubstr("(3 elements) but 0"));
}

TEST(ProtoErrors, HugeShapeWithEmptyRawDataIsRejected) {
  // 2^61 FP64 elements: the byte size wraps to 0; the empty buffer must not pass.
  auto p = fp32Request(0, int64_t{1} << 61);
  p.mutable_inputs(0)->set_datatype("FP64");
  p.add_raw_input_contents("");
  EXPECT_NE(error(p), "OK");
  auto typed = fp32Request(0, int64_t{1} << 62);
  EXPECT_NE(error(typed), "OK");
}

TEST(ProtoErrors, ShapeAndDatatype) {
  auto neg = fp32Request(1, -1);
  EXPECT_THAT(error(neg), HasSubstr("negative"));
  auto unknown = fp32Request(1, 1);
  unknown.mutable_inputs(0)->set_datatype("FP8");
  EXPECT_THAT(error(unknown), HasSubstr("tensor 'x' has an invalid datatype 'FP8'"));
  auto lower = fp32Request(1, 1);
  lower.mutable_inputs(0)->set_datatype("fp32");
  EXPECT_THAT(error(lower), HasSubstr("invalid datatype 'fp32'"));
  auto overflow = fp32Request(0, int64_t{1} << 32);
  overflow.mutable_inputs(0)->add_shape(int64_t{1} << 32);
  EXPECT_THAT(error(overflow), HasSubstr("too many elements"));
}

TEST(ProtoErrors, RawBytesMustBeWellFormed) {
  auto bytes = [](std::string raw, int64_t dim) {
    auto p = fp32Request(0, dim);
    p.mutable_inputs(0)->set_datatype("BYTES");
    p.add_raw_input_contents(std::move(raw));
    return error(p);
  };
  EXPECT_EQ(bytes(std::string("\x02\x00\x00\x00", 4) + "ab", 1), "OK");
  EXPECT_THAT(bytes(std::string("\x05\x00\x00\x00", 4) + "ab", 1),
              HasSubstr("tensor 'x': BYTES element runs past the contents"));
  EXPECT_THAT(bytes(std::string("\x02\x00", 2), 1), HasSubstr("BYTES raw contents end inside a length"));
  EXPECT_THAT(bytes(std::string("\x00\x00\x00\x00", 4) + "z", 1), HasSubstr("end inside a length"));
  EXPECT_THAT(bytes(std::string("\xff\xff\xff\xff", 4) + "z", 1), HasSubstr("runs past"));
  EXPECT_THAT(bytes(std::string("\x01\x00\x00\x00", 4) + "a", 2), HasSubstr("(2 elements) but 1"));
}

TEST(ProtoErrors, ResponsesFollowTheSameRules) {
  inference::ModelInferResponse p;
  p.set_model_name("m");
  auto* o = p.add_outputs();
  o->set_name("y");
  o->set_datatype("FP16");
  o->add_shape(1);
  o->mutable_contents()->add_fp32_contents(1);
  auto r = responseFromProto(p);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  o->clear_contents();
  p.add_raw_output_contents(std::string("\x00\x3c", 2));
  EXPECT_TRUE(responseFromProto(p).ok());
  o->mutable_contents()->add_fp32_contents(1);
  auto both = responseFromProto(p);
  ASSERT_FALSE(both.ok());
  EXPECT_THAT(message(both.status()), HasSubstr("raw_output_contents"));
}

// ---------------------------------------------------------------- parameters

TEST(ProtoParameters, EveryKindRoundTripsThroughProto) {
  google::protobuf::Map<std::string, inference::InferParameter> proto;
  parametersToProto(kEveryKind, &proto);
  ASSERT_EQ(proto.size(), kEveryKind.size());
  EXPECT_EQ(proto.at("b").parameter_choice_case(), inference::InferParameter::kBoolParam);
  EXPECT_EQ(proto.at("i").int64_param(), -3);
  EXPECT_EQ(proto.at("imax").int64_param(), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(proto.at("u").parameter_choice_case(), inference::InferParameter::kUint64Param);
  EXPECT_EQ(proto.at("u").uint64_param(), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(proto.at("d").double_param(), 0.5);
  EXPECT_EQ(proto.at("s").string_param(), "caf\xc3\xa9 \"q\"");
  EXPECT_EQ(parametersFromProto(proto), kEveryKind);
  // A parameter with no value set is dropped rather than invented.
  proto["unset"];
  EXPECT_EQ(parametersFromProto(proto), kEveryKind);
}

TEST(ProtoParameters, KeepTheirKindThroughProtoAndThroughJson) {
  // gRPC in, REST out (and back): bool, int64, string and non-integral doubles keep their kind.
  // JSON has one number type, so a uint64 that fits int64 comes back as int64; one beyond
  // int64 stays uint64.
  Parameters params = kEveryKind;
  params["small_u"] = uint64_t{5};
  InferenceRequest r = requestOf({make<float>("x", DataType::kFp32, {1}, {1})});
  r.parameters = params;
  r.inputs[0].parameters = params;
  inference::ModelInferRequest proto;
  requestToProto(r, false, &proto);
  auto from_proto = requestFromProto(proto);
  ASSERT_TRUE(from_proto.ok());
  EXPECT_EQ(from_proto->parameters, params);
  EXPECT_EQ(from_proto->inputs[0].parameters, params);
  auto json = encodeV2Request(*from_proto);
  auto from_json = decodeV2Request(json.body, json.json_length);
  ASSERT_TRUE(from_json.ok()) << from_json.status();
  Parameters want = params;
  want["small_u"] = int64_t{5};
  EXPECT_EQ(from_json->parameters, want);
  EXPECT_EQ(from_json->inputs[0].parameters, want);
  EXPECT_EQ(from_json->outputs[0].parameters, r.outputs[0].parameters);
}

// ---------------------------------------------------------------- metadata

TEST(ProtoMetadata, RoundTripKeepsEveryField) {
  ModelMetadata m;
  m.name = "iris";
  m.versions = {"1", "7"};
  m.platform = "xgboost";
  m.inputs.push_back({"input-0", DataType::kFp32, {-1, 4}});
  m.inputs.push_back({"mask", DataType::kBool, {}});
  m.outputs.push_back({"output-0", DataType::kInt64, {-1}});
  m.outputs.push_back({"h", DataType::kBf16, {2, -1}});
  m.properties["objective"] = "multi:softmax";
  m.properties["n"] = "3";
  inference::ModelMetadataResponse proto;
  metadataToProto(m, &proto);
  EXPECT_EQ(proto.inputs(0).datatype(), "FP32");
  EXPECT_EQ(proto.outputs(1).datatype(), "BF16");
  auto back = metadataFromProto(proto);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->name, m.name);
  EXPECT_EQ(back->versions, m.versions);
  EXPECT_EQ(back->platform, m.platform);
  ASSERT_EQ(back->inputs.size(), 2u);
  ASSERT_EQ(back->outputs.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(back->inputs[i].name, m.inputs[i].name);
    EXPECT_EQ(back->inputs[i].datatype, m.inputs[i].datatype);
    EXPECT_EQ(back->inputs[i].shape, m.inputs[i].shape);
    EXPECT_EQ(back->outputs[i].name, m.outputs[i].name);
    EXPECT_EQ(back->outputs[i].datatype, m.outputs[i].datatype);
    EXPECT_EQ(back->outputs[i].shape, m.outputs[i].shape);
  }
  EXPECT_EQ(back->properties, m.properties);
  // Proto and JSON agree: the same metadata through the REST encoding.
  auto via_json = decodeModelMetadata(encodeModelMetadata(*back));
  ASSERT_TRUE(via_json.ok()) << via_json.status();
  EXPECT_EQ(via_json->properties, m.properties);
  EXPECT_EQ(via_json->outputs[1].shape, (Shape{2, -1}));
}

TEST(ProtoMetadata, UnknownDatatypeIsAnError) {
  inference::ModelMetadataResponse proto;
  proto.set_name("m");
  auto* t = proto.add_outputs();
  t->set_name("y");
  t->set_datatype("fp32");
  auto back = metadataFromProto(proto);
  ASSERT_FALSE(back.ok());
  EXPECT_THAT(message(back.status()), HasSubstr("unknown datatype in metadata: fp32"));
}

}  // namespace
}  // namespace kh::protocols
