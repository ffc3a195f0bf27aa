#include "kh/simulate/simulate.h"

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <tuple>
#include <unordered_set>

#include "kh/autoscaler/config.h"
#include "kh/autoscaler/revision_autoscaler.h"
#include "kh/common/strings.h"
#include "kh/loadgen/hdr_histogram.h"
#include "kh/loadgen/schedule.h"
#include "kh/report/html.h"

namespace kh::simulate {
namespace {

using nlohmann::json;
namespace as = autoscaler;

constexpr double kDefaultTailS = 15 * 60;

// Virtual time: seconds from the start, as the autoscaler's time points (an arbitrary origin
// far from the clock's zero). Rounded to the nearest nanosecond, so that at(seconds(t)) == t:
// truncation turned a re-check the KPA asked for at t into t − 1 ns, before it was due, and
// the loop asked again at the same instant forever.
as::TimePoint at(double s) {
  const double ns = s * 1e9;  // (virtual time is never negative)
  return as::TimePoint{} + std::chrono::hours(24) + as::Duration(static_cast<int64_t>(ns + 0.5));
}
double seconds(as::TimePoint t) { return std::chrono::duration<double>(t - at(0)).count(); }

double percentileOf(std::vector<double>& values, double q) {
  if (values.empty()) return 0;
  size_t k = static_cast<size_t>(std::ceil(q / 100.0 * static_cast<double>(values.size()))) - 1;
  k = std::min(k, values.size() - 1);
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(k), values.end());
  return values[k];
}

// A first-in first-out queue on a power-of-two ring: std::deque's size() and iterators were a
// visible share of a fleet run, where these queues hold one or two items at a time.
template <typename T>
class Fifo {
 public:
  bool empty() const { return count_ == 0; }
  size_t size() const { return count_; }
  const T& front() const { return ring_[head_]; }
  void push_back(const T& v) {
    if (count_ == ring_.size()) grow();
    ring_[(head_ + count_) & (ring_.size() - 1)] = v;
    ++count_;
  }
  void pop_front() {
    head_ = (head_ + 1) & (ring_.size() - 1);
    --count_;
  }

 private:
  void grow() {
    std::vector<T> bigger(std::max<size_t>(8, ring_.size() * 2));
    for (size_t i = 0; i < count_; ++i) bigger[i] = ring_[(head_ + i) & (ring_.size() - 1)];
    ring_ = std::move(bigger);
    head_ = 0;
  }

  std::vector<T> ring_;
  size_t head_ = 0;
  size_t count_ = 0;
};

struct Pod {
  uint64_t id = 0;
  double ready_at = 0;
  int in_flight = 0;
  bool leaving = false;  // taken away by a scale-down: finishes what it has, takes nothing new
  double gone_at = 0;    // leaving: when its drain ends (it goes once idle too)
};

// One service through its own KPA, event by event.
class ServiceRun {
 public:
  ServiceRun(const ServiceWorkload& w, const ServiceModel& m, const SimulationSettings& s, as::RevisionScaling scaling,
             double end_s, std::vector<double>& waits_ms, uint64_t seed)
      : w_(w),
        m_(m),
        s_(s),
        end_s_(end_s),
        waits_ms_(waits_ms),
        kpa_(std::move(scaling), at(0), 0, options(s)),
        random_(seed) {
    result_.name = w.name;
    // The revision is created with initial-scale pods, then the KPA reconciles at once.
    applyReplicas(kpa_.initialReplicas());
  }

  ServiceResult run() {
    size_t next_arrival = 0;
    double next_stat = 1;  // the scraper's and the activator's 1 s reports
    while (true) {
      // The next event, in this order on ties: a completion, a pod ready, an arrival, the
      // second's stats, a tick.
      double t_done = completions_.empty() ? kNever : completions_.top().at;
      double t_ready = nextReadyAfterNow();
      double t_arrival = next_arrival < w_.arrivals_s.size() ? w_.arrivals_s[next_arrival] : kNever;
      double t_gone = nextGoneAfterNow();
      double t_deliver = pending_stats_.empty() ? kNever : pending_stats_.front().at;
      if (s_.skip_idle && idle()) {
        // At zero with nothing in flight, pending or due: every stat would be empty and every
        // tick a decider run without data, so time jumps to the next request (exactly what the
        // KPA would have decided; a fleet's idle revisions then cost nothing).
        double resume = std::min(t_arrival, end_s_);
        if (resume > next_stat) next_stat = std::ceil(resume);
        if (resume > next_tick_) next_tick_ = resume;
      }
      // (Pairwise: an initializer list's min_element was a measurable share of a fleet run.)
      double t = std::min(std::min(std::min(t_done, t_ready), std::min(t_gone, t_arrival)),
                          std::min(std::min(next_stat, t_deliver), next_tick_));
      if (t > end_s_) break;
      advance(t);
      if (t == t_done) {
        finish();
      } else if (t == t_gone) {
        podsChanged();
      } else if (t == t_ready) {
        // A pod became ready: it takes waiting requests, and the KPA re-reconciles on pods.
        dispatch();
        tick();
      } else if (t == t_arrival) {
        arrive(w_.arrivals_s[next_arrival++]);
      } else if (t == next_stat) {
        snapshot();
        next_stat += 1;
      } else if (t == t_deliver) {
        deliver();
      } else {
        tick();
      }
    }
    advance(end_s_);
    result_.simulated_s = end_s_;
    result_.cold_start_share =
        result_.requests > 0 ? static_cast<double>(result_.cold_start_requests) / static_cast<double>(result_.requests) : 0;
    result_.price = result_.pod_seconds / 3600.0 * s_.price_per_pod_hour;
    return result_;
  }

 private:
  static constexpr double kNever = std::numeric_limits<double>::infinity();

  static as::RevisionAutoscalerOptions options(const SimulationSettings& s) {
    as::RevisionAutoscalerOptions o;
    o.fixed_settings = true;  // one run, one set of settings
    o.explain = false;        // no events are shown
    if (s.tick_interval_s > 0) {
      o.tick_interval = std::chrono::duration_cast<as::Duration>(std::chrono::duration<double>(s.tick_interval_s));
    }
    return o;
  }
  // The pods' next ready and gone instants and the ready count as of now_, cached: a fleet
  // run asks for them at every event. They hold until a pod changes (podsTouched) or time
  // reaches the earlier of the two instants.
  void refreshPods() {
    if (now_ < pods_valid_until_) return;
    next_ready_ = next_gone_ = kNever;
    ready_pods_ = 0;
    for (const auto& p : pods_) {
      if (!p.leaving && p.ready_at > now_) next_ready_ = std::min(next_ready_, p.ready_at);
      if (p.leaving && p.in_flight == 0 && p.gone_at > now_) next_gone_ = std::min(next_gone_, p.gone_at);
      ready_pods_ += !p.leaving && p.ready_at <= now_ ? 1 : 0;
    }
    pods_valid_until_ = std::min(next_ready_, next_gone_);
  }
  void podsTouched() { pods_valid_until_ = -kNever; }
  double nextGoneAfterNow() {
    refreshPods();
    return next_gone_;
  }
  bool gone(const Pod& p) const { return p.leaving && p.in_flight == 0 && p.gone_at <= now_; }
  bool idle() const {
    return replicas_ == 0 && pods_.empty() && queue_.empty() && serving_ == 0 && pending_stats_.empty() &&
           serving_integral_ == 0 && held_integral_ == 0 && period_direct_ == 0 && period_held_ == 0 &&
           !subtract_poke_ && !kpa_.pokePending() && !kpa_.requeueAt().has_value() &&
           kpa_.paStatus().activity != as::PaActivity::kActive;
  }

  // A measured value drawn at random (a bootstrap of the samples), or the constant.
  double draw(const std::vector<double>& samples, double constant) {
    if (samples.empty()) return constant;
    return samples[std::uniform_int_distribution<size_t>(0, samples.size() - 1)(random_)];
  }

  bool takes(const Pod& p) const {
    const int cc = m_.container_concurrency;
    return !p.leaving && p.ready_at <= now_ && (cc <= 0 || p.in_flight < cc);
  }
  int readyPods() {
    refreshPods();
    return ready_pods_;
  }
  double nextReadyAfterNow() {
    refreshPods();
    return next_ready_;
  }

  // Moves time to `t`: the integrals (pods alive, time at zero, requests in the system).
  void advance(double t) {
    double dt = t - now_;
    if (dt > 0) {
      result_.pod_seconds += dt * static_cast<double>(pods_.size());
      if (pods_.empty()) result_.zero_seconds += dt;
      serving_integral_ += dt * static_cast<double>(serving_);
      held_integral_ += dt * static_cast<double>(queue_.size());
    }
    now_ = t;
  }

  void podsChanged() {
    podsTouched();
    pods_.erase(std::remove_if(pods_.begin(), pods_.end(), [&](const Pod& p) { return gone(p); }), pods_.end());
    int alive = static_cast<int>(pods_.size());
    result_.max_pods = std::max(result_.max_pods, alive);
    if (s_.keep_series && (result_.pods_series.empty() || result_.pods_series.back().second != alive)) {
      result_.pods_series.emplace_back(now_, alive);
    }
  }

  // The KPA's replicas: new pods start cold; a scale-down takes the pods not ready yet first
  // (newest first), then the idlest.
  void applyReplicas(int32_t replicas) {
    podsTouched();
    replicas_ = replicas;
    int active = 0;
    for (const auto& p : pods_) active += p.leaving ? 0 : 1;
    for (; active < replicas_; ++active) {
      pods_.push_back({next_pod_id_++, now_ + draw(m_.pod_startup_samples, m_.pod_startup_s), 0, false, 0});
    }
    for (; active > replicas_; --active) {
      Pod* victim = nullptr;
      auto rank = [&](const Pod& p) { return std::make_tuple(p.ready_at > now_ ? 0 : 1, p.in_flight, -p.ready_at); };
      for (auto& p : pods_) {
        if (!p.leaving && (victim == nullptr || rank(p) < rank(*victim))) victim = &p;
      }
      victim->leaving = true;
      victim->gone_at = now_ + m_.pod_drain_s;
    }
    podsChanged();
  }

  void decide(const as::RevisionDecision& d) {
    next_tick_ = std::max(now_, seconds(d.next_tick_at));
    if (d.panicking && !panicking_) ++result_.panic_episodes;
    panicking_ = d.panicking;
    if (d.replicas && *d.replicas != replicas_) {
      ++result_.scale_events;
      if (*d.replicas == 0) ++result_.scale_to_zero_events;
      applyReplicas(*d.replicas);
      dispatch();
    }
  }

  as::RevisionObservation observation() { return {readyPods(), replicas_, as::Reachability::kReachable}; }

  void tick() {
    ++result_.kpa_ticks;
    decide(kpa_.tick(at(now_), observation()));
  }

  void arrive(double arrival) {
    ++result_.requests;
    if (replicas_ == 0) ++result_.cold_starts;
    if (readyPods() == 0) {
      ++result_.cold_start_requests;
      // The activator's first request of the period pokes the KPA (and is left out of its
      // next report, as refstack's KpaReconciler does).
      if (!poked_this_period_) {
        poked_this_period_ = true;
        subtract_poke_ = true;
        decide(kpa_.activate(at(now_), observation()));
      }
    }
    bool room = std::any_of(pods_.begin(), pods_.end(), [&](const Pod& p) { return takes(p); });
    ++(room && queue_.empty() ? period_direct_ : period_held_);
    queue_.push_back(arrival);
    dispatch();
  }

  // Waiting requests go to ready pods with room, the least busy first.
  void dispatch() {
    while (!queue_.empty()) {
      Pod* best = nullptr;
      for (auto& p : pods_) {
        if (takes(p) && (best == nullptr || p.in_flight < best->in_flight)) best = &p;
      }
      if (best == nullptr) return;
      waits_ms_.push_back((now_ - queue_.front()) * 1000);
      queue_.pop_front();
      ++best->in_flight;
      podsTouched();
      ++serving_;
      completions_.push({now_ + draw(m_.service_time_samples, m_.service_time_s), next_completion_++, best->id});
    }
  }

  void finish() {
    uint64_t id = completions_.top().pod;
    completions_.pop();
    --serving_;
    for (auto& p : pods_) {
      if (p.id == id) {
        --p.in_flight;
        podsTouched();
        if (gone(p)) podsChanged();
        break;
      }
    }
    dispatch();
  }

  // The second's reports, taken at its end: the pods' (the scraper's) while any is ready, the
  // activator's for the requests it held (less the request it already sent as the poke).
  void snapshot() {
    PendingStats st;
    st.at = now_ + std::max(0.0, s_.stats_delay_s);
    st.pods_ready = readyPods() > 0;
    st.serving = serving_integral_;
    st.held = held_integral_;
    st.direct = static_cast<double>(period_direct_);
    st.through = static_cast<double>(period_held_);
    serving_integral_ = held_integral_ = 0;
    period_direct_ = period_held_ = 0;
    if (subtract_poke_) {
      st.held = std::max(0.0, st.held - 1);
      st.through = std::max(0.0, st.through - 1);
      subtract_poke_ = false;
    }
    poked_this_period_ = false;
    // An empty second (no pod ready, nothing held) records nothing when delivered: keep it out
    // of the queue, so that a revision at zero is idle and its time can be skipped.
    if (!st.pods_ready && st.held <= 0 && st.through <= 0) return;
    pending_stats_.push_back(st);
    // Reports due now (the previous second's, with the usual 1 s delay) go in at once, in the
    // same step: nothing else can happen between the second's snapshot and them.
    while (!pending_stats_.empty() && pending_stats_.front().at <= now_) deliver();
  }

  // The KPA reads a second's reports (the next scrape); a stat that pokes it ticks it at once.
  void deliver() {
    PendingStats st = pending_stats_.front();
    pending_stats_.pop_front();
    bool poke = false;
    if (st.pods_ready) {
      scraper_stat_.average_concurrent_requests = st.serving;
      scraper_stat_.request_count = st.direct;
      poke = kpa_.record(at(now_), scraper_stat_) || poke;
    }
    if (st.held > 0 || st.through > 0) {
      activator_stat_.average_concurrent_requests = st.held;
      activator_stat_.request_count = st.through;
      poke = kpa_.record(at(now_), activator_stat_) || poke;
    }
    if (poke) tick();
  }

  struct PendingStats {
    double at = 0;
    bool pods_ready = false;
    double serving = 0, held = 0, direct = 0, through = 0;
  };
  Fifo<PendingStats> pending_stats_;
  // The two reporters' stats, named once (a fleet run records billions).
  as::Stat scraper_stat_{std::string(as::kScraperPodName)};
  as::Stat activator_stat_{std::string(as::kActivatorPodName)};

  const ServiceWorkload& w_;
  const ServiceModel& m_;
  const SimulationSettings& s_;
  const double end_s_;
  std::vector<double>& waits_ms_;
  as::RevisionAutoscaler kpa_;
  ServiceResult result_;

  double now_ = 0;
  double next_tick_ = 0;
  int32_t replicas_ = 0;
  bool panicking_ = false;
  std::vector<Pod> pods_;
  // refreshPods()'s cache.
  double pods_valid_until_ = -kNever;
  double next_ready_ = kNever, next_gone_ = kNever;
  int ready_pods_ = 0;
  uint64_t next_pod_id_ = 1;
  Fifo<double> queue_;  // arrival times of the requests waiting for a pod
  // Requests being served, the earliest end first (ties: the first dispatched).
  struct Completion {
    double at;
    uint64_t seq;
    uint64_t pod;
    bool operator>(const Completion& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };
  std::priority_queue<Completion, std::vector<Completion>, std::greater<>> completions_;
  uint64_t next_completion_ = 0;
  // Draws of measured service and start-up times (the run's own seed).
  std::mt19937_64 random_;
  int serving_ = 0;
  double serving_integral_ = 0, held_integral_ = 0;
  int64_t period_direct_ = 0, period_held_ = 0;
  bool poked_this_period_ = false;
  bool subtract_poke_ = false;
};

// A schedule's offsets in seconds, up to `duration_s` when it is > 0.
std::vector<double> drain(loadgen::Schedule& schedule, double duration_s) {
  std::vector<double> out;
  while (auto next = schedule.next()) {
    double t = std::chrono::duration<double>(*next).count();
    if (duration_s > 0 && t > duration_s) break;
    out.push_back(t);
  }
  return out;
}

loadgen::Nanos nanos(double seconds) {
  return std::chrono::duration_cast<loadgen::Nanos>(std::chrono::duration<double>(seconds));
}

}  // namespace

absl::StatusOr<double> parseSpanSeconds(const std::string& text) {
  // The harness's own durations first (seconds, 500ms, 2m; bounded to what Nanos holds), then
  // Go's for what only it reads (1m30s); Go's cannot overflow but may be negative.
  auto ours = loadgen::parseDuration(text);
  if (ours.ok()) return std::chrono::duration<double>(*ours).count();
  if (absl::IsOutOfRange(ours.status())) return ours.status();
  auto go = as::parseGoDuration(text);
  if (!go.ok()) return go.status();
  if (go->count() < 0) return absl::InvalidArgumentError(common::strCat("\"", text, "\" is negative"));
  return std::chrono::duration<double>(*go).count();
}

absl::StatusOr<std::vector<double>> arrivalsFrom(const std::string& schedule, double duration_s, uint64_t seed) {
  const auto duration = nanos(duration_s);
  std::unique_ptr<loadgen::Schedule> s;
  auto number = [&](std::string_view text) -> absl::StatusOr<double> {
    char* end = nullptr;
    std::string copy(text);
    double v = std::strtod(copy.c_str(), &end);
    if (end == copy.c_str() || *end != '\0' || !(v > 0)) {
      return absl::InvalidArgumentError(common::strCat("workload \"", schedule, "\": not a positive number: ", text));
    }
    return v;
  };
  if (schedule.rfind("trace:", 0) == 0) {
    auto t = loadgen::makeTraceSchedule(schedule.substr(6));
    if (!t.ok()) return t.status();
    s = std::move(*t);
  } else if (schedule.rfind("poisson:", 0) == 0 || schedule.rfind("constant:", 0) == 0 ||
             schedule.rfind("every:", 0) == 0) {
    if (duration_s <= 0) return absl::InvalidArgumentError(common::strCat("workload \"", schedule, "\" needs a duration"));
    auto colon = schedule.find(':');
    auto v = number(std::string_view(schedule).substr(colon + 1));
    if (!v.ok()) return v.status();
    if (schedule[0] == 'p') {
      s = loadgen::makePoissonSchedule(*v, duration, seed);
    } else {
      s = loadgen::makeConstantSchedule(schedule[0] == 'c' ? *v : 1.0 / *v, duration);
    }
  } else if (schedule.rfind("diurnal:", 0) == 0 || schedule.rfind("onoff:", 0) == 0) {
    auto refuse = [&](const std::string& why) {
      return absl::InvalidArgumentError(common::strCat("workload \"", schedule, "\": ", why));
    };
    if (duration_s <= 0) return refuse("needs a duration");
    std::vector<std::string> fields;
    for (size_t pos = schedule.find(':') + 1;;) {
      size_t colon = schedule.find(':', pos);
      fields.push_back(schedule.substr(pos, colon == std::string::npos ? std::string::npos : colon - pos));
      if (colon == std::string::npos) break;
      pos = colon + 1;
    }
    auto span = [&](const std::string& text, const char* what) -> absl::StatusOr<loadgen::Nanos> {
      auto seconds = parseSpanSeconds(text);
      if (!seconds.ok()) return refuse(common::strCat(what, " \"", text, "\" is not a duration (e.g. 90s, 2m, 24h)"));
      return nanos(*seconds);
    };
    absl::StatusOr<std::unique_ptr<loadgen::Schedule>> made;
    if (schedule[0] == 'd') {
      if (fields.size() < 2 || fields.size() > 3) {
        return refuse("want diurnal:MEAN_RATE:AMPLITUDE[:PERIOD], e.g. diurnal:5:0.8:24h");
      }
      auto mean = number(fields[0]);
      if (!mean.ok()) return mean.status();
      char* end = nullptr;
      double amplitude = std::strtod(fields[1].c_str(), &end);
      if (fields[1].empty() || *end != '\0' || !(amplitude >= 0 && amplitude <= 1)) {
        return refuse(common::strCat("amplitude \"", fields[1], "\" is not a number in [0, 1]"));
      }
      loadgen::Nanos period = std::chrono::hours(24);
      if (fields.size() == 3) {
        auto p = span(fields[2], "period");
        if (!p.ok()) return p.status();
        if (p->count() <= 0) return refuse("the period must be above 0");
        period = *p;
      }
      made = loadgen::makeDiurnalSchedule(*mean, amplitude, duration, seed, period);
    } else {
      if (fields.size() != 3) {
        return refuse("want onoff:RATE:ON:OFF, e.g. onoff:5:2m:28m");
      }
      auto rate = number(fields[0]);
      if (!rate.ok()) return rate.status();
      auto on = span(fields[1], "ON period");
      if (!on.ok()) return on.status();
      if (on->count() <= 0) return refuse("the ON period must be above 0");
      auto off = span(fields[2], "OFF period");
      if (!off.ok()) return off.status();
      made = loadgen::makeOnOffSchedule(*rate, *on, *off, duration, seed);
    }
    if (!made.ok()) return refuse(std::string(common::toStd(made.status().message())));
    s = std::move(*made);
  } else {
    auto stages = loadgen::parseProfile(schedule);
    if (!stages.ok()) {
      return absl::InvalidArgumentError(common::strCat(
          "workload \"", schedule, "\": ", common::toStd(stages.status().message()),
          " (give trace:FILE, poisson:RATE, constant:RATE, every:SECONDS, diurnal:MEAN_RATE:AMPLITUDE[:PERIOD], "
          "onoff:RATE:ON:OFF or a profile like 100@60s,0@300s)"));
    }
    s = loadgen::makeProfileSchedule(std::move(*stages), seed);
  }
  return drain(*s, duration_s);
}

std::vector<double> fleetRates(const FleetSpec& fleet) {
  std::mt19937_64 random(fleet.seed);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  std::vector<double> weights(fleet.count);
  double sum = 0;
  for (auto& w : weights) {
    // Inverse transform of Pareto(x_m = 1, alpha).
    w = std::pow(1.0 - uniform(random), -1.0 / std::max(fleet.alpha, 0.01));
    sum += w;
  }
  for (auto& w : weights) w = sum > 0 ? w / sum * fleet.total_rate : 0;
  return weights;
}

ServiceWorkload fleetService(const FleetSpec& fleet, const std::vector<double>& rates, size_t i) {
  char name[32];
  std::snprintf(name, sizeof name, "fleet-%06zu", i + 1);
  ServiceWorkload w{name, {}};
  const double rate = rates.at(i);
  if (rate <= 0) return w;
  // `harness load`'s seeded Poisson schedule.
  auto schedule = loadgen::makePoissonSchedule(rate, nanos(fleet.duration_s), fleet.seed + 1 + i);
  w.arrivals_s = drain(*schedule, fleet.duration_s);
  return w;
}

absl::StatusOr<AzureTrace> readAzureFunctionsTrace(const std::string& path, const AzureTraceOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(common::strCat("cannot read Azure Functions trace ", path));
  auto bad = [&](size_t line_no, const std::string& why) {
    return absl::InvalidArgumentError(common::strCat(path, ":", line_no, ": ", why));
  };
  std::vector<std::string_view> fields;
  auto split = [&fields](std::string_view line) {
    fields.clear();
    for (size_t pos = 0;;) {
      size_t comma = line.find(',', pos);
      fields.push_back(line.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos));
      if (comma == std::string_view::npos) break;
      pos = comma + 1;
    }
  };
  auto chomp = [](std::string& line) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
  };
  std::string line;
  size_t line_no = 1;
  if (!std::getline(in, line)) {
    return bad(1, "empty file: want the header HashOwner,HashApp,HashFunction,Trigger,1,...,1440");
  }
  if (line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // a UTF-8 BOM
  chomp(line);
  split(line);
  constexpr std::string_view kIds[] = {"HashOwner", "HashApp", "HashFunction", "Trigger"};
  bool ids_ok = fields.size() > 4;
  for (size_t i = 0; ids_ok && i < 4; ++i) ids_ok = fields[i] == kIds[i];
  if (!ids_ok) {
    return bad(1, "not an Azure Functions invocation-count header: want "
                  "HashOwner,HashApp,HashFunction,Trigger,1,...,1440");
  }
  for (size_t i = 4; i < fields.size(); ++i) {
    if (fields[i] != std::to_string(i - 3)) {
      return bad(1, common::strCat("minute column ", i - 3, " is named \"", fields[i], "\" (want 1, 2, ... in order)"));
    }
  }
  AzureTrace trace;
  trace.minutes = fields.size() - 4;
  std::unordered_set<std::string> names;
  uint64_t row = 0;
  while ((options.limit == 0 || trace.functions.size() < options.limit) && std::getline(in, line)) {
    ++line_no;
    chomp(line);
    if (line.empty()) continue;
    split(line);
    if (fields.size() != 4 + trace.minutes) {
      return bad(line_no, common::strCat(fields.size(), " fields, want ", 4 + trace.minutes, " (4 ids and ",
                                         trace.minutes, " minute counts, as the header)"));
    }
    ++row;
    AzureFunction f;
    for (size_t k = 1; k <= trace.minutes; ++k) {
      std::string_view text = fields[3 + k];
      auto count = common::parseInt<uint32_t>(text);
      if (!count) {
        return bad(line_no, common::strCat("minute ", k, ": \"", text, "\" is not a count (a non-negative integer)"));
      }
      if (*count > 0) {
        f.minutes.emplace_back(static_cast<uint32_t>(k), *count);
        f.invocations += *count;
      }
    }
    if (options.skip_idle_functions && f.invocations == 0) continue;
    f.name = common::strCat(fields[2].substr(0, 12), "-", fields[3]);
    if (!names.insert(f.name).second) {
      f.name = common::strCat(f.name, "-r", row);
      names.insert(f.name);
    }
    f.seed = options.seed + row;
    trace.functions.push_back(std::move(f));
  }
  if (in.bad()) return absl::UnavailableError(common::strCat("error reading ", path));
  return trace;
}

ServiceWorkload azureService(const AzureFunction& function, double duration_s) {
  ServiceWorkload w{function.name, {}};
  w.arrivals_s.reserve(function.invocations);
  std::mt19937_64 random(function.seed);
  std::uniform_real_distribution<double> within(0.0, 60.0);
  for (const auto& [minute, count] : function.minutes) {
    const double start = 60.0 * (minute - 1), end = 60.0 * minute;
    if (duration_s > 0 && start >= duration_s) break;
    const size_t first = w.arrivals_s.size();
    for (uint32_t j = 0; j < count; ++j) {
      // start + u can round up to `end` for u just under 60; the minute is half-open.
      w.arrivals_s.push_back(std::min(start + within(random), std::nextafter(end, start)));
    }
    std::sort(w.arrivals_s.begin() + static_cast<std::ptrdiff_t>(first), w.arrivals_s.end());
  }
  while (duration_s > 0 && !w.arrivals_s.empty() && w.arrivals_s.back() >= duration_s) w.arrivals_s.pop_back();
  return w;
}

absl::StatusOr<SimulationResult> simulate(const std::vector<ServiceWorkload>& workloads, const ServiceModel& model,
                                          const SimulationSettings& settings) {
  return simulate(workloads.size(), [&](size_t i) { return workloads[i]; }, model, settings);
}

absl::StatusOr<SimulationResult> simulate(size_t count, const std::function<ServiceWorkload(size_t)>& workload,
                                          const ServiceModel& model, const SimulationSettings& settings) {
  auto config = as::parseAutoscalerConfig(settings.autoscaler);
  if (!config.ok()) return config.status();
  auto scaling = as::resolveRevisionScaling(*config, model.annotations, model.container_concurrency);
  if (!scaling.ok()) return scaling.status();
  if (model.service_time_s < 0 || model.pod_startup_s < 0) {
    return absl::InvalidArgumentError("service time and pod start-up must not be negative");
  }
  SimulationResult out;
  // Every request's wait, in microseconds (a fleet's requests need not all be kept).
  loadgen::HdrHistogram all_waits;
  for (size_t i = 0; i < count; ++i) {
    const ServiceWorkload w = workload(i);
    double end = settings.duration_s > 0 ? settings.duration_s
                                         : (w.arrivals_s.empty() ? 0 : w.arrivals_s.back()) + kDefaultTailS;
    std::vector<double> waits;
    waits.reserve(w.arrivals_s.size());
    ServiceResult r = ServiceRun(w, model, settings, *scaling, end, waits, settings.seed + i).run();
    r.added_latency_p50_ms = percentileOf(waits, 50);
    r.added_latency_p99_ms = percentileOf(waits, 99);
    r.added_latency_max_ms = waits.empty() ? 0 : *std::max_element(waits.begin(), waits.end());
    for (double ms : waits) all_waits.record(static_cast<int64_t>(std::llround(ms * 1000)));
    ServiceResult& t = out.total;
    t.requests += r.requests;
    t.cold_start_requests += r.cold_start_requests;
    t.cold_starts += r.cold_starts;
    t.pod_seconds += r.pod_seconds;
    t.price += r.price;
    t.zero_seconds += r.zero_seconds;
    t.scale_events += r.scale_events;
    t.scale_to_zero_events += r.scale_to_zero_events;
    t.panic_episodes += r.panic_episodes;
    t.max_pods += r.max_pods;
    t.kpa_ticks += r.kpa_ticks;
    t.simulated_s = std::max(t.simulated_s, r.simulated_s);
    out.services.push_back(std::move(r));
  }
  ServiceResult& t = out.total;
  t.name = "total";
  t.cold_start_share =
      t.requests > 0 ? static_cast<double>(t.cold_start_requests) / static_cast<double>(t.requests) : 0;
  t.added_latency_p50_ms = t.requests > 0 ? static_cast<double>(all_waits.valueAtPercentile(50)) / 1000 : 0;
  t.added_latency_p99_ms = t.requests > 0 ? static_cast<double>(all_waits.valueAtPercentile(99)) / 1000 : 0;
  t.added_latency_max_ms = t.requests > 0 ? static_cast<double>(all_waits.max()) / 1000 : 0;
  if (t.requests > 0) {
    for (double q : {0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 75.0, 80.0, 85.0, 90.0, 92.5, 95.0, 97.5, 99.0, 99.5,
                     99.9, 100.0}) {
      const double ms = q >= 100 ? t.added_latency_max_ms : static_cast<double>(all_waits.valueAtPercentile(q)) / 1000;
      t.added_latency_curve.emplace_back(q, ms);
    }
  }
  return out;
}

absl::StatusOr<SweepAxis> parseSweepAxis(const std::string& text) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size()) {
    return absl::InvalidArgumentError(common::strCat("--sweep \"", text, "\": want KEY=V1,V2,... (a config-autoscaler key)"));
  }
  SweepAxis axis;
  axis.key = text.substr(0, eq);
  std::string values = text.substr(eq + 1);
  size_t start = 0;
  while (start <= values.size()) {
    size_t comma = values.find(',', start);
    std::string v = values.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (v.empty()) return absl::InvalidArgumentError(common::strCat("--sweep \"", text, "\": an empty value"));
    axis.values.push_back(v);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  // The key must be one Knative reads (a ConfigMap ignores the others), each value one it takes.
  const auto& keys = as::autoscalerConfigKeys();
  if (std::find(keys.begin(), keys.end(), axis.key) == keys.end()) {
    std::string known;
    for (const auto& k : keys) known += (known.empty() ? "" : ", ") + k;
    return absl::InvalidArgumentError(
        common::strCat("--sweep ", axis.key, ": not a config-autoscaler key (", known, ")"));
  }
  for (const auto& v : axis.values) {
    auto checked = as::parseAutoscalerConfig({{axis.key, v}});
    if (!checked.ok()) {
      return absl::InvalidArgumentError(common::strCat("--sweep ", axis.key, "=", v, ": ",
                                                       common::toStd(checked.status().message())));
    }
  }
  return axis;
}

absl::StatusOr<std::vector<SweepPoint>> sweep(const std::vector<ServiceWorkload>& workloads, const ServiceModel& model,
                                              const SimulationSettings& settings, const std::vector<SweepAxis>& axes) {
  return sweep(workloads.size(), [&](size_t i) { return workloads[i]; }, model, settings, axes);
}

absl::StatusOr<std::vector<SweepPoint>> sweep(size_t count, const std::function<ServiceWorkload(size_t)>& workload,
                                              const ServiceModel& model, const SimulationSettings& settings,
                                              const std::vector<SweepAxis>& axes) {
  std::vector<std::map<std::string, std::string>> combos = {{}};
  for (const auto& axis : axes) {
    std::vector<std::map<std::string, std::string>> next;
    for (const auto& c : combos) {
      for (const auto& v : axis.values) {
        auto d = c;
        d[axis.key] = v;
        next.push_back(std::move(d));
      }
    }
    combos = std::move(next);
  }
  // The user's own settings, as a point of their own unless a combination equals them.
  std::map<std::string, std::string> current;
  for (const auto& axis : axes) {
    auto it = settings.autoscaler.find(axis.key);
    current[axis.key] = it != settings.autoscaler.end() ? it->second : "(default)";
  }
  bool current_listed = std::find(combos.begin(), combos.end(), current) != combos.end();
  std::vector<SweepPoint> points;
  auto run = [&](const std::map<std::string, std::string>& combo, bool is_current) -> absl::Status {
    SimulationSettings s = settings;
    s.keep_series = false;
    for (const auto& [k, v] : combo) {
      if (v != "(default)") s.autoscaler[k] = v;
    }
    auto r = simulate(count, workload, model, s);
    if (!r.ok()) return r.status();
    SweepPoint p;
    p.settings = combo;
    p.pod_seconds = r->total.pod_seconds;
    p.cold_start_share = r->total.cold_start_share;
    p.added_latency_p99_ms = r->total.added_latency_p99_ms;
    p.current = is_current;
    points.push_back(std::move(p));
    return absl::OkStatus();
  };
  for (const auto& c : combos) {
    if (auto st = run(c, c == current); !st.ok()) return st;
  }
  if (!current_listed) {
    if (auto st = run(current, true); !st.ok()) return st;
  }
  for (auto& p : points) {
    p.pareto = std::none_of(points.begin(), points.end(), [&](const SweepPoint& q) {
      return q.pod_seconds <= p.pod_seconds && q.cold_start_share <= p.cold_start_share &&
             (q.pod_seconds < p.pod_seconds || q.cold_start_share < p.cold_start_share);
    });
  }
  return points;
}

absl::StatusOr<std::vector<double>> serviceTimesFromLoadResult(const json& run) {
  const char* key = run.is_object() && run.contains("service_percentile_curve") ? "service_percentile_curve"
                                                                                : "percentile_curve";
  if (!run.is_object() || !run.contains(key) || !run[key].is_array() || run[key].empty()) {
    return absl::InvalidArgumentError(
        "not a harness load result with a latency curve (want the JSON of harness load -o, with service_percentile_curve)");
  }
  std::vector<std::pair<double, double>> curve;  // (percentile, ms), as written: ascending
  for (const auto& point : run[key]) {
    if (!point.is_array() || point.size() != 2 || !point[0].is_number() || !point[1].is_number()) {
      return absl::InvalidArgumentError(common::strCat(key, ": want [percentile, ms] points"));
    }
    curve.emplace_back(point[0].get<double>(), point[1].get<double>());
  }
  constexpr int kQuantiles = 1000;
  std::vector<double> out;
  out.reserve(kQuantiles);
  size_t k = 0;
  for (int i = 0; i < kQuantiles; ++i) {
    const double q = (i + 0.5) * 100.0 / kQuantiles;
    while (k < curve.size() && curve[k].first < q) ++k;
    double ms = 0;
    if (k == 0) {
      ms = curve.front().second;
    } else if (k == curve.size()) {
      ms = curve.back().second;
    } else {
      const auto& [p0, v0] = curve[k - 1];
      const auto& [p1, v1] = curve[k];
      ms = p1 > p0 ? v0 + (v1 - v0) * (q - p0) / (p1 - p0) : v1;
    }
    out.push_back(std::max(0.0, ms) / 1000);
  }
  return out;
}

absl::StatusOr<std::vector<double>> podStartupsFromReport(const json& report) {
  std::vector<const json*> scenarios;
  if (report.is_object() && report.contains("scenarios") && report["scenarios"].is_array()) {
    for (const auto& s : report["scenarios"]) scenarios.push_back(&s);
  } else if (report.is_object() && report.contains("observations")) {
    scenarios.push_back(&report);
  } else {
    return absl::InvalidArgumentError("not a harness run report (want report.json, with scenarios)");
  }
  // A field of another type than expected is skipped (json::value would throw on a non-object).
  static const json kNone;
  auto field = [](const json& j, const char* key) -> const json& {
    if (!j.is_object()) return kNone;
    auto it = j.find(key);
    return it == j.end() ? kNone : *it;
  };
  auto items = [](const json& j) { return j.is_array() ? j : json::array(); };
  std::vector<double> out;
  for (const json* s : scenarios) {
    std::vector<double> ready, first_byte;
    for (const auto& e : items(field(field(*s, "observations"), "events"))) {
      if (field(e, "type") != "coldstart") continue;
      const json& ms = field(field(e, "breakdown"), "ready_ms");
      if (ms.is_number()) ready.push_back(ms.get<double>() / 1000);
    }
    for (const auto& a : items(field(*s, "assertions"))) {
      const json& data = field(a, "data");
      if (field(data, "kind") != "coldstart") continue;
      for (const auto& sample : items(field(data, "samples"))) {
        const json& ms = field(sample, "total_ms");
        if (ms.is_number()) first_byte.push_back(ms.get<double>() / 1000);
      }
    }
    const auto& chosen = ready.empty() ? first_byte : ready;
    out.insert(out.end(), chosen.begin(), chosen.end());
  }
  if (out.empty()) {
    return absl::InvalidArgumentError(
        "the report has no cold start (no coldstart event with a ready time, no cold_start assertion samples)");
  }
  return out;
}

std::string settingsLabel(const std::map<std::string, std::string>& settings) {
  std::string label;
  for (const auto& [k, v] : settings) label += common::strCat(label.empty() ? "" : " ", k, "=", v);
  return label;
}

json toJson(const ServiceResult& r) {
  json o = {{"name", r.name},
            {"requests", r.requests},
            {"cold_start_requests", r.cold_start_requests},
            {"cold_starts", r.cold_starts},
            {"cold_start_share", r.cold_start_share},
            {"added_latency_ms", {{"p50", r.added_latency_p50_ms}, {"p99", r.added_latency_p99_ms}, {"max", r.added_latency_max_ms}}},
            {"pod_seconds", r.pod_seconds},
            {"price", r.price},
            {"zero_seconds", r.zero_seconds},
            {"scale_events", r.scale_events},
            {"scale_to_zero_events", r.scale_to_zero_events},
            {"panic_episodes", r.panic_episodes},
            {"max_pods", r.max_pods},
            {"kpa_ticks", r.kpa_ticks},
            {"simulated_s", r.simulated_s}};
  if (!r.pods_series.empty()) o["pods_series"] = r.pods_series;
  if (!r.added_latency_curve.empty()) o["added_latency_curve"] = r.added_latency_curve;
  return o;
}

json toJson(const SimulationResult& r) {
  json services = json::array();
  for (const auto& s : r.services) services.push_back(toJson(s));
  return {{"schema", "kserve-harness/simulation/v1"}, {"services", services}, {"total", toJson(r.total)}};
}

json toJson(const std::vector<SweepPoint>& points) {
  json out = json::array();
  for (const auto& p : points) {
    out.push_back({{"settings", p.settings},
                   {"pod_seconds", p.pod_seconds},
                   {"cold_start_share", p.cold_start_share},
                   {"added_latency_p99_ms", p.added_latency_p99_ms},
                   {"pareto", p.pareto},
                   {"current", p.current}});
  }
  return out;
}

}  // namespace kh::simulate

namespace kh::simulate {

std::string reportHtml(const nlohmann::json& result, size_t series_services) {
  using nlohmann::json;
  auto esc = [](const std::string& s) { return report::escapeHtml(s); };
  auto num = [](double v, int digits) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", digits, v);
    return std::string(buf);
  };
  std::string html =
      "<!doctype html><html><head><meta charset=utf-8><title>harness simulate</title><style>"
      "body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}"
      "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}"
      "td:first-child{text-align:left;white-space:nowrap}.plot{margin:1em 0}</style></head><body>"
      "<h1>Autoscaler what-if (harness simulate)</h1>"
      "<p>Workloads replayed in virtual time through Knative's KPA (kh::autoscaler, the code refstack runs).</p>";
  html += "<table><tr><th>service</th><th>requests</th><th>cold-start requests</th><th>cold %</th><th>cold starts</th>"
          "<th>added p50 ms</th><th>added p99 ms</th><th>pod-seconds</th><th>at zero s</th><th>scale events</th>"
          "<th>panic episodes</th></tr>";
  const json services = result.value("services", json::array());
  // A fleet's table: the total first, then the busiest services (all of them are in the JSON and
  // the CSV; a thousand rows would bury the plots).
  constexpr size_t kTableRows = 20;
  std::vector<json> rows(services.begin(), services.end());
  std::stable_sort(rows.begin(), rows.end(),
                   [](const json& x, const json& y) { return x.value("requests", 0) > y.value("requests", 0); });
  if (rows.size() > kTableRows) {
    html += common::strCat("<p>", services.size(), " services: the total, then the ", kTableRows,
                           " busiest (every service is in the JSON and CSV).</p>");
    rows.resize(kTableRows);
  }
  if (services.size() > 1) rows.insert(rows.begin(), result.value("total", json::object()));
  for (const auto& s : rows) {
    const json lat = s.value("added_latency_ms", json::object());
    html += common::strCat("<tr><td>", esc(s.value("name", "")), "</td><td>", s.value("requests", 0), "</td><td>",
                           s.value("cold_start_requests", 0), "</td><td>", num(s.value("cold_start_share", 0.0) * 100, 3),
                           "</td><td>", s.value("cold_starts", 0), "</td><td>", num(lat.value("p50", 0.0), 1), "</td><td>",
                           num(lat.value("p99", 0.0), 1), "</td><td>", num(s.value("pod_seconds", 0.0), 0), "</td><td>",
                           num(s.value("zero_seconds", 0.0), 0), "</td><td>", s.value("scale_events", 0), "</td><td>",
                           s.value("panic_episodes", 0), "</td></tr>");
  }
  html += "</table>";
  // Pods over time, as steps.
  std::vector<report::Series> pods;
  for (const auto& s : services) {
    if (pods.size() >= series_services || !s.contains("pods_series")) continue;
    report::Series series;
    series.name = s.value("name", "");
    double last = 0;
    for (const auto& point : s["pods_series"]) {
      double t = point[0].get<double>(), n = point[1].get<double>();
      if (!series.points.empty()) series.points.emplace_back(t, last);
      series.points.emplace_back(t, n);
      last = n;
    }
    series.points.emplace_back(s.value("simulated_s", 0.0), last);
    pods.push_back(std::move(series));
  }
  if (!pods.empty()) {
    report::PlotOptions o;
    o.title = "Pods over time";
    o.x_label = "simulated seconds";
    o.y_label = "pods";
    html += "<div class=plot>" + report::svgLinePlot(pods, o) + "</div>";
  }
  // The cold-start distribution: what waiting for pods added, over every request.
  const json curve = result.value("total", json::object()).value("added_latency_curve", json::array());
  if (!curve.empty()) {
    report::Series waits{"added latency", {}, false, 0};
    std::string cells;
    for (const auto& point : curve) {
      const double q = point[0].get<double>(), ms = point[1].get<double>();
      waits.points.emplace_back(q, ms);
      if (q >= 50) cells += common::strCat("<tr><td>p", num(q, q == std::floor(q) ? 0 : 1), "</td><td>", num(ms, 1), "</td></tr>");
    }
    report::PlotOptions o;
    o.title = "Cold starts: added latency by percentile of all requests";
    o.x_label = "percentile of requests";
    o.y_label = "ms waiting for a pod";
    html += "<div class=plot>" + report::svgLinePlot({waits}, o) + "</div>";
    html += "<table><tr><th>percentile</th><th>added ms</th></tr>" + cells + "</table>";
  }
  if (result.contains("sweep")) {
    std::vector<json> points(result["sweep"].begin(), result["sweep"].end());
    std::sort(points.begin(), points.end(),
              [](const json& a, const json& b) { return a.value("pod_seconds", 0.0) < b.value("pod_seconds", 0.0); });
    report::Series front{"Pareto front", {}, false, 0};
    report::Series current{"your current settings", {}, false, 3};
    for (const auto& p : points) {
      std::pair<double, double> xy{p.value("pod_seconds", 0.0), p.value("cold_start_share", 0.0) * 100};
      if (p.value("pareto", false)) front.points.push_back(xy);
      if (p.value("current", false)) current.points.push_back(xy);
    }
    report::PlotOptions o;
    o.title = "Cost against cold starts, per setting tried";
    o.x_label = "pod-seconds";
    o.y_label = "requests delayed by a cold start (%)";
    html += "<div class=plot>" + report::svgLinePlot({front, current}, o) + "</div>";
    html += "<table><tr><th>settings</th><th>pod-seconds</th><th>cold %</th><th>added p99 ms</th><th>front</th>"
            "<th>current</th></tr>";
    for (const auto& p : points) {
      const auto settings = p.value("settings", json::object()).get<std::map<std::string, std::string>>();
      html += common::strCat("<tr><td>", esc(settingsLabel(settings)), "</td><td>", num(p.value("pod_seconds", 0.0), 0), "</td><td>",
                             num(p.value("cold_start_share", 0.0) * 100, 3), "</td><td>",
                             num(p.value("added_latency_p99_ms", 0.0), 1), "</td><td>",
                             p.value("pareto", false) ? "*" : "", "</td><td>", p.value("current", false) ? "&gt;" : "",
                             "</td></tr>");
    }
    html += "</table>";
  }
  html += "</body></html>\n";
  return html;
}

}  // namespace kh::simulate
