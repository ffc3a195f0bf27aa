#include "kh/controller/kpa_reconciler.h"

#include <algorithm>

#include "kh/autoscaler/metrics.h"
#include "kh/queueproxy/stats_scraper.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace kh::controller {

struct KpaReconciler::Revision {
  std::string isvc;
  std::string name;
  std::unique_ptr<autoscaler::RevisionAutoscaler> kpa;
  std::vector<uint16_t> ready_ports;
  int32_t replicas = 1;
  bool pods_changed = true;  // tick at once after tracking
  // Knative's ConcurrencyReporter sends a request at once as a stat (the poke) and leaves it
  // out of its next periodic report.
  bool poked_this_period = false;
  bool subtract_poke = false;
  common::MonotonicTime next_tick_at{};
  bool in_path_known = false;
  PodAutoscalerView view;
};

// What one decision asks of the world, applied outside the lock.
struct KpaReconciler::Applied {
  std::string revision;
  std::optional<int32_t> replicas;
  std::optional<bool> in_path;
  std::optional<events::ScaleDecided> event;
  std::optional<PodAutoscalerView> status;
};

namespace {

const char* activeConditionStatus(autoscaler::PaActivity a) {
  switch (a) {
    case autoscaler::PaActivity::kActive: return "True";
    case autoscaler::PaActivity::kInactive: return "False";
    case autoscaler::PaActivity::kActivating: return "Unknown";
  }
  return "Unknown";
}

bool sameView(const PodAutoscalerView& a, const PodAutoscalerView& b) {
  return a.desired_scale == b.desired_scale && a.actual_scale == b.actual_scale && a.replicas == b.replicas &&
         a.active == b.active && a.active_reason == b.active_reason && a.active_since == b.active_since &&
         a.scale_target_initialized == b.scale_target_initialized && a.activator_in_path == b.activator_in_path &&
         a.panicking == b.panicking;
}

}  // namespace

KpaReconciler::KpaReconciler(Deps deps, KpaOptions options)
    : deps_(std::move(deps)), options_(options), scraper_(std::make_unique<queueproxy::StatsScraper>()) {
  if (deps_.metrics != nullptr) {
    desired_pods_ = &prometheus::BuildGauge()
                         .Name("kh_autoscaler_desired_pods")
                         .Help("Pods the autoscaler wants, by revision")
                         .Register(*deps_.metrics);
  }
}

KpaReconciler::~KpaReconciler() { stop(); }

void KpaReconciler::start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { loop(); });
}

void KpaReconciler::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int32_t KpaReconciler::track(const std::string& isvc, const std::string& revision,
                             const autoscaler::RevisionScaling& settings, int ready_pods) {
  auto now = deps_.time->monotonicTime();
  std::lock_guard lock(mu_);
  auto& r = revisions_[revision];
  if (r) {
    if (!(r->kpa->scaling() == settings)) {
      r->kpa->update(now, settings);
      r->pods_changed = true;  // reconcile with the new settings at once
      wake_ = true;
      cv_.notify_all();
    }
    return r->replicas;
  }
  r = std::make_unique<Revision>();
  r->isvc = isvc;
  r->name = revision;
  autoscaler::RevisionAutoscalerOptions o;
  o.tick_interval = options_.tick;
  r->kpa = std::make_unique<autoscaler::RevisionAutoscaler>(settings, now, ready_pods, o);
  r->replicas = r->kpa->initialReplicas();
  r->next_tick_at = now;
  r->view.isvc = isvc;
  r->view.revision = revision;
  r->view.replicas = r->replicas;
  wake_ = true;
  cv_.notify_all();
  return r->replicas;
}

void KpaReconciler::untrack(const std::string& revision) {
  std::lock_guard lock(mu_);
  revisions_.erase(revision);
  if (desired_pods_ != nullptr) desired_pods_->Add({{"revision", revision}}).Set(0);
}

std::optional<int32_t> KpaReconciler::replicas(const std::string& revision) const {
  std::lock_guard lock(mu_);
  auto it = revisions_.find(revision);
  if (it == revisions_.end()) return std::nullopt;
  return it->second->replicas;
}

void KpaReconciler::setPods(const std::string& revision, std::vector<uint16_t> ready_admin_ports) {
  std::lock_guard lock(mu_);
  auto it = revisions_.find(revision);
  if (it == revisions_.end()) return;
  std::sort(ready_admin_ports.begin(), ready_admin_ports.end());
  if (it->second->ready_ports == ready_admin_ports) return;
  it->second->ready_ports = std::move(ready_admin_ports);
  it->second->pods_changed = true;
  wake_ = true;
  cv_.notify_all();
}

void KpaReconciler::activate(const std::string& revision) {
  std::vector<Applied> out;
  {
    auto now = deps_.time->monotonicTime();
    std::lock_guard lock(mu_);
    auto it = revisions_.find(revision);
    if (it == revisions_.end() || it->second->poked_this_period) return;
    Revision& r = *it->second;
    r.poked_this_period = true;
    r.subtract_poke = true;
    autoscaler::RevisionObservation obs{static_cast<int>(r.ready_ports.size()), r.replicas,
                                        autoscaler::Reachability::kReachable};
    decide(r, now, r.kpa->activate(now, obs), out);
  }
  apply(out);
}

std::vector<PodAutoscalerView> KpaReconciler::views() const {
  std::lock_guard lock(mu_);
  std::vector<PodAutoscalerView> out;
  for (const auto& [name, r] : revisions_) out.push_back(r->view);
  return out;
}

std::optional<PodAutoscalerView> KpaReconciler::view(const std::string& revision) const {
  std::lock_guard lock(mu_);
  auto it = revisions_.find(revision);
  if (it == revisions_.end()) return std::nullopt;
  return it->second->view;
}

void KpaReconciler::decide(Revision& r, common::MonotonicTime now, const autoscaler::RevisionDecision& d,
                           std::vector<Applied>& out) {
  r.next_tick_at = d.next_tick_at;
  Applied a;
  a.revision = r.name;
  bool replicas_changed = d.replicas.has_value() && *d.replicas != r.replicas;
  if (d.replicas) {
    r.replicas = *d.replicas;
    a.replicas = r.replicas;
  }
  if (d.activator_path_changed || !r.in_path_known) {
    r.in_path_known = true;
    a.in_path = d.activator_in_path;
  }
  if (replicas_changed || d.activator_path_changed) {
    events::ScaleDecided e;
    e.isvc = r.isvc;
    e.revision = r.name;
    e.desired = r.replicas;
    e.actual = d.pa.actual_scale;
    e.ready = static_cast<int>(r.ready_ports.size());
    e.panic = d.panicking;
    e.activator_in_path = d.activator_in_path;
    e.excess_burst_capacity = d.decider.excess_burst_capacity;
    e.stable = d.stable;
    e.active = d.pa.activity == autoscaler::PaActivity::kActive;
    e.reason = !d.reason.empty() ? d.reason : replicas_changed ? "scale" : "activator path changed";
    a.event = std::move(e);
  }
  PodAutoscalerView v = r.view;
  v.desired_scale = d.pa.desired_scale.value_or(-1);
  v.actual_scale = d.pa.actual_scale;
  v.replicas = r.replicas;
  v.active = activeConditionStatus(d.pa.activity);
  v.active_reason = std::string(d.pa.reason);
  v.active_message = std::string(d.pa.message);
  v.active_since = d.pa.activity_since;
  v.scale_target_initialized = d.pa.scale_target_initialized;
  v.activator_in_path = d.activator_in_path;
  v.panicking = d.panicking;
  v.excess_burst_capacity = d.decider.excess_burst_capacity;
  v.stable = d.stable;
  if (!sameView(v, r.view)) a.status = v;
  r.view = std::move(v);
  if (a.replicas || a.in_path || a.event || a.status) out.push_back(std::move(a));
}

void KpaReconciler::apply(std::vector<Applied>& out) {
  for (auto& a : out) {
    if (a.in_path && deps_.activator != nullptr) deps_.activator->setInPath(a.revision, *a.in_path);
    if (a.replicas) {
      if (desired_pods_ != nullptr) desired_pods_->Add({{"revision", a.revision}}).Set(*a.replicas);
      if (deps_.target != nullptr) deps_.target->setReplicas(a.revision, *a.replicas);
    }
    if (a.event && deps_.events != nullptr) deps_.events->emit(std::move(*a.event));
    if (a.status && deps_.on_status) deps_.on_status(*a.status);
  }
  out.clear();
}

void KpaReconciler::tickDue(common::MonotonicTime now, bool force, std::vector<Applied>& out) {
  for (auto& [name, rp] : revisions_) {
    Revision& r = *rp;
    if (!force && !r.pods_changed && !r.kpa->pokePending() && now < r.next_tick_at) continue;
    r.pods_changed = false;
    autoscaler::RevisionObservation obs{static_cast<int>(r.ready_ports.size()), r.replicas,
                                        autoscaler::Reachability::kReachable};
    decide(r, now, r.kpa->tick(now, obs), out);
  }
}

void KpaReconciler::scrape(common::MonotonicTime now) {
  // What to scrape: each revision's ready queue-proxies.
  std::vector<std::string> names;
  std::vector<uint16_t> ports;
  std::vector<std::pair<size_t, size_t>> ranges;  // per revision: [begin, end) in ports
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, r] : revisions_) {
      names.push_back(name);
      ranges.emplace_back(ports.size(), ports.size() + r->ready_ports.size());
      ports.insert(ports.end(), r->ready_ports.begin(), r->ready_ports.end());
    }
  }
  // Every pod at once, and the activator's reports, without the lock.
  auto results = scraper_->scrape(ports, options_.scrape_timeout);
  std::vector<queueproxy::StatsReport> activator_reports;
  for (const auto& n : names) {
    activator_reports.push_back(deps_.activator ? deps_.activator->lastReport(n) : queueproxy::StatsReport{});
  }
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < names.size(); ++i) {
    auto it = revisions_.find(names[i]);
    if (it == revisions_.end()) continue;  // gone meanwhile
    Revision& r = *it->second;
    // The scraper's revision-wide stat (stats_scraper.go): every pod is sampled here.
    std::vector<autoscaler::Stat> samples;
    for (size_t p = ranges[i].first; p < ranges[i].second; ++p) {
      if (!results[p].ok()) continue;
      const queueproxy::PodStat& s = *results[p];
      samples.push_back({s.pod_name, s.report.average_concurrency, s.report.average_proxied_concurrency,
                         s.report.request_count, s.report.proxied_request_count, s.process_uptime_s});
    }
    bool poke = false;
    if (!samples.empty()) {
      poke = r.kpa->record(now, autoscaler::aggregateScrapedStats(samples, static_cast<int>(r.ready_ports.size())));
    }
    // The activator's report of the last second (concurrency_reporter.go), less the request it
    // already sent as the poke.
    queueproxy::StatsReport a = activator_reports[i];
    if (r.subtract_poke) {
      a.average_concurrency = std::max(0.0, a.average_concurrency - 1);
      a.request_count = std::max(0.0, a.request_count - 1);
      r.subtract_poke = false;
    }
    r.poked_this_period = false;
    if (a.average_concurrency != 0 || a.request_count != 0) {
      autoscaler::Stat stat;
      stat.pod_name = std::string(autoscaler::kActivatorPodName);
      stat.average_concurrent_requests = a.average_concurrency;
      stat.request_count = a.request_count;
      poke = r.kpa->record(now, stat) || poke;
    }
    if (poke) r.pods_changed = true;  // tick now: a stat with concurrency found it at zero
  }
}

void KpaReconciler::loop() {
  auto next_scrape = deps_.time->monotonicTime() + options_.scrape_period;
  std::vector<Applied> out;
  while (true) {
    {
      std::unique_lock lock(mu_);
      auto until = next_scrape;
      for (const auto& [name, r] : revisions_) until = std::min(until, r->next_tick_at);
      auto wait = until - deps_.time->monotonicTime();
      // The clock may be simulated: wait in real time, at most a scrape period at once.
      wait = std::clamp<std::chrono::nanoseconds>(wait, std::chrono::nanoseconds(0), options_.scrape_period);
      cv_.wait_for(lock, wait, [&] { return stopping_ || wake_; });
      if (stopping_) return;
      wake_ = false;
    }
    auto now = deps_.time->monotonicTime();
    if (now >= next_scrape) {
      scrape(now);
      next_scrape = std::max(next_scrape + options_.scrape_period, now);
    }
    {
      std::lock_guard lock(mu_);
      tickDue(now, false, out);
    }
    apply(out);
  }
}

}  // namespace kh::controller
