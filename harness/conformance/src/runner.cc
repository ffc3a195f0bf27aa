// Runs conformance cases: builds each request from the case and the sample context, sends it over
// real HTTP or gRPC, and checks the expectations.

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "kh/common/files.h"
#include "kh/common/json.h"
#include "kh/common/net.h"
#include "kh/common/strings.h"
#include "kh/conformance/conformance.h"
#include "kh/http/client.h"
#include "kh/protocols/grpc_predict_v2.grpc.pb.h"
#include "kh/protocols/proto_convert.h"
#include "kh/protocols/v2_json.h"

namespace kh::conformance {
namespace {

using nlohmann::json;
using protocols::DataType;

// ---------------------------------------------------------------- sample context

struct Context {
  std::string model;
  protocols::ModelMetadata metadata;
  bool have_metadata = false;
  std::string metadata_error;
  json vars = json::object();  // ${name} -> value
};

json sampleValues(DataType type, int64_t count, int64_t features) {
  // Iris-like rows for 4-feature float inputs, so a classifier gives meaningful answers.
  static const double kRows[2][4] = {{6.8, 2.8, 4.8, 1.4}, {6.0, 3.4, 4.5, 1.6}};
  json out = json::array();
  for (int64_t i = 0; i < count; ++i) {
    switch (type) {
      case DataType::kBool: out.push_back(i % 2 == 0); break;
      case DataType::kUint8: case DataType::kUint16: case DataType::kUint32:
      case DataType::kUint64: out.push_back(static_cast<uint64_t>(i % 7 + 1)); break;
      case DataType::kInt8: case DataType::kInt16: case DataType::kInt32:
      case DataType::kInt64: out.push_back(static_cast<int64_t>(i % 7) - 3); break;
      // Valid base64 too, so the same value fits gRPC bytes_contents in the protobuf JSON mapping.
      case DataType::kBytes: out.push_back("YWJj"); break;
      default:
        if (features == 4) {
          out.push_back(kRows[(i / 4) % 2][i % 4]);
        } else {
          out.push_back(0.5 + static_cast<double>(i % 10) / 10.0);
        }
    }
  }
  return out;
}

json nest(const json& flat, const protocols::Shape& shape, size_t dim, size_t& index) {
  if (dim == shape.size()) return flat[index++];
  json out = json::array();
  for (int64_t i = 0; i < shape[dim]; ++i) out.push_back(nest(flat, shape, dim + 1, index));
  return out;
}

std::string contentsField(DataType type) {
  switch (type) {
    case DataType::kBool: return "bool_contents";
    case DataType::kInt8: case DataType::kInt16: case DataType::kInt32: return "int_contents";
    case DataType::kInt64: return "int64_contents";
    case DataType::kUint8: case DataType::kUint16: case DataType::kUint32: return "uint_contents";
    case DataType::kUint64: return "uint64_contents";
    case DataType::kFp64: return "fp64_contents";
    case DataType::kBytes: return "bytes_contents";
    default: return "fp32_contents";  // FP32; FP16/BF16 have no typed field
  }
}

// Encodes JSON scalars as the binary extension / raw contents layout of `type`.
absl::StatusOr<std::string> encodeBinary(DataType type, const json& flat) {
  std::string out;
  auto put = [&](auto v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); };
  for (const auto& v : flat) {
    if (type == DataType::kBytes) {
      std::string s = v.is_string() ? v.get<std::string>() : common::jsonText(v);
      put(static_cast<uint32_t>(s.size()));
      out += s;
      continue;
    }
    if (!v.is_number() && !v.is_boolean()) {
      return absl::InvalidArgumentError(common::strCat("cannot encode ", common::jsonText(v), " as binary"));
    }
    double d = v.is_boolean() ? (v.get<bool>() ? 1.0 : 0.0) : v.get<double>();
    switch (type) {
      case DataType::kBool: put(static_cast<uint8_t>(d != 0)); break;
      case DataType::kUint8: put(static_cast<uint8_t>(d)); break;
      case DataType::kUint16: put(static_cast<uint16_t>(d)); break;
      case DataType::kUint32: put(static_cast<uint32_t>(d)); break;
      case DataType::kUint64: put(v.is_number_unsigned() ? v.get<uint64_t>() : static_cast<uint64_t>(d)); break;
      case DataType::kInt8: put(static_cast<int8_t>(d)); break;
      case DataType::kInt16: put(static_cast<int16_t>(d)); break;
      case DataType::kInt32: put(static_cast<int32_t>(d)); break;
      case DataType::kInt64: put(v.is_number_integer() ? v.get<int64_t>() : static_cast<int64_t>(d)); break;
      case DataType::kFp16: put(protocols::floatToHalf(static_cast<float>(d))); break;
      case DataType::kBf16: put(protocols::floatToBf16(static_cast<float>(d))); break;
      case DataType::kFp32: put(static_cast<float>(d)); break;
      case DataType::kFp64: put(d); break;
      case DataType::kBytes: break;
    }
  }
  return out;
}

json flattenJson(const json& node) {
  json out = json::array();
  std::function<void(const json&)> walk = [&](const json& n) {
    if (n.is_array()) {
      for (const auto& c : n) walk(c);
    } else {
      out.push_back(n);
    }
  };
  walk(node);
  return out;
}

void buildVariables(Context& ctx, std::optional<json> sample) {
  json& v = ctx.vars;
  v["model"] = ctx.model;
  if (sample) {
    // A user-supplied request: its inputs are the sample.
    const json& first = (*sample)["inputs"][0];
    v["inputs"] = (*sample)["inputs"];
    v["input"] = first.value("name", "input-0");
    v["datatype"] = first.value("datatype", "FP32");
    v["shape"] = first["shape"];
    v["data"] = first["data"];
    v["flat"] = flattenJson(first["data"]);
  } else if (ctx.have_metadata && !ctx.metadata.inputs.empty()) {
    json inputs = json::array();
    for (size_t i = 0; i < ctx.metadata.inputs.size(); ++i) {
      const auto& in = ctx.metadata.inputs[i];
      protocols::Shape shape = in.shape;
      if (!shape.empty() && shape[0] < 0) shape[0] = 2;  // a batch of two
      for (auto& d : shape) {
        if (d < 0) d = 1;
      }
      int64_t count = *protocols::elementCount(shape);
      int64_t features = shape.size() == 2 ? shape[1] : 0;
      json flat = sampleValues(in.datatype, count, features);
      size_t index = 0;
      json nested = nest(flat, shape, 0, index);
      json entry = {{"name", in.name},
                    {"shape", shape},
                    {"datatype", std::string(protocols::dataTypeName(in.datatype))},
                    {"data", nested}};
      inputs.push_back(entry);
      if (i == 0) {
        v["input"] = in.name;
        v["datatype"] = entry["datatype"];
        v["shape"] = shape;
        v["data"] = nested;
        v["flat"] = flat;
      }
    }
    v["inputs"] = inputs;
  }
  if (ctx.have_metadata && !ctx.metadata.outputs.empty()) {
    v["output"] = ctx.metadata.outputs[0].name;
  }
  if (v.contains("shape")) {
    protocols::Shape shape = v["shape"].get<protocols::Shape>();
    v["batch"] = shape.empty() ? 1 : shape[0];
    v["count"] = static_cast<int64_t>(v["flat"].size());
    // One instance (the first row) for single-row requests.
    v["row"] = v["data"].is_array() && !v["data"].empty() ? v["data"][0] : v["data"];
    protocols::Shape row_shape = shape;
    if (!row_shape.empty()) row_shape[0] = 1;
    v["row_shape"] = row_shape;
    auto type = protocols::parseDataType(v["datatype"].get<std::string>()).value_or(DataType::kFp32);
    v["contents_field"] = contentsField(type);
    DataType other = type == DataType::kFp32 ? DataType::kInt32 : DataType::kFp32;
    v["other_datatype"] = std::string(protocols::dataTypeName(other));
    v["other_flat"] = sampleValues(other, v["count"].get<int64_t>(), 0);
    // Same element count, one row fewer or more: element-count mismatches.
    v["flat_short"] = v["flat"];
    v["flat_short"].erase(v["flat_short"].size() - 1);
    v["flat_long"] = v["flat"];
    v["flat_long"].push_back(v["flat"][0]);
  }
}

// Binds ${dt}-dependent variables for a datatype-matrix case.
void bindMatrix(json& vars, const std::string& dt) {
  auto type = protocols::parseDataType(dt);
  if (!type || !vars.contains("count")) return;
  int64_t features = vars["shape"].size() == 2 ? vars["shape"][1].get<int64_t>() : 0;
  vars["dt_flat"] = sampleValues(*type, vars["count"].get<int64_t>(), features);
  vars["dt_contents_field"] = contentsField(*type);
}

// ---------------------------------------------------------------- substitution

std::string varText(const json& v) { return v.is_string() ? v.get<std::string>() : common::jsonText(v); }

// The next ${name} in `s` at or after `from`: where it starts and where its '}' is.
struct VariableRef {
  size_t start, end;
  std::string name(const std::string& s) const { return s.substr(start + 2, end - start - 2); }
};
std::optional<VariableRef> nextVariable(const std::string& s, size_t from) {
  const size_t start = s.find("${", from);
  if (start == std::string::npos) return std::nullopt;
  const size_t end = s.find('}', start);
  if (end == std::string::npos) return std::nullopt;
  return VariableRef{start, end};
}

// The first ${name} in `text` that `vars` lacks, if any.
std::optional<std::string> firstUnknownIn(const std::string& text, const json& vars) {
  for (auto ref = nextVariable(text, 0); ref; ref = nextVariable(text, ref->end + 1)) {
    std::string name = ref->name(text);
    if (!vars.contains(name)) return name;
  }
  return std::nullopt;
}

// The first ${name} in `node` (its strings and object keys, as substitute() reads them) that
// `vars` lacks: a case that needs what the target did not describe (a sample input, an output
// name) is skipped with the reason rather than failed.
std::optional<std::string> firstUnknownVariable(const json& node, const json& vars) {
  if (node.is_string()) return firstUnknownIn(node.get_ref<const std::string&>(), vars);
  if (node.is_object()) {
    for (const auto& [key, child] : node.items()) {
      if (auto name = firstUnknownIn(key, vars)) return name;
      if (auto name = firstUnknownVariable(child, vars)) return name;
    }
  }
  if (node.is_array()) {
    for (const auto& child : node) {
      if (auto name = firstUnknownVariable(child, vars)) return name;
    }
  }
  return std::nullopt;
}

absl::StatusOr<json> substitute(const json& node, const json& vars) {
  if (node.is_string()) {
    const std::string& s = node.get_ref<const std::string&>();
    // A string that is exactly one variable takes the variable's JSON value.
    if (s.size() > 3 && s.starts_with("${") && s.ends_with("}") &&
        s.find("${", 2) == std::string::npos) {
      std::string name = s.substr(2, s.size() - 3);
      if (!vars.contains(name)) {
        return absl::FailedPreconditionError(common::strCat("variable ${", name, "} is not known"));
      }
      return vars[name];
    }
    std::string out;
    size_t pos = 0;
    for (auto ref = nextVariable(s, 0); ref; ref = nextVariable(s, pos)) {
      std::string name = ref->name(s);
      if (!vars.contains(name)) {
        return absl::FailedPreconditionError(common::strCat("variable ${", name, "} is not known"));
      }
      out += s.substr(pos, ref->start - pos);
      out += varText(vars[name]);
      pos = ref->end + 1;
    }
    out += s.substr(pos);
    return json(out);
  }
  if (node.is_object()) {
    json out = json::object();
    for (const auto& [k, v] : node.items()) {
      auto sub = substitute(v, vars);
      if (!sub.ok()) return sub.status();
      // Keys take variables too (e.g. {"${contents_field}": ...}), always as text.
      auto key = substitute(json(k), vars);
      if (!key.ok()) return key.status();
      out[varText(*key)] = std::move(*sub);
    }
    return out;
  }
  if (node.is_array()) {
    json out = json::array();
    for (const auto& v : node) {
      auto sub = substitute(v, vars);
      if (!sub.ok()) return sub.status();
      out.push_back(std::move(*sub));
    }
    return out;
  }
  return node;
}

// ---------------------------------------------------------------- matching

// Subset match: every key of `expected` must match; "$any", "$string", "$number", "$bool",
// "$array", "$object" and "$nonempty" match by kind. Numbers match numeric strings (proto JSON
// writes int64 as strings).
bool matches(const json& expected, const json& actual, std::string& path, std::string& why) {
  if (expected.is_string()) {
    const std::string& e = expected.get_ref<const std::string&>();
    if (e == "$any") return true;
    if (e == "$string" && actual.is_string()) return true;
    if (e == "$number" && actual.is_number()) return true;
    if (e == "$bool" && actual.is_boolean()) return true;
    if (e == "$array" && actual.is_array()) return true;
    if (e == "$object" && actual.is_object()) return true;
    if (e == "$nonempty" && ((actual.is_string() && !actual.get<std::string>().empty()) ||
                             (actual.is_array() && !actual.empty()))) {
      return true;
    }
    if (actual.is_string() && actual.get<std::string>() == e) return true;
    why = common::strCat(path.empty() ? "body" : path, ": expected ", common::jsonText(expected), ", got ",
                         common::jsonText(actual));
    return false;
  }
  if (expected.is_number()) {
    double a;
    if (actual.is_number()) {
      a = actual.get<double>();
    } else if (actual.is_string()) {
      char* end = nullptr;
      a = std::strtod(actual.get<std::string>().c_str(), &end);
      if (!end || *end) a = NAN;
    } else {
      a = NAN;
    }
    double e = expected.get<double>();
    if (std::fabs(a - e) <= 1e-6 * std::max(1.0, std::fabs(e))) return true;
    why = common::strCat(path.empty() ? "body" : path, ": expected ", common::jsonText(expected), ", got ",
                         common::jsonText(actual));
    return false;
  }
  if (expected.is_object()) {
    if (!actual.is_object()) {
      why = common::strCat(path.empty() ? "body" : path, ": expected an object, got ",
                           common::jsonText(actual).substr(0, 200));
      return false;
    }
    for (const auto& [k, v] : expected.items()) {
      std::string sub = path.empty() ? k : path + "." + k;
      auto it = actual.find(k);
      if (it == actual.end()) {
        why = common::strCat(sub, ": missing");
        return false;
      }
      if (!matches(v, *it, sub, why)) return false;
    }
    return true;
  }
  if (expected.is_array()) {
    if (!actual.is_array() || actual.size() != expected.size()) {
      why = common::strCat(path.empty() ? "body" : path, ": expected ", common::jsonText(expected), ", got ",
                           common::jsonText(actual).substr(0, 200));
      return false;
    }
    for (size_t i = 0; i < expected.size(); ++i) {
      std::string sub = common::strCat(path, "[", i, "]");
      if (!matches(expected[i], actual[i], sub, why)) return false;
    }
    return true;
  }
  if (expected == actual) return true;
  why = common::strCat(path.empty() ? "body" : path, ": expected ", common::jsonText(expected), ", got ",
                       common::jsonText(actual));
  return false;
}

bool statusMatches(const json& expected, int got) {
  if (expected.is_array()) {
    return std::any_of(expected.begin(), expected.end(),
                       [&](const json& e) { return e.is_number() && e.get<int>() == got; });
  }
  return expected.is_number() && expected.get<int>() == got;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::string snippet(const std::string& body) {
  std::string s = body.substr(0, 300);
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  return body.size() > 300 ? s + "..." : s;
}

// ---------------------------------------------------------------- HTTP cases

struct HttpOutcome {
  bool ok = false;
  std::string detail;
};

absl::StatusOr<http::Request> buildHttpRequest(const json& req, const json& vars,
                                               const std::string& host_header) {
  http::Request out;
  std::string method = req.value("method", "GET");
  out.method_string(method);
  out.target(req.value("path", "/"));
  out.version(11);
  out.keep_alive(true);
  out.set(boost::beast::http::field::host, host_header);
  std::string content_type = "application/json";
  if (req.contains("body_size")) {
    out.body() = std::string(req["body_size"].get<size_t>(), 'x');
  } else if (req.contains("body")) {
    out.body() = req["body"].is_string() ? req["body"].get<std::string>() : common::jsonText(req["body"]);
  } else if (req.contains("json")) {
    json body = req["json"];
    if (req.value("binary", false)) {
      // Binary extension: inputs with binary_data_size "auto" move their data to the tail.
      std::string blobs;
      bool first_auto = true;
      for (auto& input : body["inputs"]) {
        auto& params = input["parameters"];
        if (!params.is_object() || !params.contains("binary_data_size") ||
            params["binary_data_size"] != "auto") {
          continue;
        }
        auto type = protocols::parseDataType(input.value("datatype", "")).value_or(DataType::kFp32);
        auto blob = encodeBinary(type, flattenJson(input["data"]));
        if (!blob.ok()) return blob.status();
        int64_t size = static_cast<int64_t>(blob->size());
        if (first_auto) size += req.value("binary_size_delta", 0);
        first_auto = false;
        params["binary_data_size"] = size;
        input.erase("data");
        blobs += *blob;
      }
      std::string header = common::jsonText(body);
      blobs += std::string(req.value("extra_binary_bytes", 0), '\0');
      if (!req.value("omit_header_length", false)) {
        out.set("Inference-Header-Content-Length",
                std::to_string(static_cast<int64_t>(header.size()) +
                               req.value("header_length_delta", 0)));
      }
      out.body() = header + blobs;
      content_type = "application/octet-stream";
    } else {
      out.body() = common::jsonText(body);
    }
  }
  if (req.contains("content_type")) content_type = req["content_type"].get<std::string>();
  if (!out.body().empty() || method == "POST") {
    out.set(boost::beast::http::field::content_type, content_type);
  }
  if (req.contains("headers")) {
    for (const auto& [k, v] : req["headers"].items()) out.set(k, varText(v));
  }
  if (req.contains("header_padding")) {
    out.set("X-Padding", std::string(req["header_padding"].get<size_t>(), 'p'));
  }
  out.prepare_payload();
  return out;
}

HttpOutcome checkHttp(const json& expect, const http::Response& res, const json& request_json,
                      const Context& ctx) {
  int status = static_cast<int>(res.result_int());
  const std::string& body = res.body();
  json expected_status = expect.contains("status") ? expect["status"] : json();
  if (expect.contains("status_if_model_datatype") && ctx.vars.contains("matrix_dt") &&
      ctx.vars["matrix_dt"] == ctx.vars.value("datatype", "") &&
      !(expect.value("json_halves_rejected", false) &&
        (ctx.vars["matrix_dt"] == "FP16" || ctx.vars["matrix_dt"] == "BF16"))) {
    expected_status = expect["status_if_model_datatype"];
  }
  if (!expected_status.is_null() && !statusMatches(expected_status, status)) {
    return {false, common::strCat("expected status ", common::jsonText(expected_status), ", got ", status,
                                  ": ", snippet(body))};
  }
  bool accepted = status >= 200 && status < 300;
  std::optional<size_t> json_length;
  if (auto h = res.find("Inference-Header-Content-Length"); h != res.end()) {
    json_length = common::parseInt<size_t>(std::string(h->value()));
  }
  json parsed;
  bool parsed_ok = false;
  try {
    std::string_view text = body;
    if (json_length && *json_length <= body.size()) text = text.substr(0, *json_length);
    parsed = json::parse(text.begin(), text.end());
    parsed_ok = true;
  } catch (const json::exception&) {
  }
  if (expect.value("error", false) || expect.contains("error_contains")) {
    if (!parsed_ok || !parsed.is_object() || !parsed.contains("error") ||
        !parsed["error"].is_string() || parsed["error"].get<std::string>().empty()) {
      return {false, common::strCat("expected a JSON body {\"error\": \"<message>\"}, got: ",
                                    snippet(body))};
    }
    if (expect.contains("error_contains")) {
      std::string want = lower(expect["error_contains"].get<std::string>());
      if (lower(parsed["error"].get<std::string>()).find(want) == std::string::npos) {
        return {false, common::strCat("error message should mention '", want, "', got: ",
                                      parsed["error"].get<std::string>())};
      }
    }
  }
  if (expect.contains("headers")) {
    for (const auto& [k, v] : expect["headers"].items()) {
      auto h = res.find(k);
      if (h == res.end()) return {false, common::strCat("missing response header ", k)};
      std::string want = lower(varText(v));
      if (want != "$present" && lower(std::string(h->value())).find(want) == std::string::npos) {
        return {false, common::strCat("header ", k, ": expected '", want, "', got '",
                                      std::string(h->value()), "'")};
      }
    }
  }
  if (expect.contains("json")) {
    if (!parsed_ok) return {false, common::strCat("body is not JSON: ", snippet(body))};
    std::string path, why;
    if (!matches(expect["json"], parsed, path, why)) return {false, why};
  }
  if (expect.contains("json_exact")) {
    if (!parsed_ok) return {false, common::strCat("body is not JSON: ", snippet(body))};
    if (parsed != expect["json_exact"]) {
      return {false, common::strCat("expected exactly ", common::jsonText(expect["json_exact"]), ", got ", snippet(body))};
    }
  }
  if (expect.contains("json_one_of")) {
    if (!parsed_ok) return {false, common::strCat("body is not JSON: ", snippet(body))};
    const json& options = expect["json_one_of"];
    if (!std::any_of(options.begin(), options.end(), [&](const json& o) { return o == parsed; })) {
      return {false, common::strCat("expected one of ", common::jsonText(options), ", got ", snippet(body))};
    }
  }
  if (expect.value("v2_response", false) && accepted) {
    auto decoded = protocols::decodeV2Response(body, json_length);
    if (!decoded.ok()) {
      return {false, common::strCat("not a valid V2 inference response: ",
                                    common::toStd(decoded.status().message()))};
    }
    if (decoded->model_name != ctx.model) {
      return {false, common::strCat("model_name is '", decoded->model_name, "', expected '",
                                    ctx.model, "'")};
    }
    if (decoded->outputs.empty()) return {false, "the response has no outputs"};
    if (request_json.is_object() && request_json.contains("id") &&
        decoded->id != varText(request_json["id"])) {
      return {false, common::strCat("id not echoed: sent ", common::jsonText(request_json["id"]), ", got '",
                                    decoded->id, "'")};
    }
    if (parsed_ok && !parsed.contains("id")) return {false, "the response has no 'id'"};
    if (expect.contains("outputs")) {
      std::vector<std::string> names;
      for (const auto& o : decoded->outputs) names.push_back(o.name);
      if (json(names) != expect["outputs"]) {
        return {false, common::strCat("outputs ", common::jsonText(json(names)), ", expected ",
                                      common::jsonText(expect["outputs"]))};
      }
    }
    if (expect.contains("binary_outputs")) {
      if (!json_length) return {false, "binary outputs requested but no Inference-Header-Content-Length"};
      for (const auto& name : expect["binary_outputs"]) {
        bool found = false;
        for (const auto& o : parsed["outputs"]) {
          if (o.value("name", "") == name.get<std::string>()) {
            found = o.contains("parameters") && o["parameters"].contains("binary_data_size") &&
                    !o.contains("data");
          }
        }
        if (!found) return {false, common::strCat("output ", common::jsonText(name), " is not binary")};
      }
    }
    if (expect.value("json_outputs", false) && json_length) {
      return {false, "outputs came back binary though none was asked for"};
    }
    if (expect.contains("batch")) {
      const auto& shape = decoded->outputs[0].shape;
      if (shape.empty() || shape[0] != expect["batch"].get<int64_t>()) {
        return {false, common::strCat("first output shape ", protocols::shapeToString(shape),
                                      " does not start with the batch size ",
                                      common::jsonText(expect["batch"]))};
      }
    }
  }
  if (expect.value("v1_predictions", false) && accepted) {
    if (!parsed_ok || !parsed.contains("predictions") || !parsed["predictions"].is_array()) {
      return {false, common::strCat("expected {\"predictions\": [...]}, got: ", snippet(body))};
    }
    if (expect.contains("batch") && parsed["predictions"].size() != expect["batch"].get<size_t>()) {
      return {false, common::strCat("expected ", common::jsonText(expect["batch"]), " predictions, got ",
                                    parsed["predictions"].size())};
    }
  }
  return {true, ""};
}

// ---------------------------------------------------------------- gRPC cases

const std::map<std::string, grpc::StatusCode> kCodes = {
    {"OK", grpc::OK},
    {"CANCELLED", grpc::CANCELLED},
    {"UNKNOWN", grpc::UNKNOWN},
    {"INVALID_ARGUMENT", grpc::INVALID_ARGUMENT},
    {"DEADLINE_EXCEEDED", grpc::DEADLINE_EXCEEDED},
    {"NOT_FOUND", grpc::NOT_FOUND},
    {"FAILED_PRECONDITION", grpc::FAILED_PRECONDITION},
    {"OUT_OF_RANGE", grpc::OUT_OF_RANGE},
    {"UNIMPLEMENTED", grpc::UNIMPLEMENTED},
    {"INTERNAL", grpc::INTERNAL},
    {"UNAVAILABLE", grpc::UNAVAILABLE},
    {"RESOURCE_EXHAUSTED", grpc::RESOURCE_EXHAUSTED},
};

std::string codeName(grpc::StatusCode code) {
  for (const auto& [name, c] : kCodes) {
    if (c == code) return name;
  }
  return std::to_string(static_cast<int>(code));
}

bool codeMatches(const json& expected, grpc::StatusCode got) {
  auto one = [&](const json& e) { return e.is_string() && kCodes.count(e.get<std::string>()) &&
                                         kCodes.at(e.get<std::string>()) == got; };
  if (expected.is_array()) return std::any_of(expected.begin(), expected.end(), one);
  return one(expected);
}

absl::Status fromJson(const json& j, google::protobuf::Message* msg) {
  auto st = google::protobuf::util::JsonStringToMessage(common::jsonText(j), msg);
  if (!st.ok()) {
    return absl::InvalidArgumentError(
        common::strCat("case request does not fit ", msg->GetTypeName(), ": ",
                       std::string(st.message().data(), st.message().size())));
  }
  return absl::OkStatus();
}

json toJsonMessage(const google::protobuf::Message& msg) {
  std::string text;
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(msg, &text, opts);
  return json::parse(text, nullptr, false);
}

// Moves typed contents into raw_input_contents (the case asked for raw transport).
absl::Status makeRaw(json& request, const json& spec) {
  json raws = json::array();
  for (auto& input : request["inputs"]) {
    auto type = protocols::parseDataType(input.value("datatype", "")).value_or(DataType::kFp32);
    json values = json::array();
    if (input.contains("contents")) {
      for (const auto& [field, list] : input["contents"].items()) {
        for (const auto& v : list) values.push_back(v);
      }
    }
    auto blob = encodeBinary(type, values);
    if (!blob.ok()) return blob.status();
    std::string b64;
    static const char* kAlphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const auto& s = *blob;
    for (size_t i = 0; i < s.size(); i += 3) {
      uint32_t n = static_cast<uint8_t>(s[i]) << 16;
      if (i + 1 < s.size()) n |= static_cast<uint8_t>(s[i + 1]) << 8;
      if (i + 2 < s.size()) n |= static_cast<uint8_t>(s[i + 2]);
      b64 += kAlphabet[(n >> 18) & 63];
      b64 += kAlphabet[(n >> 12) & 63];
      b64 += i + 1 < s.size() ? kAlphabet[(n >> 6) & 63] : '=';
      b64 += i + 2 < s.size() ? kAlphabet[n & 63] : '=';
    }
    raws.push_back(b64);
    if (!spec.value("keep_contents", false)) input.erase("contents");
  }
  for (int i = 0; i < spec.value("extra_raw", 0); ++i) raws.push_back("");
  request["raw_input_contents"] = raws;
  return absl::OkStatus();
}

struct GrpcTarget {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub;
};

HttpOutcome runGrpc(GrpcTarget& target, const json& grpc_spec, const json& expect,
                    const Context& ctx, std::chrono::milliseconds timeout) {
  std::string rpc = grpc_spec.value("rpc", "");
  json request = grpc_spec.value("request", json::object());
  if (grpc_spec.value("raw_inputs", false)) {
    if (auto st = makeRaw(request, grpc_spec); !st.ok()) {
      return {false, std::string(common::toStd(st.message()))};
    }
  }
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  grpc::Status status;
  json response;
  std::optional<inference::ModelInferResponse> infer_response;
  auto call = [&](auto req, auto resp, auto method) -> absl::Status {
    if (auto st = fromJson(request, &req); !st.ok()) return st;
    status = ((*target.stub).*method)(&context, req, &resp);
    response = toJsonMessage(resp);
    if constexpr (std::is_same_v<decltype(resp), inference::ModelInferResponse>) {
      infer_response = resp;
    }
    return absl::OkStatus();
  };
  using S = inference::GRPCInferenceService::Stub;
  absl::Status built;
  if (rpc == "ServerLive") {
    built = call(inference::ServerLiveRequest(), inference::ServerLiveResponse(), &S::ServerLive);
  } else if (rpc == "ServerReady") {
    built = call(inference::ServerReadyRequest(), inference::ServerReadyResponse(), &S::ServerReady);
  } else if (rpc == "ModelReady") {
    built = call(inference::ModelReadyRequest(), inference::ModelReadyResponse(), &S::ModelReady);
  } else if (rpc == "ServerMetadata") {
    built = call(inference::ServerMetadataRequest(), inference::ServerMetadataResponse(),
                 &S::ServerMetadata);
  } else if (rpc == "ModelMetadata") {
    built = call(inference::ModelMetadataRequest(), inference::ModelMetadataResponse(),
                 &S::ModelMetadata);
  } else if (rpc == "ModelInfer") {
    built = call(inference::ModelInferRequest(), inference::ModelInferResponse(), &S::ModelInfer);
  } else {
    return {false, common::strCat("unknown rpc '", rpc, "'")};
  }
  if (!built.ok()) return {false, std::string(common::toStd(built.message()))};

  json expected_code = expect.value("code", json("OK"));
  if (expect.contains("code_if_model_datatype") && ctx.vars.contains("matrix_dt") &&
      ctx.vars["matrix_dt"] == ctx.vars.value("datatype", "")) {
    expected_code = expect["code_if_model_datatype"];
  }
  if (!codeMatches(expected_code, status.error_code())) {
    return {false, common::strCat("expected ", common::jsonText(expected_code), ", got ",
                                  codeName(status.error_code()), ": ", status.error_message())};
  }
  if (expect.contains("message_contains")) {
    std::string want = lower(expect["message_contains"].get<std::string>());
    if (lower(status.error_message()).find(want) == std::string::npos) {
      return {false, common::strCat("status message should mention '", want, "', got: ",
                                    status.error_message())};
    }
  }
  if (!status.ok()) {
    if (status.error_message().empty() && expect.value("message", true)) {
      return {false, "the error status has an empty message"};
    }
    return {true, ""};
  }
  if (expect.contains("json")) {
    std::string path, why;
    if (!matches(expect["json"], response, path, why)) return {false, why};
  }
  if (expect.value("v2_response", false)) {
    if (!infer_response) return {false, "v2_response applies to ModelInfer"};
    auto decoded = protocols::responseFromProto(*infer_response);
    if (!decoded.ok()) {
      return {false, common::strCat("not a valid ModelInferResponse: ",
                                    common::toStd(decoded.status().message()))};
    }
    if (decoded->model_name != ctx.model) {
      return {false, common::strCat("model_name is '", decoded->model_name, "'")};
    }
    if (decoded->outputs.empty()) return {false, "the response has no outputs"};
    if (request.contains("id") && decoded->id != varText(request["id"])) {
      return {false, common::strCat("id not echoed: sent ", common::jsonText(request["id"]))};
    }
    if (expect.contains("raw_outputs")) {
      bool raw = infer_response->raw_output_contents_size() > 0;
      if (raw != expect["raw_outputs"].get<bool>()) {
        return {false, raw ? "outputs came back in raw_output_contents"
                           : "outputs did not come back in raw_output_contents"};
      }
    }
    if (expect.contains("batch")) {
      const auto& shape = decoded->outputs[0].shape;
      if (shape.empty() || shape[0] != expect["batch"].get<int64_t>()) {
        return {false, "first output does not carry the batch size"};
      }
    }
  }
  return {true, ""};
}

// ---------------------------------------------------------------- metadata discovery

// A GET with the Host header the target wants (an ingress routes by it).
absl::StatusOr<http::Response> getWithHost(http::Client& client, const std::string& path,
                                           const std::string& host_header) {
  http::Request req;
  req.method(boost::beast::http::verb::get);
  req.target(path);
  req.version(11);
  req.keep_alive(true);
  req.set(boost::beast::http::field::host, host_header);
  return client.send(std::move(req));
}

void discoverMetadata(Context& ctx, http::Client* client, GrpcTarget* grpc_target,
                      std::chrono::milliseconds timeout, const std::string& host_header) {
  std::string errors;
  if (client) {
    auto res = getWithHost(*client, common::strCat("/v2/models/", ctx.model), host_header);
    if (res.ok() && res->result_int() == 200) {
      auto meta = protocols::decodeModelMetadata(res->body());
      if (meta.ok()) {
        ctx.metadata = std::move(*meta);
        ctx.have_metadata = true;
        return;
      }
      errors += common::strCat("REST metadata: ", common::toStd(meta.status().message()), "; ");
    } else {
      errors += common::strCat("REST metadata: ",
                               res.ok() ? common::strCat("status ", res->result_int(), " ",
                                                         snippet(res->body()))
                                        : std::string(common::toStd(res.status().message())),
                               "; ");
    }
  }
  if (grpc_target) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + timeout);
    inference::ModelMetadataRequest req;
    req.set_name(ctx.model);
    inference::ModelMetadataResponse resp;
    auto st = grpc_target->stub->ModelMetadata(&context, req, &resp);
    if (st.ok()) {
      auto meta = protocols::metadataFromProto(resp);
      if (meta.ok()) {
        ctx.metadata = std::move(*meta);
        ctx.have_metadata = true;
        return;
      }
    }
    errors += common::strCat("gRPC metadata: ", st.error_message());
  }
  ctx.metadata_error = errors;
}

bool selectedGraph(const std::vector<std::string>& graphs, const std::string& graph) {
  return std::any_of(graphs.begin(), graphs.end(), [&](const std::string& g) { return g == "all" || g == graph; });
}

std::string graphHostHeader(const RunOptions& options, const std::string& graph) {
  if (options.graph_host.empty()) return common::strCat(options.http_host, ":", options.http_port);
  std::string host = options.graph_host;
  // Past each replacement, so that a name containing "{graph}" cannot make this loop forever.
  for (size_t at = 0; (at = host.find("{graph}", at)) != std::string::npos; at += graph.size()) {
    host.replace(at, 7, graph);
  }
  return host;
}

bool wants(const std::string& protocols, const std::string& p) {
  if (protocols == "all") return true;
  std::stringstream ss(protocols);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item == p || (p == "grpc" && item == "v2-grpc")) return true;
  }
  return false;
}

// A demo model's sample, for targets whose metadata lists no inputs: <dir>/<name>.json applies to
// a model called <name> or ending in -<name> (iris: "iris", "sklearn-iris", "xgboost-iris").
struct DemoSample {
  json request;
  std::string path;
};
std::optional<DemoSample> demoSample(const std::string& dir, const std::string& model) {
  if (dir.empty() || model.empty()) return std::nullopt;
  // A directory that cannot be listed offers no samples. Of the files that apply, the closest
  // name wins (exact, then the longest suffix), so the choice never depends on listing order.
  const auto files = common::filesIn(dir, {".json"}).value_or(std::vector<std::filesystem::path>{});
  // The exact name is the longest stem that applies, so the stem's length alone ranks them.
  std::optional<DemoSample> best;
  std::size_t best_stem_size = 0;
  for (const auto& path : files) {
    const std::string stem = path.stem().string();
    if (!(model == stem || (model.size() > stem.size() + 1 && model.ends_with("-" + stem)))) continue;
    if (best && stem.size() <= best_stem_size) continue;
    std::ifstream in(path);
    json request = json::parse(in, nullptr, false);
    if (request.is_discarded() || !request.contains("inputs") || !request["inputs"].is_array() ||
        request["inputs"].empty()) {
      continue;
    }
    best = DemoSample{std::move(request), path.string()};
    best_stem_size = stem.size();
  }
  return best;
}

}  // namespace

absl::StatusOr<Summary> runCases(const std::vector<Case>& cases, const RunOptions& options,
                                 const std::function<void(const CaseResult&)>& on_result) {
  const std::string host_header = options.authority.empty()
                                      ? common::strCat(options.http_host, ":", options.http_port)
                                      : options.authority;
  std::optional<http::Client> client;
  bool http_reachable = false;
  if (!options.http_host.empty()) {
    client.emplace(options.http_host, options.http_port, options.timeout);
    auto probe = getWithHost(*client, "/v2/health/live", host_header);
    http_reachable = probe.ok();
  }
  std::optional<GrpcTarget> grpc_target;
  bool grpc_reachable = false;
  if (options.grpc_target) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 * 1024 * 1024);
    if (!options.authority.empty()) args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, options.authority);
    GrpcTarget t;
    t.channel = grpc::CreateCustomChannel(*options.grpc_target, grpc::InsecureChannelCredentials(),
                                          args);
    grpc_reachable = t.channel->WaitForConnected(std::chrono::system_clock::now() + options.timeout);
    t.stub = inference::GRPCInferenceService::NewStub(t.channel);
    grpc_target = std::move(t);
  }
  if (!http_reachable && !grpc_reachable) {
    return absl::UnavailableError(common::strCat(
        "target unreachable: ",
        options.http_host.empty() ? std::string("no HTTP target")
                                  : common::strCat("http://", options.http_host, ":",
                                                   options.http_port, " does not answer"),
        options.grpc_target ? common::strCat(", gRPC ", *options.grpc_target, " does not answer")
                            : std::string()));
  }

  Context ctx;
  ctx.model = options.model;
  // A run of graph cases only has no model to describe.
  if (!options.model.empty()) {
    discoverMetadata(ctx, http_reachable ? &*client : nullptr, grpc_reachable ? &*grpc_target : nullptr,
                     options.timeout, host_header);
  } else {
    ctx.metadata_error = "no --model";
  }
  std::optional<json> sample;
  if (options.sample_file) {
    std::ifstream in(*options.sample_file);
    if (!in) return absl::NotFoundError(common::strCat("cannot read --sample ", *options.sample_file));
    sample = json::parse(in, nullptr, false);
    if (sample->is_discarded() || !sample->contains("inputs") || !(*sample)["inputs"].is_array() ||
        (*sample)["inputs"].empty()) {
      return absl::InvalidArgumentError(common::strCat(
          "--sample ", *options.sample_file, " must be a V2 inference request with inputs"));
    }
  }
  // A model whose metadata lists no inputs (KServe's own servers answer "inputs": []): a demo
  // sample when the model is a well-known one, else the cases that need a sample are skipped.
  Summary summary;
  const bool metadata_without_inputs = ctx.have_metadata && ctx.metadata.inputs.empty() && !sample;
  if (metadata_without_inputs) {
    auto demo = demoSample(options.samples_dir, options.model);
    if (demo) {
      sample = std::move(demo->request);
      summary.notice = common::strCat("the model's metadata lists no inputs: using the demo sample ", demo->path,
                                      "; pass --sample FILE (a V2 inference request) to use your own");
    } else {
      summary.notice = common::strCat(
          "the model's metadata lists no inputs: the cases that need a sample input are skipped; pass --sample FILE "
          "(a V2 inference request with the model's inputs) to run them");
    }
  }
  if (!summary.notice.empty() && options.on_notice) options.on_notice(summary.notice);
  buildVariables(ctx, sample);
  const bool have_sample_inputs = ctx.vars.contains("inputs");

  for (const Case& c : cases) {
    CaseResult result;
    result.test = &c;
    auto started = std::chrono::steady_clock::now();
    if (!options.filter.empty() && c.id.find(options.filter) == std::string::npos) {
      continue;
    }
    // Graph cases belong to the graphs asked for; a run of graphs only leaves the model cases out.
    if (c.protocol == "graph" && !selectedGraph(options.graphs, c.graph)) continue;
    if (c.protocol != "graph" && options.model.empty() && !options.graphs.empty()) continue;
    Context local = ctx;
    if (c.spec.contains("matrix_datatype")) {
      local.vars["matrix_dt"] = c.spec["matrix_datatype"];
      bindMatrix(local.vars, c.spec["matrix_datatype"].get<std::string>());
    }
    if (!wants(options.protocols, c.protocol)) {
      result.outcome = Outcome::kSkip;
      result.detail = "protocol not selected";
    } else if (c.protocol == "grpc" && !grpc_target) {
      result.outcome = Outcome::kSkip;
      result.detail = "no --grpc target";
    } else if (c.protocol != "graph" && options.model.empty()) {
      result.outcome = Outcome::kSkip;
      result.detail = "no --model";
    } else if (auto missing = firstUnknownVariable(c.spec, local.vars);
               missing && ctx.have_metadata && (!have_sample_inputs || *missing == "output")) {
      // What the model did not describe: no inputs (and no sample), or no outputs.
      result.outcome = Outcome::kSkip;
      result.detail = *missing == "output"
                          ? "needs an output name: the model's metadata lists no outputs"
                          : common::strCat("needs a sample input (${", *missing,
                                           "}): the model's metadata lists no inputs; pass --sample FILE");
    } else {
      auto spec = substitute(c.spec, local.vars);
      if (!spec.ok()) {
        result.outcome = Outcome::kFail;
        result.detail = common::strCat(
            common::toStd(spec.status().message()),
            local.have_metadata || sample ? "" : common::strCat(" (no model metadata: ", ctx.metadata_error, "; pass --sample)"));
      } else if (c.protocol == "grpc") {
        auto o = runGrpc(*grpc_target, (*spec)["grpc"], (*spec)["expect"], local, options.timeout);
        result.outcome = o.ok ? Outcome::kPass : Outcome::kFail;
        result.detail = o.detail;
      } else if (!client) {
        result.outcome = Outcome::kSkip;
        result.detail = "no HTTP target";
      } else {
        absl::StatusOr<http::Response> res;
        json request_json;
        if (spec->contains("raw_http")) {
          res = client->sendRaw((*spec)["raw_http"].get<std::string>(),
                                spec->value("half_close", false));
        } else {
          const json& req = (*spec)["request"];
          if (req.contains("json")) request_json = req["json"];
          absl::StatusOr<http::Request> built;
          try {
            built = buildHttpRequest(req, local.vars,
                                     c.protocol == "graph" ? graphHostHeader(options, c.graph) : host_header);
          } catch (const std::exception& e) {
            // Beast refuses some header values (e.g. over 64 KiB): a broken case, not a crash.
            built = absl::InvalidArgumentError(common::strCat("cannot build the request: ", e.what()));
          }
          res = built.ok() ? client->send(std::move(*built))
                           : absl::StatusOr<http::Response>(built.status());
        }
        if (!res.ok()) {
          result.outcome = Outcome::kFail;
          result.detail = common::strCat("no response: ", common::toStd(res.status().message()));
        } else {
          auto o = checkHttp((*spec)["expect"], *res, request_json, local);
          result.outcome = o.ok ? Outcome::kPass : Outcome::kFail;
          result.detail = o.detail;
        }
      }
    }
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (result.outcome == Outcome::kPass) ++summary.passed;
    if (result.outcome == Outcome::kSkip) ++summary.skipped;
    if (result.outcome == Outcome::kFail) {
      ++summary.failed;
      if (c.level == "MUST") ++summary.must_failed;
    }
    summary.results.push_back(result);
    if (on_result) on_result(summary.results.back());
  }
  return summary;
}

}  // namespace kh::conformance
