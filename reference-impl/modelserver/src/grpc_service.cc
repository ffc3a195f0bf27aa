#include "kh/modelserver/grpc_service.h"

#include "kh/common/strings.h"
#include "kh/protocols/proto_convert.h"

namespace kh::modelserver {

grpc::Status toGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(common::toStd(status.message())));
}

GrpcService::GrpcService(InferenceServer& server, ServerMetrics& metrics,
                         const common::TimeSource& time, std::string revision)
    : server_(server), metrics_(metrics), time_(time), revision_(std::move(revision)) {}

grpc::ServerUnaryReactor* GrpcService::finish(grpc::CallbackServerContext* context,
                                              Endpoint endpoint, common::MonotonicTime started,
                                              const absl::Status& status) {
  double seconds = std::chrono::duration<double>(time_.monotonicTime() - started).count();
  // The HTTP code column of the metric carries the gRPC code's HTTP equivalent.
  metrics_.record(Protocol::kGrpc, endpoint, statusToHttp(status), seconds);
  auto* reactor = context->DefaultReactor();
  reactor->Finish(toGrpcStatus(status));
  return reactor;
}

grpc::ServerUnaryReactor* GrpcService::ServerLive(grpc::CallbackServerContext* context,
                                                  const inference::ServerLiveRequest*,
                                                  inference::ServerLiveResponse* response) {
  auto started = time_.monotonicTime();
  response->set_live(server_.live());
  return finish(context, Endpoint::kServerLive, started, absl::OkStatus());
}

grpc::ServerUnaryReactor* GrpcService::ServerReady(grpc::CallbackServerContext* context,
                                                   const inference::ServerReadyRequest*,
                                                   inference::ServerReadyResponse* response) {
  auto started = time_.monotonicTime();
  response->set_ready(server_.ready());
  return finish(context, Endpoint::kServerReady, started, absl::OkStatus());
}

grpc::ServerUnaryReactor* GrpcService::ModelReady(grpc::CallbackServerContext* context,
                                                  const inference::ModelReadyRequest* request,
                                                  inference::ModelReadyResponse* response) {
  auto started = time_.monotonicTime();
  auto ready = server_.modelReady(request->name(), request->version());
  if (ready.ok()) response->set_ready(*ready);
  return finish(context, Endpoint::kModelReady, started, ready.status());
}

grpc::ServerUnaryReactor* GrpcService::ServerMetadata(grpc::CallbackServerContext* context,
                                                      const inference::ServerMetadataRequest*,
                                                      inference::ServerMetadataResponse* response) {
  auto started = time_.monotonicTime();
  response->set_name(server_.name());
  response->set_version(server_.version());
  for (const auto& e : server_.extensions()) response->add_extensions(e);
  return finish(context, Endpoint::kServerMetadata, started, absl::OkStatus());
}

grpc::ServerUnaryReactor* GrpcService::ModelMetadata(grpc::CallbackServerContext* context,
                                                     const inference::ModelMetadataRequest* request,
                                                     inference::ModelMetadataResponse* response) {
  auto started = time_.monotonicTime();
  auto meta = server_.modelMetadata(request->name(), request->version());
  if (meta.ok()) protocols::metadataToProto(*meta, response);
  return finish(context, Endpoint::kModelMetadata, started, meta.status());
}

grpc::ServerUnaryReactor* GrpcService::ModelInfer(grpc::CallbackServerContext* context,
                                                  const inference::ModelInferRequest* request,
                                                  inference::ModelInferResponse* response) {
  auto started = time_.monotonicTime();
  if (!revision_.empty()) context->AddInitialMetadata("kh-revision", revision_);
  auto decoded = protocols::requestFromProto(*request);
  if (!decoded.ok()) return finish(context, Endpoint::kInfer, started, decoded.status());
  bool raw = request->raw_input_contents_size() > 0;
  if (server_.batches(request->model_name())) {
    // Answered from the batcher's thread once the batch has run; a call the client cancelled
    // (or whose deadline passed) leaves the queue unrun.
    auto* reactor = context->DefaultReactor();
    server_.inferAsync(
        request->model_name(), std::move(*decoded),
        [this, reactor, response, raw, started](absl::StatusOr<protocols::InferenceResponse> result) {
          // Answer in the form the client used: raw contents for raw requests.
          if (result.ok()) protocols::responseToProto(*result, raw, response);
          double seconds = std::chrono::duration<double>(time_.monotonicTime() - started).count();
          metrics_.record(Protocol::kGrpc, Endpoint::kInfer, statusToHttp(result.status()), seconds);
          reactor->Finish(toGrpcStatus(result.status()));
        },
        [context] { return context->IsCancelled(); });
    return reactor;
  }
  auto result = server_.infer(request->model_name(), std::move(*decoded));
  if (result.ok()) protocols::responseToProto(*result, raw, response);
  return finish(context, Endpoint::kInfer, started, result.status());
}

grpc::ServerUnaryReactor* GrpcService::RepositoryModelLoad(
    grpc::CallbackServerContext* context, const inference::RepositoryModelLoadRequest* request,
    inference::RepositoryModelLoadResponse* response) {
  auto started = time_.monotonicTime();
  absl::Status st = server_.loadModel(request->model_name());
  response->set_model_name(request->model_name());
  response->set_isloaded(st.ok());
  if (!st.ok() && st.code() != absl::StatusCode::kNotFound) {
    st = absl::UnavailableError(common::strCat("Model with name ", request->model_name(),
                                               " failed to load: ", common::toStd(st.message())));
  }
  return finish(context, Endpoint::kRepository, started, st);
}

grpc::ServerUnaryReactor* GrpcService::RepositoryModelUnload(
    grpc::CallbackServerContext* context, const inference::RepositoryModelUnloadRequest* request,
    inference::RepositoryModelUnloadResponse* response) {
  auto started = time_.monotonicTime();
  absl::Status st = server_.unloadModel(request->model_name());
  response->set_model_name(request->model_name());
  response->set_isunloaded(st.ok());
  return finish(context, Endpoint::kRepository, started, st);
}

}  // namespace kh::modelserver
