#pragma once
// Forwarding of gRPC calls as raw bytes, for proxies (the gRPC ingress, the activator, the
// queue-proxy). A proxy registers a grpc::CallbackGenericService whose CreateReactor returns a
// subclass of ProxyCall; the call reads the first request message, asks the subclass where it
// goes (onRequest), and relays the rest. Nothing is decoded, so any method of any service passes.
//
// Two paths: the methods of KServe's V2 service (all unary) take a unary call upstream, the
// cheapest relay; any other method is relayed as a bidirectional stream, message by message in
// both directions with one message in flight each way (flow control is the peers'), half-close
// and status passed on, so client-, server- and bidi-streaming methods work as unary ones do.
// A streaming method whose server speaks before the client's first message is not supported: the
// route is chosen once that message has arrived.

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kh::grpcproxy {

/**
 * Insecure channels to loopback ports, made once per port and shared by every call (a channel
 * multiplexes calls over its HTTP/2 connection). Unlimited message sizes: limits are the
 * upstream's to enforce, in its own words. Thread-safe.
 */
class ChannelCache {
 public:
  std::shared_ptr<grpc::Channel> get(const std::string& host, uint16_t port);

 private:
  std::shared_mutex mu_;
  std::map<std::pair<std::string, uint16_t>, std::shared_ptr<grpc::Channel>> channels_ ABSL_GUARDED_BY(mu_);
};

using Metadata = std::vector<std::pair<std::string, std::string>>;

/** Whether `method` ("/package.Service/Method") is known to be unary (KServe's V2 service). */
bool isKnownUnaryMethod(std::string_view method);

/**
 * One proxied call. Created by a CallbackGenericService's CreateReactor (it starts reading at
 * once) and deleted by gRPC when the call is over. The subclass decides in onRequest(), and must
 * then, exactly once, either forward() or finish(), at once or later from any thread (the
 * activator holds calls while a revision scales from zero). Until then the call stays open even
 * if the client cancels: a call is never dropped without an answer.
 */
class ProxyCall : public grpc::ServerGenericBidiReactor {
 public:
  explicit ProxyCall(grpc::GenericCallbackServerContext* context);

 protected:
  ~ProxyCall() override = default;

  /** The first request message has arrived (runs on a gRPC thread; must not block). */
  virtual void onRequest() = 0;
  /**
   * The client cancelled (or the server is shutting down), on a gRPC thread. A subclass holding
   * the call before forward() (queued, parked) should finish() it now if it still can; once
   * forwarded, the upstream call is cancelled and the call ends by itself.
   */
  virtual void onCancel() {}
  /** The upstream call ended (its status is about to be relayed). */
  virtual void onUpstreamDone(const grpc::Status& status) {}
  /** The call is over; the object is deleted right after. */
  virtual void onComplete(const grpc::Status& status) {}

  /**
   * Sends the call to `channel` with the caller's metadata (less pseudo-headers, grpc-* and
   * user-agent, and keys in `drop`) plus `extra`, under `deadline` (the earlier of it and the
   * caller's own), and relays the response messages and the upstream's status.
   */
  void forward(std::shared_ptr<grpc::Channel> channel, std::chrono::system_clock::time_point deadline,
               const Metadata& extra = {}, const std::vector<std::string>& drop = {});
  /** Ends the call with `status` (an error; an OK status sends no message). */
  void finish(grpc::Status status);

  grpc::GenericCallbackServerContext& context() { return *context_; }
  /** The method, e.g. "/inference.GRPCInferenceService/ModelInfer". */
  const std::string& method() const { return context_->method(); }
  /** The :authority the client called. */
  const std::string& authority() const { return context_->host(); }
  /** The first value of a metadata key the client sent ("" when absent; keys are lowercase). */
  std::string clientMetadata(std::string_view key) const;

 private:
  // The upstream half of a streamed relay.
  class Upstream : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
   public:
    explicit Upstream(ProxyCall& call) : call_(call) {}
    void OnWriteDone(bool ok) override { call_.onUpstreamWriteDone(ok); }
    void OnWritesDoneDone(bool) override {}
    void OnReadDone(bool ok) override { call_.onUpstreamReadDone(ok); }
    void OnDone(const grpc::Status& status) override { call_.onUpstreamFinished(status); }

   private:
    ProxyCall& call_;
  };

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  // The client went away or the server is shutting down: the upstream call is cancelled too
  // (at once, or when it starts), so the call ends instead of waiting for the upstream.
  void OnCancel() override {
    upstream_context_.TryCancel();
    onCancel();
  }
  void OnDone() override;

  void startStream();
  void onUpstreamWriteDone(bool ok);
  void onUpstreamReadDone(bool ok);
  void onUpstreamFinished(const grpc::Status& status);
  // Gives up the hold that keeps the upstream open for client messages (once).
  void closeClientToUpstream(bool writes_done);

  grpc::GenericCallbackServerContext* context_;
  grpc::ByteBuffer request_;   // client -> upstream, one message at a time
  grpc::ByteBuffer response_;  // upstream -> client, one message at a time
  grpc::ClientContext upstream_context_;
  // The stub lives as long as the call: the call refers to its channel.
  std::unique_ptr<grpc::GenericStub> stub_;
  std::unique_ptr<Upstream> upstream_;
  bool streaming_ = false;  // set before any second read or any write can complete
  grpc::Status final_status_;

  // Client -> upstream direction of a stream: the hold on the upstream that lets further
  // messages be written; given up on the client's half-close, a failed write, or the upstream
  // ending its side. Reads of the client and writes upstream alternate, so only the ending
  // races with them.
  std::mutex mu_;
  bool client_to_upstream_open_ ABSL_GUARDED_BY(mu_) = false;  // the hold is held
  bool writing_upstream_ ABSL_GUARDED_BY(mu_) = false;         // a client message is being written upstream
  bool upstream_read_ended_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace kh::grpcproxy
