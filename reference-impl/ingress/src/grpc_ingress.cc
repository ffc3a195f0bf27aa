#include "kh/ingress/grpc_ingress.h"

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include "kh/common/strings.h"
#include "kh/grpcproxy/proxy_call.h"

namespace kh::ingress {
namespace {

grpc::StatusCode grpcCodeOf(activator::Rejection why) {
  switch (why) {
    case activator::Rejection::kTimeout: return grpc::StatusCode::DEADLINE_EXCEEDED;
    case activator::Rejection::kCancelled: return grpc::StatusCode::CANCELLED;
    default: return grpc::StatusCode::UNAVAILABLE;
  }
}

}  // namespace

struct GrpcIngress::Impl : grpc::CallbackGenericService {
  Impl(IngressDeps d, GrpcIngressOptions o) : deps(std::move(d)), options(std::move(o)) {}

  class Call;
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override;

  IngressDeps deps;
  GrpcIngressOptions options;
  grpcproxy::ChannelCache channels;
  std::atomic<size_t> round_robin{0};
  std::unique_ptr<grpc::Server> server;
  uint16_t port = 0;
};

class GrpcIngress::Impl::Call final : public grpcproxy::ProxyCall {
 public:
  Call(Impl& impl, grpc::GenericCallbackServerContext* ctx)
      : ProxyCall(ctx), impl_(impl), start_(impl.deps.time->monotonicTime()) {}

  void onRequest() override {
    snapshot_ = impl_.deps.routing->current();
    Destination d = pickDestination(*snapshot_, authority(), method(), *impl_.deps.random, impl_.round_robin);
    if (d.error_status == 404) {
      // KServe's e2e clients: an IP :authority and the service's host as metadata.
      std::string host = clientMetadata("host");
      if (!host.empty()) d = pickDestination(*snapshot_, host, method(), *impl_.deps.random, impl_.round_robin);
    }
    destination_ = std::move(d);
    if (destination_.error_status == 503 && destination_.target != nullptr && destination_.target->activator) {
      held_by_ = destination_.target->activator;
      uint64_t ticket = impl_.deps.activator->hold(held_by_, std::make_unique<Held>(*this));
      ticket_.store(ticket, std::memory_order_release);
      // A cancel that came before the ticket was known is applied now.
      if (cancelled_.load(std::memory_order_acquire)) impl_.deps.activator->cancel(held_by_, ticket);
      return;
    }
    go({}, {});
  }

  // A held call whose client gave up leaves the activator's queue at once.
  void onCancel() override {
    cancelled_.store(true, std::memory_order_release);
    if (uint64_t t = ticket_.load(std::memory_order_acquire); t != 0) impl_.deps.activator->cancel(held_by_, t);
  }

  void onUpstreamDone(const grpc::Status&) override {
    if (in_flight_) in_flight_->fetch_sub(1, std::memory_order_relaxed);
    in_flight_.reset();
    cold_.firstByte();
  }

  void onComplete(const grpc::Status& status) override {
    visit_.end();
    if (destination_.route == nullptr) return;
    impl_.deps.metrics->answered(*destination_.route, destination_.revision, static_cast<int>(status.error_code()),
                                 "grpc",
                                 std::chrono::duration<double>(impl_.deps.time->monotonicTime() - start_).count());
  }

 private:
  // The activator's handle on this call while it is held.
  class Held final : public activator::HeldRequest {
   public:
    explicit Held(Call& call) : call_(call) {}
    void release(activator::Release&& r) override {
      call_.destination_.endpoint = r.endpoint;
      call_.destination_.error_status = 0;
      call_.endpoints_ = std::move(r.endpoints);
      call_.go(std::move(r.visit), std::move(r.cold_start));
    }
    void reject(activator::Rejection why, const std::string& message) override {
      call_.finish(grpc::Status(grpcCodeOf(why), message));
    }

   private:
    Call& call_;
  };

  // Forwards to the destination's pod, or answers why it cannot.
  void go(activator::Visit visit, activator::ColdStartTracker cold) {
    const Destination& d = destination_;
    if (d.error_status != 0 || d.endpoint->grpc_port == 0) {
      bool unknown = d.error_status == 404;
      std::string why = d.error_status != 0 ? d.error : common::strCat("revision ", d.revision, " serves no gRPC");
      return finish(grpc::Status(unknown ? grpc::StatusCode::UNIMPLEMENTED : grpc::StatusCode::UNAVAILABLE, why));
    }
    bool via_activator = d.target != nullptr && d.target->activator && d.target->activator->inPath();
    if (!visit && via_activator) visit = d.target->activator->visit();
    grpcproxy::Metadata extra = {{"knative-serving-revision", std::string(d.revision)},
                                 {"knative-serving-namespace", d.route->namespace_name}};
    if (visit) extra.emplace_back("k-proxy-request", "activator");  // queue-proxy counts it as proxied
    visit_ = std::move(visit);
    cold_ = std::move(cold);
    context().AddInitialMetadata("kh-revision", std::string(d.revision));
    in_flight_ = d.endpoint->in_flight;
    in_flight_->fetch_add(1, std::memory_order_relaxed);
    // The request timeout counts from arrival, time held by the activator included.
    auto remaining = start_ + impl_.options.request_timeout - impl_.deps.time->monotonicTime();
    forward(impl_.channels.get("127.0.0.1", d.endpoint->grpc_port),
            std::chrono::system_clock::now() + std::chrono::duration_cast<std::chrono::system_clock::duration>(remaining),
            extra, {"knative-serving-revision", "knative-serving-namespace", "k-proxy-request"});
  }

  Impl& impl_;
  const common::MonotonicTime start_;
  RoutingSnapshotPtr snapshot_;               // keeps destination_'s views valid
  activator::EndpointListPtr endpoints_;      // the list a held call was released to
  Destination destination_;
  std::shared_ptr<activator::Revision> held_by_;
  std::atomic<uint64_t> ticket_{0};
  std::atomic<bool> cancelled_{false};
  activator::Visit visit_;
  activator::ColdStartTracker cold_;
  std::shared_ptr<std::atomic<int>> in_flight_;
};

grpc::ServerGenericBidiReactor* GrpcIngress::Impl::CreateReactor(grpc::GenericCallbackServerContext* ctx) {
  return new Call(*this, ctx);
}

absl::StatusOr<std::unique_ptr<GrpcIngress>> GrpcIngress::start(IngressDeps deps, GrpcIngressOptions options) {
  auto impl = std::make_unique<Impl>(std::move(deps), std::move(options));
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(common::strCat(impl->options.address, ":", impl->options.port),
                           grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(-1);
  builder.SetMaxSendMessageSize(-1);
  builder.RegisterCallbackGenericService(impl.get());
  impl->server = builder.BuildAndStart();
  if (!impl->server || port == 0) {
    return absl::UnavailableError(
        common::strCat("cannot listen for gRPC on ", impl->options.address, ":", impl->options.port));
  }
  impl->port = static_cast<uint16_t>(port);
  return std::unique_ptr<GrpcIngress>(new GrpcIngress(std::move(impl)));
}

GrpcIngress::GrpcIngress(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GrpcIngress::~GrpcIngress() { stop(); }

uint16_t GrpcIngress::port() const { return impl_->port; }

void GrpcIngress::stop() {
  if (!impl_->server) return;
  impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  impl_->server->Wait();
  impl_->server.reset();
}

}  // namespace kh::ingress
