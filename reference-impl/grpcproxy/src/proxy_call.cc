#include "kh/grpcproxy/proxy_call.h"

#include <algorithm>
#include <array>

namespace kh::grpcproxy {

std::shared_ptr<grpc::Channel> ChannelCache::get(const std::string& host, uint16_t port) {
  auto key = std::make_pair(host, port);
  {
    std::shared_lock lock(mu_);
    auto it = channels_.find(key);
    if (it != channels_.end()) return it->second;
  }
  std::unique_lock lock(mu_);
  auto& channel = channels_[key];
  if (!channel) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    channel = grpc::CreateCustomChannel(host + ":" + std::to_string(port),
                                        grpc::InsecureChannelCredentials(), args);
  }
  return channel;
}

bool isKnownUnaryMethod(std::string_view method) {
  constexpr std::string_view kService = "/inference.GRPCInferenceService/";
  if (method.substr(0, kService.size()) != kService) return false;
  static constexpr std::array<std::string_view, 8> kUnary = {
      "ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer",
      "RepositoryModelLoad", "RepositoryModelUnload"};
  std::string_view name = method.substr(kService.size());
  return std::find(kUnary.begin(), kUnary.end(), name) != kUnary.end();
}

ProxyCall::ProxyCall(grpc::GenericCallbackServerContext* context) : context_(context) {
  StartRead(&request_);
}

std::string ProxyCall::clientMetadata(std::string_view key) const {
  const auto& md = context_->client_metadata();
  auto it = md.find(grpc::string_ref(key.data(), key.size()));
  if (it == md.end()) return {};
  return std::string(it->second.data(), it->second.size());
}

void ProxyCall::forward(std::shared_ptr<grpc::Channel> channel, std::chrono::system_clock::time_point deadline,
                        const Metadata& extra, const std::vector<std::string>& drop) {
  for (const auto& [k, v] : context_->client_metadata()) {
    std::string key(k.data(), k.size());
    if (key.empty() || key[0] == ':' || key.rfind("grpc-", 0) == 0 || key == "user-agent") continue;
    if (std::find(drop.begin(), drop.end(), key) != drop.end()) continue;
    upstream_context_.AddMetadata(key, std::string(v.data(), v.size()));
  }
  for (const auto& [k, v] : extra) upstream_context_.AddMetadata(k, v);
  upstream_context_.set_deadline(std::min(deadline, context_->deadline()));
  stub_ = std::make_unique<grpc::GenericStub>(std::move(channel));
  if (!isKnownUnaryMethod(method())) return startStream();
  stub_->UnaryCall(&upstream_context_, method(), grpc::StubOptions(), &request_, &response_,
                   [this](grpc::Status status) {
                     onUpstreamDone(status);
                     if (!status.ok()) return finish(std::move(status));
                     // A trailers-only OK has no message to relay (writing none would abort).
                     if (!response_.Valid()) {
                       return finish(grpc::Status(grpc::StatusCode::INTERNAL,
                                                  "the upstream returned no message for a unary call"));
                     }
                     final_status_ = grpc::Status::OK;
                     StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
                   });
}

void ProxyCall::finish(grpc::Status status) {
  final_status_ = status;
  Finish(std::move(status));
}

void ProxyCall::OnReadDone(bool ok) {
  if (!streaming_) {
    if (!ok) return finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request message"));
    return onRequest();
  }
  // The client half-closed (passed on), or cancelled (OnCancel cancels the upstream instead).
  if (!ok) return closeClientToUpstream(/*writes_done=*/!context_->IsCancelled());
  {
    std::lock_guard lock(mu_);
    if (!client_to_upstream_open_) return;  // the upstream ended its side: the message has nowhere to go
    writing_upstream_ = true;
  }
  upstream_->StartWrite(&request_);
}

// Upstream: hold (client -> upstream), first message written, first read started, then the call.
void ProxyCall::startStream() {
  streaming_ = true;
  upstream_ = std::make_unique<Upstream>(*this);
  stub_->PrepareBidiStreamingCall(&upstream_context_, method(), grpc::StubOptions(), upstream_.get());
  {
    std::lock_guard lock(mu_);
    client_to_upstream_open_ = true;
    writing_upstream_ = true;
  }
  upstream_->AddHold();
  upstream_->StartWrite(&request_);
  upstream_->StartRead(&response_);
  upstream_->StartCall();
}

void ProxyCall::onUpstreamWriteDone(bool ok) {
  bool read_next = false;
  {
    std::lock_guard lock(mu_);
    writing_upstream_ = false;
    read_next = ok && client_to_upstream_open_ && !upstream_read_ended_;
  }
  if (read_next) return StartRead(&request_);
  closeClientToUpstream(/*writes_done=*/false);
}

void ProxyCall::closeClientToUpstream(bool writes_done) {
  {
    std::lock_guard lock(mu_);
    if (!client_to_upstream_open_ || writing_upstream_) return;
    client_to_upstream_open_ = false;
  }
  if (writes_done) upstream_->StartWritesDone();
  upstream_->RemoveHold();
}

void ProxyCall::onUpstreamReadDone(bool ok) {
  if (ok) {
    // Held while the message is written to the client, so the upstream cannot finish meanwhile.
    upstream_->AddHold();
    StartWrite(&response_);
    return;
  }
  // The upstream has finished sending: client messages have nowhere to go any more.
  bool close = false;
  {
    std::lock_guard lock(mu_);
    upstream_read_ended_ = true;
    close = client_to_upstream_open_ && !writing_upstream_;
    if (close) client_to_upstream_open_ = false;
  }
  if (close) upstream_->RemoveHold();
}

void ProxyCall::OnWriteDone(bool ok) {
  if (!streaming_) return;
  if (ok) {
    upstream_->StartRead(&response_);
  } else {
    upstream_context_.TryCancel();  // the client is gone
  }
  upstream_->RemoveHold();
}

void ProxyCall::onUpstreamFinished(const grpc::Status& status) {
  onUpstreamDone(status);
  finish(status);
}

void ProxyCall::OnDone() {
  onComplete(final_status_);
  delete this;
}

}  // namespace kh::grpcproxy
