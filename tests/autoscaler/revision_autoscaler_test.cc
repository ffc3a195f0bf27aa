// Test that the header is self-contained.
#include "kh/autoscaler/revision_autoscaler.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace kh::autoscaler {
namespace {

using std::chrono::seconds;

// Golden timelines of one revision on a simulated clock, computed by hand from Knative's rules
// (knative.md §2–§3; the arithmetic is in the comments). Times are whole seconds s after t0.
// t0 is even, so the decider's 2 s grid (started with the autoscaler at s=0) lies on even s.
//
// Rules used throughout:
//  - linear stable average at a tick with the last write at second w = floor(now): the sum of
//    buckets w-59..w divided by min(w - firstWrite + 1, 60); a bucket at second b is out of
//    the window from the first tick with floor(now) >= b + 60; desired = ceil(avg / target),
//    so it is 0 only once every non-zero bucket has left;
//  - defaults: target 70, total 100, TBC 211, so EBC = floor(ready*100 - 211 - panic) < 0
//    with fewer than 3 pods: the activator is in the path from s=0 (the SKS is created in
//    Proxy with no pod ready), and ProxyFor at s is s seconds;
//  - the PA is Activating from s=0 and Active from the first reconcile with a ready pod;
//    ActiveFor counts from that transition.
const TimePoint kT0{seconds(1'000'000)};
TimePoint at(int s) { return kT0 + seconds(s); }

RevisionScaling scaling(const Annotations& annotations = {},
                        const std::map<std::string, std::string>& cm = {}) {
  auto cfg = parseAutoscalerConfig(cm);
  EXPECT_TRUE(cfg.ok()) << cfg.status();
  auto r = resolveRevisionScaling(*cfg, annotations, 0);
  EXPECT_TRUE(r.ok()) << r.status();
  return *r;
}

// The revision-wide stat of the scraper.
Stat scraperStat(double concurrency, double proxiedConcurrency = 0, double requests = 0,
                 double proxiedRequests = 0) {
  Stat s;
  s.pod_name = std::string(kScraperPodName);
  s.average_concurrent_requests = concurrency;
  s.average_proxied_concurrent_requests = proxiedConcurrency;
  s.request_count = requests;
  s.proxied_request_count = proxiedRequests;
  return s;
}

// The activator's periodic report of the revision.
Stat activatorStat(double concurrency, double requests = 0) {
  Stat s;
  s.pod_name = std::string(kActivatorPodName);
  s.average_concurrent_requests = concurrency;
  s.request_count = requests;
  return s;
}

/** How the simulated owner decides when to call tick(). */
enum class Driver {
  // What refstack should do: at decision.next_tick_at, on pod changes and on pokes.
  kOwner,
  // Only on its own period grid and at last call + requeue_after; not on pod changes.
  kPeriodAndRequeue,
  // Only on its own period grid.
  kPeriodOnly,
};

/**
 * One revision, its pods and its owner, second by second. At each second s, in this order:
 * pods whose start-up is over become ready (and pod losses happen); the scraper's stat for s
 * is recorded while a pod is ready (all zeros unless the test set one), then the activator's
 * report for s if any; an activation (a request at zero pods) calls activate(); otherwise
 * tick() runs when the driver says so. A decision's replicas are applied at once: new pods
 * become ready `startup` later, removed pods stop being ready at once (a pod change, so the
 * kOwner driver ticks again in the same second).
 */
class World {
 public:
  explicit World(RevisionScaling s, Driver driver = Driver::kOwner,
                 RevisionAutoscalerOptions options = {})
      : ra(std::move(s), at(0), 0, options), driver_(driver), period_(options.tick_interval) {
    if (period_ <= Duration(0)) period_ = kTickInterval;
    replicas_ = ra.initialReplicas();
    for (int i = 0; i < replicas_; ++i) pending_.push_back(at(0) + startup);
    apply(0, ra.tick(at(0), observation()));
    next_period_ = at(0) + period_;
  }

  // ----- Set up by the test -----
  std::map<int, Stat> scraper;     // the scraper's stat at s (default: zeros)
  std::map<int, Stat> activator;   // the activator's report at s
  std::set<int> activations;       // a request arrives at zero pods at s
  std::map<int, int> pod_losses;   // pods that stop being ready at s (for good)
  std::map<int, RevisionScaling> updates;  // update() at s
  Duration startup = seconds(1);   // Duration::max(): pods never become ready

  /** Runs the seconds after the current one up to `end`. */
  void runTo(int end) {
    while (s_ < end) step(++s_);
  }

  // ----- Observed -----
  RevisionAutoscaler ra;
  /** Second → replicas after a change in that second. */
  std::map<int, int> replica_changes;
  /** Second → the decisions taken in that second, in order. */
  std::map<int, std::vector<RevisionDecision>> decisions;
  /** Seconds at which tick() or activate() was called. */
  std::vector<int> calls;
  int replicas() const { return replicas_; }
  int ready() const { return ready_; }

  /** The first decision of second s (the one the driver asked for). */
  const RevisionDecision& decisionAt(int s) const {
    auto it = decisions.find(s);
    EXPECT_NE(it, decisions.end()) << "no call at s=" << s;
    static const RevisionDecision kNone;
    return it == decisions.end() ? kNone : it->second.front();
  }
  /** The last decision of second s (after the re-tick on removed pods, if any). */
  const RevisionDecision& lastDecisionAt(int s) const {
    auto it = decisions.find(s);
    EXPECT_NE(it, decisions.end()) << "no call at s=" << s;
    static const RevisionDecision kNone;
    return it == decisions.end() ? kNone : it->second.back();
  }

 private:
  RevisionObservation observation() const {
    RevisionObservation o;
    o.ready_pods = ready_;
    o.current_replicas = replicas_;
    return o;
  }

  bool due(TimePoint now) const {
    switch (driver_) {
      case Driver::kOwner:
        return now >= next_tick_at_;
      case Driver::kPeriodAndRequeue:
        return now >= next_period_ || (requeue_at_ && now >= *requeue_at_);
      case Driver::kPeriodOnly:
        return now >= next_period_;
    }
    return false;
  }

  void step(int s) {
    const TimePoint now = at(s);
    const int ready_before = ready_;
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (*it <= now) {
        ++ready_;
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
    if (auto loss = pod_losses.find(s); loss != pod_losses.end()) {
      const int n = std::min(loss->second, ready_);
      ready_ -= n;
      lost_ += n;
    }
    if (auto u = updates.find(s); u != updates.end()) ra.update(now, u->second);
    bool poke = false;
    if (ready_ > 0) {
      auto it = scraper.find(s);
      poke |= ra.record(now, it != scraper.end() ? it->second : scraperStat(0));
    }
    if (auto it = activator.find(s); it != activator.end()) poke |= ra.record(now, it->second);

    if (activations.count(s)) {
      apply(s, ra.activate(now, observation()));
      return;
    }
    const bool pods_changed = ready_ != ready_before || updates.count(s);
    if (due(now) || (driver_ == Driver::kOwner && (pods_changed || poke))) {
      apply(s, ra.tick(now, observation()));
    }
  }

  void apply(int s, RevisionDecision d) {
    const TimePoint now = at(s);
    calls.push_back(s);
    while (next_period_ <= now) next_period_ += period_;
    requeue_at_.reset();
    if (d.requeue_after) requeue_at_ = now + *d.requeue_after;
    next_tick_at_ = d.next_tick_at;
    const int ready_before = ready_;
    if (d.replicas) {
      replicas_ = *d.replicas;
      replica_changes[s] = replicas_;
      const int total = ready_ + static_cast<int>(pending_.size()) + lost_;
      for (int i = total; i < replicas_; ++i) {
        pending_.push_back(startup == Duration::max() ? TimePoint::max() : now + startup);
      }
      for (int i = total; i > replicas_; --i) {
        if (!pending_.empty()) {
          pending_.pop_back();
        } else if (lost_ > 0) {
          --lost_;
        } else {
          --ready_;
        }
      }
    }
    decisions[s].push_back(std::move(d));
    // Removed pods are a pod event: Knative re-reconciles; the owner ticks again.
    if (ready_ != ready_before && driver_ == Driver::kOwner && ++reentry_ < 4) {
      apply(s, ra.tick(now, observation()));
    }
    reentry_ = 0;
  }

  Driver driver_;
  Duration period_;
  int s_ = 0;
  int replicas_ = 0;
  int ready_ = 0;
  int lost_ = 0;
  std::vector<TimePoint> pending_;
  TimePoint next_tick_at_{};
  TimePoint next_period_{};
  std::optional<TimePoint> requeue_at_;
  int reentry_ = 0;
};

// One request at second r through the activator (in the path): the pod reports it as proxied,
// the activator reports it itself, then a last zero report (the reporter's entry is deleted
// after a period without activity).
void oneRequestThroughActivator(World& w, int r) {
  w.scraper[r] = scraperStat(0.5, 0.5, 1, 1);
  w.activator[r] = activatorStat(0.5, 1);
  w.activator[r + 1] = activatorStat(0);
}

// ----- Scale to zero -----

// A new revision that never gets a request (defaults).
//  s=0  the PA is Activating; the decider has no data yet (desired -1).
//  s=1  the pod is ready: the PA goes Active (ActiveFor counts from here).
//  s=2  first decider tick: stable 0 → desired 0. Active for 1s < stable window 60s:
//       scaler.go holds 1 pod and re-checks after sw - af = 59s (s=61).
//  s=61 Active for 60s ≥ 60s: not applied, the PA goes Inactive (NoTraffic); the SKS is
//       already Proxy. The re-reconcile (status changed) finds it Inactive, ProxyFor 61s ≥
//       grace 30s: fast path, replicas 0 at s=61, off the decider's grid.
TEST(RevisionAutoscaler, IdleNewRevisionIsHeldAStableWindowFromActive) {
  World w(scaling());
  EXPECT_EQ(w.decisionAt(0).pa.activity, PaActivity::kActivating);
  EXPECT_EQ(w.decisionAt(0).decider.desired_scale, -1);
  EXPECT_TRUE(w.decisionAt(0).activator_in_path);
  EXPECT_EQ(w.decisionAt(0).activator_in_path_since, at(0));
  w.runTo(200);
  EXPECT_EQ(w.replica_changes, (std::map<int, int>{{61, 0}}));

  EXPECT_EQ(w.decisionAt(1).pa.activity, PaActivity::kActive);
  EXPECT_EQ(w.decisionAt(1).pa.activity_since, at(1));
  EXPECT_EQ(w.decisionAt(2).decider.desired_scale, 0);
  EXPECT_EQ(w.decisionAt(2).want, 1);
  EXPECT_EQ(w.decisionAt(2).requeue_after, seconds(59));
  EXPECT_EQ(w.decisionAt(2).next_tick_at, at(4));

  const RevisionDecision& zero = w.decisionAt(61);
  EXPECT_EQ(zero.replicas, 0);
  EXPECT_FALSE(zero.decider_ticked);  // a re-check, not a decider tick
  EXPECT_EQ(zero.reason, "fast path scaling to 0, in proxy mode for: 1m1s");
  EXPECT_EQ(zero.pa.activity, PaActivity::kInactive);
  EXPECT_EQ(zero.pa.reason, kReasonNoTraffic);
  EXPECT_EQ(zero.pa.activity_since, at(61));
  EXPECT_EQ(zero.pa.desired_scale, 0);
  EXPECT_EQ(zero.pa.actual_scale, 1);
  EXPECT_EQ(w.lastDecisionAt(61).pa.actual_scale, 0);  // re-tick once the pod is gone
}

// One request then idle, defaults (activator in the path: one pod, EBC 100-211-0 = -111).
//  s=1  Active. s=10: the request: pod stat 0.5 (all proxied) + activator 0.5 → bucket 10 =
//       0.5 - 0.5 + 0.5 = 0.5; stable = 0.5 / (10 - 1 + 1) = 0.05 → desired ceil(0.05/70) = 1.
//  s=68 bucket 10 is still in the window (68 < 10 + 60): desired 1, one pod.
//  s=70 bucket 10 leaves: stable 0 → desired 0. Active for 69s ≥ 60s: Inactive; the
//       re-reconcile takes the fast path (ProxyFor 70s ≥ 30s): replicas 0 at s=70 =
//       last request + 60s, on the tick that sees the window empty.
TEST(RevisionAutoscaler, OneRequestThenIdleGoesToZeroByTheFastPath) {
  World w(scaling());
  oneRequestThroughActivator(w, 10);
  w.runTo(200);
  EXPECT_EQ(w.replica_changes, (std::map<int, int>{{70, 0}}));

  EXPECT_DOUBLE_EQ(w.decisionAt(10).stable, 0.05);
  EXPECT_EQ(w.decisionAt(10).decider.desired_scale, 1);
  // floor(100 - 211 - panic (0.5/6 = 0.083333)) = floor(-111.083333)
  EXPECT_EQ(w.decisionAt(10).decider.excess_burst_capacity, -112);
  EXPECT_EQ(w.decisionAt(68).decider.desired_scale, 1);
  EXPECT_EQ(w.decisionAt(68).pa.activity, PaActivity::kActive);

  const RevisionDecision& zero = w.decisionAt(70);
  EXPECT_TRUE(zero.decider_ticked);
  EXPECT_EQ(zero.decider.desired_scale, 0);
  EXPECT_EQ(zero.reason, "fast path scaling to 0, in proxy mode for: 1m10s");
  EXPECT_TRUE(zero.activator_in_path);
  EXPECT_EQ(zero.activator_in_path_since, at(0));
  EXPECT_EQ(zero.pa.activity, PaActivity::kInactive);
  EXPECT_EQ(zero.pa.activity_since, at(70));

  // A request at an odd second: bucket 11 leaves at floor(now) ≥ 71, seen by the tick at 72:
  // zero at last request + 61s (the "+ up to one tick").
  World odd(scaling());
  oneRequestThroughActivator(odd, 11);
  odd.runTo(200);
  EXPECT_EQ(odd.replica_changes, (std::map<int, int>{{72, 0}}));
}

// TBC 0: EBC is 0, so with a pod and want > 0 the SKS serves directly.
//  s=2  desired 0, Active for 1s: want 1 (hold); want > 0 && EBC 0 ≥ 0: Serve; the activator
//       leaves the path.
//  s=70 desired 0 (request at 10), Active for 69s: Inactive; want 0 → the SKS goes Proxy at 70
//       (ProxyFor 0). Re-reconcile: Inactive for 0 < grace 30s, no retention, to = 30 - 0 =
//       30s: re-check at 100.
//  s=100 Inactive for 30s ≥ max(grace, retention): replicas 0 = last request + 90s.
TEST(RevisionAutoscaler, TbcZeroProxiesAtZeroDesiredThenWaitsOutTheGrace) {
  World w(scaling({}, {{"target-burst-capacity", "0"}}));
  oneRequestThroughActivator(w, 10);
  w.runTo(200);
  EXPECT_EQ(w.replica_changes, (std::map<int, int>{{100, 0}}));

  EXPECT_FALSE(w.decisionAt(2).activator_in_path);
  EXPECT_TRUE(w.decisionAt(2).activator_path_changed);
  EXPECT_EQ(w.decisionAt(2).sks_mode, SksMode::kServe);
  EXPECT_EQ(w.decisionAt(2).reason, "activator out of the path: excess burst capacity 0");
  EXPECT_FALSE(w.decisionAt(68).activator_in_path);

  const RevisionDecision& proxy = w.decisionAt(70);
  EXPECT_FALSE(proxy.replicas.has_value());
  EXPECT_TRUE(proxy.activator_in_path);
  EXPECT_TRUE(proxy.activator_path_changed);
  EXPECT_EQ(proxy.activator_in_path_since, at(70));
  EXPECT_EQ(proxy.reason, "activator in the path: scaling to zero");
  EXPECT_EQ(proxy.requeue_after, seconds(30));
  EXPECT_EQ(proxy.pa.activity, PaActivity::kInactive);
  EXPECT_EQ(w.decisionAt(98).replicas, std::nullopt);
  EXPECT_EQ(w.decisionAt(100).reason, "inactive past grace and retention");
}

// Retention 90s > grace 30s, defaults otherwise (activator in the path).
//  s=70 desired 0; Active for 69s: Inactive since 70, and the SKS already Proxy: re-check
//       after 3s. Re-reconcile: Inactive for 0 < max(30, 90); retention 90 > 0 and 0 < 90:
//       re-check after 90s (the fast path may not skip the retention). The earlier re-check
//       (73) is the one pending; at 73 it is 90 - 3 = 87s.
//  s=160 Inactive for 90s ≥ 90s: replicas 0 = last request + 60 + 90s.
TEST(RevisionAutoscaler, RetentionLongerThanGraceKeepsTheLastPod) {
  World w(scaling({{std::string(kScaleToZeroPodRetentionPeriodAnnotation), "90s"}}));
  oneRequestThroughActivator(w, 10);
  w.runTo(300);
  EXPECT_EQ(w.replica_changes, (std::map<int, int>{{160, 0}}));
  EXPECT_EQ(w.decisionAt(70).requeue_after, seconds(3));
  EXPECT_EQ(w.decisionAt(70).pa.activity, PaActivity::kInactive);
  EXPECT_EQ(w.decisionAt(73).requeue_after, seconds(87));
  EXPECT_EQ(w.decisionAt(158).replicas, std::nullopt);
  EXPECT_EQ(w.decisionAt(160).reason, "inactive past grace and retention");
}

// enable-scale-to-zero false: handleScaleToZero returns 1 for a desired 0. min-scale 1: the
// bounds lift 0 to 1 before handleScaleToZero. Neither ever reaches 0; the PA stays Active.
TEST(RevisionAutoscaler, ScaleToZeroDisabledOrMinScaleOneNeverZero) {
  for (const RevisionScaling& s :
       {scaling({}, {{"enable-scale-to-zero", "false"}}),
        scaling({{std::string(kMinScaleAnnotation), "1"}})}) {
    World w(s);
    oneRequestThroughActivator(w, 10);
    w.runTo(600);
    EXPECT_TRUE(w.replica_changes.empty());
    EXPECT_EQ(w.replicas(), 1);
    EXPECT_EQ(w.decisionAt(600).decider.desired_scale, 0);
    EXPECT_EQ(w.decisionAt(600).want, 1);
    EXPECT_EQ(w.decisionAt(600).pa.activity, PaActivity::kActive);
  }
}

// ----- Scale from zero -----

// Runs an idle revision to zero (s=61, as in IdleNewRevisionIsHeldAStableWindowFromActive; the
// pod is gone from 61, so the scraper records nothing more and the last write is the zero stat
// of s=61), then a request reaches the activator at s=101; new pods start in `startup`.
void zeroThenRequestAt101(World& w, Duration startup) {
  w.runTo(100);
  EXPECT_EQ(w.replica_changes, (std::map<int, int>{{61, 0}}));
  w.startup = startup;
  w.activations.insert(101);
}

// The activator's reports of that request, held 101..104 and done at 104.5 (the poke's
// request subtracted from the first report): 102: 0, 103: 1, 104: 1, 105: 0.5, 106: 0.
void heldUntilReadyAt104(World& w) {
  w.activator = {{102, activatorStat(0)},
                 {103, activatorStat(1)},
                 {104, activatorStat(1)},
                 {105, activatorStat(0.5)},
                 {106, activatorStat(0)}};
}

// Zero at s=61 (idle, as above), then at s=101 a request reaches the activator:
//  activate: the poke stat (1, 1) lands in bucket 101; the decider's last desired is 0, so it
//       ticks at once, off its grid: stable = 1 / min(101 - 1 + 1, 60) = 0.016667 → desired
//       ceil(0.016667/70) = 1. The PA (Inactive) applies 1: replicas 0 → 1 in the same call,
//       and goes Activating "Queued" (0 ready < 1).
//  s=104 the pod is ready (start-up 3s): Active since 104.
//  The activator held the request 101..104 and reports (the poke subtracted from the first
//  report): 102: 0, 103: 1, 104: 1, 105: 0.5 (the request ends at 104.5), 106: 0. The last
//  non-zero bucket is 105: desired 0 from the first tick with floor(now) ≥ 165, i.e. s=166.
//  s=166 Active for 62s ≥ 60s: Inactive, fast path (Proxy since 0): replicas 0.
TEST(RevisionAutoscaler, ActivationScalesFromZeroWithinTheCall) {
  World w(scaling());
  zeroThenRequestAt101(w, seconds(3));
  heldUntilReadyAt104(w);
  w.scraper[105] = scraperStat(0.5, 0.5, 1, 1);
  w.runTo(300);
  EXPECT_EQ(w.replica_changes, (std::map<int, int>{{61, 0}, {101, 1}, {166, 0}}));

  const RevisionDecision& poke = w.decisionAt(101);
  EXPECT_TRUE(poke.decider_ticked);
  EXPECT_TRUE(poke.poked);
  EXPECT_TRUE(poke.published);
  EXPECT_EQ(poke.decider.desired_scale, 1);
  EXPECT_DOUBLE_EQ(poke.stable, 0.016667);
  EXPECT_EQ(poke.replicas, 1);
  EXPECT_EQ(poke.reason, "activation: a request arrived at zero pods");
  EXPECT_EQ(poke.pa.activity, PaActivity::kActivating);
  EXPECT_EQ(poke.pa.reason, kReasonQueued);
  EXPECT_EQ(poke.pa.activity_since, at(101));
  ASSERT_EQ(poke.pa_transitions.size(), 1u);
  EXPECT_EQ(poke.pa_transitions[0].activity, PaActivity::kActivating);
  EXPECT_EQ(poke.pa.desired_scale, 1);
  EXPECT_TRUE(poke.activator_in_path);
  EXPECT_EQ(poke.next_tick_at, at(102));  // the decider's grid is unchanged

  EXPECT_EQ(w.decisionAt(102).pa.activity, PaActivity::kActivating);
  EXPECT_EQ(w.decisionAt(104).pa.activity, PaActivity::kActive);
  EXPECT_EQ(w.decisionAt(104).pa.activity_since, at(104));
  EXPECT_EQ(w.decisionAt(164).decider.desired_scale, 1);
  EXPECT_EQ(w.decisionAt(166).reason, "fast path scaling to 0, in proxy mode for: 2m46s");
}

// record() reports the poke (a stat with concurrency while desired is 0) and the next tick()
// runs the decider at once; with desired > 0 there is no poke.
TEST(RevisionAutoscaler, RecordReportsAPokeAndTheNextTickRunsTheDecider) {
  World w(scaling());
  w.runTo(100);
  ASSERT_EQ(w.ra.deciderStatus().desired_scale, 0);
  EXPECT_FALSE(w.ra.record(at(101), activatorStat(0)));
  EXPECT_TRUE(w.ra.record(at(101), activatorStat(1, 1)));
  EXPECT_TRUE(w.ra.pokePending());
  RevisionObservation o;
  o.ready_pods = 0;
  o.current_replicas = 0;
  RevisionDecision d = w.ra.tick(at(101), o);
  EXPECT_TRUE(d.poked);
  EXPECT_EQ(d.replicas, 1);
  EXPECT_FALSE(w.ra.pokePending());
  EXPECT_FALSE(w.ra.record(at(102), activatorStat(1)));  // desired is 1 now
}

// activation-scale 3: the poke gives desired max(1, 3) = 3 (activation-scale lifts a non-zero
// desire). Once the 3 pods are ready (s=104) the decider ticks with ready 3: panic window
// (6s, restarted at 101 after 40s without writes) = (1 + 0 + 1 + 1) / (104 - 101 + 1) = 0.75,
// EBC = floor(300 - 211 - 0.75) = 88 ≥ 0 and want 3 > 0: Serve, the activator leaves the path.
//  s=166 stable 0: dspc 0, so activation-scale no longer applies; maxScaleDown floor(3/2) = 1:
//       desired 1 (replicas 3 → 1); EBC at 3 ready 89: still Serve.
//  s=168 ready 1: desired 0, EBC 100-211 = -111. Active for 64s: Inactive; want 0 puts the SKS
//       in Proxy since 168 (ProxyFor 0), so no fast path: re-check after grace 30s → replicas 0
//       at s=198.
TEST(RevisionAutoscaler, ActivationScaleAndTheActivatorLeavingThePath) {
  World w(scaling({{std::string(kActivationScaleAnnotation), "3"}}));
  zeroThenRequestAt101(w, seconds(3));
  heldUntilReadyAt104(w);
  w.runTo(300);
  EXPECT_EQ(w.replica_changes, (std::map<int, int>{{61, 0}, {101, 3}, {166, 1}, {198, 0}}));
  EXPECT_EQ(w.decisionAt(101).decider.desired_scale, 3);
  EXPECT_EQ(w.decisionAt(101).pa.reason, kReasonQueued);

  const RevisionDecision& ready = w.decisionAt(104);
  EXPECT_EQ(ready.pa.activity, PaActivity::kActive);
  EXPECT_EQ(ready.decider.excess_burst_capacity, 88);
  EXPECT_FALSE(ready.activator_in_path);
  EXPECT_EQ(ready.num_activators, 6);  // ceil((3*100 + 211) / 100)
  EXPECT_EQ(w.decisionAt(166).reason, "stable window");
  EXPECT_FALSE(w.decisionAt(166).activator_in_path);
  EXPECT_TRUE(w.decisionAt(168).activator_in_path);
  EXPECT_EQ(w.decisionAt(168).activator_in_path_since, at(168));
  EXPECT_EQ(w.decisionAt(168).requeue_after, seconds(30));
}

// Activation that never succeeds: after zero at 61, a request at 101, but the pod never gets
// ready. The activator holds the request 101..131 (then the client gives up): reports 102: 0
// (poke subtracted), 103..131: 1, 132: 0. The last non-zero bucket is 131: desired 0 at the
// first tick with floor(now) ≥ 191, s=192 (the last write, 132, is then exactly 60s old: the
// window is not empty yet, so the tick is valid).
//  s=192 desired 0 while Activating: scaler.go returns (-1, not applied): the replica stays
//       and the PA's desiredScale keeps 1 (-1 does not overwrite a known value).
//  Activation timeout = progress-deadline 600s + 30s: Activating for more than 630s → the
//  first tick after 101 + 630 = 731: s=732 scales to 0 and marks the PA Inactive "TimedOut".
//  That status change re-reconciles the PA (as in Knative): Inactive with want 0 is marked
//  "NoTraffic", so the PA ends the call Inactive/NoTraffic; pa_transitions shows both.
TEST(RevisionAutoscaler, ActivationTimeoutScalesBackToZero) {
  World w(scaling());
  zeroThenRequestAt101(w, Duration::max());
  w.activator[102] = activatorStat(0);
  for (int s = 103; s <= 131; ++s) w.activator[s] = activatorStat(1);
  w.activator[132] = activatorStat(0);
  w.runTo(900);
  // The PA reconciles on events, as Knative's: the one that sees desired 0 while Activating
  // (at 192) re-checks after the activation timeout (10m30s), at 822; nothing else wakes it.
  EXPECT_EQ(w.replica_changes, (std::map<int, int>{{61, 0}, {101, 1}, {822, 0}}));

  EXPECT_EQ(w.decisionAt(190).decider.desired_scale, 1);
  const RevisionDecision& idle = w.decisionAt(192);
  EXPECT_EQ(idle.decider.desired_scale, 0);
  EXPECT_EQ(idle.want, -1);
  EXPECT_EQ(idle.pa.desired_scale, 1);
  EXPECT_EQ(idle.pa.activity, PaActivity::kActivating);
  EXPECT_EQ(idle.pa.activity_since, at(101));
  EXPECT_EQ(w.decisionAt(730).pa.activity, PaActivity::kActivating);

  EXPECT_EQ(w.decisionAt(820).pa.activity, PaActivity::kActivating);
  const RevisionDecision& timeout = w.decisionAt(822);
  EXPECT_EQ(timeout.replicas, 0);
  EXPECT_EQ(timeout.reason, "activation timed out after 10m30s");
  ASSERT_EQ(timeout.pa_transitions.size(), 2u);
  EXPECT_EQ(timeout.pa_transitions[0].activity, PaActivity::kInactive);
  EXPECT_EQ(timeout.pa_transitions[0].reason, kReasonTimedOut);
  EXPECT_EQ(timeout.pa_transitions[0].message, "The target could not be activated.");
  EXPECT_EQ(timeout.pa_transitions[1].reason, kReasonNoTraffic);
  EXPECT_EQ(timeout.pa.activity, PaActivity::kInactive);
  EXPECT_EQ(timeout.pa.reason, kReasonNoTraffic);
  EXPECT_EQ(timeout.pa.activity_since, at(822));
}

// ----- Scale-down delay -----

// scale-down-delay 20s: the decider keeps the max of its desires over ceil(20/2) = 10 buckets
// of 2s (index unix/2). One request at 10: desired 1 at ticks 10..68, 0 from 70. The 1 of
// tick 68 leaves the window when (t - 68)/2 ≥ 10, at t=88: desired 0 at s=88 (vs 70 without
// the delay), then Inactive and the fast path: replicas 0 at s=88.
TEST(RevisionAutoscaler, ScaleDownDelayHoldsTheLastPod) {
  World w(scaling({{std::string(kScaleDownDelayAnnotation), "20s"}}));
  oneRequestThroughActivator(w, 10);
  w.runTo(200);
  EXPECT_EQ(w.replica_changes, (std::map<int, int>{{88, 0}}));
  EXPECT_EQ(w.decisionAt(86).decider.desired_scale, 1);
}

// window 6s (panic window round(0.6) = 1s), panic threshold 1000% (no panic in this test),
// concurrency 200 at seconds 1..20, then 0; target 70.
// Without a delay:
//  s=2  stable 400/2 = 200 → ceil(200/70) = 3: replicas 3 (ready at 3). EBC < 0 while loaded.
//  s=22 stable (buckets 17..22) 800/6 = 133.3 → 2; maxScaleDown floor(3/2) = 1: replicas 2.
//       EBC = floor(300 - 211 - 0) = 89 ≥ 0 (panic bucket 22 is 0): Serve.
//  s=24 ready 2: 400/6 = 66.7 → 1: replicas 1; EBC 200-211 = -11: Proxy since 24.
//  s=26 ready 1: 0 → desired 0; Active since 1: Inactive; ProxyFor 2s: re-check after 28s.
//  s=54 ProxyFor 30s: fast path, replicas 0.
// With scale-down-delay 10s (5 buckets of 2s), the recorded desires are 3 (2..20), 2 (22),
// 1 (24..32, maxScaleDown 1 while 2-3 pods are ready), 0 (34..):
//  s=30 the 3 of tick 20 leaves ((30-20)/2 = 5): max(2, 1, ...) = 2: replicas 2.
//  s=32 the 2 of tick 22 leaves: 1: replicas 1; EBC with 2 ready -11: Proxy since 32.
//  s=42 the 1 of tick 32 leaves: desired 0; Inactive, the SKS already Proxy: re-check after
//       3s; then ProxyFor 10s < 30s: re-check after 20s. At 45: 30 - 13 = 17s.
//  s=62 fast path: replicas 0.
TEST(RevisionAutoscaler, ScaleDownDelayHoldsReplicasUp) {
  const Annotations base = {{std::string(kWindowAnnotation), "6s"},
                            {std::string(kPanicThresholdPercentageAnnotation), "1000"}};
  auto run = [](const Annotations& annotations) {
    auto w = std::make_unique<World>(scaling(annotations));
    for (int s = 1; s <= 20; ++s) w->scraper[s] = scraperStat(200);
    w->runTo(120);
    return w;
  };
  auto plain = run(base);
  EXPECT_EQ(plain->replica_changes, (std::map<int, int>{{2, 3}, {22, 2}, {24, 1}, {54, 0}}));
  EXPECT_FALSE(plain->decisionAt(22).activator_in_path);
  EXPECT_EQ(plain->decisionAt(24).activator_in_path_since, at(24));

  Annotations delayed = base;
  delayed[std::string(kScaleDownDelayAnnotation)] = "10s";
  auto held = run(delayed);
  EXPECT_EQ(held->replica_changes, (std::map<int, int>{{2, 3}, {30, 2}, {32, 1}, {62, 0}}));
  EXPECT_EQ(held->decisionAt(40).decider.desired_scale, 1);
  EXPECT_EQ(held->decisionAt(42).decider.desired_scale, 0);
  EXPECT_EQ(held->decisionAt(42).requeue_after, seconds(3));
  EXPECT_EQ(held->decisionAt(45).requeue_after, seconds(17));
}

// ----- Panic -----

// target 10 at 100% utilization (target 10 per pod), stable 60s, panic window 6s,
// threshold 2.0. Concurrency 40 at seconds 11..20 (first write at 1).
//  s=12 stable 80/12 = 6.67 → 1; panic 80/6 = 13.3 → 2; 2/1 ≥ 2: PANIC (panicTime 12);
//       desired max(1, 2) = 2.
//  s=14 ready 2: stable 160/14 → 2; panic 160/6 = 26.7 → 3 (1.5 < 2, still panicking): 3.
//  s=16 ready 3: panic 240/6 = 40 → 4: 4.
//  s=22.. the panic value falls (3 at 22, 2 at 24, 0 from 26) but maxPanicPods stays 4: no
//       scale-down while panicking. Over the threshold only at 12 (later dppc/ready < 2).
//  s=72 12 + 60 < 72 is false: still panicking.
//  s=74 un-panic; stable (buckets 15..74) 240/60 = 4 → 1; maxScaleDown floor(4/2) = 2: 2.
//  s=76 ready 2: 160/60 → 1; maxScaleDown 1: 1.  s=78: 80/60 → 1.
//  s=80 0 → desired 0; Active since 1: Inactive, fast path (EBC < 0 throughout): 0.
TEST(RevisionAutoscaler, PanicNeverScalesDownAndEndsAStableWindowLater) {
  World w(scaling({{std::string(kTargetAnnotation), "10"},
                   {std::string(kTargetUtilizationPercentageAnnotation), "100"}}));
  for (int s = 11; s <= 20; ++s) w.scraper[s] = scraperStat(40);
  w.runTo(200);
  EXPECT_EQ(w.replica_changes,
            (std::map<int, int>{{12, 2}, {14, 3}, {16, 4}, {74, 2}, {76, 1}, {80, 0}}));
  EXPECT_FALSE(w.decisionAt(10).panicking);
  EXPECT_TRUE(w.decisionAt(12).panicking);
  EXPECT_EQ(w.decisionAt(12).panic_time, at(12));
  EXPECT_EQ(w.decisionAt(12).reason, "panic window");
  EXPECT_DOUBLE_EQ(w.decisionAt(12).panic, 13.333333);
  for (int s = 12; s <= 72; s += 2) {
    EXPECT_TRUE(w.decisionAt(s).panicking) << "s=" << s;
    EXPECT_GE(w.decisionAt(s).decider.desired_scale, s < 16 ? 2 : 4) << "s=" << s;
  }
  EXPECT_EQ(w.decisionAt(72).decider.desired_scale, 4);
  EXPECT_FALSE(w.decisionAt(74).panicking);
  EXPECT_EQ(w.decisionAt(74).reason, "stable window");
}

// ----- The activator in and out of the path -----

// min-scale 3, defaults otherwise.
//  s=0  no metrics yet, but Activating: bounds lift -1 to 3: replicas 1 → 3. EBC starts at
//       1*100 - 211 = -111: Proxy.
//  s=1  3 ready: Active. s=2: decider with 3 ready: EBC 300-211-0 = 89: Serve (out).
//  Concurrency 100 at seconds 11..20; the panic window (6s) average decides:
//  s=12 200/6 = 33.3 → EBC 55; s=14 400/6 = 66.7 → 22 (out); s=16 600/6 = 100 → -11: in.
//  s=22 400/6 = 66.7 → 22: out again.
//  s=31 a pod stops being ready (off the grid): the decider's EBC (89, from 30) stands, the
//       SKS still serves from 2 pods; the PA goes Activating "Queued" (2 < min-scale 3).
//  s=32 decider with 2 ready: EBC 200-211 = -11: in.
TEST(RevisionAutoscaler, ActivatorInAndOutOfThePathWithReadyPodsAndEbc) {
  World w(scaling({{std::string(kMinScaleAnnotation), "3"}}));
  for (int s = 11; s <= 20; ++s) w.scraper[s] = scraperStat(100);
  w.pod_losses[31] = 1;
  w.runTo(40);
  EXPECT_EQ(w.replica_changes, (std::map<int, int>{{0, 3}}));
  EXPECT_EQ(w.decisionAt(0).reason, "scale bounds: 3 before any metrics");
  EXPECT_EQ(w.decisionAt(0).pa.activity, PaActivity::kActivating);
  EXPECT_TRUE(w.decisionAt(0).activator_in_path);
  EXPECT_EQ(w.decisionAt(1).pa.activity, PaActivity::kActive);

  std::map<int, bool> in_path;
  for (const auto& [s, ds] : w.decisions) {
    for (const RevisionDecision& d : ds) {
      if (d.activator_path_changed) in_path[s] = d.activator_in_path;
    }
  }
  EXPECT_EQ(in_path, (std::map<int, bool>{{2, false}, {16, true}, {22, false}, {32, true}}));
  EXPECT_EQ(w.decisionAt(12).decider.excess_burst_capacity, 55);
  EXPECT_EQ(w.decisionAt(14).decider.excess_burst_capacity, 22);
  EXPECT_EQ(w.decisionAt(16).decider.excess_burst_capacity, -11);
  EXPECT_EQ(w.decisionAt(16).activator_in_path_since, at(16));
  EXPECT_EQ(w.decisionAt(16).reason, "activator in the path: excess burst capacity -11");

  const RevisionDecision& lost = w.decisionAt(31);
  EXPECT_FALSE(lost.decider_ticked);
  EXPECT_FALSE(lost.activator_in_path);
  EXPECT_EQ(lost.pa.activity, PaActivity::kActivating);
  EXPECT_EQ(lost.pa.reason, kReasonQueued);
  EXPECT_EQ(lost.pa.actual_scale, 2);
  EXPECT_EQ(w.decisionAt(32).decider.excess_burst_capacity, -11);
}

// TBC 0 and min-scale 1.
//  s=0  Activating, no metrics: the bounds lift -1 to 1, want 1 with EBC 0: the PA asks for
//       Serve, but with no pod ready the SKS reconciler forces Proxy.
//  s=1  the pod is ready: the PA goes Active, and the re-reconcile of an Active PA without
//       metrics returns want -1 ("metrics are not yet being collected"), so kpa.go asks for
//       Proxy again (Serve needs want > 0).
//  s=2  first decider tick: desired 0, bounds 1: want 1, Serve: the activator leaves.
//  s=11 the pod stops being ready: the spec stays Serve, the SKS is forced to Proxy: the
//       activator is in the path since 11; the PA is Activating "Queued" (0 < min-scale 1).
TEST(RevisionAutoscaler, NoReadyPodForcesProxy) {
  World w(scaling({{std::string(kMinScaleAnnotation), "1"}}, {{"target-burst-capacity", "0"}}));
  EXPECT_EQ(w.ra.requestedSksMode(), SksMode::kServe);
  EXPECT_TRUE(w.decisionAt(0).activator_in_path);
  w.pod_losses[11] = 1;
  w.runTo(20);
  EXPECT_EQ(w.decisionAt(1).want, -1);
  EXPECT_TRUE(w.decisionAt(1).activator_in_path);
  EXPECT_FALSE(w.decisionAt(2).activator_in_path);
  EXPECT_FALSE(w.decisionAt(10).activator_in_path);
  const RevisionDecision& lost = w.decisionAt(11);
  EXPECT_TRUE(lost.activator_in_path);
  EXPECT_EQ(lost.activator_in_path_since, at(11));
  EXPECT_EQ(lost.reason, "activator in the path: no ready pods");
  EXPECT_EQ(lost.pa.activity, PaActivity::kActivating);
  EXPECT_EQ(w.ra.requestedSksMode(), SksMode::kServe);
  EXPECT_EQ(w.ra.sksMode(), SksMode::kProxy);
}

// ----- requeue_after drives the timing -----

// TBC 0, grace 7s, a decider period of 10s; the owner calls tick() only on its 10s grid and
// at last call + requeue_after (not even on pod changes). Idle revision:
//  s=10 first call with the pod ready (ready since 1): the PA goes Active at 10 (the decider's
//       first tick, stable 0 → desired 0); re-reconcile: Active for 0 < 60s: hold 1, re-check
//       after 60s; want 1 with EBC 0: Serve.
//  s=70 Active for 60s: Inactive, SKS to Proxy since 70; Inactive for 0 < grace 7s:
//       re-check after 7s.
//  s=77 (requeue, off the 10s grid) Inactive for 7s ≥ 7s: replicas 0 = Active + 60 + 7.
// An owner that only ticks on its period gets there at s=80.
TEST(RevisionAutoscaler, RequeueAfterDrivesScaleToZeroOnTime) {
  const RevisionScaling s =
      scaling({}, {{"target-burst-capacity", "0"}, {"scale-to-zero-grace-period", "7s"}});
  RevisionAutoscalerOptions options;
  options.tick_interval = seconds(10);

  World requeue(s, Driver::kPeriodAndRequeue, options);
  requeue.runTo(200);
  EXPECT_EQ(requeue.replica_changes, (std::map<int, int>{{77, 0}}));
  EXPECT_EQ(requeue.decisionAt(10).pa.activity_since, at(10));
  EXPECT_EQ(requeue.decisionAt(10).requeue_after, seconds(60));
  EXPECT_EQ(requeue.decisionAt(70).requeue_after, seconds(7));
  EXPECT_EQ(requeue.decisionAt(70).next_tick_at, at(77));
  EXPECT_EQ(requeue.decisionAt(77).reason, "inactive past grace and retention");
  // Besides the 10s grid, only the requeue at 77 (and the creation) caused a call.
  for (int c : requeue.calls) EXPECT_TRUE(c % 10 == 0 || c == 77) << "call at s=" << c;

  World period(s, Driver::kPeriodOnly, options);
  period.runTo(200);
  EXPECT_EQ(period.replica_changes, (std::map<int, int>{{80, 0}}));
}

// The same with the recommended owner (next_tick_at and pod events): Active from the pod's
// readiness at 1, the hold's re-check at 61 and the grace's at 68 come between grid points.
TEST(RevisionAutoscaler, NextTickAtFollowsTheRequeues) {
  RevisionAutoscalerOptions options;
  options.tick_interval = seconds(10);
  World w(scaling({}, {{"target-burst-capacity", "0"}, {"scale-to-zero-grace-period", "7s"}}),
          Driver::kOwner, options);
  w.runTo(200);
  EXPECT_EQ(w.replica_changes, (std::map<int, int>{{68, 0}}));
  EXPECT_EQ(w.decisionAt(10).next_tick_at, at(20));
  EXPECT_EQ(w.decisionAt(60).next_tick_at, at(61));
  EXPECT_EQ(w.decisionAt(61).pa.activity, PaActivity::kInactive);
  EXPECT_EQ(w.decisionAt(61).next_tick_at, at(68));
}

// ----- Settings -----

// update() at s=3 with window 6s (then a tick, as for any PA change): Active since 1, for 2s
// < 6s: hold, re-check after 4s. s=7: Active for 6s: Inactive; ProxyFor 7s < grace 30s:
// re-check after 23s. s=30: ProxyFor 30s: fast path, replicas 0.
TEST(RevisionAutoscaler, UpdateAppliesNewSettings) {
  World w(scaling());
  w.updates[3] = scaling({{std::string(kWindowAnnotation), "6s"}});
  w.runTo(100);
  EXPECT_EQ(w.replica_changes, (std::map<int, int>{{30, 0}}));
  EXPECT_EQ(w.decisionAt(3).requeue_after, seconds(4));
  EXPECT_EQ(w.decisionAt(7).pa.activity, PaActivity::kInactive);
  EXPECT_EQ(w.ra.scaling().stable_window, seconds(6));
}

}  // namespace
}  // namespace kh::autoscaler
