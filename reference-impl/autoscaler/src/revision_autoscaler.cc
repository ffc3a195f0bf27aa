#include "kh/autoscaler/revision_autoscaler.h"

#include <algorithm>

#include "kh/common/strings.h"

namespace kh::autoscaler {
namespace {

using common::strCat;

// A reconcile that changes the PA's status or the SKS is followed by another (both informers
// re-enqueue the PA). Two suffice for every path (Active → Inactive → scale to 0; Inactive →
// Activating → hold); the bound only guards against a cycle.
constexpr int kMaxReconcilesPerTick = 4;
// The in-process activator: one endpoint, always ready.
constexpr int kActivatorEndpoints = 1;

RevisionAutoscalerOptions sanitize(RevisionAutoscalerOptions options) {
  if (options.tick_interval <= Duration(0)) options.tick_interval = kTickInterval;
  return options;
}

bool sameCondition(const PaStatus& a, const PaStatus& b) {
  return a.activity == b.activity && a.reason == b.reason && a.message == b.message &&
         a.scale_target_initialized == b.scale_target_initialized;
}

MetricSpec collectedMetrics(const RevisionScaling& scaling, const RevisionAutoscalerOptions& options) {
  MetricSpec spec = makeMetricSpec(scaling);
  if (options.fixed_settings) spec.only_metric = scaling.scaling_metric;
  return spec;
}

}  // namespace

Stat activatorPokeStat() {
  Stat stat;
  stat.pod_name = std::string(kActivatorPodName);
  stat.average_concurrent_requests = 1;
  stat.request_count = 1;
  return stat;
}

RevisionAutoscaler::RevisionAutoscaler(RevisionScaling scaling, TimePoint now, int readyPods,
                                       RevisionAutoscalerOptions options)
    : options_(sanitize(options)),
      collector_(collectedMetrics(scaling, options_)),
      decider_(makeDeciderSpec(scaling, /*reachable=*/true), collector_, readyPods, now),
      pa_(std::move(scaling), now),
      next_decider_tick_(now + options_.tick_interval),
      // The KPA creates the SKS in Proxy mode before it has a decider; with no pod ready the
      // activator backs the revision from the start.
      proxy_since_(now) {}

bool RevisionAutoscaler::record(TimePoint now, const Stat& stat) {
  collector_.record(now, stat);
  if (!decider_.shouldPoke(stat)) return false;
  poke_pending_ = true;
  return true;
}

RevisionDecision RevisionAutoscaler::activate(TimePoint now,
                                              const RevisionObservation& observation) {
  record(now, activatorPokeStat());
  return tick(now, observation);
}

void RevisionAutoscaler::update(TimePoint now, RevisionScaling scaling) {
  last_inputs_.reset();  // a changed PA is reconciled at the next tick
  collector_.update(now, makeMetricSpec(scaling));
  decider_.update(makeDeciderSpec(scaling, decider_.spec().reachable));
  pa_.update(std::move(scaling));
}

Duration RevisionAutoscaler::proxyFor(TimePoint now) const {
  return proxy_since_ ? now - *proxy_since_ : Duration(0);
}

void RevisionAutoscaler::observeSks(TimePoint now, int readyPods) {
  sks_mode_ = effectiveSksMode(sks_spec_mode_, readyPods, kActivatorEndpoints);
  // ActivatorEndpointsPopulated: no serving endpoint, or the spec asks for Proxy. With an
  // activator always there, that is exactly "the effective mode is Proxy".
  const bool in_path = sks_mode_ == SksMode::kProxy;
  if (in_path && !proxy_since_) proxy_since_ = now;
  if (!in_path) proxy_since_.reset();
}

RevisionDecision RevisionAutoscaler::tick(TimePoint now, const RevisionObservation& observation) {
  // kpa.go reconcileDecider rebuilds the decider's spec from the PA on every reconcile; the
  // reachability is the part that changes without a settings update.
  const bool reachable = observation.reachability != Reachability::kUnreachable;
  if (reachable != decider_.spec().reachable) {
    decider_.update(makeDeciderSpec(pa_.scaling(), reachable));
  }

  // 1. The decider (multiscaler.go): its own ticker, plus a tick on a poke.
  const bool due = now >= next_decider_tick_;
  const bool poke = poke_pending_;
  const bool decider_ticked = due || poke;
  bool published = false;
  bool activation = false;
  if (decider_ticked) {
    poke_pending_ = false;
    const int32_t before = decider_.status().desired_scale;
    published = decider_.tick(now, observation.ready_pods);
    activation = poke && before == 0 && decider_.status().desired_scale > 0;
    // What the decider just read (the collector has not changed since).
    const std::optional<StableAndPanic>& observed = decider_.lastObserved();
    has_metrics_ = observed.has_value();
    stable_ = has_metrics_ ? observed->stable : 0;
    panic_ = has_metrics_ ? observed->panic : 0;
    // A Go ticker keeps its phase; ticks missed while busy are dropped. (Arithmetic, not a
    // loop: an owner that skips idle time may call after hours.)
    if (next_decider_tick_ <= now) {
      next_decider_tick_ += ((now - next_decider_tick_) / options_.tick_interval + 1) * options_.tick_interval;
    }
  }

  // The workqueue runs a delayed key once: this call is that reconcile.
  const bool requeue_fired = requeue_at_ && *requeue_at_ <= now;
  if (requeue_fired) requeue_at_.reset();

  // 2. The SKS reconciler sees the endpoints as they are now.
  observeSks(now, observation.ready_pods);

  // 3. The KPA reconciler, again while its status or the SKS changes. As in Knative it runs
  //    on an event (kpa/controller.go's informers and the deciders' Watch, which fires only
  //    when the decision changed, poked or not): the decider published a change, a re-check
  //    fell due, or what it watches changed (ready endpoints, the scale target's replicas,
  //    reachability, the SKS mode, the settings). Otherwise it would decide what it decided
  //    last time: every time-dependent branch of the scaler asks for its re-check
  //    (requeue_after).
  const int32_t initial_replicas = observation.current_replicas;
  int32_t current = observation.current_replicas;
  const ReconcileInputs inputs{observation.ready_pods, observation.current_replicas,
                               observation.reachability, sks_mode_};
  const bool reconcile = published || requeue_fired ||
                         !last_inputs_ || !(*last_inputs_ == inputs);
  ScaleNote applied_note;
  std::vector<PaStatus> transitions;
  for (int i = 0; reconcile && i < kMaxReconcilesPerTick; ++i) {
    const PaStatus pa_before = pa_.status();
    const SksMode spec_before = sks_spec_mode_;
    const bool in_path_before = sks_mode_ == SksMode::kProxy;

    PodAutoscaler::Observation o;
    o.decider = decider_.status();
    o.ready_pods = observation.ready_pods;
    o.current_replicas = current;
    o.reachability = observation.reachability;
    o.sks_mode = sks_spec_mode_;
    o.proxy_for = proxyFor(now);
    o.activator_probe_ok = true;  // the in-process activator always answers
    const PodAutoscaler::Result result = pa_.reconcile(now, o);
    last_want_ = result.want;
    last_num_activators_ = result.num_activators;

    if (result.replicas_to_apply) {
      current = *result.replicas_to_apply;
      applied_note = result.note;
    }
    last_note_ = result.note;
    if (result.requeue_after) {
      const TimePoint at = now + *result.requeue_after;
      if (!requeue_at_ || at < *requeue_at_) requeue_at_ = at;
    }
    sks_spec_mode_ = result.sks_mode;
    observeSks(now, observation.ready_pods);

    const bool pa_changed = !sameCondition(pa_before, pa_.status());
    if (pa_changed) transitions.push_back(pa_.status());
    const bool changed = pa_changed ||
                         sks_spec_mode_ != spec_before ||
                         (sks_mode_ == SksMode::kProxy) != in_path_before;
    if (!changed) break;
  }

  // What it saw, with the replicas it asked for (applying them is not news to it).
  if (reconcile) last_inputs_ = ReconcileInputs{observation.ready_pods, current, observation.reachability, sks_mode_};

  RevisionDecision d = makeDecision(now);
  d.decider_ticked = decider_ticked;
  d.poked = decider_ticked && poke;
  d.published = published;
  d.pa_transitions = std::move(transitions);
  d.want = last_want_;
  d.num_activators = last_num_activators_;
  if (current != initial_replicas) d.replicas = current;
  d.activator_path_changed = d.activator_in_path != reported_in_path_;
  reported_in_path_ = d.activator_in_path;

  // The reason, for a "scale" event.
  if (!options_.explain) {
    // No text wanted.
  } else if (d.replicas) {
    if (*d.replicas == 0) {
      d.reason = applied_note.text();
    } else if (activation) {
      d.reason = "activation: a request arrived at zero pods";
    } else if (!applied_note.empty()) {
      d.reason = applied_note.text();
    } else if (d.decider.desired_scale < 0) {
      d.reason = strCat("scale bounds: ", *d.replicas, " before any metrics");
    } else {
      d.reason = d.panicking ? "panic window" : "stable window";
      if (d.decider.desired_scale != *d.replicas) {
        d.reason = strCat(d.reason, ": desired ", d.decider.desired_scale, ", bounded to ",
                          *d.replicas);
      }
    }
  } else if (d.activator_path_changed) {
    if (!d.activator_in_path) {
      d.reason = strCat("activator out of the path: excess burst capacity ",
                        d.decider.excess_burst_capacity);
    } else if (observation.ready_pods == 0) {
      d.reason = "activator in the path: no ready pods";
    } else if (d.want == 0) {
      d.reason = "activator in the path: scaling to zero";
    } else {
      d.reason = strCat("activator in the path: excess burst capacity ",
                        d.decider.excess_burst_capacity);
    }
  }
  d.note = last_note_;
  return d;
}

RevisionDecision RevisionAutoscaler::makeDecision(TimePoint now) const {
  RevisionDecision d;
  d.sks_mode = sks_mode_;
  d.activator_in_path = sks_mode_ == SksMode::kProxy;
  d.activator_in_path_since = proxy_since_;
  d.decider = decider_.status();
  d.panicking = decider_.inPanic();
  d.panic_time = decider_.panicTime();
  d.stable = stable_;
  d.panic = panic_;
  d.has_metrics = has_metrics_;
  d.pa = pa_.status();
  if (requeue_at_) d.requeue_after = *requeue_at_ - now;
  d.next_tick_at = next_decider_tick_;
  if (requeue_at_ && *requeue_at_ < d.next_tick_at) d.next_tick_at = *requeue_at_;
  return d;
}

}  // namespace kh::autoscaler
