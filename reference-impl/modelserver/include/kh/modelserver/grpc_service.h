#pragma once
// The V2 gRPC frontend (inference.GRPCInferenceService) on the callback API: every RPC finishes
// inline on a gRPC thread (inference on these models is short and never waits on I/O).

#include "kh/common/time_source.h"
#include "kh/modelserver/inference_server.h"
#include "kh/modelserver/metrics.h"
#include "kh/protocols/grpc_predict_v2.grpc.pb.h"

namespace kh::modelserver {

class GrpcService final : public inference::GRPCInferenceService::CallbackService {
 public:
  /** `revision`: sent as kh-revision initial metadata of every inference ("" : none). */
  GrpcService(InferenceServer& server, ServerMetrics& metrics, const common::TimeSource& time,
              std::string revision = "");

  // inference::GRPCInferenceService::CallbackService
  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* context,
                                       const inference::ServerLiveRequest* request,
                                       inference::ServerLiveResponse* response) override;
  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* context,
                                        const inference::ServerReadyRequest* request,
                                        inference::ServerReadyResponse* response) override;
  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* context,
                                       const inference::ModelReadyRequest* request,
                                       inference::ModelReadyResponse* response) override;
  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* context,
                                           const inference::ServerMetadataRequest* request,
                                           inference::ServerMetadataResponse* response) override;
  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* context,
                                          const inference::ModelMetadataRequest* request,
                                          inference::ModelMetadataResponse* response) override;
  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* context,
                                       const inference::ModelInferRequest* request,
                                       inference::ModelInferResponse* response) override;
  grpc::ServerUnaryReactor* RepositoryModelLoad(
      grpc::CallbackServerContext* context, const inference::RepositoryModelLoadRequest* request,
      inference::RepositoryModelLoadResponse* response) override;
  grpc::ServerUnaryReactor* RepositoryModelUnload(
      grpc::CallbackServerContext* context, const inference::RepositoryModelUnloadRequest* request,
      inference::RepositoryModelUnloadResponse* response) override;

 private:
  grpc::ServerUnaryReactor* finish(grpc::CallbackServerContext* context, Endpoint endpoint,
                                   common::MonotonicTime started, const absl::Status& status);

  InferenceServer& server_;
  ServerMetrics& metrics_;
  const common::TimeSource& time_;
  const std::string revision_;
};

/** @return the gRPC status for an absl::Status (the codes are the same). */
grpc::Status toGrpcStatus(const absl::Status& status);

}  // namespace kh::modelserver
