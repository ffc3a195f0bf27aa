#pragma once
// Forwarding of unary gRPC calls as raw bytes, for proxies (the gRPC ingress, the activator, the
// queue-proxy). A proxy registers a grpc::CallbackGenericService whose CreateReactor returns a
// subclass of UnaryProxyCall; the call reads the one request message, asks the subclass where it
// goes (onRequest), and relays the upstream's answer. Nothing is decoded, so any unary method of
// any service passes through; streaming methods are refused with UNIMPLEMENTED by the upstream
// (a second request message is never read).

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
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
  std::map<std::pair<std::string, uint16_t>, std::shared_ptr<grpc::Channel>> channels_;
};

using Metadata = std::vector<std::pair<std::string, std::string>>;

/**
 * One proxied unary call. Created by a CallbackGenericService's CreateReactor (it starts reading
 * at once) and deleted by gRPC when the call is over. The subclass decides in onRequest(), and
 * must then, exactly once, either forward() or finish(), at once or later from any thread (the
 * activator holds calls while a revision scales from zero). Until then the call stays open even
 * if the client cancels: a call is never dropped without an answer.
 */
class UnaryProxyCall : public grpc::ServerGenericBidiReactor {
 public:
  explicit UnaryProxyCall(grpc::GenericCallbackServerContext* context);

 protected:
  ~UnaryProxyCall() override = default;

  /** The request message has arrived (runs on a gRPC thread; must not block). */
  virtual void onRequest() = 0;
  /** The upstream answered (or failed) and its status is about to be relayed. */
  virtual void onUpstreamDone(const grpc::Status& status) {}
  /** The call is over; the object is deleted right after. */
  virtual void onComplete(const grpc::Status& status) {}

  /**
   * Sends the request to `channel` with the caller's metadata (less pseudo-headers, grpc-* and
   * user-agent, and keys in `drop`) plus `extra`, under `deadline` (the earlier of it and the
   * caller's own), and relays the response or the upstream's status.
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
  void OnReadDone(bool ok) override;
  // The client went away or the server is shutting down: the upstream call is cancelled too
  // (at once, or when it starts), so the call ends instead of waiting for the upstream.
  void OnCancel() override { upstream_.TryCancel(); }
  void OnDone() override;

  grpc::GenericCallbackServerContext* context_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  grpc::ClientContext upstream_;
  // The stub lives as long as the call: the call refers to its channel.
  std::unique_ptr<grpc::GenericStub> stub_;
  grpc::Status final_status_;
};

}  // namespace kh::grpcproxy
