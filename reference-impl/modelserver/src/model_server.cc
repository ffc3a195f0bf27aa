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

struct ModelServer::Impl {
  Impl(const ModelServerOptions& opts, const common::TimeSource& t)
      : options(opts),
        time(t),
        inference("kserve-harness-modelserver", kServerVersion),
        rest(inference, inference, metrics, time),
        grpc_service(inference, metrics, time) {}
  ~Impl() {
    if (loader.joinable()) loader.join();
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
  InferenceServer inference;
  ServerMetrics metrics;
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
  if (impl_->grpc_server) impl_->grpc_server->Shutdown(std::chrono::system_clock::now());
}

absl::StatusOr<std::unique_ptr<ModelServer>> ModelServer::create(
    const ModelServerOptions& options, const common::TimeSource& time) {
  auto impl = std::make_unique<Impl>(options, time);
  impl->inference.registerModel(options.model_name, options.runtime, options.model_dir);
  impl->startLoading();

  http::ServerOptions http_options = options.http;
  http_options.address = options.host;
  http_options.port = options.http_port;
  http_options.workers = options.workers;
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
