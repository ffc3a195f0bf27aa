// The gRPC ingress: any unary method, routed by :authority exactly as the HTTP ingress routes by
// Host, forwarded as raw bytes (no proto knowledge) to the chosen pod's gRPC port with the
// caller's metadata and a deadline of the revision timeout. The initial metadata names the
// revision that served (kh-revision). Streaming methods are not proxied.

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <shared_mutex>

#include "kh/common/strings.h"
#include "stack_impl.h"

namespace kh::refstack {

class GrpcIngressService : public grpc::CallbackGenericService {
 public:
  explicit GrpcIngressService(StackImpl& stack) : stack_(stack) {}

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    return new Call(*this, ctx);
  }

  std::shared_ptr<grpc::Channel> channel(uint16_t port) {
    {
      std::shared_lock lock(mu_);
      auto it = channels_.find(port);
      if (it != channels_.end()) return it->second;
    }
    std::unique_lock lock(mu_);
    auto& c = channels_[port];
    if (!c) {
      grpc::ChannelArguments args;
      args.SetMaxReceiveMessageSize(-1);
      args.SetMaxSendMessageSize(-1);
      c = grpc::CreateCustomChannel(common::strCat("127.0.0.1:", port), grpc::InsecureChannelCredentials(), args);
    }
    return c;
  }

 private:
  class Call : public grpc::ServerGenericBidiReactor {
   public:
    Call(GrpcIngressService& service, grpc::GenericCallbackServerContext* ctx)
        : service_(service), ctx_(ctx), start_(std::chrono::steady_clock::now()) {
      StartRead(&request_);
    }

    void OnReadDone(bool ok) override {
      if (!ok) return Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request message"));
      snapshot_ = service_.stack_.routing.load();
      destination_ = pickDestination(*snapshot_, ctx_->host(), ctx_->method());
      if (destination_.error_status != 0 || destination_.endpoint->grpc_port == 0) {
        bool unknown = destination_.error_status == 404;
        std::string why = destination_.error_status != 0
                              ? destination_.error
                              : common::strCat("revision ", destination_.revision, " serves no gRPC");
        count(unknown ? grpc::StatusCode::UNIMPLEMENTED : grpc::StatusCode::UNAVAILABLE);
        return Finish(grpc::Status(unknown ? grpc::StatusCode::UNIMPLEMENTED : grpc::StatusCode::UNAVAILABLE, why));
      }
      ctx_->AddInitialMetadata("kh-revision", destination_.revision);
      for (const auto& [k, v] : ctx_->client_metadata()) {
        std::string key(k.data(), k.size());
        if (key.empty() || key[0] == ':' || key.rfind("grpc-", 0) == 0 || key == "user-agent") continue;
        upstream_.AddMetadata(key, std::string(v.data(), v.size()));
      }
      upstream_.AddMetadata("knative-serving-revision", destination_.revision);
      upstream_.set_deadline(std::chrono::system_clock::now() + service_.stack_.config.revision_timeout);
      // The stub lives as long as the call: the call refers to its channel.
      stub_ = std::make_unique<grpc::GenericStub>(service_.channel(destination_.endpoint->grpc_port));
      stub_->UnaryCall(&upstream_, ctx_->method(), grpc::StubOptions(), &request_, &response_,
                       [this](grpc::Status status) {
                         // Count first: once finished, the reactor may be deleted at any time.
                         count(status.error_code());
                         if (!status.ok()) return Finish(status);
                         StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
                       });
    }

    void OnDone() override { delete this; }

   private:
    void count(grpc::StatusCode code) {
      if (destination_.route == nullptr) return;
      auto& m = service_.stack_.metrics;
      m.requestCounter(destination_.route->isvc, destination_.route->namespace_name,
                       destination_.revision, static_cast<int>(code), "grpc")
          .Increment();
      m.latencyHistogram(destination_.route->isvc, destination_.route->namespace_name, "grpc")
          .Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
    }

    GrpcIngressService& service_;
    grpc::GenericCallbackServerContext* ctx_;
    std::chrono::steady_clock::time_point start_;
    grpc::ByteBuffer request_;
    grpc::ByteBuffer response_;
    grpc::ClientContext upstream_;
    std::shared_ptr<const RoutingSnapshot> snapshot_;
    Destination destination_;
    std::unique_ptr<grpc::GenericStub> stub_;
  };

  StackImpl& stack_;
  std::shared_mutex mu_;
  std::map<uint16_t, std::shared_ptr<grpc::Channel>> channels_;
};

absl::Status startGrpcIngress(StackImpl& stack) {
  stack.grpc_ingress_service = std::make_unique<GrpcIngressService>(stack);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(common::strCat(stack.config.address, ":", stack.config.grpc_ingress_port),
                           grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(-1);
  builder.SetMaxSendMessageSize(-1);
  builder.RegisterCallbackGenericService(stack.grpc_ingress_service.get());
  stack.grpc_ingress = builder.BuildAndStart();
  if (!stack.grpc_ingress || port == 0) {
    return absl::UnavailableError(common::strCat("cannot listen for gRPC on ", stack.config.address, ":",
                                                 stack.config.grpc_ingress_port));
  }
  stack.grpc_ingress_port = static_cast<uint16_t>(port);
  return absl::OkStatus();
}

void stopGrpcIngress(StackImpl& stack) {
  if (stack.grpc_ingress) {
    stack.grpc_ingress->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    stack.grpc_ingress->Wait();
  }
  stack.grpc_ingress.reset();
}

}  // namespace kh::refstack
