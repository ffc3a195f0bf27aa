#pragma once
// The transport-neutral core of the model server. The REST (V1, V2) and gRPC (V2) frontends are
// thin adapters over this class; they never touch a runtime directly.

#include <functional>
#include <chrono>
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "kh/batching/dynamic_batcher.h"
#include "kh/common/time_source.h"
#include "kh/protocols/tensor.h"
#include "kh/runtimes/model.h"

namespace kh::modelserver {

/** Where a model is in its life; mirrors KServe's model states. */
enum class ModelState { kLoading, kLoaded, kFailedToLoad, kUnloaded };

using InferDone = absl::AnyInvocable<void(absl::StatusOr<protocols::InferenceResponse>)>;
using PredictV1Done = absl::AnyInvocable<void(absl::StatusOr<protocols::Tensor>)>;

/**
 * Holds the served models and answers the protocol's questions. Every method is thread-safe;
 * infer() takes no lock (models are swapped in and out through atomic shared pointers).
 *
 * A model registered with dynamic batching runs its predictions through a DynamicBatcher: the
 * frontends then use the asynchronous calls (inferAsync, predictV1Async) so that their threads
 * are free while requests wait for a batch.
 *
 * Errors use KServe's wording and map to protocol codes through statusToHttp() / gRPC codes:
 * NotFound "Model with name X does not exist.", Unavailable "Model with name X is not ready.",
 * InvalidArgument for inputs the model cannot take, Unimplemented for versions.
 */
class InferenceServer {
 public:
  /** `time` stamps batch queue entries; `observer` (may be null) receives batching metrics. */
  InferenceServer(std::string server_name, std::string server_version,
                  const common::TimeSource& time = defaultTimeSource(),
                  batching::BatchObserver* observer = nullptr);
  ~InferenceServer();

  /**
   * Registers a model (state kLoading) so that it is known but not ready. Not thread-safe with
   * serving: call before the frontends start. `batching` (enabled or not) applies to every load;
   * a model whose inputs cannot be joined row-wise then fails to load.
   */
  void registerModel(const std::string& name, std::string runtime, std::string model_dir,
                     batching::BatchingConfig batching = {},
                     runtimes::LoadOptions load_options = {});
  /** @return whether the model was registered with dynamic batching. */
  bool batches(std::string_view name) const;
  /**
   * Stops every batcher: what is queued runs and is answered, later requests get Unavailable.
   * For shutdown, while the frontends can still deliver answers.
   */
  void stopBatching();

  /**
   * Loads (or reloads) a registered model from its directory; kLoaded on success.
   * `before_ready`, when set, runs once the model has loaded and before it is marked ready (so
   * whatever it records is in place by the time a readiness probe can pass).
   */
  absl::Status loadModel(const std::string& name, const std::function<void()>& before_ready = {});
  /** Unloads a model: it stays known but is no longer ready. */
  absl::Status unloadModel(const std::string& name);

  /**
   * Makes every prediction take at least this long, holding its thread as a CPU-bound model
   * does (for scaling and back-pressure tests). Call before serving.
   */
  void setInferDelay(std::chrono::milliseconds delay) { infer_delay_ = delay; }

  bool live() const { return true; }
  /** Ready when every registered model is loaded. */
  bool ready() const;
  const std::string& name() const { return name_; }
  const std::string& version() const { return version_; }
  /** Protocol extensions this server implements. */
  std::vector<std::string> extensions() const;
  std::vector<std::string> modelNames() const;

  /** @return whether the model is ready; NotFound for an unknown model. */
  absl::StatusOr<bool> modelReady(std::string_view name, std::string_view version = {}) const;
  /** @return metadata of a loaded model; NotFound, or Unavailable while not ready. */
  absl::StatusOr<protocols::ModelMetadata> modelMetadata(std::string_view name,
                                                         std::string_view version = {}) const;

  /**
   * Runs one V2 inference: checks inputs against the model's metadata (names, count,
   * datatypes, shapes, data sizes, one batch size), predicts, keeps the requested outputs
   * (all when none are named) and echoes the request id (or makes one up).
   */
  absl::StatusOr<protocols::InferenceResponse> infer(std::string_view name,
                                                     protocols::InferenceRequest&& request) const;
  /**
   * infer(), answered through `done` exactly once: inline for a model without batching, else
   * from a batcher thread once the request's batch has run. `cancelled`, when set, is asked
   * while the request waits in the batch queue; a request whose caller has gone leaves it.
   */
  void inferAsync(std::string_view name, protocols::InferenceRequest&& request, InferDone done,
                  batching::CancelCheck cancelled = {}) const;

  /**
   * Runs a V1 predict body: instances become the model's single input.
   * @return the first output, one row per instance.
   */
  absl::StatusOr<protocols::Tensor> predictV1(std::string_view name, std::string_view body) const;
  /** predictV1(), answered through `done` as inferAsync() answers. */
  void predictV1Async(std::string_view name, std::string_view body, PredictV1Done done) const;

  static const common::TimeSource& defaultTimeSource();

 private:
  // A loaded model and, when it batches, its batcher (which holds the model too). Destroyed by
  // whoever drops the last reference: never a batcher thread, since batches hold only the model.
  struct Loaded {
    std::shared_ptr<const runtimes::Model> model;
    std::unique_ptr<batching::DynamicBatcher> batcher;
  };
  struct Entry {
    std::string runtime;
    std::string model_dir;
    batching::BatchingConfig batching;
    runtimes::LoadOptions load_options;
    std::atomic<std::shared_ptr<const Loaded>> loaded;
    std::atomic<ModelState> state{ModelState::kLoading};
  };
  // What a request keeps to build its response once outputs exist.
  struct ResponseShell {
    std::string model_name;
    std::string id;
    bool has_id = false;
    std::vector<protocols::RequestedOutput> outputs;
  };
  struct Prepared {
    std::shared_ptr<const Loaded> loaded;
    std::vector<protocols::Tensor> inputs;  // in metadata order, checked
    ResponseShell shell;
  };
  absl::StatusOr<Prepared> prepare(std::string_view name,
                                   protocols::InferenceRequest&& request) const;
  void inferAsync(std::string_view name, Prepared&& prepared, InferDone done,
                  batching::CancelCheck cancelled) const;
  absl::StatusOr<protocols::InferenceRequest> decodeV1(std::string_view name,
                                                       std::string_view body) const;
  absl::StatusOr<std::vector<protocols::Tensor>> runModel(
      const runtimes::Model& model, std::span<const protocols::Tensor> inputs) const;
  static absl::StatusOr<protocols::InferenceResponse> respond(
      ResponseShell&& shell, const protocols::ModelMetadata& meta,
      absl::StatusOr<std::vector<protocols::Tensor>>&& outputs);
  absl::StatusOr<std::shared_ptr<const Loaded>> readyModel(std::string_view name,
                                                           std::string_view version) const;
  const Entry* find(std::string_view name) const;

  std::chrono::milliseconds infer_delay_{0};
  std::string name_;
  std::string version_;
  const common::TimeSource& time_;
  batching::BatchObserver* observer_;
  std::map<std::string, std::unique_ptr<Entry>, std::less<>> models_;
};

/** @return the HTTP status for a Status (400, 404, 408, 413, 500, 501, 503, 504). */
int statusToHttp(const absl::Status& status);

}  // namespace kh::modelserver
