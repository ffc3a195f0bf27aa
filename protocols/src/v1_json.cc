#include "kh/protocols/v1_json.h"

#include "kh/common/json.h"
#include "kh/common/strings.h"
#include "kh/common/status_macros.h"
#include "kh/protocols/json_writer.h"
#include "kh/protocols/v2_json.h"
#include "nlohmann/json.hpp"

namespace kh::protocols {
namespace {

using nlohmann::json;

// The shape is read down the first element at each depth; checkShape then makes every sibling
// agree. (Growing the shape while walking let [5, [1]] pass as a [2,1] tensor.)
absl::StatusOr<Shape> firstPathShape(const json& node) {
  Shape shape;
  for (const json* n = &node; n->is_array(); n = &n->front()) {
    if (shape.size() > 32) return absl::InvalidArgumentError("instances are nested too deeply");
    shape.push_back(static_cast<int64_t>(n->size()));
    if (n->empty()) break;
  }
  return shape;
}

absl::Status checkShape(const json& node, size_t depth, const Shape& shape) {
  if (!node.is_array()) {
    if (depth != shape.size()) {
      return absl::InvalidArgumentError(
          "instances are ragged: every instance must have the same nesting and lengths");
    }
    return absl::OkStatus();
  }
  if (depth >= shape.size() || shape[depth] != static_cast<int64_t>(node.size())) {
    return absl::InvalidArgumentError(common::strCat(
        "instances are ragged: a list of length ", node.size(), " where ",
        depth < shape.size() ? common::strCat(shape[depth]) : std::string("a scalar"),
        " was expected"));
  }
  for (const auto& child : node) KH_RETURN_IF_ERROR(checkShape(child, depth + 1, shape));
  return absl::OkStatus();
}

void writeNested(JsonWriter& w, const Tensor& t, size_t dim, size_t& index) {
  auto scalar = [&](size_t i) {
    switch (t.datatype) {
      case DataType::kBool: w.boolean(t.at<uint8_t>(i) != 0); break;
      case DataType::kUint8: w.number(uint64_t{t.at<uint8_t>(i)}); break;
      case DataType::kUint16: w.number(uint64_t{t.at<uint16_t>(i)}); break;
      case DataType::kUint32: w.number(uint64_t{t.at<uint32_t>(i)}); break;
      case DataType::kUint64: w.number(t.at<uint64_t>(i)); break;
      case DataType::kInt8: w.number(int64_t{t.at<int8_t>(i)}); break;
      case DataType::kInt16: w.number(int64_t{t.at<int16_t>(i)}); break;
      case DataType::kInt32: w.number(int64_t{t.at<int32_t>(i)}); break;
      case DataType::kInt64: w.number(t.at<int64_t>(i)); break;
      case DataType::kFp16: w.number(halfToFloat(t.at<uint16_t>(i))); break;
      case DataType::kBf16: w.number(bf16ToFloat(t.at<uint16_t>(i))); break;
      case DataType::kFp32: w.number(t.at<float>(i)); break;
      case DataType::kFp64: w.number(t.at<double>(i)); break;
      case DataType::kBytes: w.string(t.bytes[i]); break;
    }
  };
  if (dim == t.shape.size()) {
    scalar(index++);
    return;
  }
  w.beginArray();
  for (int64_t i = 0; i < t.shape[dim]; ++i) writeNested(w, t, dim + 1, index);
  w.endArray();
}

}  // namespace

absl::StatusOr<Tensor> decodeV1Request(std::string_view body, const TensorMetadata& input) {
  auto parsed = common::parseJson(body);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(common::strCat("Unrecognized request format: ", parsed.status().message()));
  }
  json root = std::move(*parsed);
  if (!root.is_object()) {
    return absl::InvalidArgumentError("the request body must be a JSON object");
  }
  // KServe uses "inputs" when present, else "instances".
  auto it = root.find("inputs");
  const char* field = "inputs";
  if (it == root.end()) {
    it = root.find("instances");
    field = "instances";
  }
  if (it == root.end()) {
    return absl::InvalidArgumentError(R"(Expected "instances" or "inputs" in the request)");
  }
  if (!it->is_array()) {
    return absl::InvalidArgumentError(common::strCat("Expected \"", field, "\" to be a list"));
  }
  if (it->empty()) {
    return absl::InvalidArgumentError(common::strCat("\"", field, "\" is empty"));
  }
  KH_ASSIGN_OR_RETURN(Shape shape, firstPathShape(*it));
  KH_RETURN_IF_ERROR(checkShape(*it, 0, shape));
  // Re-encode as a flat V2 input and reuse the V2 element conversion and checks.
  json v2 = {{"inputs",
              json::array({{{"name", input.name},
                            {"shape", shape},
                            {"datatype", std::string(dataTypeName(input.datatype))},
                            {"data", std::move(*it)}}})}};
  KH_ASSIGN_OR_RETURN(InferenceRequest req, decodeV2Request(common::jsonText(v2), std::nullopt));
  return std::move(req.inputs.front());
}

std::string encodeV1Predictions(const Tensor& output) {
  std::string out;
  out.reserve(32 + output.raw.size() * 3);
  JsonWriter w(out);
  w.beginObject();
  w.key("predictions");
  size_t index = 0;
  if (output.shape.empty()) {
    w.beginArray();
    writeNested(w, output, 0, index);
    w.endArray();
  } else {
    writeNested(w, output, 0, index);
  }
  w.endObject();
  return out;
}

}  // namespace kh::protocols
