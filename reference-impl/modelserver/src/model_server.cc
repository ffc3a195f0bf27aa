#include "kh/modelserver/model_server.h"

#include <future>

#include "grpcpp/grpcpp.h"
#include "spdlog/spdlog.h"
#include "kh/common/strings.h"
#include "kh/modelserver/grpc_service.h"
#include "kh/modelserver/metrics.h"
#include "kh/modelserver/rest_handler.h"

namespace kh::modelserver {

inline constexpr const char* kServerVersion = "0.1.0";

absl::StatusOr<batching::BatchingConfig> resolveBatching(const std::string& model_dir,
                                                         const BatchingOverrides& overrides) {
  auto config = batching::readBatchingConfig(model_dir);
  if (!config.ok()) return config.status();
  if (overrides.max_batch_size) config->max_batch_size = *overrides.max_batch_size;
  if (overrides.max_queue_delay_us) {
    config->max_queue_delay = std::chrono::microseconds(*overrides.max_queue_delay_us);
  }
  if (overrides.preferred_batch_sizes) {
    config->preferred_batch_sizes = *overrides.preferred_batch_sizes;
  }
  if (overrides.max_queue_size) config->max_queue_size = *overrides.max_queue_size;
  if (overrides.instances) config->instances = *overrides.instances;
  if (absl::Status st = batching::validateBatchingConfig(*config); !st.ok()) {
    return absl::InvalidArgumentError(
        common::strCat("batching settings (", model_dir, "/config.json and flags): ",
                       st.message()));
  }
  return config;
}

struct ModelServer::Impl {
  Impl(const ModelServerOptions& opts, const common::TimeSource& t, bool batches)
      : options(opts),
        time(t),
        metrics(batches),
        inference("kserve-harness-modelserver", kServerVersion, time, &metrics),
        rest(inference, inference, metrics, time, /*async_infer=*/batches),
        grpc_service(inference, metrics, time, opts.revision) {}
  ~Impl() {
    if (loader.joinable()) loader.join();
    // Queued requests are answered while the metrics and frontends still exist.
    inference.stopBatching();
  }

  // Loads in the background (ready once loaded), overlapping the servers' set-up: on a cold
  // start the two together are most of the time from process start to ready.
  void startLoading() {
    loader = std::thread([this] {
      if (options.load_delay.count() > 0) std::this_thread::sleep_for(options.load_delay);
      loaded.set_value(inference.loadModel(options.model_name, options.on_model_loaded));
    });
  }

  ModelServerOptions options;
  const common::TimeSource& time;
  ServerMetrics metrics;
  InferenceServer inference;
  RestHandler rest;
  GrpcService grpc_service;
  std::unique_ptr<http::HttpServer> http_server;
  std::unique_ptr<grpc::Server> grpc_server;
  int grpc_port = 0;
  std::thread loader;
  std::promise<absl::Status> loaded;
  std::shared_future<absl::Status> loaded_future = loaded.get_future().share();
};

ModelServer::ModelServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ModelServer::~ModelServer() {
  if (impl_->loader.joinable()) impl_->loader.join();
  impl_->inference.stopBatching();
  if (impl_->grpc_server) impl_->grpc_server->Shutdown(std::chrono::system_clock::now());
}

absl::StatusOr<std::unique_ptr<ModelServer>> ModelServer::create(
    const ModelServerOptions& options, const common::TimeSource& time) {
  auto batching_config = resolveBatching(options.model_dir, options.batching);
  if (!batching_config.ok()) return batching_config.status();
  auto impl = std::make_unique<Impl>(options, time, batching_config->enabled());
  runtimes::LoadOptions load;
  load.device = options.device;
  // Device buffers hold a whole batch; without batching, a request of up to 256 rows at once.
  load.max_batch_rows = batching_config->enabled() ? batching_config->max_batch_size : 256;
  // One stream per thread that can compute at once.
  load.streams = batching_config->enabled() ? batching_config->instances : options.workers;
  impl->inference.registerModel(options.model_name, options.runtime, options.model_dir,
                                *batching_config, std::move(load));
  impl->startLoading();

  http::ServerOptions http_options = options.http;
  http_options.address = options.host;
  http_options.port = options.http_port;
  http_options.workers = options.workers;
  if (!options.revision.empty()) http_options.response_fields.emplace_back("Kh-Revision", options.revision);
  http_options.server_name = "kh-modelserver";
  auto http_server = http::HttpServer::create(http_options, impl->rest);
  if (!http_server.ok()) return http_server.status();
  impl->http_server = std::move(*http_server);
  // HTTP serves (readiness probes first of all) while the gRPC server is built: on a cold start
  // the pod is ready as soon as the model is, not once every frontend is up.
  impl->inference.setInferDelay(options.infer_delay);
  impl->http_server->start();

  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default; then a port already taken would be shared silently with
  // another server instead of failing.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(common::strCat(options.host, ":", options.grpc_port),
                           grpc::InsecureServerCredentials(), &impl->grpc_port);
  builder.SetMaxReceiveMessageSize(options.grpc_max_message_bytes);
  builder.SetMaxSendMessageSize(options.grpc_max_message_bytes);
  builder.RegisterService(&impl->grpc_service);
  impl->grpc_server = builder.BuildAndStart();
  if (!impl->grpc_server || impl->grpc_port == 0) {
    return absl::UnavailableError(common::strCat("cannot listen for gRPC on ", options.host, ":",
                                                 options.grpc_port));
  }
  return std::unique_ptr<ModelServer>(new ModelServer(std::move(impl)));
}


absl::Status ModelServer::waitForLoad() { return impl_->loaded_future.get(); }

void ModelServer::drain(std::chrono::milliseconds grace) {
  // gRPC waits for its in-flight calls until the deadline, in parallel with HTTP's drain.
  auto deadline = std::chrono::system_clock::now() + grace;
  impl_->http_server->beginDrain();
  spdlog::info("draining: new work refused, {} HTTP request(s) in flight",
               impl_->http_server->activeRequests());
  std::thread grpc_drain([this, deadline] { impl_->grpc_server->Shutdown(deadline); });
  impl_->http_server->drain(grace);
  grpc_drain.join();
}

uint16_t ModelServer::httpPort() const { return impl_->http_server->port(); }
uint16_t ModelServer::grpcPort() const { return static_cast<uint16_t>(impl_->grpc_port); }
InferenceServer& ModelServer::inferenceServer() { return impl_->inference; }

}  // namespace kh::modelserver
