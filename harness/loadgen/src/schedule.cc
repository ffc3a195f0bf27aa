#include "kh/loadgen/schedule.h"

#include <cmath>
#include <fstream>
#include <numbers>
#include <optional>

#include "kh/common/strings.h"

namespace kh::loadgen {
namespace {

class ConstantSchedule final : public Schedule {
 public:
  ConstantSchedule(double rate, Nanos duration) : rate_(rate), duration_(duration) {}
  std::optional<Nanos> next() override {
    // Computed from the index, not accumulated, so rounding never drifts.
    auto at = Nanos(static_cast<int64_t>(std::llround(static_cast<double>(index_) * 1e9 / rate_)));
    if (rate_ <= 0 || at >= duration_) return std::nullopt;
    ++index_;
    return at;
  }
  std::string describe() const override {
    return common::strCat("constant ", rate_, "/s for ", duration_.count() / 1e9, "s");
  }

 private:
  double rate_;
  Nanos duration_;
  int64_t index_ = 0;
};

class PoissonSchedule final : public Schedule {
 public:
  PoissonSchedule(double rate, Nanos duration, uint64_t seed)
      : rate_(rate), duration_(duration), seed_(seed), rng_(seed), gap_(rate) {}
  std::optional<Nanos> next() override {
    if (rate_ <= 0) return std::nullopt;
    if (started_) t_ += gap_(rng_);
    started_ = true;
    auto at = Nanos(static_cast<int64_t>(t_ * 1e9));
    if (at >= duration_) return std::nullopt;
    return at;
  }
  std::string describe() const override {
    return common::strCat("poisson ", rate_, "/s seed ", seed_, " for ", duration_.count() / 1e9, "s");
  }

 private:
  double rate_;
  Nanos duration_;
  uint64_t seed_;
  std::mt19937_64 rng_;
  std::exponential_distribution<double> gap_;
  double t_ = 0;  // seconds
  bool started_ = false;
};

class ProfileSchedule final : public Schedule {
 public:
  ProfileSchedule(std::vector<Stage> stages, std::optional<uint64_t> seed)
      : stages_(std::move(stages)), seed_(seed), rng_(seed.value_or(0)) {}

  std::optional<Nanos> next() override {
    // The k-th request goes where the expected count, the integral of the rate, reaches its
    // target: k for evenly spaced requests, a sum of unit exponentials for Poisson arrivals
    // (time rescaling), so ramps and steps are exact either way.
    double want = first_ ? 0.0 : next_target_ + (seed_ ? unit_gap_(rng_) : 1.0);
    first_ = false;
    next_target_ = want;
    while (stage_ < stages_.size()) {
      const Stage& s = stages_[stage_];
      double T = static_cast<double>(s.duration.count()) / 1e9;
      double a = s.ramp ? prev_rate_ : s.rate, b = s.rate;
      double in_stage = (a + b) / 2.0 * T;
      double x = want - stage_count_;
      if (x < in_stage) {
        double tau;
        if (std::fabs(b - a) < 1e-12) {
          tau = a > 0 ? x / a : T;
        } else {
          double k = (b - a) / T;
          tau = (-a + std::sqrt(std::max(0.0, a * a + 2.0 * k * x))) / k;
        }
        return Nanos(static_cast<int64_t>((stage_start_ + std::min(tau, T)) * 1e9));
      }
      stage_start_ += T;
      stage_count_ += in_stage;
      prev_rate_ = s.rate;
      ++stage_;
    }
    return std::nullopt;
  }

  std::string describe() const override {
    std::string out = "profile ";
    for (size_t i = 0; i < stages_.size(); ++i) {
      out += common::strCat(i ? "," : "", stages_[i].ramp ? "ramp to " : "", stages_[i].rate,
                            "/s@", stages_[i].duration.count() / 1e9, "s");
    }
    if (seed_) out += common::strCat(" poisson seed ", *seed_);
    return out;
  }

 private:
  std::vector<Stage> stages_;
  std::optional<uint64_t> seed_;
  std::mt19937_64 rng_;
  std::exponential_distribution<double> unit_gap_{1.0};
  size_t stage_ = 0;
  double stage_start_ = 0;  // seconds
  double stage_count_ = 0;  // expected requests before this stage
  double next_target_ = 0;
  double prev_rate_ = 0;
  bool first_ = true;
};

class TraceSchedule final : public Schedule {
 public:
  TraceSchedule(std::vector<Nanos> offsets, std::string name)
      : offsets_(std::move(offsets)), name_(std::move(name)) {}
  std::optional<Nanos> next() override {
    if (index_ >= offsets_.size()) return std::nullopt;
    return offsets_[index_++];
  }
  std::string describe() const override {
    return common::strCat("trace ", name_, " (", offsets_.size(), " requests)");
  }

 private:
  std::vector<Nanos> offsets_;
  std::string name_;
  size_t index_ = 0;
};

double toSeconds(Nanos d) { return static_cast<double>(d.count()) / 1e9; }

class DiurnalSchedule final : public Schedule {
 public:
  DiurnalSchedule(double mean_rate, double amplitude, Nanos duration, uint64_t seed, Nanos period, Nanos phase)
      : mean_rate_(mean_rate),
        amplitude_(amplitude),
        duration_(duration),
        seed_(seed),
        period_s_(toSeconds(period)),
        phase_s_(toSeconds(phase)),
        rng_(seed),
        candidate_gap_(mean_rate * (1 + amplitude)) {}

  std::optional<Nanos> next() override {
    const double peak = mean_rate_ * (1 + amplitude_);
    if (peak <= 0) return std::nullopt;
    // Thinning: a Poisson process at the peak rate, each candidate kept with probability
    // rate(t) / peak, is exactly the process at rate(t).
    while (true) {
      t_ += candidate_gap_(rng_);
      auto at = Nanos(static_cast<int64_t>(t_ * 1e9));
      if (at >= duration_) return std::nullopt;
      double rate = mean_rate_ * (1 + amplitude_ * std::sin(2 * std::numbers::pi * (t_ - phase_s_) / period_s_));
      if (keep_(rng_) * peak < rate) return at;
    }
  }
  std::string describe() const override {
    return common::strCat("diurnal mean ", mean_rate_, "/s amplitude ", amplitude_, " period ", period_s_,
                          "s seed ", seed_, " for ", duration_.count() / 1e9, "s");
  }

 private:
  double mean_rate_;
  double amplitude_;
  Nanos duration_;
  uint64_t seed_;
  double period_s_;
  double phase_s_;
  std::mt19937_64 rng_;
  std::exponential_distribution<double> candidate_gap_;
  std::uniform_real_distribution<double> keep_{0.0, 1.0};
  double t_ = 0;  // seconds
};

class OnOffSchedule final : public Schedule {
 public:
  OnOffSchedule(double rate, Nanos on, Nanos off, Nanos duration, uint64_t seed)
      : rate_(rate), on_s_(toSeconds(on)), off_s_(toSeconds(off)), duration_(duration), seed_(seed), rng_(seed),
        gap_(rate) {}

  std::optional<Nanos> next() override {
    if (rate_ <= 0) return std::nullopt;
    // A Poisson process on the ON time alone (memoryless, so cutting the OFF periods out of the
    // timeline leaves it Poisson within each burst), mapped onto the wall timeline.
    on_time_ += gap_(rng_);
    double cycles = std::floor(on_time_ / on_s_);
    double within = std::min(on_time_ - cycles * on_s_, on_s_);
    auto at = Nanos(static_cast<int64_t>((cycles * (on_s_ + off_s_) + within) * 1e9));
    if (at >= duration_) return std::nullopt;
    return at;
  }
  std::string describe() const override {
    return common::strCat("on/off ", rate_, "/s for ", on_s_, "s, off ", off_s_, "s, seed ", seed_, " for ",
                          duration_.count() / 1e9, "s");
  }

 private:
  double rate_;
  double on_s_;
  double off_s_;
  Nanos duration_;
  uint64_t seed_;
  std::mt19937_64 rng_;
  std::exponential_distribution<double> gap_;
  double on_time_ = 0;  // seconds of ON time before the last arrival
};

// A count of nanoseconds as Nanos, or nothing when it is not one: negative, NaN, infinite or past
// what int64 holds (about 292 years). Converting such a double to an integer is undefined
// behaviour (the scenario fuzzer's find: a warmup of "5444...4s").
std::optional<Nanos> nanosFrom(double nanoseconds) {
  if (!(nanoseconds >= 0) || !(nanoseconds < 9.2e18)) return std::nullopt;
  return Nanos(static_cast<int64_t>(nanoseconds));
}

// A rate in requests per second: a finite number >= 0 and nothing after it.
std::optional<double> parseRate(const std::string& text) {
  char* end = nullptr;
  double rate = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(rate >= 0) || !std::isfinite(rate)) return std::nullopt;
  return rate;
}

}  // namespace

absl::StatusOr<Nanos> parseDuration(std::string_view text) {
  double scale = 1e9;
  std::string_view number = text;
  if (text.ends_with("ms")) {
    scale = 1e6;
    number = text.substr(0, text.size() - 2);
  } else if (text.ends_with("us")) {
    scale = 1e3;
    number = text.substr(0, text.size() - 2);
  } else if (text.ends_with("s")) {
    number = text.substr(0, text.size() - 1);
  } else if (text.ends_with("m")) {
    scale = 60e9;
    number = text.substr(0, text.size() - 1);
  } else if (text.ends_with("h")) {
    scale = 3600e9;
    number = text.substr(0, text.size() - 1);
  }
  char* end = nullptr;
  std::string n(number);
  double value = std::strtod(n.c_str(), &end);
  if (n.empty() || *end != '\0' || !(value >= 0) || std::isinf(value)) {
    return absl::InvalidArgumentError(
        common::strCat("bad duration '", text, "' (e.g. 500ms, 10s, 2m)"));
  }
  std::optional<Nanos> nanos = nanosFrom(value * scale);
  if (!nanos) return absl::OutOfRangeError(common::strCat("duration '", text, "' is too long (at most 292 years)"));
  return *nanos;
}

std::unique_ptr<Schedule> makeConstantSchedule(double rate, Nanos duration) {
  return std::make_unique<ConstantSchedule>(rate, duration);
}

std::unique_ptr<Schedule> makePoissonSchedule(double rate, Nanos duration, uint64_t seed) {
  return std::make_unique<PoissonSchedule>(rate, duration, seed);
}

absl::StatusOr<std::unique_ptr<Schedule>> makeDiurnalSchedule(double mean_rate, double amplitude, Nanos duration,
                                                              uint64_t seed, Nanos period, Nanos phase) {
  if (!(mean_rate >= 0) || !std::isfinite(mean_rate)) {
    return absl::InvalidArgumentError(common::strCat("diurnal: mean rate ", mean_rate, " is not a finite rate >= 0"));
  }
  if (!(amplitude >= 0 && amplitude <= 1)) {
    return absl::InvalidArgumentError(common::strCat("diurnal: amplitude ", amplitude, " is outside [0, 1]"));
  }
  if (period.count() <= 0) return absl::InvalidArgumentError("diurnal: the period must be above 0");
  return std::make_unique<DiurnalSchedule>(mean_rate, amplitude, duration, seed, period, phase);
}

absl::StatusOr<std::unique_ptr<Schedule>> makeOnOffSchedule(double rate, Nanos on, Nanos off, Nanos duration,
                                                            uint64_t seed) {
  if (!(rate >= 0) || !std::isfinite(rate)) {
    return absl::InvalidArgumentError(common::strCat("on/off: rate ", rate, " is not a finite rate >= 0"));
  }
  if (on.count() <= 0) return absl::InvalidArgumentError("on/off: the ON period must be above 0");
  if (off.count() < 0) return absl::InvalidArgumentError("on/off: the OFF period must not be negative");
  return std::make_unique<OnOffSchedule>(rate, on, off, duration, seed);
}

absl::StatusOr<std::vector<Stage>> parseProfile(const std::string& text) {
  std::vector<Stage> stages;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? text.size() + 1 : comma + 1;
    if (item.empty()) continue;
    Stage s;
    std::string body = item;
    if (body.starts_with("ramp:")) {
      s.ramp = true;
      body = body.substr(5);
      // "ramp:0-2000@60s" ramps from 0 to 2000; a lone "ramp:2000@60s" ramps from the last rate.
      if (auto dash = body.find('-'); dash != std::string::npos && dash < body.find('@')) {
        std::optional<double> from = parseRate(body.substr(0, dash));
        if (!from) return absl::InvalidArgumentError(common::strCat("profile stage '", item, "': bad ramp start"));
        Stage hold{*from, Nanos(0), false};
        stages.push_back(hold);
        body = body.substr(dash + 1);
      }
    }
    auto at = body.find('@');
    if (at == std::string::npos) {
      return absl::InvalidArgumentError(
          common::strCat("profile stage '", item, "': expected RATE@DURATION, e.g. 1000@30s"));
    }
    std::optional<double> rate = parseRate(body.substr(0, at));
    if (!rate) return absl::InvalidArgumentError(common::strCat("profile stage '", item, "': bad rate"));
    s.rate = *rate;
    auto duration = parseDuration(body.substr(at + 1));
    if (duration.ok() && duration->count() == 0) duration = absl::InvalidArgumentError("zero duration");
    if (!duration.ok()) {
      return absl::InvalidArgumentError(common::strCat("profile stage '", item, "': ",
                                                       common::toStd(duration.status().message())));
    }
    s.duration = *duration;
    stages.push_back(s);
  }
  if (stages.empty()) return absl::InvalidArgumentError("empty profile");
  return stages;
}

std::unique_ptr<Schedule> makeProfileSchedule(std::vector<Stage> stages,
                                              std::optional<uint64_t> seed) {
  return std::make_unique<ProfileSchedule>(std::move(stages), seed);
}

absl::StatusOr<std::unique_ptr<Schedule>> makeTraceSchedule(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(common::strCat("cannot read trace ", path));
  std::vector<Nanos> offsets;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    auto hash = line.find('#');
    if (hash != std::string::npos) line = line.substr(0, hash);
    auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos) continue;
    line = line.substr(first, line.find_last_not_of(" \t\r") - first + 1);
    char* end = nullptr;
    double seconds = std::strtod(line.c_str(), &end);
    std::optional<Nanos> offset = nanosFrom(seconds * 1e9);
    if (*end != '\0' || !offset) {
      return absl::InvalidArgumentError(
          common::strCat(path, ":", line_no, ": expected an offset in seconds, got '", line, "'"));
    }
    Nanos at = *offset;
    if (!offsets.empty() && at < offsets.back()) {
      return absl::InvalidArgumentError(
          common::strCat(path, ":", line_no, ": offsets must not decrease"));
    }
    offsets.push_back(at);
  }
  return makeTraceSchedule(std::move(offsets), path);
}

std::unique_ptr<Schedule> makeTraceSchedule(std::vector<Nanos> offsets, std::string name) {
  return std::make_unique<TraceSchedule>(std::move(offsets), std::move(name));
}

}  // namespace kh::loadgen
