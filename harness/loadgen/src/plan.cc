#include "kh/loadgen/plan.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <map>
#include <variant>

#include "kh/common/json.h"
#include "kh/common/strings.h"

namespace kh::loadgen {
namespace {

using nlohmann::json;

std::string msg(const absl::Status& s) { return std::string(common::toStd(s.message())); }

double toSeconds(Nanos d) { return static_cast<double>(d.count()) / 1e9; }

bool equalsIgnoringCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// An option's name in messages: "--slo-confidence" (and "--header") on the command line,
// "load.slo_confidence" in a scenario.
std::string optionName(std::string_view prefix, std::string_view name) {
  std::string out(prefix);
  if (prefix != "--") return out.append(name);
  if (name == "headers") name = "header";
  for (char c : name) out.push_back(c == '_' ? '-' : c);
  return out;
}

// "p99=50ms", "p99.9=2ms".
std::optional<Slo> parseSlo(std::string_view text) {
  auto eq = text.find('=');
  if (text.size() < 2 || text[0] != 'p' || eq == std::string_view::npos) return std::nullopt;
  std::string number(text.substr(1, eq - 1));
  char* end = nullptr;
  double percentile = std::strtod(number.c_str(), &end);
  auto bound = parseDuration(text.substr(eq + 1));
  if (number.empty() || *end != '\0' || !bound.ok() || percentile <= 0 || percentile >= 100) {
    return std::nullopt;
  }
  return Slo{percentile, static_cast<double>(bound->count()) / 1e6};
}

// How many requests a run will make, when the spec says: its budget, or rate x duration
// (with room for Poisson's spread). 0 when unknown (closed loop without a budget, a trace).
int64_t expectedRequests(const LoadSpec& spec, ScheduleKind kind) {
  double n = 0;
  if (kind == ScheduleKind::kConstant || kind == ScheduleKind::kPoisson) {
    n = spec.rate * toSeconds(spec.duration);
  } else if (kind == ScheduleKind::kProfile) {
    double previous = 0;
    for (const auto& stage : spec.stages) {
      n += (stage.ramp ? (previous + stage.rate) / 2 : stage.rate) * toSeconds(stage.duration);
      previous = stage.rate;
    }
  }
  if (spec.arrival == Arrival::kPoisson) n += 4 * std::sqrt(n);
  int64_t estimate = n > 0 ? static_cast<int64_t>(std::min(std::ceil(n), 9e18)) + 1 : 0;
  if (spec.requests > 0) {
    estimate = estimate > 0 ? std::min(estimate, spec.requests) : spec.requests;
  }
  return estimate;
}

}  // namespace

const char* scheduleKindName(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::kClosed: return "closed";
    case ScheduleKind::kConstant: return "constant";
    case ScheduleKind::kPoisson: return "poisson";
    case ScheduleKind::kProfile: return "profile";
    case ScheduleKind::kTrace: return "trace";
  }
  return "?";
}

ScheduleKind scheduleKind(const LoadSpec& spec) {
  if (!spec.stages.empty()) return ScheduleKind::kProfile;
  if (!spec.trace.empty()) return ScheduleKind::kTrace;
  if (spec.rate > 0) {
    return spec.arrival == Arrival::kPoisson ? ScheduleKind::kPoisson : ScheduleKind::kConstant;
  }
  return ScheduleKind::kClosed;
}

absl::Status validateLoadSpec(const LoadSpec& spec) {
  auto target = common::parseHostPort(spec.target);
  if (!target.ok()) return target.status();
  if (spec.model.empty()) return absl::InvalidArgumentError("a load needs a model name");
  if (spec.protocol == WireProtocol::kGrpc && spec.grpc_target.empty()) {
    return absl::InvalidArgumentError(
        "protocol grpc needs the gRPC endpoint's HOST:PORT (harness load --grpc)");
  }
  if (!(spec.rate >= 0)) return absl::InvalidArgumentError("the rate must not be negative");
  if (spec.requests < 0) {
    return absl::InvalidArgumentError("the request budget must not be negative");
  }
  if (spec.batch < 1) return absl::InvalidArgumentError("the batch size must be at least 1");
  if (spec.slo && (spec.slo->percentile <= 0 || spec.slo->percentile >= 100)) {
    return absl::InvalidArgumentError("the SLO percentile must be within (0, 100)");
  }
  if (!(spec.slo_confidence > 0 && spec.slo_confidence < 1)) {
    return absl::InvalidArgumentError("the SLO confidence must be within (0, 1)");
  }
  return absl::OkStatus();
}

absl::StatusOr<Payload> buildPayload(const LoadSpec& spec) {
  if (auto st = validateLoadSpec(spec); !st.ok()) return st;
  absl::StatusOr<Payload> payload = absl::UnknownError("no payload");
  if (!spec.input.empty()) {
    payload = payloadFromFile(spec.input, spec.protocol, spec.model);
  } else {
    auto target = common::parseHostPort(spec.target);
    auto meta = fetchMetadata(target->host, target->port,
                              spec.protocol == WireProtocol::kGrpc ? spec.grpc_target : "",
                              spec.model, spec.headers);
    if (!meta.ok()) {
      return absl::Status(meta.status().code(),
                          common::strCat("cannot read the model's metadata: ", msg(meta.status())));
    }
    payload = encodePayload(generateRequest(*meta, spec.batch, spec.seed), spec.protocol,
                            spec.model,
                            common::strCat("generated from metadata (batch ", spec.batch,
                                           ", seed ", spec.seed, ")"));
  }
  if (!payload.ok()) return payload.status();
  for (const auto& [name, value] : spec.headers) {
    // A Host routes HTTP through an ingress; gRPC is routed by :authority the same way.
    if (equalsIgnoringCase(name, "host")) payload->grpc.authority = value;
    payload->http.headers.emplace_back(name, value);
  }
  return payload;
}

absl::StatusOr<LoadPlan> planLoad(const LoadSpec& spec, const Payload& payload) {
  if (auto st = validateLoadSpec(spec); !st.ok()) return st;
  LoadPlan plan;
  plan.http = *common::parseHostPort(spec.target);
  plan.grpc = spec.protocol == WireProtocol::kGrpc;
  plan.payload = payload;
  plan.payload.grpc.target = spec.grpc_target;
  plan.payload.grpc.channels = std::max(1, spec.threads);

  LoadOptions& o = plan.options;
  const ScheduleKind kind = scheduleKind(spec);
  o.duration = spec.duration;
  switch (kind) {
    case ScheduleKind::kProfile: {
      Nanos total{0};
      for (const auto& stage : spec.stages) total += stage.duration;
      o.schedule = makeProfileSchedule(spec.stages, spec.arrival == Arrival::kPoisson
                                                        ? std::optional<uint64_t>(spec.seed)
                                                        : std::nullopt);
      o.duration = total;
      break;
    }
    case ScheduleKind::kTrace: {
      auto trace = makeTraceSchedule(spec.trace);
      if (!trace.ok()) return trace.status();
      o.schedule = std::move(*trace);
      break;
    }
    case ScheduleKind::kPoisson:
      o.schedule = makePoissonSchedule(spec.rate, spec.duration, spec.seed);
      break;
    case ScheduleKind::kConstant:
      o.schedule = makeConstantSchedule(spec.rate, spec.duration);
      break;
    case ScheduleKind::kClosed:
      o.concurrency = std::max(1, spec.concurrency);
      break;
  }
  o.threads = std::max(1, spec.threads);
  o.connections = std::max(1, spec.connections);
  o.max_requests = spec.requests;
  o.warmup = spec.warmup;
  o.window = std::max(spec.window, Nanos(std::chrono::milliseconds(100)));
  o.request_timeout = spec.timeout;
  if (!spec.expect.empty()) {
    auto check = makeGoldenCheck(spec.expect, spec.protocol, spec.atol, spec.rtol);
    if (!check.ok()) return check.status();
    o.check = std::move(*check);
  }
  o.recording.enabled = spec.per_request;
  o.recording.header = spec.record_header;
  o.recording.expected = spec.per_request ? expectedRequests(spec, kind) : 0;

  RunConfig& c = plan.config;
  c.target = plan.grpc ? "grpc://" + spec.grpc_target : spec.target;
  c.model = spec.model;
  c.protocol = wireProtocolName(spec.protocol);
  c.payload = payload.source;
  c.mode = scheduleKindName(kind);
  c.concurrency = o.concurrency;
  c.rate = spec.rate;
  c.seed = spec.seed;
  c.threads = o.threads;
  c.connections = o.schedule ? o.connections : o.concurrency;
  c.duration_s = toSeconds(o.duration);
  c.warmup_s = toSeconds(o.warmup);
  c.window_s = toSeconds(o.window);
  c.label = spec.label;
  c.stability_windows = spec.stability_windows;
  c.stability_tolerance = spec.stability_tolerance;
  if (spec.slo) {
    c.slo_percentile = spec.slo->percentile;
    c.slo_ms = spec.slo->target_ms;
  }
  c.slo_confidence = spec.slo_confidence;
  return plan;
}

absl::StatusOr<LoadPlan> planLoad(const LoadSpec& spec) {
  auto payload = buildPayload(spec);
  if (!payload.ok()) return payload.status();
  return planLoad(spec, *payload);
}

absl::StatusOr<RunResult> runPlan(LoadPlan plan, const common::TimeSource& time,
                                  const ProgressCallback& progress) {
  if (plan.grpc) return runGrpcLoad(plan.payload.grpc, std::move(plan.options), time, progress);
  return runHttpLoad(plan.http.host, plan.http.port, plan.payload.http, std::move(plan.options),
                     time, progress);
}

absl::StatusOr<LoadSpec> loadSpecFromFlags(const LoadFlags& f, std::string_view option_prefix) {
  auto bad = [&](std::string_view option, const std::string& what) {
    return absl::InvalidArgumentError(common::strCat(optionName(option_prefix, option), what));
  };
  LoadSpec spec;
  spec.target = f.target;
  spec.grpc_target = f.grpc;
  spec.model = f.model;
  auto protocol = parseWireProtocol(f.protocol);
  if (!protocol.ok()) {
    return bad("protocol",
               common::strCat(" must be v1, v2, v2-binary or grpc, not \"", f.protocol, "\""));
  }
  spec.protocol = *protocol;

  spec.input = f.input;
  spec.batch = f.batch;
  spec.seed = f.seed;
  for (const auto& h : f.headers) {
    auto colon = h.find(':');
    if (colon == std::string::npos) {
      return bad("headers", common::strCat(" wants 'Name: value', not \"", h, "\""));
    }
    std::string value = h.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    spec.headers.emplace_back(h.substr(0, colon), std::move(value));
  }
  spec.expect = f.expect;
  spec.atol = f.atol;
  spec.rtol = f.rtol;

  if (!f.profile.empty()) {
    auto stages = parseProfile(f.profile);
    if (!stages.ok()) return bad("profile", common::strCat(": ", msg(stages.status())));
    spec.stages = std::move(*stages);
  }
  spec.trace = f.trace;
  spec.rate = f.rate;
  if (f.arrival == "constant") {
    spec.arrival = Arrival::kConstant;
  } else if (f.arrival == "poisson") {
    spec.arrival = Arrival::kPoisson;
  } else {
    return bad("arrival", " must be constant or poisson");
  }
  spec.concurrency = f.concurrency;

  spec.threads = f.threads;
  spec.connections = f.connections;
  spec.requests = f.requests;
  const std::pair<const char*, std::pair<const std::string*, Nanos*>> durations[] = {
      {"duration", {&f.duration, &spec.duration}},
      {"warmup", {&f.warmup, &spec.warmup}},
      {"window", {&f.window, &spec.window}},
      {"timeout", {&f.timeout, &spec.timeout}}};
  for (const auto& [option, text_and_value] : durations) {
    auto d = parseDuration(*text_and_value.first);
    if (!d.ok()) return bad(option, common::strCat(": ", msg(d.status())));
    *text_and_value.second = *d;
  }

  if (!f.slo.empty()) {
    spec.slo = parseSlo(f.slo);
    if (!spec.slo) return bad("slo", " wants pXX=DURATION with 0 < XX < 100, e.g. p99=50ms");
  }
  spec.slo_confidence = f.slo_confidence;
  spec.stability_windows = f.stability_windows;
  spec.stability_tolerance = f.stability_tolerance / 100.0;
  spec.label = f.label;
  return spec;
}

absl::StatusOr<LoadFlags> loadFlagsFromJson(const json& options, LoadFlags f,
                                            const std::filesystem::path& base_dir,
                                            std::string_view option_prefix) {
  auto bad = [&](const std::string& key, const std::string& what) {
    return absl::InvalidArgumentError(common::strCat(optionName(option_prefix, key), what));
  };
  if (!options.is_object()) {
    return absl::InvalidArgumentError("load options must be a map of option names to values");
  }
  using Whole = std::variant<int*, int64_t*, uint64_t*>;
  const std::map<std::string, std::string*> strings = {
      {"target", &f.target}, {"grpc", &f.grpc},   {"model", &f.model}, {"protocol", &f.protocol},
      {"arrival", &f.arrival}, {"profile", &f.profile}, {"slo", &f.slo}, {"label", &f.label}};
  const std::map<std::string, std::string*> paths = {
      {"input", &f.input}, {"trace", &f.trace}, {"expect", &f.expect}};
  const std::map<std::string, std::string*> durations = {
      {"duration", &f.duration}, {"warmup", &f.warmup}, {"window", &f.window},
      {"timeout", &f.timeout}};
  const std::map<std::string, double*> reals = {
      {"rate", &f.rate}, {"atol", &f.atol}, {"rtol", &f.rtol},
      {"slo_confidence", &f.slo_confidence}, {"stability_tolerance", &f.stability_tolerance}};
  const std::map<std::string, Whole> wholes = {
      {"concurrency", &f.concurrency}, {"requests", &f.requests}, {"threads", &f.threads},
      {"connections", &f.connections}, {"batch", &f.batch}, {"seed", &f.seed},
      {"stability_windows", &f.stability_windows}};
  for (const auto& [key, value] : options.items()) {
    if (auto s = strings.find(key); s != strings.end()) {
      if (!value.is_string()) return bad(key, " must be a string");
      *s->second = value.get<std::string>();
    } else if (auto p = paths.find(key); p != paths.end()) {
      if (!value.is_string()) return bad(key, " must be a file name");
      *p->second = (base_dir / value.get<std::string>()).string();
    } else if (auto d = durations.find(key); d != durations.end()) {
      // Seconds, or a duration as the command line takes it.
      if (value.is_number() && value.get<double>() >= 0) {
        *d->second = common::strCat(value.get<double>());
      } else if (value.is_string()) {
        *d->second = value.get<std::string>();
      } else {
        return bad(key, " must be a duration (seconds, or e.g. 500ms)");
      }
    } else if (auto r = reals.find(key); r != reals.end()) {
      if (!value.is_number()) return bad(key, " must be a number");
      *r->second = value.get<double>();
    } else if (auto w = wholes.find(key); w != wholes.end()) {
      double x = value.is_number() ? value.get<double>() : -1;
      bool fits = std::visit(
          [&](auto* field) {
            using T = std::remove_pointer_t<decltype(field)>;
            if (!(x >= 0 && x == std::floor(x) &&
                  x <= static_cast<double>(std::numeric_limits<T>::max()))) {
              return false;
            }
            *field = static_cast<T>(x);
            return true;
          },
          w->second);
      if (!fits) {
        return bad(key, common::strCat(" must be a whole number >= 0, not ", common::jsonText(value)));
      }
    } else if (key == "headers") {
      if (value.is_string()) {
        f.headers = {value.get<std::string>()};
      } else if (value.is_array() && std::all_of(value.begin(), value.end(), [](const json& h) {
                   return h.is_string();
                 })) {
        f.headers = value.get<std::vector<std::string>>();
      } else {
        return bad(key, " must be a list of 'Name: value'");
      }
    } else {
      return bad(key, " is not a load option");
    }
  }
  return f;
}

}  // namespace kh::loadgen
