#pragma once
// The REST frontend: V1 and V2 (Open Inference Protocol) endpoints on one port, plus `/` and
// `/metrics`, over kh::http. Errors are {"error": "..."} with KServe's status codes.

#include "kh/common/time_source.h"
#include "kh/http/server.h"
#include "kh/modelserver/inference_server.h"
#include "kh/modelserver/metrics.h"

namespace kh::modelserver {

class RestHandler final : public http::Handler {
 public:
  /**
   * `async_infer`: answer inference requests asynchronously (InferenceServer::inferAsync), so
   * that worker threads are free while requests wait for a batch; set when the model batches.
   * Otherwise every request is answered inline on its worker.
   */
  RestHandler(const InferenceServer& server, InferenceServer& mutable_server,
              ServerMetrics& metrics, const common::TimeSource& time, bool async_infer = false);

  // kh::http::Handler
  void handle(http::Request& request, http::Response& response) override;
  bool isAsync() const override { return async_infer_; }
  void handleAsync(http::Request&& request, http::Responder responder) override;

 private:
  const bool async_infer_;
  const InferenceServer& server_;
  InferenceServer& repository_;  // for the model repository extension (load/unload)
  ServerMetrics& metrics_;
  const common::TimeSource& time_;
};

}  // namespace kh::modelserver
