#include "kh/grpcproxy/unary_proxy.h"

#include <algorithm>
#include <mutex>

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

UnaryProxyCall::UnaryProxyCall(grpc::GenericCallbackServerContext* context) : context_(context) {
  StartRead(&request_);
}

void UnaryProxyCall::OnReadDone(bool ok) {
  if (!ok) return finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request message"));
  onRequest();
}

std::string UnaryProxyCall::clientMetadata(std::string_view key) const {
  const auto& md = context_->client_metadata();
  auto it = md.find(grpc::string_ref(key.data(), key.size()));
  if (it == md.end()) return {};
  return std::string(it->second.data(), it->second.size());
}

void UnaryProxyCall::forward(std::shared_ptr<grpc::Channel> channel,
                             std::chrono::system_clock::time_point deadline, const Metadata& extra,
                             const std::vector<std::string>& drop) {
  for (const auto& [k, v] : context_->client_metadata()) {
    std::string key(k.data(), k.size());
    if (key.empty() || key[0] == ':' || key.rfind("grpc-", 0) == 0 || key == "user-agent") continue;
    if (std::find(drop.begin(), drop.end(), key) != drop.end()) continue;
    upstream_.AddMetadata(key, std::string(v.data(), v.size()));
  }
  for (const auto& [k, v] : extra) upstream_.AddMetadata(k, v);
  upstream_.set_deadline(std::min(deadline, context_->deadline()));
  stub_ = std::make_unique<grpc::GenericStub>(std::move(channel));
  stub_->UnaryCall(&upstream_, context_->method(), grpc::StubOptions(), &request_, &response_,
                   [this](grpc::Status status) {
                     onUpstreamDone(status);
                     if (!status.ok()) return finish(std::move(status));
                     final_status_ = grpc::Status::OK;
                     StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
                   });
}

void UnaryProxyCall::finish(grpc::Status status) {
  final_status_ = status;
  Finish(std::move(status));
}

void UnaryProxyCall::OnDone() {
  onComplete(final_status_);
  delete this;
}

}  // namespace kh::grpcproxy
