#include "kh/modelserver/rest_handler.h"

#include "boost/beast/http/field.hpp"
#include "kh/common/strings.h"
#include "kh/protocols/json_writer.h"
#include "kh/protocols/v1_json.h"
#include "kh/protocols/v2_json.h"

namespace kh::modelserver {
namespace {

namespace bhttp = boost::beast::http;
using protocols::JsonWriter;

struct Route {
  Protocol protocol = Protocol::kOther;
  Endpoint endpoint = Endpoint::kUnknown;
  bhttp::verb method = bhttp::verb::get;
  std::string_view model;
  std::string_view version;
  std::string_view action;  // "load" / "unload" for the repository extension
};

bool consume(std::string_view& s, std::string_view prefix) {
  if (!s.starts_with(prefix)) return false;
  s.remove_prefix(prefix.size());
  return true;
}

// Maps a request target onto an endpoint; `model` and `version` point into the target.
Route route(std::string_view path) {
  Route r;
  if (auto q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);
  if (path == "/" || path == "/metrics") {
    r.endpoint = path == "/" ? Endpoint::kRoot : Endpoint::kMetrics;
    return r;
  }
  std::string_view rest = path;
  if (consume(rest, "/v1/models")) {
    r.protocol = Protocol::kV1;
    if (rest.empty()) {
      r.endpoint = Endpoint::kModelList;
      return r;
    }
    if (!consume(rest, "/") || rest.empty() || rest.find('/') != std::string_view::npos) return r;
    if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
      std::string_view verb = rest.substr(colon + 1);
      r.model = rest.substr(0, colon);
      r.method = bhttp::verb::post;
      if (verb == "predict") r.endpoint = Endpoint::kInfer;
      if (verb == "explain") r.endpoint = Endpoint::kExplain;
      return r;
    }
    r.model = rest;
    r.endpoint = Endpoint::kModelReady;
    return r;
  }
  if (!consume(rest, "/v2")) return r;
  r.protocol = Protocol::kV2;
  if (rest.empty() || rest == "/") {
    r.endpoint = Endpoint::kServerMetadata;
    return r;
  }
  if (rest == "/health/live") {
    r.endpoint = Endpoint::kServerLive;
    return r;
  }
  if (rest == "/health/ready") {
    r.endpoint = Endpoint::kServerReady;
    return r;
  }
  if (consume(rest, "/repository/models/")) {
    auto slash = rest.find('/');
    if (slash == std::string_view::npos) return r;
    r.model = rest.substr(0, slash);
    r.action = rest.substr(slash + 1);
    if (r.model.empty() || (r.action != "load" && r.action != "unload")) return r;
    r.method = bhttp::verb::post;
    r.endpoint = Endpoint::kRepository;
    return r;
  }
  if (!consume(rest, "/models")) return r;
  if (rest.empty()) {
    r.endpoint = Endpoint::kModelList;
    return r;
  }
  if (!consume(rest, "/")) return r;
  auto slash = rest.find('/');
  r.model = rest.substr(0, slash);
  rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  if (r.model.empty()) return r;
  if (consume(rest, "/versions/")) {
    auto vslash = rest.find('/');
    r.version = rest.substr(0, vslash);
    rest = vslash == std::string_view::npos ? std::string_view{} : rest.substr(vslash);
    if (r.version.empty()) return r;
  }
  if (rest.empty()) {
    r.endpoint = Endpoint::kModelMetadata;
  } else if (rest == "/ready") {
    r.endpoint = Endpoint::kModelReady;
  } else if (rest == "/infer") {
    r.endpoint = Endpoint::kInfer;
    r.method = bhttp::verb::post;
  }
  return r;
}

void setJson(http::Response& res, int status, std::string body) {
  res.result(static_cast<bhttp::status>(status));
  res.set(bhttp::field::content_type, "application/json");
  res.body() = std::move(body);
}

void setError(http::Response& res, const absl::Status& status) {
  setJson(res, statusToHttp(status), protocols::encodeV2Error(common::toStd(status.message())));
}

// V2 inference: the Inference-Header-Content-Length (binary extension) and the JSON body.
absl::StatusOr<protocols::InferenceRequest> decodeV2(const Route& r, const http::Request& req) {
  std::optional<size_t> json_length;
  if (auto h = req.find(protocols::kInferenceHeaderContentLength.data()); h != req.end()) {
    auto n = common::parseInt<size_t>(std::string_view(h->value().data(), h->value().size()));
    if (!n) {
      return absl::InvalidArgumentError(
          "Inference-Header-Content-Length must be a non-negative integer");
    }
    json_length = *n;
  }
  auto request = protocols::decodeV2Request(req.body(), json_length);
  if (request.ok()) request->model_version = std::string(r.version);
  return request;
}

// What of a request decides which outputs are answered in binary.
protocols::InferenceRequest binaryShell(const protocols::InferenceRequest& request) {
  protocols::InferenceRequest shell;
  shell.parameters = request.parameters;
  shell.outputs = request.outputs;
  return shell;
}

void writeV2(const protocols::InferenceRequest& shell,
             const absl::StatusOr<protocols::InferenceResponse>& response, http::Response& res) {
  if (!response.ok()) return setError(res, response.status());
  std::vector<bool> binary = protocols::binaryOutputChoice(shell, *response);
  auto encoded = protocols::encodeV2Response(*response, binary);
  res.result(bhttp::status::ok);
  if (encoded.json_length) {
    res.set(bhttp::field::content_type, "application/octet-stream");
    res.set(protocols::kInferenceHeaderContentLength.data(), std::to_string(*encoded.json_length));
  } else {
    res.set(bhttp::field::content_type, "application/json");
  }
  res.body() = std::move(encoded.body);
}

void writeV1(const absl::StatusOr<protocols::Tensor>& out, http::Response& res) {
  if (!out.ok()) return setError(res, out.status());
  setJson(res, 200, protocols::encodeV1Predictions(*out));
}

std::string namesJson(const std::vector<std::string>& names) {
  std::string out;
  JsonWriter w(out);
  w.beginObject();
  w.key("models");
  w.beginArray();
  for (const auto& n : names) w.string(n);
  w.endArray();
  w.endObject();
  return out;
}

std::string readyJson(std::string_view name, bool ready) {
  std::string out;
  JsonWriter w(out);
  w.beginObject();
  w.key("name");
  w.string(name);
  w.key("ready");
  w.boolean(ready);
  w.endObject();
  return out;
}

}  // namespace

RestHandler::RestHandler(const InferenceServer& server, InferenceServer& mutable_server,
                         ServerMetrics& metrics, const common::TimeSource& time, bool async_infer)
    : async_infer_(async_infer),
      server_(server),
      repository_(mutable_server),
      metrics_(metrics),
      time_(time) {}

void RestHandler::handleAsync(http::Request&& req, http::Responder responder) {
  std::string_view target(req.target().data(), req.target().size());
  Route r = route(target);
  if (r.endpoint != Endpoint::kInfer || req.method() != bhttp::verb::post) {
    http::Response res;
    handle(req, res);
    responder.send(std::move(res));
    return;
  }
  auto started = time_.monotonicTime();
  auto finish = [this, protocol = r.protocol, started](http::Responder& responder,
                                                       http::Response&& res) {
    double seconds = std::chrono::duration<double>(time_.monotonicTime() - started).count();
    metrics_.record(protocol, Endpoint::kInfer, static_cast<int>(res.result_int()), seconds);
    responder.send(std::move(res));
  };
  if (r.protocol == Protocol::kV1) {
    server_.predictV1Async(
        r.model, req.body(),
        [finish, responder = std::move(responder)](absl::StatusOr<protocols::Tensor> out) mutable {
          http::Response res;
          writeV1(out, res);
          finish(responder, std::move(res));
        });
    return;
  }
  auto request = decodeV2(r, req);
  if (!request.ok()) {
    http::Response res;
    setError(res, request.status());
    return finish(responder, std::move(res));
  }
  protocols::InferenceRequest shell = binaryShell(*request);
  server_.inferAsync(
      r.model, std::move(*request),
      [finish, shell = std::move(shell), responder = std::move(responder)](
          absl::StatusOr<protocols::InferenceResponse> response) mutable {
        http::Response res;
        writeV2(shell, response, res);
        finish(responder, std::move(res));
      });
}

void RestHandler::handle(http::Request& req, http::Response& res) {
  auto started = time_.monotonicTime();
  std::string_view target(req.target().data(), req.target().size());
  Route r = route(target);
  // HEAD is answered like GET by the health endpoints' probes; the body is dropped by Beast.
  bhttp::verb method = req.method() == bhttp::verb::head ? bhttp::verb::get : req.method();
  if (r.endpoint == Endpoint::kUnknown) {
    setJson(res, 404, protocols::encodeV2Error(common::strCat("Not Found: ", target)));
  } else if (method != r.method) {
    res.set(bhttp::field::allow, r.method == bhttp::verb::get ? "GET, HEAD" : "POST");
    setJson(res, 405,
            protocols::encodeV2Error(common::strCat("Method Not Allowed: ", std::string(req.method_string()),
                                                    " ", target)));
  } else {
    switch (r.endpoint) {
      case Endpoint::kRoot:
        setJson(res, 200, R"({"status":"alive"})");
        break;
      case Endpoint::kMetrics:
        res.result(bhttp::status::ok);
        res.set(bhttp::field::content_type, "text/plain; version=0.0.4");
        res.body() = metrics_.serialize();
        break;
      case Endpoint::kServerLive:
        setJson(res, 200, R"({"live":true})");
        break;
      case Endpoint::kServerReady: {
        bool ready = server_.ready();
        setJson(res, ready ? 200 : 503, ready ? R"({"ready":true})" : R"({"ready":false})");
        break;
      }
      case Endpoint::kServerMetadata: {
        std::string out;
        JsonWriter w(out);
        w.beginObject();
        w.key("name");
        w.string(server_.name());
        w.key("version");
        w.string(server_.version());
        w.key("extensions");
        w.beginArray();
        for (const auto& e : server_.extensions()) w.string(e);
        w.endArray();
        w.endObject();
        setJson(res, 200, std::move(out));
        break;
      }
      case Endpoint::kModelList:
        setJson(res, 200, namesJson(server_.modelNames()));
        break;
      case Endpoint::kModelReady: {
        auto ready = server_.modelReady(r.model, r.version);
        if (!ready.ok()) {
          setError(res, ready.status());
        } else if (!*ready) {
          setError(res, absl::UnavailableError(
                            common::strCat("Model with name ", r.model, " is not ready.")));
        } else {
          setJson(res, 200, readyJson(r.model, true));
        }
        break;
      }
      case Endpoint::kModelMetadata: {
        auto meta = server_.modelMetadata(r.model, r.version);
        if (!meta.ok()) {
          setError(res, meta.status());
        } else {
          setJson(res, 200, protocols::encodeModelMetadata(*meta));
        }
        break;
      }
      case Endpoint::kExplain: {
        auto ready = server_.modelReady(r.model);
        if (!ready.ok()) {
          setError(res, ready.status());
        } else {
          setError(res, absl::UnimplementedError(
                            common::strCat("model '", r.model, "' has no explainer")));
        }
        break;
      }
      case Endpoint::kRepository: {
        std::string name(r.model);
        absl::Status st = r.action == "load" ? repository_.loadModel(name)
                                             : repository_.unloadModel(name);
        if (!st.ok()) {
          // KServe answers a failed load with 503 and an unknown model with 404.
          setError(res, st.code() == absl::StatusCode::kNotFound
                            ? st
                            : absl::UnavailableError(common::strCat(
                                  "Model with name ", name, " failed to load: ",
                                  common::toStd(st.message()))));
        } else {
          std::string out;
          JsonWriter w(out);
          w.beginObject();
          w.key("name");
          w.string(name);
          w.key(r.action);
          w.boolean(true);
          w.endObject();
          setJson(res, 200, std::move(out));
        }
        break;
      }
      case Endpoint::kInfer:
        if (r.protocol == Protocol::kV1) {
          writeV1(server_.predictV1(r.model, req.body()), res);
        } else {
          auto request = decodeV2(r, req);
          if (!request.ok()) {
            setError(res, request.status());
            break;
          }
          // Keep what decides binary outputs; the request itself is consumed by infer().
          protocols::InferenceRequest shell = binaryShell(*request);
          writeV2(shell, server_.infer(r.model, std::move(*request)), res);
        }
        break;
      case Endpoint::kUnknown:
      case Endpoint::kCount:
        break;
    }
  }
  double seconds = std::chrono::duration<double>(time_.monotonicTime() - started).count();
  metrics_.record(r.protocol, r.endpoint, static_cast<int>(res.result_int()), seconds);
}

}  // namespace kh::modelserver
