// The autoscaler loop (Knative's KPA, per revision): every tick/2 it scrapes each ready pod's
// queue-proxy stats and the activator's held requests into 1 s buckets; every tick (and at once
// on a poke from the activator) it decides the desired pod count, applies min/max bounds and the
// scale-to-zero rules, puts the activator in or out of the path by excess burst capacity, and
// hands changes to the reconciler, which starts or stops pods.

#include <cmath>

#include "kh/common/strings.h"
#include "kh/http/client.h"
#include "stack_impl.h"

namespace kh::refstack {

std::shared_ptr<RevisionScaling> StackImpl::scalingForLocked(
    const std::string& service, const std::string& revision, const ctl::ComponentExtension& component,
    const std::map<std::string, std::string>& annotations) {
  auto& entry = scaling[revision];
  if (entry) return entry;
  auto settings = resolveScalingSettings(config.autoscaler, component, annotations);
  if (!settings.ok()) return nullptr;
  entry = std::make_shared<RevisionScaling>();
  entry->service = service;
  entry->revision = revision;
  entry->settings = *settings;
  auto now = time.monotonicTime();
  entry->decider = std::make_unique<RevisionDecider>(*settings, now);
  int initial = std::max(settings->initial_scale, settings->min_scale);
  if (settings->max_scale > 0) initial = std::min(initial, settings->max_scale);
  entry->desired = initial;
  entry->next_decision = now + config.autoscaler_tick;
  entry->proxy_since = now;
  entry->active_since = now;
  entry->activator_stats = std::make_unique<queueproxy::RequestStats>(now, std::chrono::seconds(1));
  return entry;
}

ActivatorVisit::ActivatorVisit(std::shared_ptr<RevisionScaling> scaling, const common::TimeSource& time)
    : scaling_(std::move(scaling)), time_(&time) {
  scaling_->activator_stats->requestIn(time_->monotonicTime(), false);
}

ActivatorVisit& ActivatorVisit::operator=(ActivatorVisit&& other) noexcept {
  if (this != &other) {
    end();
    scaling_ = std::move(other.scaling_);
    time_ = other.time_;
  }
  return *this;
}

void ActivatorVisit::end() {
  if (!scaling_) return;
  scaling_->activator_stats->requestOut(time_->monotonicTime(), false);
  scaling_.reset();
}

json StackImpl::activatorStatsJson() const {
  std::vector<std::shared_ptr<RevisionScaling>> revisions;
  {
    std::lock_guard lock(mu);
    for (const auto& [rev, s] : scaling) revisions.push_back(s);
  }
  auto now = time.monotonicTime();
  json out = json::array();
  for (const auto& s : revisions) {
    queueproxy::StatsReport r = s->activator_stats->lastReport(now);
    out.push_back({{"isvc", s->service},
                   {"revision", s->revision},
                   {"average_concurrent_requests", r.average_concurrency},
                   {"request_count", r.request_count},
                   {"concurrency", s->activator_stats->concurrency()},
                   {"held", s->activator_held.load(std::memory_order_relaxed)},
                   {"activator_in_path", s->activator_in_path.load()}});
  }
  return {{"reporting_period_seconds", 1}, {"revisions", out}};
}

bool StackImpl::beginColdStart(RevisionScaling& s, common::MonotonicTime arrival) {
  std::lock_guard lock(s.cold_mu);
  if (s.cold) return false;
  s.cold.emplace();
  s.cold->arrival = arrival;
  return true;
}

void StackImpl::coldStartForwarded(RevisionScaling& s) {
  std::lock_guard lock(s.cold_mu);
  if (s.cold) s.cold->forwarded = time.monotonicTime();
}

void StackImpl::abandonColdStart(RevisionScaling& s) {
  std::lock_guard lock(s.cold_mu);
  s.cold.reset();
}

void StackImpl::recordColdStart(RevisionScaling& s) {
  std::optional<ColdStart> c;
  {
    std::lock_guard lock(s.cold_mu);
    if (!s.cold) return;
    s.cold->first_byte = time.monotonicTime();
    c = s.cold;
    s.cold.reset();
  }
  auto offset = [&](const std::optional<common::MonotonicTime>& t) -> json {
    if (!t) return nullptr;
    return std::chrono::duration<double, std::milli>(*t - c->arrival).count();
  };
  // A container that does not report start-up times gets the spawn and readiness times.
  json breakdown = {{"buffered_ms", offset(c->poked)},
                    {"pod_spawned_ms", offset(c->pod_spawned)},
                    {"process_started_ms", offset(c->process_started ? c->process_started : c->pod_spawned)},
                    {"model_loaded_ms", offset(c->model_loaded ? c->model_loaded : c->ready)},
                    {"ready_ms", offset(c->ready)},
                    {"forwarded_ms", offset(c->forwarded)},
                    {"first_byte_ms", offset(c->first_byte)}};
  double total = std::chrono::duration<double, std::milli>(*c->first_byte - c->arrival).count();
  event({{"type", "coldstart"}, {"isvc", s.service}, {"revision", s.revision}, {"pod", c->pod},
         {"total_ms", total}, {"breakdown", breakdown}});
  metrics.cold_start_seconds
      .Add({{"revision", s.revision}}, std::vector<double>{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30})
      .Observe(total / 1000);
}

void StackImpl::scaleEventLocked(RevisionScaling& s, int actual, const std::string& reason) {
  eventLocked({{"type", "scale"},
               {"isvc", s.service},
               {"revision", s.revision},
               {"desired", s.desired},
               {"actual", actual},
               {"ready", s.ready},
               {"panic", s.panicking},
               {"activatorInPath", s.activator_in_path.load()},
               {"excessBurstCapacity", s.excess_burst_capacity},
               {"stable", s.stable},
               {"reason", reason}});
  metrics.desired_pods.Add({{"revision", s.revision}}).Set(s.desired);
}

void StackImpl::poke(const std::string& revision) {
  std::string service;
  {
    std::lock_guard lock(mu);
    auto it = scaling.find(revision);
    if (it == scaling.end()) return;
    RevisionScaling& s = *it->second;
    {
      std::lock_guard cold(s.cold_mu);
      if (s.cold && !s.cold->poked) s.cold->poked = time.monotonicTime();
    }
    if (s.desired > 0) return;
    s.desired = std::max<int>(1, s.settings.activation_scale);
    s.inactive_since.reset();
    s.active_since = time.monotonicTime();
    s.poked = true;
    scaleEventLocked(s, 0, "activation: a request arrived at zero pods");
    service = s.service;
  }
  enqueue(service);
}

void StackImpl::scalerLoop() {
  auto sample_period = std::chrono::milliseconds(100);
  auto scrape_period = std::max(std::chrono::milliseconds(100), config.autoscaler_tick / 2);
  auto next_scrape = time.monotonicTime() + scrape_period;
  while (true) {
    {
      std::unique_lock lock(queue_mu);
      scaler_cv.wait_for(lock, sample_period, [&] { return stopping; });
      if (stopping) return;
    }
    auto now = time.monotonicTime();
    if (proxy) proxy->expireHeld(now);
    grpcIngressExpireHeld(*this, now);
    // Which revisions, and where their stats are.
    struct Target {
      std::shared_ptr<RevisionScaling> scaling;
      std::vector<uint16_t> admin_ports;
    };
    std::vector<Target> targets;
    {
      std::lock_guard lock(mu);
      for (auto& [rev, s] : scaling) {
        Target t{s, {}};
        auto svc = services.find(s->service);
        if (svc != services.end()) {
          for (const auto& p : svc->second.pods_of_revision[rev]) {
            auto ready = ready_pods.find(p);
            if (ready != ready_pods.end() && ready->second.admin_port != 0) t.admin_ports.push_back(ready->second.admin_port);
          }
        }
        targets.push_back(std::move(t));
      }
    }
    if (now < next_scrape) continue;
    next_scrape = now + scrape_period;
    // Scrape outside the lock (blocking, short timeouts).
    std::vector<double> observed(targets.size(), 0), rps(targets.size(), 0);
    for (size_t i = 0; i < targets.size(); ++i) {
      for (uint16_t port : targets[i].admin_ports) {
        http::Client client("127.0.0.1", port, std::chrono::milliseconds(500));
        auto res = client.request("GET", "/stats");
        if (!res.ok() || res->result_int() != 200) continue;
        auto stat = json::parse(res->body(), nullptr, false);
        if (!stat.is_object()) continue;
        // Knative's collector: what the activator proxied it reports itself (below).
        observed[i] += stat.value("average_concurrent_requests", 0.0) -
                       stat.value("average_proxied_concurrent_requests", 0.0);
        rps[i] += stat.value("request_count", 0.0) - stat.value("proxied_request_count", 0.0);
      }
    }
    std::set<std::string> to_reconcile;
    {
      std::lock_guard lock(mu);
      for (size_t i = 0; i < targets.size(); ++i) {
        RevisionScaling& s = *targets[i].scaling;
        if (!scaling.count(s.revision)) continue;  // gone meanwhile
        // The activator's stat for the revision (held and proxied requests) is summed with the
        // pods' in the same bucket, as Knative sums the scraper's stat and each activator's.
        queueproxy::StatsReport activator = s.activator_stats->lastReport(now);
        s.decider->record(now, observed[i] + activator.average_concurrency,
                          rps[i] + activator.request_count);
        int ready = static_cast<int>(targets[i].admin_ports.size());
        s.ready = ready;
        if (now < s.next_decision && !s.poked) continue;
        s.next_decision = now + config.autoscaler_tick;
        s.poked = false;
        ScaleDecision d = s.decider->decide(now, ready);
        if (!d.valid) continue;  // no data for the window yet: keep the last decision
        s.panicking = d.panicking;
        s.stable = d.stable;
        s.excess_burst_capacity = d.excess_burst_capacity;
        bool in_path = ready == 0 || d.excess_burst_capacity < 0;
        if (in_path && !s.activator_in_path) s.proxy_since = now;
        if (!in_path) s.proxy_since.reset();
        bool path_changed = in_path != s.activator_in_path;
        s.activator_in_path = in_path;
        int want = d.desired;
        if (want < s.settings.min_scale) want = s.settings.min_scale;
        if (s.settings.max_scale > 0) want = std::min(want, s.settings.max_scale);
        std::string reason = d.panicking ? "panic window" : "stable window";
        if (want == 0 && s.desired == 0) {
          // Already at zero: the activator wakes it (poke).
        } else if (want == 0) {
          // Scale to zero (Knative scaler.go): the revision must have been inactive for the grace
          // period, or the activator in the path for that long (the fast path); pods are kept
          // for the retention period.
          if (!s.settings.enable_scale_to_zero) want = 1;
          // An active revision stays up for a whole stable window first (Knative: the PA is
          // marked inactive only after ActiveFor >= StableWindow).
          if (s.desired > 0 && now - s.active_since < s.settings.stable_window) {
            want = s.desired;
          } else if (!s.inactive_since) {
            s.inactive_since = now;
          }
          if (want > 0) {
            // held above: fall through to the change check
          } else {
            auto inactive = now - *s.inactive_since;
            bool proxied_long = s.proxy_since && now - *s.proxy_since >= s.settings.scale_to_zero_grace_period;
            bool grace_over = inactive >= s.settings.scale_to_zero_grace_period;
            bool retained = inactive < s.settings.scale_to_zero_pod_retention_period;
            if (want == 0 && (retained || !(grace_over || proxied_long))) {
              want = std::max(1, s.desired);  // not yet: hold the current pods
              if (!s.activator_in_path) {
                s.activator_in_path = true;  // Knative flips the SKS to proxy first
                s.proxy_since = now;
                path_changed = true;
              }
            } else if (want == 0) {
              reason = proxied_long && !grace_over ? "scale to zero (fast path: activator in path for the grace period)"
                                                   : "scale to zero after the grace period";
            }
          }
        } else {
          s.inactive_since.reset();
          if (s.desired == 0) s.active_since = now;
        }
        if (want != s.desired || path_changed) {
          bool changed = want != s.desired;
          s.desired = want;
          int actual = 0;
          auto svc = services.find(s.service);
          if (svc != services.end()) actual = static_cast<int>(svc->second.pods_of_revision[s.revision].size());
          scaleEventLocked(s, actual, changed ? reason : "activator path changed");
          if (changed) to_reconcile.insert(s.service);
        }
      }
    }
    for (const auto& k : to_reconcile) enqueue(k);
  }
}

}  // namespace kh::refstack
