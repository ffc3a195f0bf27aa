#include "kh/protocols/proto_convert.h"

#include <limits>

#include "kh/common/strings.h"
#include "kh/common/status_macros.h"

namespace kh::protocols {
namespace {

absl::Status invalid(std::string message) { return absl::InvalidArgumentError(std::move(message)); }

bool hasAnyContents(const inference::InferTensorContents& c) {
  return c.bool_contents_size() || c.int_contents_size() || c.int64_contents_size() ||
         c.uint_contents_size() || c.uint64_contents_size() || c.fp32_contents_size() ||
         c.fp64_contents_size() || c.bytes_contents_size();
}

// The typed field a datatype travels in, and how many values each field holds.
int typedFieldFor(DataType t) {
  switch (t) {
    case DataType::kBool: return 1;
    case DataType::kInt8: case DataType::kInt16: case DataType::kInt32: return 2;
    case DataType::kInt64: return 3;
    case DataType::kUint8: case DataType::kUint16: case DataType::kUint32: return 4;
    case DataType::kUint64: return 5;
    case DataType::kFp32: return 6;
    case DataType::kFp64: return 7;
    case DataType::kBytes: return 8;
    case DataType::kFp16: case DataType::kBf16: return 0;
  }
  return 0;
}

int fieldSize(const inference::InferTensorContents& c, int field) {
  switch (field) {
    case 1: return c.bool_contents_size();
    case 2: return c.int_contents_size();
    case 3: return c.int64_contents_size();
    case 4: return c.uint_contents_size();
    case 5: return c.uint64_contents_size();
    case 6: return c.fp32_contents_size();
    case 7: return c.fp64_contents_size();
    case 8: return c.bytes_contents_size();
  }
  return 0;
}

template <typename T, typename Src>
absl::Status appendNarrow(const Src& values, Tensor& t) {
  t.raw.reserve(values.size() * sizeof(T));
  for (auto v : values) {
    if (v < static_cast<decltype(v)>(std::numeric_limits<T>::lowest()) ||
        v > static_cast<decltype(v)>(std::numeric_limits<T>::max())) {
      return invalid(common::strCat("tensor '", t.name, "': value ", v, " does not fit ",
                                  dataTypeName(t.datatype)));
    }
    T narrow = static_cast<T>(v);
    t.raw.append(reinterpret_cast<const char*>(&narrow), sizeof(T));
  }
  return absl::OkStatus();
}

template <typename Src>
void appendSame(const Src& values, Tensor& t) {
  t.raw.append(reinterpret_cast<const char*>(values.data()),
               static_cast<size_t>(values.size()) * sizeof(*values.data()));
}

absl::Status fromContents(const inference::InferTensorContents& c, Tensor& t) {
  int field = typedFieldFor(t.datatype);
  if (field == 0) {
    return invalid(common::strCat("tensor '", t.name, "' is ", dataTypeName(t.datatype), ": ",
                                dataTypeName(t.datatype),
                                " data must be sent in raw_input_contents"));
  }
  for (int other = 1; other <= 8; ++other) {
    if (other != field && fieldSize(c, other) > 0) {
      return invalid(common::strCat("tensor '", t.name, "' of ", dataTypeName(t.datatype),
                                  " has values in the wrong contents field"));
    }
  }
  switch (t.datatype) {
    case DataType::kBool:
      for (bool b : c.bool_contents()) t.raw.push_back(b ? 1 : 0);
      break;
    case DataType::kInt8: return appendNarrow<int8_t>(c.int_contents(), t);
    case DataType::kInt16: return appendNarrow<int16_t>(c.int_contents(), t);
    case DataType::kInt32: appendSame(c.int_contents(), t); break;
    case DataType::kInt64: appendSame(c.int64_contents(), t); break;
    case DataType::kUint8: return appendNarrow<uint8_t>(c.uint_contents(), t);
    case DataType::kUint16: return appendNarrow<uint16_t>(c.uint_contents(), t);
    case DataType::kUint32: appendSame(c.uint_contents(), t); break;
    case DataType::kUint64: appendSame(c.uint64_contents(), t); break;
    case DataType::kFp32: appendSame(c.fp32_contents(), t); break;
    case DataType::kFp64: appendSame(c.fp64_contents(), t); break;
    case DataType::kBytes:
      t.bytes.assign(c.bytes_contents().begin(), c.bytes_contents().end());
      break;
    default: break;
  }
  return absl::OkStatus();
}

absl::Status fromRaw(const std::string& raw, Tensor& t) {
  if (t.datatype != DataType::kBytes) {
    t.raw = raw;
    return absl::OkStatus();
  }
  size_t pos = 0;
  while (pos < raw.size()) {
    if (raw.size() - pos < 4) {
      return invalid(common::strCat("tensor '", t.name, "': BYTES raw contents end inside a length"));
    }
    uint32_t len;
    std::memcpy(&len, raw.data() + pos, 4);
    pos += 4;
    if (raw.size() - pos < len) {
      return invalid(common::strCat("tensor '", t.name, "': BYTES element runs past the contents"));
    }
    t.bytes.emplace_back(raw, pos, len);
    pos += len;
  }
  return absl::OkStatus();
}

void toContents(const Tensor& t, inference::InferTensorContents* c) {
  size_t n = static_cast<size_t>(t.heldElements());
  switch (t.datatype) {
    case DataType::kBool:
      for (size_t i = 0; i < n; ++i) c->add_bool_contents(t.at<uint8_t>(i) != 0);
      break;
    case DataType::kInt8: for (size_t i = 0; i < n; ++i) c->add_int_contents(t.at<int8_t>(i)); break;
    case DataType::kInt16: for (size_t i = 0; i < n; ++i) c->add_int_contents(t.at<int16_t>(i)); break;
    case DataType::kInt32: for (size_t i = 0; i < n; ++i) c->add_int_contents(t.at<int32_t>(i)); break;
    case DataType::kInt64: for (size_t i = 0; i < n; ++i) c->add_int64_contents(t.at<int64_t>(i)); break;
    case DataType::kUint8: for (size_t i = 0; i < n; ++i) c->add_uint_contents(t.at<uint8_t>(i)); break;
    case DataType::kUint16: for (size_t i = 0; i < n; ++i) c->add_uint_contents(t.at<uint16_t>(i)); break;
    case DataType::kUint32: for (size_t i = 0; i < n; ++i) c->add_uint_contents(t.at<uint32_t>(i)); break;
    case DataType::kUint64: for (size_t i = 0; i < n; ++i) c->add_uint64_contents(t.at<uint64_t>(i)); break;
    case DataType::kFp32: for (size_t i = 0; i < n; ++i) c->add_fp32_contents(t.at<float>(i)); break;
    case DataType::kFp64: for (size_t i = 0; i < n; ++i) c->add_fp64_contents(t.at<double>(i)); break;
    case DataType::kBytes: for (const auto& e : t.bytes) c->add_bytes_contents(e); break;
    case DataType::kFp16: case DataType::kBf16: break;  // never typed; callers use raw
  }
}

std::string toRaw(const Tensor& t) {
  if (t.datatype != DataType::kBytes) return t.raw;
  std::string out;
  for (const auto& e : t.bytes) {
    uint32_t len = static_cast<uint32_t>(e.size());
    out.append(reinterpret_cast<const char*>(&len), 4);
    out += e;
  }
  return out;
}

bool needsRaw(const std::vector<Tensor>& tensors) {
  for (const auto& t : tensors) {
    if (t.datatype == DataType::kFp16 || t.datatype == DataType::kBf16) return true;
  }
  return false;
}

// Shared reading of request inputs and response outputs (same field layout).
template <typename TensorProto>
absl::Status readTensors(const google::protobuf::RepeatedPtrField<TensorProto>& tensors,
                         const google::protobuf::RepeatedPtrField<std::string>& raw,
                         std::string_view raw_field, std::string_view model,
                         std::vector<Tensor>& out) {
  if (!raw.empty() && raw.size() != tensors.size()) {
    return invalid(common::strCat("the number of ", raw_field == "raw_input_contents" ? "inputs" : "outputs",
                                " (", tensors.size(),
                                ") does not match the expected number of raw ",
                                raw_field == "raw_input_contents" ? "input" : "output",
                                " contents (", raw.size(), ") for model '", model, "'."));
  }
  out.reserve(tensors.size());
  for (int i = 0; i < tensors.size(); ++i) {
    const auto& p = tensors[i];
    Tensor t;
    t.name = p.name();
    auto type = parseDataType(p.datatype());
    if (!type) {
      return invalid(common::strCat("tensor '", p.name(), "' has an invalid datatype '",
                                  p.datatype(), "'"));
    }
    t.datatype = *type;
    t.shape.assign(p.shape().begin(), p.shape().end());
    t.parameters = parametersFromProto(p.parameters());
    if (!raw.empty()) {
      if (p.has_contents() && hasAnyContents(p.contents())) {
        return invalid(common::strCat("contents field must not be specified when using ", raw_field,
                                    " for '", p.name(), "' for model '", model, "'"));
      }
      KH_RETURN_IF_ERROR(fromRaw(raw[i], t));
    } else {
      KH_RETURN_IF_ERROR(fromContents(p.contents(), t));
    }
    KH_RETURN_IF_ERROR(validateTensorData(t));
    out.push_back(std::move(t));
  }
  return absl::OkStatus();
}

template <typename TensorProto>
void writeTensor(const Tensor& t, bool raw, TensorProto* p,
                 google::protobuf::RepeatedPtrField<std::string>* raw_out) {
  p->set_name(t.name);
  p->set_datatype(std::string(dataTypeName(t.datatype)));
  for (int64_t d : t.shape) p->add_shape(d);
  parametersToProto(t.parameters, p->mutable_parameters());
  if (raw) {
    *raw_out->Add() = toRaw(t);
  } else {
    toContents(t, p->mutable_contents());
  }
}

}  // namespace

void parametersToProto(const Parameters& params,
                       google::protobuf::Map<std::string, inference::InferParameter>* proto) {
  for (const auto& [k, v] : params) {
    auto& p = (*proto)[k];
    std::visit(
        [&](const auto& value) {
          using T = std::decay_t<decltype(value)>;
          if constexpr (std::is_same_v<T, bool>) p.set_bool_param(value);
          if constexpr (std::is_same_v<T, int64_t>) p.set_int64_param(value);
          if constexpr (std::is_same_v<T, uint64_t>) p.set_uint64_param(value);
          if constexpr (std::is_same_v<T, double>) p.set_double_param(value);
          if constexpr (std::is_same_v<T, std::string>) p.set_string_param(value);
        },
        v);
  }
}

Parameters parametersFromProto(
    const google::protobuf::Map<std::string, inference::InferParameter>& proto) {
  Parameters out;
  for (const auto& [k, p] : proto) {
    switch (p.parameter_choice_case()) {
      case inference::InferParameter::kBoolParam: out.emplace(k, p.bool_param()); break;
      case inference::InferParameter::kInt64Param: out.emplace(k, p.int64_param()); break;
      case inference::InferParameter::kStringParam: out.emplace(k, p.string_param()); break;
      case inference::InferParameter::kDoubleParam: out.emplace(k, p.double_param()); break;
      case inference::InferParameter::kUint64Param: out.emplace(k, p.uint64_param()); break;
      case inference::InferParameter::PARAMETER_CHOICE_NOT_SET: break;
    }
  }
  return out;
}

absl::StatusOr<InferenceRequest> requestFromProto(const inference::ModelInferRequest& proto) {
  InferenceRequest req;
  req.model_name = proto.model_name();
  req.model_version = proto.model_version();
  req.id = proto.id();
  req.has_id = !proto.id().empty();
  req.parameters = parametersFromProto(proto.parameters());
  KH_RETURN_IF_ERROR(readTensors(proto.inputs(), proto.raw_input_contents(), "raw_input_contents",
                                 proto.model_name(), req.inputs));
  for (const auto& o : proto.outputs()) {
    req.outputs.push_back({o.name(), parametersFromProto(o.parameters())});
  }
  return req;
}

absl::StatusOr<InferenceResponse> responseFromProto(const inference::ModelInferResponse& proto) {
  InferenceResponse resp;
  resp.model_name = proto.model_name();
  resp.model_version = proto.model_version();
  resp.id = proto.id();
  resp.parameters = parametersFromProto(proto.parameters());
  KH_RETURN_IF_ERROR(readTensors(proto.outputs(), proto.raw_output_contents(),
                                 "raw_output_contents", proto.model_name(), resp.outputs));
  return resp;
}

void responseToProto(const InferenceResponse& response, bool raw,
                     inference::ModelInferResponse* proto) {
  proto->set_model_name(response.model_name);
  proto->set_model_version(response.model_version);
  proto->set_id(response.id);
  parametersToProto(response.parameters, proto->mutable_parameters());
  raw = raw || needsRaw(response.outputs);
  for (const auto& t : response.outputs) {
    writeTensor(t, raw, proto->add_outputs(), proto->mutable_raw_output_contents());
  }
}

void requestToProto(const InferenceRequest& request, bool raw, inference::ModelInferRequest* proto) {
  proto->set_model_name(request.model_name);
  proto->set_model_version(request.model_version);
  proto->set_id(request.id);
  parametersToProto(request.parameters, proto->mutable_parameters());
  raw = raw || needsRaw(request.inputs);
  for (const auto& t : request.inputs) {
    writeTensor(t, raw, proto->add_inputs(), proto->mutable_raw_input_contents());
  }
  for (const auto& o : request.outputs) {
    auto* p = proto->add_outputs();
    p->set_name(o.name);
    parametersToProto(o.parameters, p->mutable_parameters());
  }
}

void metadataToProto(const ModelMetadata& m, inference::ModelMetadataResponse* proto) {
  proto->set_name(m.name);
  for (const auto& v : m.versions) proto->add_versions(v);
  proto->set_platform(m.platform);
  auto tensors = [](const std::vector<TensorMetadata>& list, auto* out) {
    for (const auto& t : list) {
      auto* p = out->Add();
      p->set_name(t.name);
      p->set_datatype(std::string(dataTypeName(t.datatype)));
      for (int64_t d : t.shape) p->add_shape(d);
    }
  };
  tensors(m.inputs, proto->mutable_inputs());
  tensors(m.outputs, proto->mutable_outputs());
  for (const auto& [k, v] : m.properties) (*proto->mutable_properties())[k] = v;
}

absl::StatusOr<ModelMetadata> metadataFromProto(const inference::ModelMetadataResponse& proto) {
  ModelMetadata m;
  m.name = proto.name();
  m.versions.assign(proto.versions().begin(), proto.versions().end());
  m.platform = proto.platform();
  auto tensors = [](const auto& list, std::vector<TensorMetadata>& out) -> absl::Status {
    for (const auto& p : list) {
      auto type = parseDataType(p.datatype());
      if (!type) return invalid(common::strCat("unknown datatype in metadata: ", p.datatype()));
      out.push_back({p.name(), *type, Shape(p.shape().begin(), p.shape().end())});
    }
    return absl::OkStatus();
  };
  KH_RETURN_IF_ERROR(tensors(proto.inputs(), m.inputs));
  KH_RETURN_IF_ERROR(tensors(proto.outputs(), m.outputs));
  for (const auto& [k, v] : proto.properties()) m.properties.emplace(k, v);
  return m;
}

}  // namespace kh::protocols
