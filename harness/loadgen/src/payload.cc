#include "kh/loadgen/payload.h"

#include <cmath>
#include <fstream>
#include <random>
#include <sstream>

#include "google/protobuf/text_format.h"
#include "grpcpp/grpcpp.h"
#include "kh/common/json.h"
#include "kh/common/strings.h"
#include "kh/http/client.h"
#include "kh/protocols/grpc_predict_v2.grpc.pb.h"
#include "kh/protocols/proto_convert.h"
#include "kh/protocols/v2_json.h"
#include "nlohmann/json.hpp"

namespace kh::loadgen {
namespace {

using nlohmann::json;
using protocols::DataType;
using protocols::Tensor;

absl::StatusOr<std::string> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(common::strCat("cannot read ", path));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The first output's values as doubles, whatever its datatype.
std::vector<double> outputValues(const Tensor& t) {
  std::vector<double> out;
  if (t.datatype == DataType::kBytes) return out;
  auto floats = protocols::toFloatVector(t);
  if (floats.ok()) {
    for (float f : *floats) out.push_back(f);
  }
  if (t.datatype == DataType::kFp64) {
    out.clear();
    for (int64_t i = 0; i < t.heldElements(); ++i) out.push_back(t.at<double>(static_cast<size_t>(i)));
  }
  return out;
}

void flattenNumbers(const json& node, std::vector<double>& out) {
  if (node.is_array()) {
    for (const auto& c : node) flattenNumbers(c, out);
  } else if (node.is_number()) {
    out.push_back(node.get<double>());
  } else if (node.is_boolean()) {
    out.push_back(node.get<bool>() ? 1 : 0);
  }
}

bool close(const std::vector<double>& got, const std::vector<double>& want, double atol,
           double rtol) {
  if (got.size() != want.size()) return false;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::fabs(got[i] - want[i]) > atol + rtol * std::fabs(want[i])) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<WireProtocol> parseWireProtocol(const std::string& name) {
  if (name == "v1") return WireProtocol::kV1;
  if (name == "v2" || name == "v2-json") return WireProtocol::kV2;
  if (name == "v2-binary") return WireProtocol::kV2Binary;
  if (name == "grpc" || name == "v2-grpc") return WireProtocol::kGrpc;
  return absl::InvalidArgumentError(
      common::strCat("unknown protocol '", name, "': use v1, v2, v2-binary or grpc"));
}

const char* wireProtocolName(WireProtocol p) {
  switch (p) {
    case WireProtocol::kV1: return "v1";
    case WireProtocol::kV2: return "v2";
    case WireProtocol::kV2Binary: return "v2-binary";
    case WireProtocol::kGrpc: return "grpc";
  }
  return "?";
}

absl::StatusOr<protocols::ModelMetadata> fetchMetadata(
    const std::string& host, uint16_t port, const std::string& grpc_target, const std::string& model,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  auto isHost = [](const std::string& k) { return k.size() == 4 && (k[0] | 0x20) == 'h' && (k[1] | 0x20) == 'o' && (k[2] | 0x20) == 's' && (k[3] | 0x20) == 't'; };
  if (!grpc_target.empty()) {
    grpc::ChannelArguments args;
    for (const auto& [k, v] : headers) {
      if (isHost(k)) args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, v);
    }
    auto channel = grpc::CreateCustomChannel(grpc_target, grpc::InsecureChannelCredentials(), args);
    auto stub = inference::GRPCInferenceService::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    for (const auto& [k, v] : headers) {
      if (isHost(k)) continue;
      std::string key = k;
      for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      ctx.AddMetadata(key, v);
    }
    inference::ModelMetadataRequest req;
    req.set_name(model);
    inference::ModelMetadataResponse resp;
    auto st = stub->ModelMetadata(&ctx, req, &resp);
    if (!st.ok()) {
      return absl::UnavailableError(common::strCat("gRPC ModelMetadata(", model, ") at ",
                                                   grpc_target, ": ", st.error_message()));
    }
    return protocols::metadataFromProto(resp);
  }
  http::Client client(host, port);
  http::Request get{boost::beast::http::verb::get, common::strCat("/v2/models/", model), 11};
  for (const auto& [k, v] : headers) get.set(k, v);
  auto res = client.send(std::move(get));
  if (!res.ok()) return res.status();
  if (res->result_int() != 200) {
    return absl::NotFoundError(common::strCat("GET /v2/models/", model, " answered ",
                                              res->result_int(), ": ", res->body().substr(0, 200),
                                              " (pass --input FILE for V1-only servers)"));
  }
  return protocols::decodeModelMetadata(res->body());
}

protocols::InferenceRequest generateRequest(const protocols::ModelMetadata& meta, int batch,
                                            uint64_t seed) {
  std::mt19937_64 rng(seed);
  protocols::InferenceRequest req;
  for (const auto& in : meta.inputs) {
    Tensor t;
    t.name = in.name;
    t.datatype = in.datatype;
    t.shape = in.shape;
    for (size_t d = 0; d < t.shape.size(); ++d) {
      if (t.shape[d] < 0) t.shape[d] = d == 0 ? batch : 1;
    }
    int64_t n = *protocols::elementCount(t.shape);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    for (int64_t i = 0; i < n; ++i) {
      double u = unit(rng);
      auto put = [&](auto v) { t.raw.append(reinterpret_cast<const char*>(&v), sizeof v); };
      switch (in.datatype) {
        case DataType::kBool: put(static_cast<uint8_t>(u < 0.5)); break;
        case DataType::kUint8: put(static_cast<uint8_t>(u * 255)); break;
        case DataType::kUint16: put(static_cast<uint16_t>(u * 1000)); break;
        case DataType::kUint32: put(static_cast<uint32_t>(u * 1000)); break;
        case DataType::kUint64: put(static_cast<uint64_t>(u * 1000)); break;
        case DataType::kInt8: put(static_cast<int8_t>(u * 200 - 100)); break;
        case DataType::kInt16: put(static_cast<int16_t>(u * 2000 - 1000)); break;
        case DataType::kInt32: put(static_cast<int32_t>(u * 2000 - 1000)); break;
        case DataType::kInt64: put(static_cast<int64_t>(u * 2000 - 1000)); break;
        case DataType::kFp16: put(protocols::floatToHalf(static_cast<float>(u * 8))); break;
        case DataType::kBf16: put(protocols::floatToBf16(static_cast<float>(u * 8))); break;
        case DataType::kFp32: put(static_cast<float>(u * 8)); break;
        case DataType::kFp64: put(u * 8); break;
        case DataType::kBytes: t.bytes.push_back(common::strCat("s", static_cast<int>(u * 1e6))); break;
      }
    }
    req.inputs.push_back(std::move(t));
  }
  return req;
}

Payload encodePayload(protocols::InferenceRequest request, WireProtocol protocol,
                      const std::string& model, std::string source) {
  Payload p;
  p.source = std::move(source);
  switch (protocol) {
    case WireProtocol::kV1: {
      // One input as {"instances": ...}, nested by its shape.
      json instances = json::array();
      const Tensor& t = request.inputs.front();
      auto values = protocols::toFloatVector(t);
      size_t row = t.shape.size() >= 2 ? static_cast<size_t>(t.heldElements() / std::max<int64_t>(1, t.shape[0])) : 1;
      for (size_t i = 0; values.ok() && i < values->size(); i += row) {
        json r = json::array();
        for (size_t k = i; k < i + row && k < values->size(); ++k) r.push_back((*values)[k]);
        instances.push_back(row == 1 && t.shape.size() < 2 ? r[0] : r);
      }
      p.http.path = common::strCat("/v1/models/", model, ":predict");
      p.http.body = common::jsonText(json{{"instances", instances}});
      break;
    }
    case WireProtocol::kV2:
    case WireProtocol::kV2Binary: {
      std::vector<bool> binary(request.inputs.size(), protocol == WireProtocol::kV2Binary);
      auto encoded = protocols::encodeV2Request(request, binary);
      p.http.path = common::strCat("/v2/models/", model, "/infer");
      p.http.body = std::move(encoded.body);
      if (encoded.json_length) {
        p.http.content_type = "application/octet-stream";
        p.http.headers.emplace_back("Inference-Header-Content-Length",
                                    std::to_string(*encoded.json_length));
      }
      break;
    }
    case WireProtocol::kGrpc: {
      inference::ModelInferRequest proto;
      request.model_name = model;
      protocols::requestToProto(request, /*raw=*/true, &proto);
      p.grpc.serialized_request = proto.SerializeAsString();
      break;
    }
  }
  p.request = std::move(request);
  return p;
}

// Length of the JSON object at the start of `body` (strings and escapes respected), or 0.
size_t leadingJsonLength(std::string_view body) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') in_string = true;
    if (c == '{') ++depth;
    if (c == '}' && --depth == 0) return i + 1;
  }
  return 0;
}

absl::StatusOr<Payload> payloadFromFile(const std::string& path, WireProtocol protocol,
                                        const std::string& model) {
  auto text = readFile(path);
  if (!text.ok()) return text.status();
  if (path.ends_with(".pbtxt") || path.ends_with(".txtpb")) {
    // A ModelInferRequest in protobuf text format.
    inference::ModelInferRequest proto;
    if (!google::protobuf::TextFormat::ParseFromString(*text, &proto)) {
      return absl::InvalidArgumentError(
          common::strCat(path, ": not a ModelInferRequest in protobuf text format"));
    }
    auto request = protocols::requestFromProto(proto);
    if (!request.ok()) {
      return absl::InvalidArgumentError(common::strCat(path, ": ", common::toStd(request.status().message())));
    }
    return encodePayload(std::move(*request), protocol, model, path);
  }
  size_t json_length = leadingJsonLength(*text);
  if (json_length > 0 && json_length < text->size() &&
      text->find_first_not_of(" \t\r\n", json_length) != std::string::npos) {
    // A V2 binary-extension body: the JSON header followed by tensor blobs.
    auto request = protocols::decodeV2Request(*text, json_length);
    if (!request.ok()) {
      return absl::InvalidArgumentError(common::strCat(path, ": ", common::toStd(request.status().message())));
    }
    return encodePayload(std::move(*request), protocol, model, path);
  }
  json root = json::parse(*text, nullptr, false);
  if (root.is_discarded() || !root.is_object()) {
    return absl::InvalidArgumentError(common::strCat(path, ": not a JSON object"));
  }
  if (root.contains("instances") && !root.contains("inputs")) {
    if (protocol != WireProtocol::kV1) {
      return absl::InvalidArgumentError(
          common::strCat(path, " is a V1 body ({\"instances\"}); use it with --protocol v1"));
    }
    Payload p;
    p.source = path;
    p.http.path = common::strCat("/v1/models/", model, ":predict");
    p.http.body = *text;
    return p;
  }
  auto request = protocols::decodeV2Request(*text, std::nullopt);
  if (!request.ok()) {
    return absl::InvalidArgumentError(common::strCat(path, ": ", common::toStd(request.status().message())));
  }
  return encodePayload(std::move(*request), protocol, model, path);
}

absl::StatusOr<ResponseCheck> makeGoldenCheck(const std::string& path, WireProtocol protocol,
                                              double atol, double rtol) {
  auto text = readFile(path);
  if (!text.ok()) return text.status();
  std::vector<double> want;
  json root = json::parse(*text, nullptr, false);
  if (root.is_discarded()) return absl::InvalidArgumentError(common::strCat(path, ": not JSON"));
  if (root.contains("predictions")) {
    flattenNumbers(root["predictions"], want);
  } else {
    auto resp = protocols::decodeV2Response(*text, std::nullopt);
    if (!resp.ok() || resp->outputs.empty()) {
      return absl::InvalidArgumentError(
          common::strCat(path, ": expected a V2 response with outputs or {\"predictions\"}"));
    }
    want = outputValues(resp->outputs.front());
  }
  return ResponseCheck([want, protocol, atol, rtol](int, const std::string& body) {
    std::vector<double> got;
    if (protocol == WireProtocol::kGrpc) {
      inference::ModelInferResponse proto;
      if (!proto.ParseFromString(body)) return false;
      auto resp = protocols::responseFromProto(proto);
      if (!resp.ok() || resp->outputs.empty()) return false;
      got = outputValues(resp->outputs.front());
    } else if (protocol == WireProtocol::kV1) {
      json r = json::parse(body, nullptr, false);
      if (r.is_discarded() || !r.contains("predictions")) return false;
      flattenNumbers(r["predictions"], got);
    } else {
      // Binary responses carry their JSON length in a header the engine does not pass on, so
      // golden checks of V2 compare JSON outputs.
      auto resp = protocols::decodeV2Response(body, std::nullopt);
      if (!resp.ok() || resp->outputs.empty()) return false;
      got = outputValues(resp->outputs.front());
    }
    return close(got, want, atol, rtol);
  });
}

}  // namespace kh::loadgen
