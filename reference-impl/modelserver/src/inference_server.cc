#include "kh/modelserver/inference_server.h"

#include <algorithm>
#include <future>
#include <random>
#include <thread>

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

InferenceServer::InferenceServer(std::string server_name, std::string server_version,
                                 const common::TimeSource& time,
                                 batching::BatchObserver* observer)
    : name_(std::move(server_name)),
      version_(std::move(server_version)),
      time_(time),
      observer_(observer) {}

InferenceServer::~InferenceServer() { stopBatching(); }

const common::TimeSource& InferenceServer::defaultTimeSource() {
  static const common::RealTimeSource real;
  return real;
}

void InferenceServer::registerModel(const std::string& name, std::string runtime,
                                    std::string model_dir, batching::BatchingConfig batching,
                                    runtimes::LoadOptions load_options) {
  auto entry = std::make_unique<Entry>();
  entry->runtime = std::move(runtime);
  entry->model_dir = std::move(model_dir);
  entry->batching = std::move(batching);
  entry->load_options = std::move(load_options);
  models_[name] = std::move(entry);
}

bool InferenceServer::batches(std::string_view name) const {
  const Entry* e = find(name);
  return e != nullptr && e->batching.enabled();
}

void InferenceServer::stopBatching() {
  for (auto& [name, e] : models_) {
    auto loaded = e->loaded.load();
    if (loaded && loaded->batcher) loaded->batcher->stop();
  }
}

const InferenceServer::Entry* InferenceServer::find(std::string_view name) const {
  auto it = models_.find(name);
  return it == models_.end() ? nullptr : it->second.get();
}

namespace {
// Batching joins requests on the first dimension: every input must have it variable and no
// other variable dimension, and hold fixed-size elements.
absl::Status checkBatchable(const protocols::ModelMetadata& meta) {
  for (const auto& in : meta.inputs) {
    bool ok = !in.shape.empty() && in.shape[0] == -1 &&
              std::count(in.shape.begin(), in.shape.end(), -1) == 1;
    if (!ok) {
      return absl::FailedPreconditionError(common::strCat(
          "dynamic batching needs every input's first dimension variable and no other; input '",
          in.name, "' has shape ", protocols::shapeToString(in.shape)));
    }
  }
  return absl::OkStatus();
}
}  // namespace

absl::Status InferenceServer::loadModel(const std::string& name,
                                        const std::function<void()>& before_ready) {
  auto it = models_.find(name);
  if (it == models_.end()) return notFound(name);
  Entry& e = *it->second;
  e.state.store(ModelState::kLoading);
  auto model = runtimes::loadModel(e.runtime, name, e.model_dir, e.load_options);
  if (!model.ok()) {
    e.state.store(ModelState::kFailedToLoad);
    return model.status();
  }
  auto loaded = std::make_shared<Loaded>();
  loaded->model = std::shared_ptr<const runtimes::Model>(std::move(*model));
  if (e.batching.enabled()) {
    if (absl::Status st = checkBatchable(loaded->model->metadata()); !st.ok()) {
      e.state.store(ModelState::kFailedToLoad);
      return st;
    }
    loaded->batcher = std::make_unique<batching::DynamicBatcher>(
        name, e.batching,
        [this, model = loaded->model](std::span<const Tensor> inputs) {
          return runModel(*model, inputs);
        },
        time_, observer_);
  }
  auto previous = e.loaded.exchange(std::move(loaded));
  if (previous && previous->batcher) previous->batcher->stop();
  if (before_ready) before_ready();
  e.state.store(ModelState::kLoaded);
  return absl::OkStatus();
}

absl::Status InferenceServer::unloadModel(const std::string& name) {
  auto it = models_.find(name);
  if (it == models_.end()) return notFound(name);
  it->second->state.store(ModelState::kUnloaded);
  auto previous = it->second->loaded.exchange(nullptr);
  // Queued requests are answered before the unload returns.
  if (previous && previous->batcher) previous->batcher->stop();
  return absl::OkStatus();
}

bool InferenceServer::ready() const {
  for (const auto& [name, e] : models_) {
    if (e->state.load() != ModelState::kLoaded) return false;
    auto loaded = e->loaded.load();
    if (!loaded || !loaded->model->health().ok()) return false;
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

absl::StatusOr<std::shared_ptr<const InferenceServer::Loaded>> InferenceServer::readyModel(
    std::string_view name, std::string_view version) const {
  const Entry* e = find(name);
  if (e == nullptr) return notFound(name);
  if (!version.empty()) {
    // KServe's reference server has no model versions.
    return absl::UnimplementedError("Model versioning not supported yet.");
  }
  auto loaded = e->loaded.load();
  if (!loaded || e->state.load() != ModelState::kLoaded) {
    return absl::UnavailableError(common::strCat("Model with name ", name, " is not ready."));
  }
  if (absl::Status health = loaded->model->health(); !health.ok()) {
    return absl::UnavailableError(
        common::strCat("Model with name ", name, " is not ready: ", health.message()));
  }
  return loaded;
}

absl::StatusOr<bool> InferenceServer::modelReady(std::string_view name,
                                                 std::string_view version) const {
  const Entry* e = find(name);
  if (e == nullptr) return notFound(name);
  if (!version.empty()) return absl::UnimplementedError("Model versioning not supported yet.");
  if (e->state.load() != ModelState::kLoaded) return false;
  auto loaded = e->loaded.load();
  return loaded && loaded->model->health().ok();
}

absl::StatusOr<protocols::ModelMetadata> InferenceServer::modelMetadata(
    std::string_view name, std::string_view version) const {
  KH_ASSIGN_OR_RETURN(auto loaded, readyModel(name, version));
  return loaded->model->metadata();
}

absl::StatusOr<InferenceServer::Prepared> InferenceServer::prepare(
    std::string_view name, InferenceRequest&& request) const {
  KH_ASSIGN_OR_RETURN(auto loaded, readyModel(name, request.model_version));
  const auto& meta = loaded->model->metadata();
  if (request.inputs.size() != meta.inputs.size()) {
    std::string expected;
    for (const auto& in : meta.inputs) expected += common::strCat(expected.empty() ? "" : ", ", in.name);
    return absl::InvalidArgumentError(common::strCat(
        "model '", name, "' expects ", meta.inputs.size(), " input(s) (", expected, ") but ",
        request.inputs.size(), " were given"));
  }
  Prepared prepared;
  // Put inputs in metadata order; names must match exactly.
  prepared.inputs.reserve(meta.inputs.size());
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
    prepared.inputs.push_back(std::move(*it));
  }
  prepared.loaded = std::move(loaded);
  prepared.shell.model_name = std::string(name);
  prepared.shell.id = std::move(request.id);
  prepared.shell.has_id = request.has_id;
  prepared.shell.outputs = std::move(request.outputs);
  return prepared;
}

absl::StatusOr<std::vector<Tensor>> InferenceServer::runModel(
    const runtimes::Model& model, std::span<const Tensor> inputs) const {
  // The testing aid's delay is per prediction: per batch when batching.
  if (infer_delay_.count() > 0) std::this_thread::sleep_for(infer_delay_);
  return model.predict(inputs);
}

absl::StatusOr<InferenceResponse> InferenceServer::respond(
    ResponseShell&& shell, const protocols::ModelMetadata& meta,
    absl::StatusOr<std::vector<Tensor>>&& outputs) {
  if (!outputs.ok()) return outputs.status();
  InferenceResponse response;
  response.model_name = std::move(shell.model_name);
  response.id = shell.has_id ? std::move(shell.id) : makeRequestId();
  if (shell.outputs.empty()) {
    response.outputs = std::move(*outputs);
    return response;
  }
  for (const auto& wanted : shell.outputs) {
    auto it = std::find_if(outputs->begin(), outputs->end(),
                           [&](const Tensor& t) { return t.name == wanted.name; });
    if (it == outputs->end()) {
      std::string known;
      for (const auto& o : meta.outputs) known += common::strCat(known.empty() ? "" : ", ", o.name);
      return absl::InvalidArgumentError(common::strCat("requested output '", wanted.name,
                                                       "' does not exist; model '",
                                                       response.model_name, "' has: ", known));
    }
    response.outputs.push_back(*it);
  }
  return response;
}

absl::StatusOr<InferenceResponse> InferenceServer::infer(std::string_view name,
                                                         InferenceRequest&& request) const {
  KH_ASSIGN_OR_RETURN(Prepared prepared, prepare(name, std::move(request)));
  const auto& model = *prepared.loaded->model;
  if (!prepared.loaded->batcher) {
    return respond(std::move(prepared.shell), model.metadata(), runModel(model, prepared.inputs));
  }
  // A synchronous caller of a batching model waits for its batch.
  std::promise<absl::StatusOr<InferenceResponse>> result;
  auto future = result.get_future();
  inferAsync(name, std::move(prepared),
             [&result](absl::StatusOr<InferenceResponse> r) { result.set_value(std::move(r)); },
             {});
  return future.get();
}

void InferenceServer::inferAsync(std::string_view name, InferenceRequest&& request,
                                 InferDone done, batching::CancelCheck cancelled) const {
  auto prepared = prepare(name, std::move(request));
  if (!prepared.ok()) return done(prepared.status());
  inferAsync(name, std::move(*prepared), std::move(done), std::move(cancelled));
}

void InferenceServer::inferAsync(std::string_view name, Prepared&& prepared, InferDone done,
                                 batching::CancelCheck cancelled) const {
  const auto& model = *prepared.loaded->model;
  if (!prepared.loaded->batcher) {
    return done(respond(std::move(prepared.shell), model.metadata(),
                        runModel(model, prepared.inputs)));
  }
  prepared.loaded->batcher->submit(
      std::move(prepared.inputs),
      [shell = std::move(prepared.shell), model = prepared.loaded->model,
       done = std::move(done)](batching::Outputs outputs) mutable {
        done(respond(std::move(shell), model->metadata(), std::move(outputs)));
      },
      std::move(cancelled));
}

absl::StatusOr<Tensor> InferenceServer::predictV1(std::string_view name,
                                                  std::string_view body) const {
  KH_ASSIGN_OR_RETURN(InferenceRequest request, decodeV1(name, body));
  KH_ASSIGN_OR_RETURN(InferenceResponse response, infer(name, std::move(request)));
  return std::move(response.outputs.front());
}

void InferenceServer::predictV1Async(std::string_view name, std::string_view body,
                                     PredictV1Done done) const {
  auto request = decodeV1(name, body);
  if (!request.ok()) return done(request.status());
  inferAsync(name, std::move(*request),
             [done = std::move(done)](absl::StatusOr<InferenceResponse> response) mutable {
               if (!response.ok()) return done(response.status());
               done(std::move(response->outputs.front()));
             });
}

absl::StatusOr<InferenceRequest> InferenceServer::decodeV1(std::string_view name,
                                                           std::string_view body) const {
  KH_ASSIGN_OR_RETURN(auto loaded, readyModel(name, {}));
  const auto& meta = loaded->model->metadata();
  if (meta.inputs.size() != 1 || meta.outputs.empty()) {
    return absl::InvalidArgumentError(
        common::strCat("model '", name, "' has ", meta.inputs.size(),
                       " inputs; the V1 protocol serves models with exactly one"));
  }
  KH_ASSIGN_OR_RETURN(Tensor input, protocols::decodeV1Request(body, meta.inputs[0]));
  InferenceRequest request;
  request.inputs.push_back(std::move(input));
  return request;
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
