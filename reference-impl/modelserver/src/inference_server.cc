#include "kh/modelserver/inference_server.h"

#include <thread>

#include <random>

#include "kh/common/status_macros.h"
#include "kh/common/strings.h"
#include "kh/protocols/v1_json.h"

namespace kh::modelserver {
namespace {

using protocols::InferenceRequest;
using protocols::InferenceResponse;
using protocols::Tensor;

// A random UUID (version 4 layout) for responses whose request had no id, as KServe does.
std::string makeRequestId() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t a = rng(), b = rng();
  a = (a & 0xffffffffffff0fffull) | 0x4000ull;
  b = (b & 0x3fffffffffffffffull) | 0x8000000000000000ull;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(36, '-');
  int pos = 0;
  auto put = [&](uint64_t v, int nibbles) {
    for (int i = nibbles - 1; i >= 0; --i) {
      if (pos == 8 || pos == 13 || pos == 18 || pos == 23) ++pos;
      out[pos++] = kHex[(v >> (i * 4)) & 0xf];
    }
  };
  put(a, 16);
  put(b, 16);
  return out;
}

absl::Status notFound(std::string_view name) {
  return absl::NotFoundError(common::strCat("Model with name ", name, " does not exist."));
}

}  // namespace

InferenceServer::InferenceServer(std::string server_name, std::string server_version)
    : name_(std::move(server_name)), version_(std::move(server_version)) {}

void InferenceServer::registerModel(const std::string& name, std::string runtime,
                                    std::string model_dir) {
  auto entry = std::make_unique<Entry>();
  entry->runtime = std::move(runtime);
  entry->model_dir = std::move(model_dir);
  models_[name] = std::move(entry);
}

const InferenceServer::Entry* InferenceServer::find(std::string_view name) const {
  auto it = models_.find(name);
  return it == models_.end() ? nullptr : it->second.get();
}

absl::Status InferenceServer::loadModel(const std::string& name, const std::function<void()>& before_ready) {
  auto it = models_.find(name);
  if (it == models_.end()) return notFound(name);
  Entry& e = *it->second;
  e.state.store(ModelState::kLoading);
  auto model = runtimes::loadModel(e.runtime, name, e.model_dir);
  if (!model.ok()) {
    e.state.store(ModelState::kFailedToLoad);
    return model.status();
  }
  e.model.store(std::shared_ptr<const runtimes::Model>(std::move(*model)));
  if (before_ready) before_ready();
  e.state.store(ModelState::kLoaded);
  return absl::OkStatus();
}

absl::Status InferenceServer::unloadModel(const std::string& name) {
  auto it = models_.find(name);
  if (it == models_.end()) return notFound(name);
  it->second->state.store(ModelState::kUnloaded);
  it->second->model.store(nullptr);
  return absl::OkStatus();
}

bool InferenceServer::ready() const {
  for (const auto& [name, e] : models_) {
    if (e->state.load() != ModelState::kLoaded) return false;
  }
  return true;
}

std::vector<std::string> InferenceServer::extensions() const {
  return {"binary_tensor_data", "model_repository_extension"};
}

std::vector<std::string> InferenceServer::modelNames() const {
  std::vector<std::string> names;
  for (const auto& [name, e] : models_) names.push_back(name);
  return names;
}

absl::StatusOr<std::shared_ptr<const runtimes::Model>> InferenceServer::readyModel(
    std::string_view name, std::string_view version) const {
  const Entry* e = find(name);
  if (e == nullptr) return notFound(name);
  if (!version.empty()) {
    // KServe's reference server has no model versions.
    return absl::UnimplementedError("Model versioning not supported yet.");
  }
  auto model = e->model.load();
  if (!model || e->state.load() != ModelState::kLoaded) {
    return absl::UnavailableError(common::strCat("Model with name ", name, " is not ready."));
  }
  return model;
}

absl::StatusOr<bool> InferenceServer::modelReady(std::string_view name,
                                                 std::string_view version) const {
  const Entry* e = find(name);
  if (e == nullptr) return notFound(name);
  if (!version.empty()) return absl::UnimplementedError("Model versioning not supported yet.");
  return e->state.load() == ModelState::kLoaded;
}

absl::StatusOr<protocols::ModelMetadata> InferenceServer::modelMetadata(
    std::string_view name, std::string_view version) const {
  KH_ASSIGN_OR_RETURN(auto model, readyModel(name, version));
  return model->metadata();
}

absl::StatusOr<InferenceResponse> InferenceServer::infer(std::string_view name,
                                                         InferenceRequest&& request) const {
  KH_ASSIGN_OR_RETURN(auto model, readyModel(name, request.model_version));
  if (infer_delay_.count() > 0) std::this_thread::sleep_for(infer_delay_);
  const auto& meta = model->metadata();
  if (request.inputs.size() != meta.inputs.size()) {
    std::string expected;
    for (const auto& in : meta.inputs) expected += common::strCat(expected.empty() ? "" : ", ", in.name);
    return absl::InvalidArgumentError(common::strCat(
        "model '", name, "' expects ", meta.inputs.size(), " input(s) (", expected, ") but ",
        request.inputs.size(), " were given"));
  }
  // Put inputs in metadata order; names must match exactly.
  std::vector<Tensor> ordered;
  ordered.reserve(meta.inputs.size());
  int64_t batch = -1;
  for (const auto& in_meta : meta.inputs) {
    auto it = std::find_if(request.inputs.begin(), request.inputs.end(),
                           [&](const Tensor& t) { return t.name == in_meta.name; });
    if (it == request.inputs.end()) {
      return absl::InvalidArgumentError(
          common::strCat("input '", in_meta.name, "' is missing; model '", name, "' needs it"));
    }
    KH_RETURN_IF_ERROR(protocols::validateTensorData(*it));
    KH_RETURN_IF_ERROR(protocols::checkAgainstMetadata(*it, in_meta));
    if (!it->shape.empty()) {
      if (batch >= 0 && it->shape[0] != batch) {
        return absl::InvalidArgumentError("all inputs must have the same batch size");
      }
      batch = it->shape[0];
    }
    ordered.push_back(std::move(*it));
  }
  KH_ASSIGN_OR_RETURN(std::vector<Tensor> outputs, model->predict(ordered));

  InferenceResponse response;
  response.model_name = std::string(name);
  response.id = request.has_id ? std::move(request.id) : makeRequestId();
  if (request.outputs.empty()) {
    response.outputs = std::move(outputs);
    return response;
  }
  for (const auto& wanted : request.outputs) {
    auto it = std::find_if(outputs.begin(), outputs.end(),
                           [&](const Tensor& t) { return t.name == wanted.name; });
    if (it == outputs.end()) {
      std::string known;
      for (const auto& o : meta.outputs) known += common::strCat(known.empty() ? "" : ", ", o.name);
      return absl::InvalidArgumentError(common::strCat("requested output '", wanted.name,
                                                       "' does not exist; model '", name,
                                                       "' has: ", known));
    }
    response.outputs.push_back(*it);
  }
  return response;
}

absl::StatusOr<Tensor> InferenceServer::predictV1(std::string_view name,
                                                  std::string_view body) const {
  KH_ASSIGN_OR_RETURN(auto model, readyModel(name, {}));
  if (infer_delay_.count() > 0) std::this_thread::sleep_for(infer_delay_);
  const auto& meta = model->metadata();
  if (meta.inputs.size() != 1 || meta.outputs.empty()) {
    return absl::InvalidArgumentError(
        common::strCat("model '", name, "' has ", meta.inputs.size(),
                       " inputs; the V1 protocol serves models with exactly one"));
  }
  KH_ASSIGN_OR_RETURN(Tensor input, protocols::decodeV1Request(body, meta.inputs[0]));
  InferenceRequest request;
  request.inputs.push_back(std::move(input));
  KH_ASSIGN_OR_RETURN(InferenceResponse response, infer(name, std::move(request)));
  return std::move(response.outputs.front());
}

int statusToHttp(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk: return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange: return 400;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kResourceExhausted: return 413;
    case absl::StatusCode::kUnimplemented: return 501;
    case absl::StatusCode::kUnavailable: return 503;
    case absl::StatusCode::kDeadlineExceeded: return 504;
    default: return 500;
  }
}

}  // namespace kh::modelserver
