#include "kh/protocols/v2_json.h"

#include <cmath>
#include <limits>

#include "kh/common/json.h"
#include "kh/common/strings.h"
#include "kh/common/status_macros.h"
#include "kh/protocols/json_writer.h"
#include "nlohmann/json.hpp"
#include "v2_fast_decode.h"

namespace kh::protocols {
namespace {

using nlohmann::json;

absl::Status invalid(std::string_view a, std::string_view b = {}, std::string_view c = {},
                     std::string_view d = {}) {
  return absl::InvalidArgumentError(common::strCat(a, b, c, d));
}

absl::StatusOr<json> parseJson(std::string_view text) {
  auto parsed = common::parseJson(text);
  if (!parsed.ok()) return invalid("Unrecognized request format: ", common::toStd(parsed.status().message()));
  return parsed;
}

absl::StatusOr<Parameters> decodeParameters(const json& node, std::string_view where) {
  Parameters out;
  // null is "not given": KServe's own server and clients (pydantic) write an unset optional
  // field as null ("parameters": null), and the protocol marks parameters optional.
  if (node.is_null()) return out;
  if (!node.is_object()) return invalid("'parameters' of ", where, " must be an object");
  for (const auto& [k, v] : node.items()) {
    if (v.is_boolean()) {
      out.emplace(k, v.get<bool>());
    } else if (v.is_number_unsigned()) {
      uint64_t u = v.get<uint64_t>();
      if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        out.emplace(k, static_cast<int64_t>(u));
      } else {
        out.emplace(k, u);
      }
    } else if (v.is_number_integer()) {
      out.emplace(k, v.get<int64_t>());
    } else if (v.is_number_float()) {
      out.emplace(k, v.get<double>());
    } else if (v.is_string()) {
      out.emplace(k, v.get<std::string>());
    } else {
      return invalid("parameter '", k, "' of ", common::strCat(where, " must be a string, number or boolean"));
    }
  }
  return out;
}

void writeParameters(JsonWriter& w, const Parameters& params) {
  w.beginObject();
  for (const auto& [k, v] : params) {
    w.key(k);
    std::visit(
        [&](const auto& value) {
          using T = std::decay_t<decltype(value)>;
          if constexpr (std::is_same_v<T, bool>) {
            w.boolean(value);
          } else if constexpr (std::is_same_v<T, std::string>) {
            w.string(value);
          } else {
            w.number(value);
          }
        },
        v);
  }
  w.endObject();
}

// Flattens nested JSON arrays (row-major) into `out`; scalars are collected as they come.
absl::Status flatten(const json& node, std::vector<const json*>& out, int depth) {
  if (depth > 64) return invalid("tensor data is nested too deeply");
  if (node.is_array()) {
    for (const auto& child : node) KH_RETURN_IF_ERROR(flatten(child, out, depth + 1));
  } else {
    out.push_back(&node);
  }
  return absl::OkStatus();
}

std::string describe(const json& v) {
  std::string s = common::jsonText(v);
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

template <typename T>
absl::Status appendInteger(const json& v, std::string& raw, std::string_view tensor, size_t index,
                           DataType type) {
  auto bad = [&]() {
    return invalid("input '", tensor,
                   common::strCat("': element ", index, " (", describe(v), ") is not a valid "),
                   dataTypeName(type));
  };
  T value;
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<T>::max())) return bad();
    value = static_cast<T>(u);
  } else if (v.is_number_integer()) {
    int64_t i = v.get<int64_t>();
    if constexpr (std::is_unsigned_v<T>) {
      if (i < 0) return bad();
      if (static_cast<uint64_t>(i) > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
        return bad();
      }
    } else {
      if (i < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
          i > static_cast<int64_t>(std::numeric_limits<T>::max())) {
        return bad();
      }
    }
    value = static_cast<T>(i);
  } else {
    return bad();
  }
  raw.append(reinterpret_cast<const char*>(&value), sizeof(T));
  return absl::OkStatus();
}

// Converts flattened JSON scalars into the tensor's storage.
absl::Status fillFromJson(Tensor& t, const std::vector<const json*>& elems) {
  size_t size = dataTypeSize(t.datatype);
  if (size > 0) t.raw.reserve(elems.size() * size);
  for (size_t i = 0; i < elems.size(); ++i) {
    const json& v = *elems[i];
    switch (t.datatype) {
      case DataType::kBool: {
        if (!v.is_boolean()) {
          return invalid("input '", t.name,
                         common::strCat("': element ", i, " (", describe(v), ") is not a BOOL"));
        }
        t.raw.push_back(v.get<bool>() ? 1 : 0);
        break;
      }
      case DataType::kUint8: KH_RETURN_IF_ERROR(appendInteger<uint8_t>(v, t.raw, t.name, i, t.datatype)); break;
      case DataType::kUint16: KH_RETURN_IF_ERROR(appendInteger<uint16_t>(v, t.raw, t.name, i, t.datatype)); break;
      case DataType::kUint32: KH_RETURN_IF_ERROR(appendInteger<uint32_t>(v, t.raw, t.name, i, t.datatype)); break;
      case DataType::kUint64: KH_RETURN_IF_ERROR(appendInteger<uint64_t>(v, t.raw, t.name, i, t.datatype)); break;
      case DataType::kInt8: KH_RETURN_IF_ERROR(appendInteger<int8_t>(v, t.raw, t.name, i, t.datatype)); break;
      case DataType::kInt16: KH_RETURN_IF_ERROR(appendInteger<int16_t>(v, t.raw, t.name, i, t.datatype)); break;
      case DataType::kInt32: KH_RETURN_IF_ERROR(appendInteger<int32_t>(v, t.raw, t.name, i, t.datatype)); break;
      case DataType::kInt64: KH_RETURN_IF_ERROR(appendInteger<int64_t>(v, t.raw, t.name, i, t.datatype)); break;
      case DataType::kFp32:
      case DataType::kFp64: {
        if (!v.is_number()) {
          return invalid("input '", t.name,
                         common::strCat("': element ", i, " (", describe(v), ") is not a number"));
        }
        double d = v.get<double>();
        if (t.datatype == DataType::kFp32) {
          float f = static_cast<float>(d);
          t.raw.append(reinterpret_cast<const char*>(&f), sizeof f);
        } else {
          t.raw.append(reinterpret_cast<const char*>(&d), sizeof d);
        }
        break;
      }
      case DataType::kFp16:
      case DataType::kBf16:
        // KServe's reference server refuses half precision in JSON: the values cannot be
        // written exactly, so the binary extension or raw gRPC contents must carry them.
        return invalid("Sending ", dataTypeName(t.datatype),
                       " data via JSON is not supported. Please use the binary data format for input ",
                       t.name);
      case DataType::kBytes: {
        if (!v.is_string()) {
          return invalid("input '", t.name,
                         common::strCat("': element ", i, " (", describe(v), ") is not a string"));
        }
        t.bytes.push_back(v.get<std::string>());
        break;
      }
    }
  }
  return absl::OkStatus();
}

// Reads one BYTES tensor from binary: each element is a 4-byte little-endian length + bytes.
absl::Status splitBytesElements(std::string_view blob, Tensor& t) {
  size_t pos = 0;
  while (pos < blob.size()) {
    if (blob.size() - pos < 4) {
      return invalid("tensor '", t.name, "': BYTES data ends inside an element length");
    }
    uint32_t len;
    std::memcpy(&len, blob.data() + pos, 4);
    pos += 4;
    if (blob.size() - pos < len) {
      return invalid("tensor '", t.name,
                     common::strCat("': BYTES element of length ", len, " runs past the data"));
    }
    t.bytes.emplace_back(blob.substr(pos, len));
    pos += len;
  }
  return absl::OkStatus();
}

void appendBytesElements(const Tensor& t, std::string& out) {
  for (const auto& e : t.bytes) {
    uint32_t len = static_cast<uint32_t>(e.size());
    out.append(reinterpret_cast<const char*>(&len), 4);
    out += e;
  }
}

absl::StatusOr<Shape> decodeShape(const json& node, std::string_view tensor) {
  if (!node.is_array()) return invalid("'shape' of tensor '", tensor, "' must be a list of integers");
  Shape shape;
  shape.reserve(node.size());
  for (const auto& d : node) {
    if (d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0)) {
      shape.push_back(d.get<int64_t>());
    } else {
      return invalid("'shape' of tensor '", tensor, "' must contain non-negative integers, got ",
                     describe(d));
    }
  }
  return shape;
}

// Shared by requests (inputs) and responses (outputs): one tensor object of the JSON.
absl::StatusOr<Tensor> decodeTensor(const json& node, std::string_view kind, size_t index,
                                    std::string_view& binary, bool has_binary_header,
                                    std::string_view model) {
  if (!node.is_object()) return invalid(kind, common::strCat(" ", index, " must be an object"));
  Tensor t;
  auto name = node.find("name");
  if (name == node.end() || !name->is_string()) {
    return invalid(kind, common::strCat(" ", index, " needs a string 'name'"));
  }
  t.name = name->get<std::string>();
  auto dt = node.find("datatype");
  if (dt == node.end() || !dt->is_string()) {
    return invalid(kind, " '", t.name, "' needs a string 'datatype'");
  }
  auto type = parseDataType(dt->get_ref<const std::string&>());
  if (!type) {
    return invalid(common::strCat(kind, " '", t.name, "' has an invalid datatype '",
                                dt->get_ref<const std::string&>(), "'; expected one of BOOL, UINT8, "
                                "UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, BF16, "
                                "FP32, FP64, BYTES"));
  }
  t.datatype = *type;
  auto shape = node.find("shape");
  if (shape == node.end()) return invalid(kind, " '", t.name, "' needs a 'shape'");
  KH_ASSIGN_OR_RETURN(t.shape, decodeShape(*shape, t.name));
  KH_ASSIGN_OR_RETURN(int64_t count, elementCount(t.shape));
  if (auto p = node.find("parameters"); p != node.end()) {
    KH_ASSIGN_OR_RETURN(t.parameters, decodeParameters(*p, common::strCat(kind, " '", t.name, "'")));
  }
  auto binary_size = intParameter(t.parameters, kBinaryDataSize);
  auto data = node.find("data");
  if (binary_size) {
    if (data != node.end()) {
      return invalid(kind, " '", t.name, "' has both 'data' and 'binary_data_size'");
    }
    if (!has_binary_header) {
      return invalid("received byte inputs, but the'inference-header-content-length' header is missing.");
    }
    if (*binary_size < 0 || static_cast<uint64_t>(*binary_size) > binary.size()) {
      return invalid(common::strCat(kind, " '", t.name, "' declares binary_data_size ", *binary_size,
                                  " but only ", binary.size(), " bytes of binary data remain"));
    }
    std::string_view blob = binary.substr(0, static_cast<size_t>(*binary_size));
    binary.remove_prefix(blob.size());
    t.parameters.erase(t.parameters.find(kBinaryDataSize));
    if (t.datatype == DataType::kBytes) {
      KH_RETURN_IF_ERROR(splitBytesElements(blob, t));
    } else {
      t.raw.assign(blob);
    }
  } else {
    if (data == node.end()) {
      return invalid("'data' field is missing for ", kind,
                     common::strCat(" '", t.name, "' for model '", model, "'"));
    }
    std::vector<const json*> elems;
    elems.reserve(static_cast<size_t>(std::min<int64_t>(count, 1 << 20)));
    KH_RETURN_IF_ERROR(flatten(*data, elems, 0));
    if (static_cast<int64_t>(elems.size()) != count) {
      return invalid(common::strCat(kind, " '", t.name, "' has shape ", shapeToString(t.shape), " (",
                                  count, " elements) but its data has ", elems.size(),
                                  " elements"));
    }
    KH_RETURN_IF_ERROR(fillFromJson(t, elems));
  }
  KH_RETURN_IF_ERROR(validateTensorData(t));
  return t;
}

struct SplitBody {
  std::string_view json_text;
  std::string_view binary;
};

absl::StatusOr<SplitBody> splitBody(std::string_view body, std::optional<size_t> json_length) {
  if (!json_length) return SplitBody{body, {}};
  if (*json_length > body.size()) {
    return invalid(common::strCat("Inference-Header-Content-Length (", *json_length,
                                ") is larger than the body (", body.size(), " bytes)"));
  }
  return SplitBody{body.substr(0, *json_length), body.substr(*json_length)};
}

template <typename Fn>
absl::Status forEachTensor(const json& root, std::string_view field, std::string_view kind,
                           std::string_view& binary, bool has_header, std::string_view model,
                           bool required, Fn&& fn) {
  auto it = root.find(std::string(field));
  if (it == root.end()) {
    if (required) return invalid("the request has no '", field, "' list");
    return absl::OkStatus();
  }
  if (!it->is_array()) return invalid("'", field, "' must be a list");
  size_t index = 0;
  for (const auto& node : *it) {
    KH_ASSIGN_OR_RETURN(Tensor t, decodeTensor(node, kind, index++, binary, has_header, model));
    fn(std::move(t));
  }
  return absl::OkStatus();
}

void writeTensorJson(JsonWriter& w, const Tensor& t, bool binary) {
  w.beginObject();
  w.key("name");
  w.string(t.name);
  w.key("datatype");
  w.string(dataTypeName(t.datatype));
  w.key("shape");
  w.beginArray();
  for (int64_t d : t.shape) w.number(d);
  w.endArray();
  if (binary || !t.parameters.empty()) {
    Parameters params = t.parameters;
    if (binary) {
      size_t size = t.raw.size();
      if (t.datatype == DataType::kBytes) {
        size = 0;
        for (const auto& e : t.bytes) size += 4 + e.size();
      }
      params[std::string(kBinaryDataSize)] = static_cast<int64_t>(size);
    }
    w.key("parameters");
    writeParameters(w, params);
  }
  if (binary) {
    w.endObject();
    return;
  }
  w.key("data");
  w.beginArray();
  size_t n = static_cast<size_t>(t.heldElements());
  switch (t.datatype) {
    case DataType::kBool: for (size_t i = 0; i < n; ++i) w.boolean(t.at<uint8_t>(i) != 0); break;
    case DataType::kUint8: for (size_t i = 0; i < n; ++i) w.number(uint64_t{t.at<uint8_t>(i)}); break;
    case DataType::kUint16: for (size_t i = 0; i < n; ++i) w.number(uint64_t{t.at<uint16_t>(i)}); break;
    case DataType::kUint32: for (size_t i = 0; i < n; ++i) w.number(uint64_t{t.at<uint32_t>(i)}); break;
    case DataType::kUint64: for (size_t i = 0; i < n; ++i) w.number(t.at<uint64_t>(i)); break;
    case DataType::kInt8: for (size_t i = 0; i < n; ++i) w.number(int64_t{t.at<int8_t>(i)}); break;
    case DataType::kInt16: for (size_t i = 0; i < n; ++i) w.number(int64_t{t.at<int16_t>(i)}); break;
    case DataType::kInt32: for (size_t i = 0; i < n; ++i) w.number(int64_t{t.at<int32_t>(i)}); break;
    case DataType::kInt64: for (size_t i = 0; i < n; ++i) w.number(t.at<int64_t>(i)); break;
    case DataType::kFp16: for (size_t i = 0; i < n; ++i) w.number(halfToFloat(t.at<uint16_t>(i))); break;
    case DataType::kBf16: for (size_t i = 0; i < n; ++i) w.number(bf16ToFloat(t.at<uint16_t>(i))); break;
    case DataType::kFp32: for (size_t i = 0; i < n; ++i) w.number(t.at<float>(i)); break;
    case DataType::kFp64: for (size_t i = 0; i < n; ++i) w.number(t.at<double>(i)); break;
    case DataType::kBytes: for (const auto& e : t.bytes) w.string(e); break;
  }
  w.endArray();
  w.endObject();
}

void appendBlob(const Tensor& t, std::string& out) {
  if (t.datatype == DataType::kBytes) {
    appendBytesElements(t, out);
  } else {
    out += t.raw;
  }
}

bool anyTrue(const std::vector<bool>& flags) {
  for (bool f : flags) {
    if (f) return true;
  }
  return false;
}

absl::StatusOr<std::string> optionalString(const json& root, const char* field) {
  auto it = root.find(field);
  if (it == root.end() || it->is_null()) return std::string();
  if (!it->is_string()) return invalid("'", field, "' must be a string");
  return it->get<std::string>();
}

}  // namespace

absl::StatusOr<InferenceRequest> decodeV2Request(std::string_view body,
                                                 std::optional<size_t> json_length) {
  if (!json_length) {
    if (auto fast = internal::decodeV2RequestFast(body)) return std::move(*fast);
  }
  return decodeV2RequestWithoutFastPath(body, json_length);
}

absl::StatusOr<InferenceRequest> decodeV2RequestWithoutFastPath(std::string_view body,
                                                                std::optional<size_t> json_length) {
  KH_ASSIGN_OR_RETURN(SplitBody split, splitBody(body, json_length));
  KH_ASSIGN_OR_RETURN(json root, parseJson(split.json_text));
  if (!root.is_object()) return invalid("the request body must be a JSON object");
  InferenceRequest req;
  if (auto it = root.find("id"); it != root.end() && !it->is_null()) {
    if (!it->is_string()) return invalid("'id' must be a string");
    req.id = it->get<std::string>();
    req.has_id = true;
  }
  if (auto it = root.find("parameters"); it != root.end()) {
    KH_ASSIGN_OR_RETURN(req.parameters, decodeParameters(*it, "the request"));
  }
  std::string_view binary = split.binary;
  KH_RETURN_IF_ERROR(forEachTensor(root, "inputs", "input", binary, json_length.has_value(), "",
                                   true, [&](Tensor t) { req.inputs.push_back(std::move(t)); }));
  if (auto it = root.find("outputs"); it != root.end()) {
    if (!it->is_array()) return invalid("'outputs' must be a list");
    for (const auto& node : *it) {
      if (!node.is_object() || !node.contains("name") || !node["name"].is_string()) {
        return invalid("each requested output needs a string 'name'");
      }
      RequestedOutput out;
      out.name = node["name"].get<std::string>();
      if (auto p = node.find("parameters"); p != node.end()) {
        KH_ASSIGN_OR_RETURN(out.parameters,
                            decodeParameters(*p, common::strCat("output '", out.name, "'")));
      }
      req.outputs.push_back(std::move(out));
    }
  }
  if (!binary.empty()) {
    return invalid(common::strCat(binary.size(),
                                " bytes of binary data follow the JSON but no input claims them"));
  }
  return req;
}

absl::StatusOr<InferenceResponse> decodeV2Response(std::string_view body,
                                                   std::optional<size_t> json_length) {
  KH_ASSIGN_OR_RETURN(SplitBody split, splitBody(body, json_length));
  KH_ASSIGN_OR_RETURN(json root, parseJson(split.json_text));
  if (!root.is_object()) return invalid("the response body must be a JSON object");
  InferenceResponse resp;
  KH_ASSIGN_OR_RETURN(resp.model_name, optionalString(root, "model_name"));
  KH_ASSIGN_OR_RETURN(resp.model_version, optionalString(root, "model_version"));
  KH_ASSIGN_OR_RETURN(resp.id, optionalString(root, "id"));
  if (auto it = root.find("parameters"); it != root.end()) {
    KH_ASSIGN_OR_RETURN(resp.parameters, decodeParameters(*it, "the response"));
  }
  std::string_view binary = split.binary;
  KH_RETURN_IF_ERROR(forEachTensor(root, "outputs", "output", binary, json_length.has_value(),
                                   resp.model_name, true,
                                   [&](Tensor t) { resp.outputs.push_back(std::move(t)); }));
  if (!binary.empty()) {
    return invalid(common::strCat(binary.size(),
                                " bytes of binary data follow the JSON but no output claims them"));
  }
  return resp;
}

EncodedBody encodeV2Response(const InferenceResponse& response,
                             const std::vector<bool>& binary_outputs) {
  EncodedBody out;
  size_t reserve = 128;
  for (const auto& t : response.outputs) reserve += 64 + t.raw.size() * 3;
  out.body.reserve(reserve);
  JsonWriter w(out.body);
  w.beginObject();
  w.key("model_name");
  w.string(response.model_name);
  if (!response.model_version.empty()) {
    w.key("model_version");
    w.string(response.model_version);
  }
  w.key("id");
  w.string(response.id);
  if (!response.parameters.empty()) {
    w.key("parameters");
    writeParameters(w, response.parameters);
  }
  w.key("outputs");
  w.beginArray();
  for (size_t i = 0; i < response.outputs.size(); ++i) {
    writeTensorJson(w, response.outputs[i], i < binary_outputs.size() && binary_outputs[i]);
  }
  w.endArray();
  w.endObject();
  if (anyTrue(binary_outputs)) {
    out.json_length = out.body.size();
    for (size_t i = 0; i < response.outputs.size(); ++i) {
      if (i < binary_outputs.size() && binary_outputs[i]) appendBlob(response.outputs[i], out.body);
    }
  }
  return out;
}

EncodedBody encodeV2Request(const InferenceRequest& request, const std::vector<bool>& binary_inputs) {
  EncodedBody out;
  JsonWriter w(out.body);
  w.beginObject();
  if (request.has_id || !request.id.empty()) {
    w.key("id");
    w.string(request.id);
  }
  if (!request.parameters.empty()) {
    w.key("parameters");
    writeParameters(w, request.parameters);
  }
  w.key("inputs");
  w.beginArray();
  for (size_t i = 0; i < request.inputs.size(); ++i) {
    writeTensorJson(w, request.inputs[i], i < binary_inputs.size() && binary_inputs[i]);
  }
  w.endArray();
  if (!request.outputs.empty()) {
    w.key("outputs");
    w.beginArray();
    for (const auto& o : request.outputs) {
      w.beginObject();
      w.key("name");
      w.string(o.name);
      if (!o.parameters.empty()) {
        w.key("parameters");
        writeParameters(w, o.parameters);
      }
      w.endObject();
    }
    w.endArray();
  }
  w.endObject();
  if (anyTrue(binary_inputs)) {
    out.json_length = out.body.size();
    for (size_t i = 0; i < request.inputs.size(); ++i) {
      if (i < binary_inputs.size() && binary_inputs[i]) appendBlob(request.inputs[i], out.body);
    }
  }
  return out;
}

std::string encodeV2Error(std::string_view message) {
  std::string out = "{\"error\":";
  appendJsonString(out, message);
  out += '}';
  return out;
}

std::string encodeModelMetadata(const ModelMetadata& m) {
  std::string out;
  JsonWriter w(out);
  auto tensors = [&](const std::vector<TensorMetadata>& list) {
    w.beginArray();
    for (const auto& t : list) {
      w.beginObject();
      w.key("name");
      w.string(t.name);
      w.key("datatype");
      w.string(dataTypeName(t.datatype));
      w.key("shape");
      w.beginArray();
      for (int64_t d : t.shape) w.number(d);
      w.endArray();
      w.endObject();
    }
    w.endArray();
  };
  w.beginObject();
  w.key("name");
  w.string(m.name);
  if (!m.versions.empty()) {
    w.key("versions");
    w.beginArray();
    for (const auto& v : m.versions) w.string(v);
    w.endArray();
  }
  w.key("platform");
  w.string(m.platform);
  w.key("inputs");
  tensors(m.inputs);
  w.key("outputs");
  tensors(m.outputs);
  if (!m.properties.empty()) {
    w.key("properties");
    w.beginObject();
    for (const auto& [k, v] : m.properties) {
      w.key(k);
      w.string(v);
    }
    w.endObject();
  }
  w.endObject();
  return out;
}

absl::StatusOr<ModelMetadata> decodeModelMetadata(std::string_view text) {
  KH_ASSIGN_OR_RETURN(json root, parseJson(text));
  if (!root.is_object()) return invalid("model metadata must be a JSON object");
  ModelMetadata m;
  KH_ASSIGN_OR_RETURN(m.name, optionalString(root, "name"));
  KH_ASSIGN_OR_RETURN(m.platform, optionalString(root, "platform"));
  if (auto it = root.find("versions"); it != root.end() && it->is_array()) {
    for (const auto& v : *it) {
      if (v.is_string()) m.versions.push_back(v.get<std::string>());
    }
  }
  auto tensors = [&](const char* field, std::vector<TensorMetadata>& out) -> absl::Status {
    auto it = root.find(field);
    if (it == root.end() || !it->is_array()) {
      return invalid("model metadata needs a '", field, "' list");
    }
    for (const auto& node : *it) {
      if (!node.is_object() || !node.contains("name") || !node["name"].is_string() ||
          !node.contains("datatype") || !node["datatype"].is_string() ||
          !node.contains("shape") || !node["shape"].is_array()) {
        return invalid("each entry of '", field, "' needs name, datatype and shape");
      }
      TensorMetadata t;
      t.name = node["name"].get<std::string>();
      auto type = parseDataType(node["datatype"].get_ref<const std::string&>());
      if (!type) return invalid("unknown datatype in metadata: ", common::jsonText(node["datatype"]));
      t.datatype = *type;
      for (const auto& d : node["shape"]) {
        if (!d.is_number_integer()) return invalid("metadata shape must hold integers");
        t.shape.push_back(d.get<int64_t>());
      }
      out.push_back(std::move(t));
    }
    return absl::OkStatus();
  };
  KH_RETURN_IF_ERROR(tensors("inputs", m.inputs));
  KH_RETURN_IF_ERROR(tensors("outputs", m.outputs));
  // encodeModelMetadata writes "properties" (the OIP gRPC field); read it back too.
  if (auto it = root.find("properties"); it != root.end() && it->is_object()) {
    for (const auto& [k, v] : it->items()) {
      if (v.is_string()) m.properties.emplace(k, v.get<std::string>());
    }
  }
  return m;
}

std::vector<bool> binaryOutputChoice(const InferenceRequest& request,
                                     const InferenceResponse& response) {
  bool all = boolParameter(request.parameters, kBinaryDataOutput).value_or(false);
  std::vector<bool> out(response.outputs.size(), all);
  for (size_t i = 0; i < response.outputs.size(); ++i) {
    for (const auto& ro : request.outputs) {
      if (ro.name == response.outputs[i].name) {
        if (auto b = boolParameter(ro.parameters, kBinaryData)) out[i] = *b;
      }
    }
  }
  return out;
}

}  // namespace kh::protocols
