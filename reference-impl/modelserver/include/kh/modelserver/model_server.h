#pragma once
// The whole model server: one InferenceServer behind the REST frontend (V1 + V2 on one port) and
// the gRPC frontend (V2). The `modelserver` executable is a thin main over this class, and tests
// start it in-process or as a child process.

#include <functional>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <thread>

#include "absl/status/statusor.h"
#include "kh/batching/batch_queue.h"
#include "kh/common/time_source.h"
#include "kh/http/server.h"
#include "kh/modelserver/inference_server.h"

namespace kh::modelserver {

/**
 * Batching settings given as flags; each one set replaces the same setting of the model
 * directory's config.json "dynamic_batching" section.
 */
struct BatchingOverrides {
  std::optional<int> max_batch_size;
  std::optional<int64_t> max_queue_delay_us;
  std::optional<std::vector<int>> preferred_batch_sizes;
  std::optional<int> max_queue_size;
  std::optional<int> instances;
};

/**
 * The model's batching: model_dir/config.json's "dynamic_batching", then `overrides`.
 * @return InvalidArgument naming the file or the setting when the result is not valid.
 */
absl::StatusOr<batching::BatchingConfig> resolveBatching(const std::string& model_dir,
                                                         const BatchingOverrides& overrides);

struct ModelServerOptions {
  std::string model_name = "model";
  std::string model_dir;
  /** "auto", "xgboost" or "dense". */
  std::string runtime = "auto";
  /** Where the dense runtime computes: "auto", "cuda" or "cpu" (runtimes::LoadOptions). */
  std::string device = "auto";
  std::string host = "127.0.0.1";
  uint16_t http_port = 8080;
  uint16_t grpc_port = 8081;
  /** HTTP worker threads (each with its own event loop). */
  int workers = 1;
  /** Largest gRPC message either way; KServe's default is 8 MiB. */
  int grpc_max_message_bytes = 8 * 1024 * 1024;
  http::ServerOptions http;  // limits and timeouts; address and port come from above
  /** Artificial delay before the model loads, to exercise not-ready paths (testing aid). */
  std::chrono::milliseconds load_delay{0};
  /** Every prediction takes at least this long (see InferenceServer::setInferDelay). */
  std::chrono::milliseconds infer_delay{0};
  /** Dynamic batching (off unless config.json or these turn it on). */
  BatchingOverrides batching;
  /**
   * The Knative revision this server runs in (Knative puts it in K_REVISION), answered in every
   * HTTP response's Kh-Revision field and every gRPC call's kh-revision metadata, so that a
   * harness behind a real ingress can tell revisions apart (refstack's ingress adds the field
   * itself). Empty: none.
   */
  std::string revision;
  /** Runs on the loader thread once the model has loaded, before the server reports ready. */
  std::function<void()> on_model_loaded;
};

class ModelServer {
 public:
  /**
   * Registers the model and starts loading it in the background, then binds and serves HTTP,
   * then gRPC; the server is ready once the model has loaded.
   */
  static absl::StatusOr<std::unique_ptr<ModelServer>> create(const ModelServerOptions& options,
                                                             const common::TimeSource& time);
  ~ModelServer();

  /** Blocks until the model load has finished; its result. */
  absl::Status waitForLoad();
  /** Refuses new work, finishes in-flight requests on both frontends, then stops. */
  void drain(std::chrono::milliseconds grace);

  uint16_t httpPort() const;
  uint16_t grpcPort() const;
  InferenceServer& inferenceServer();

 private:
  struct Impl;
  explicit ModelServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kh::modelserver
