// Protobuf conversion: typed and raw contents for every datatype, and KServe's error rules.

#include "kh/protocols/proto_convert.h"

#include <limits>

#include "gtest/gtest.h"

namespace kh::protocols {
namespace {

std::vector<Tensor> tensors() {
  std::vector<Tensor> out;
  auto add = [&](DataType t, auto values) {
    using V = typename decltype(values)::value_type;
    out.push_back(Tensor::fromValues<V>(std::string(dataTypeName(t)), t,
                                        {static_cast<int64_t>(values.size())}, values));
  };
  add(DataType::kBool, std::vector<uint8_t>{1, 0});
  add(DataType::kUint8, std::vector<uint8_t>{0, 255});
  add(DataType::kUint16, std::vector<uint16_t>{65535});
  add(DataType::kUint32, std::vector<uint32_t>{4294967295u});
  add(DataType::kUint64, std::vector<uint64_t>{std::numeric_limits<uint64_t>::max()});
  add(DataType::kInt8, std::vector<int8_t>{-128, 127});
  add(DataType::kInt16, std::vector<int16_t>{-32768});
  add(DataType::kInt32, std::vector<int32_t>{-5});
  add(DataType::kInt64, std::vector<int64_t>{std::numeric_limits<int64_t>::min()});
  add(DataType::kFp32, std::vector<float>{0.1f, 2.5f});
  add(DataType::kFp64, std::vector<double>{-1e300});
  Tensor b;
  b.name = "BYTES";
  b.datatype = DataType::kBytes;
  b.shape = {2};
  b.bytes = {"", std::string("a\0b", 3)};
  out.push_back(b);
  return out;
}

void expectSame(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].name, b[i].name);
    EXPECT_EQ(a[i].datatype, b[i].datatype);
    EXPECT_EQ(a[i].shape, b[i].shape);
    EXPECT_EQ(a[i].raw, b[i].raw) << a[i].name;
    EXPECT_EQ(a[i].bytes, b[i].bytes) << a[i].name;
  }
}

TEST(ProtoConvert, RequestRoundTripTypedAndRaw) {
  InferenceRequest req;
  req.model_name = "m";
  req.id = "7";
  req.parameters = {{"a", true}, {"b", int64_t{-3}}, {"c", uint64_t{1} << 63}, {"d", 0.5}, {"e", std::string("s")}};
  req.inputs = tensors();
  req.outputs.push_back({"y", {{"binary_data", true}}});
  for (bool raw : {false, true}) {
    inference::ModelInferRequest proto;
    requestToProto(req, raw, &proto);
    EXPECT_EQ(proto.raw_input_contents_size(), raw ? static_cast<int>(req.inputs.size()) : 0);
    auto back = requestFromProto(proto);
    ASSERT_TRUE(back.ok()) << back.status();
    expectSame(back->inputs, req.inputs);
    EXPECT_EQ(back->parameters, req.parameters);
    EXPECT_EQ(back->outputs[0].name, "y");
  }
}

TEST(ProtoConvert, HalfPrecisionForcesRawOutputs) {
  InferenceResponse resp;
  resp.model_name = "m";
  std::vector<uint16_t> h = {floatToHalf(1.0f)};
  resp.outputs.push_back(Tensor::fromValues<uint16_t>("h", DataType::kFp16, {1}, h));
  std::vector<float> f = {2.0f};
  resp.outputs.push_back(Tensor::fromValues<float>("f", DataType::kFp32, {1}, f));
  inference::ModelInferResponse proto;
  responseToProto(resp, /*raw=*/false, &proto);
  EXPECT_EQ(proto.raw_output_contents_size(), 2);
  auto back = responseFromProto(proto);
  ASSERT_TRUE(back.ok()) << back.status();
  expectSame(back->outputs, resp.outputs);
}

inference::ModelInferRequest fp32Request(int values, int shape) {
  inference::ModelInferRequest p;
  p.set_model_name("m");
  auto* in = p.add_inputs();
  in->set_name("x");
  in->set_datatype("FP32");
  in->add_shape(shape);
  for (int i = 0; i < values; ++i) in->mutable_contents()->add_fp32_contents(1.0f);
  return p;
}

std::string error(const inference::ModelInferRequest& p) {
  auto r = requestFromProto(p);
  return r.ok() ? std::string("OK") : std::string(r.status().message());
}

TEST(ProtoConvert, KServeErrorRules) {
  EXPECT_EQ(error(fp32Request(2, 2)), "OK");
  EXPECT_NE(error(fp32Request(1, 2)).find("2 elements"), std::string::npos);
  auto raw_count = fp32Request(0, 1);
  raw_count.add_raw_input_contents(std::string(4, '\0'));
  raw_count.add_raw_input_contents(std::string(4, '\0'));
  EXPECT_EQ(error(raw_count),
            "the number of inputs (1) does not match the expected number of raw input contents "
            "(2) for model 'm'.");
  auto both = fp32Request(1, 1);
  both.add_raw_input_contents(std::string(4, '\0'));
  EXPECT_NE(error(both).find("contents field must not be specified"), std::string::npos);
  auto wrong_field = fp32Request(0, 1);
  wrong_field.mutable_inputs(0)->mutable_contents()->add_int_contents(1);
  EXPECT_NE(error(wrong_field).find("wrong contents field"), std::string::npos);
  auto int8 = fp32Request(0, 1);
  int8.mutable_inputs(0)->set_datatype("INT8");
  int8.mutable_inputs(0)->mutable_contents()->add_int_contents(300);
  EXPECT_NE(error(int8).find("does not fit INT8"), std::string::npos);
  auto uint16 = fp32Request(0, 1);
  uint16.mutable_inputs(0)->set_datatype("UINT16");
  uint16.mutable_inputs(0)->mutable_contents()->add_uint_contents(70000);
  EXPECT_NE(error(uint16).find("does not fit UINT16"), std::string::npos);
  auto half = fp32Request(1, 1);
  half.mutable_inputs(0)->set_datatype("FP16");
  EXPECT_NE(error(half).find("raw_input_contents"), std::string::npos);
  auto unknown = fp32Request(1, 1);
  unknown.mutable_inputs(0)->set_datatype("FP8");
  EXPECT_NE(error(unknown).find("invalid datatype"), std::string::npos);
  auto short_raw = fp32Request(0, 2);
  short_raw.add_raw_input_contents(std::string(4, '\0'));
  EXPECT_NE(error(short_raw).find("(2 elements) but 1"), std::string::npos);
  auto bytes_raw = fp32Request(0, 1);
  bytes_raw.mutable_inputs(0)->set_datatype("BYTES");
  bytes_raw.add_raw_input_contents(std::string("\x05\x00\x00\x00" "ab", 6));
  EXPECT_NE(error(bytes_raw).find("runs past"), std::string::npos);
}

TEST(ProtoConvert, MetadataRoundTrip) {
  ModelMetadata m;
  m.name = "iris";
  m.platform = "xgboost";
  m.inputs.push_back({"input-0", DataType::kFp32, {-1, 4}});
  m.outputs.push_back({"output-0", DataType::kInt64, {-1}});
  m.properties["objective"] = "multi:softmax";
  inference::ModelMetadataResponse proto;
  metadataToProto(m, &proto);
  auto back = metadataFromProto(proto);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->inputs[0].shape, (Shape{-1, 4}));
  EXPECT_EQ(back->properties.at("objective"), "multi:softmax");
}

}  // namespace
}  // namespace kh::protocols
