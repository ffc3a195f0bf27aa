// The gRPC ingress: any method (unary or streaming), routed by :authority exactly as the HTTP
// ingress routes by Host, forwarded as raw bytes (kh::grpcproxy) to the chosen pod's gRPC port
// (its queue-proxy's, which applies the breaker and counts the call for the autoscaler) with the
// caller's metadata and a deadline of the revision timeout. The initial metadata names the
// revision that served (kh-revision). A call for a revision at zero pods is held by the
// activator, as HTTP requests are: bounded, poking the autoscaler, released when a pod is ready,
// DEADLINE_EXCEEDED after the revision timeout. A stream is routed when its first message arrives.

#include <algorithm>
#include <deque>
#include <optional>
#include <mutex>

#include "kh/common/strings.h"
#include "kh/grpcproxy/proxy_call.h"
#include "stack_impl.h"

namespace kh::refstack {

class GrpcIngressService : public grpc::CallbackGenericService {
 public:
  explicit GrpcIngressService(StackImpl& stack) : stack_(stack) {}

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    return new Call(*this, ctx);
  }

  void onRoutes(const std::shared_ptr<const RoutingSnapshot>& snapshot);
  void expireHeld(common::MonotonicTime now);
  /** From now on calls are refused instead of held (the server is stopping). */
  void stopHolding() {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }

 private:
  class Call;
  struct Held {
    Call* call;
    common::MonotonicTime arrival;
    std::chrono::steady_clock::time_point start;  // the revision timeout counts from here
    std::shared_ptr<RevisionScaling> scaling;
    ActivatorVisit visit;
    bool cold_tracked;
  };

  class Call : public grpcproxy::ProxyCall {
   public:
    Call(GrpcIngressService& service, grpc::GenericCallbackServerContext* ctx)
        : ProxyCall(ctx), service_(service), start_(std::chrono::steady_clock::now()) {}

    void onRequest() override {
      auto snapshot = service_.stack_.routing.load();
      Destination d = pickDestination(*snapshot, authority(), method());
      if (d.error_status == 503 && !d.revision.empty()) {
        auto sc = snapshot->scaling.find(d.revision);
        if (sc != snapshot->scaling.end()) {
          // Route and revision, for the metrics; the snapshot keeps the route alive.
          destination_ = d;
          snapshot_ = snapshot;
          return service_.park(this, sc->second);
        }
      }
      go(std::move(snapshot), std::move(d), {}, nullptr, start_);
    }

    // A held call whose client gave up leaves the activator's queue at once.
    void onCancel() override { service_.unpark(this); }

    // Forwards to the destination's pod, or answers why it cannot.
    void go(std::shared_ptr<const RoutingSnapshot> snapshot, Destination d, ActivatorVisit visit,
            std::shared_ptr<RevisionScaling> cold, std::chrono::steady_clock::time_point start) {
      snapshot_ = std::move(snapshot);
      destination_ = std::move(d);
      if (destination_.error_status != 0 || destination_.endpoint->grpc_port == 0) {
        if (cold) service_.stack_.abandonColdStart(*cold);
        bool unknown = destination_.error_status == 404;
        std::string why = destination_.error_status != 0
                              ? destination_.error
                              : common::strCat("revision ", destination_.revision, " serves no gRPC");
        return finish(grpc::Status(unknown ? grpc::StatusCode::UNIMPLEMENTED : grpc::StatusCode::UNAVAILABLE, why));
      }
      auto& stack = service_.stack_;
      grpcproxy::Metadata extra = {{"knative-serving-revision", destination_.revision},
                                   {"knative-serving-namespace", destination_.route->namespace_name}};
      if (auto sc = snapshot_->scaling.find(destination_.revision); sc != snapshot_->scaling.end()) {
        if (!visit && sc->second->activator_in_path) visit = ActivatorVisit(sc->second, stack.time);
      }
      if (visit) extra.emplace_back("k-proxy-request", "activator");  // queue-proxy counts it as proxied
      visit_ = std::move(visit);
      cold_ = std::move(cold);
      context().AddInitialMetadata("kh-revision", destination_.revision);
      destination_.endpoint->in_flight->fetch_add(1, std::memory_order_relaxed);
      in_flight_ = true;
      // The revision timeout counts from arrival, time held by the activator included.
      auto remaining = start + stack.config.revision_timeout - std::chrono::steady_clock::now();
      forward(service_.channels_.get("127.0.0.1", destination_.endpoint->grpc_port),
              std::chrono::system_clock::now() +
                  std::chrono::duration_cast<std::chrono::system_clock::duration>(remaining),
              extra,
              {"knative-serving-revision", "knative-serving-namespace", "k-proxy-request"});
    }

    void onUpstreamDone(const grpc::Status&) override {
      if (in_flight_) destination_.endpoint->in_flight->fetch_sub(1, std::memory_order_relaxed);
      in_flight_ = false;
      if (cold_) service_.stack_.recordColdStart(*cold_);
      cold_.reset();
    }

    std::chrono::steady_clock::time_point startTime() const { return start_; }

    void onComplete(const grpc::Status& status) override {
      visit_.end();
      if (destination_.route == nullptr) return;
      auto& m = service_.stack_.metrics;
      m.requestCounter(destination_.route->isvc, destination_.route->namespace_name, destination_.revision,
                       static_cast<int>(status.error_code()), "grpc")
          .Increment();
      m.latencyHistogram(destination_.route->isvc, destination_.route->namespace_name, "grpc")
          .Observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
    }

    using ProxyCall::context;
    using ProxyCall::finish;
    using ProxyCall::method;
    using ProxyCall::authority;

   private:
    GrpcIngressService& service_;
    std::chrono::steady_clock::time_point start_;
    std::shared_ptr<const RoutingSnapshot> snapshot_;
    Destination destination_;
    ActivatorVisit visit_;
    std::shared_ptr<RevisionScaling> cold_;
    bool in_flight_ = false;
  };

  // The activator's gRPC side: holds the call until a pod of the revision is ready.
  void park(Call* call, const std::shared_ptr<RevisionScaling>& scaling) {
    auto now = stack_.time.monotonicTime();
    bool cold_tracked = false;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return call->finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "refstack is stopping"));
      if (call->context().IsCancelled()) return call->finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled"));
      if (static_cast<size_t>(scaling->activator_held.load(std::memory_order_relaxed)) >=
          stack_.config.activator_queue_limit) {
        return call->finish(grpc::Status(
            grpc::StatusCode::UNAVAILABLE,
            common::strCat("activator queue for revision ", scaling->revision, " is full (",
                           stack_.config.activator_queue_limit, " requests wait for pods)")));
      }
      cold_tracked = stack_.beginColdStart(*scaling, now);
      scaling->activator_held.fetch_add(1, std::memory_order_relaxed);
      held_[scaling->revision].push_back(
          {call, now, call->startTime(), scaling, ActivatorVisit(scaling, stack_.time), cold_tracked});
    }
    stack_.poke(scaling->revision);
    // A pod may have become ready between the routing decision and the parking.
    onRoutes(stack_.routing.load());
  }

  void release(const std::shared_ptr<const RoutingSnapshot>& snapshot, Held&& h) {
    h.scaling->activator_held.fetch_sub(1, std::memory_order_relaxed);
    const std::string& revision = h.scaling->revision;
    Destination d = pickDestination(*snapshot, h.call->authority(), h.call->method());
    auto eps = snapshot->endpoints.find(revision);
    if (d.route == nullptr || eps == snapshot->endpoints.end() || eps->second.empty()) {
      if (h.cold_tracked) stack_.abandonColdStart(*h.scaling);
      return h.call->finish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                         common::strCat("revision ", revision, " went away while the call waited")));
    }
    d.revision = revision;
    d.error_status = 0;
    d.endpoint = chooseEndpoint(eps->second, h.scaling->settings.container_concurrency);
    if (h.cold_tracked) stack_.coldStartForwarded(*h.scaling);
    h.call->go(snapshot, std::move(d), std::move(h.visit), h.cold_tracked ? h.scaling : nullptr, h.start);
  }

  // The client cancelled: a call still held is removed and ended here (whoever takes it out of
  // held_ under mu_ owns it); one already released is ended by its cancelled upstream.
  void unpark(Call* call) {
    std::optional<Held> found;
    {
      std::lock_guard lock(mu_);
      for (auto& [rev, queue] : held_) {
        auto it = std::find_if(queue.begin(), queue.end(), [&](const Held& h) { return h.call == call; });
        if (it != queue.end()) {
          found.emplace(std::move(*it));
          queue.erase(it);
          break;
        }
      }
    }
    if (!found) return;
    found->scaling->activator_held.fetch_sub(1, std::memory_order_relaxed);
    if (found->cold_tracked) stack_.abandonColdStart(*found->scaling);
    found->call->finish(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled while held by the activator"));
  }

  StackImpl& stack_;
  grpcproxy::ChannelCache channels_;
  std::mutex mu_;
  std::unordered_map<std::string, std::deque<Held>> held_;  // revision -> waiting calls
  bool stopping_ = false;  // guarded by mu_
};

void GrpcIngressService::onRoutes(const std::shared_ptr<const RoutingSnapshot>& snapshot) {
  std::vector<Held> out;
  {
    std::lock_guard lock(mu_);
    for (auto it = held_.begin(); it != held_.end();) {
      auto eps = snapshot->endpoints.find(it->first);
      if (eps != snapshot->endpoints.end() && !eps->second.empty()) {
        for (auto& h : it->second) out.push_back(std::move(h));
        it = held_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& h : out) release(snapshot, std::move(h));
}

void GrpcIngressService::expireHeld(common::MonotonicTime now) {
  std::vector<Held> expired;
  {
    std::lock_guard lock(mu_);
    for (auto& [rev, queue] : held_) {
      while (!queue.empty() && now - queue.front().arrival >= stack_.config.revision_timeout) {
        expired.push_back(std::move(queue.front()));
        queue.pop_front();
      }
    }
  }
  for (auto& h : expired) {
    h.scaling->activator_held.fetch_sub(1, std::memory_order_relaxed);
    if (h.cold_tracked) stack_.abandonColdStart(*h.scaling);
    h.call->finish(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "activator request timeout"));
  }
}

void grpcIngressOnRoutes(StackImpl& stack, const std::shared_ptr<const RoutingSnapshot>& snapshot) {
  if (stack.grpc_ingress_service) static_cast<GrpcIngressService&>(*stack.grpc_ingress_service).onRoutes(snapshot);
}

void grpcIngressExpireHeld(StackImpl& stack, common::MonotonicTime now) {
  if (stack.grpc_ingress_service) static_cast<GrpcIngressService&>(*stack.grpc_ingress_service).expireHeld(now);
}

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
    // Held calls cannot wait for pods any more: answer them before the server waits for them,
    // and hold no new ones.
    static_cast<GrpcIngressService&>(*stack.grpc_ingress_service).stopHolding();
    grpcIngressExpireHeld(stack, common::MonotonicTime::max());
    stack.grpc_ingress->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    stack.grpc_ingress->Wait();
  }
  stack.grpc_ingress.reset();
}

}  // namespace kh::refstack
