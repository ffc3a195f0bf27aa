// `harness simulate`: replays workloads through Knative's KPA (kh::autoscaler, the code refstack
// runs) in virtual time and reports cold starts against pod-seconds; sweeps settings for the
// Pareto front.

#include <cstdio>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>

#include <ctime>
#include <filesystem>

#include "commands.h"
#include "kh/common/json.h"
#include "kh/common/time_source.h"
#include "kh/scenario/report.h"
#include "kh/scenario/runner.h"
#include "kh/scenario/scenario.h"
#include "kh/scenario/target.h"
#include "kh/common/strings.h"
#include "kh/simulate/simulate.h"

namespace kh::cli {
namespace {

struct SimulateArgs {
  std::vector<std::string> workloads;  // NAME=SCHEDULE
  std::vector<std::string> traces;     // FILE (name: the file's stem)
  std::string fleet;                   // N:TOTAL_RATE[:ALPHA]
  std::string azure;                   // an Azure Functions invocation-count file
  size_t azure_limit = 0;              // its first N functions (0: all)
  std::string duration;
  uint64_t seed = 1;
  std::string service_time = "50ms";
  std::string pod_startup = "1s";
  std::string service_time_from;  // a harness load -o result
  std::string pod_startup_from;   // a harness run report.json
  std::string validate;           // a scenario to run live and in the simulator
  double tolerance = 0.10;
  std::string out;                // --validate's report directory
  std::string pod_drain = "0s";
  std::string tick = "2s";
  std::string stats_delay = "1s";
  int container_concurrency = 0;
  std::vector<std::string> settings;     // config-autoscaler KEY=VALUE
  std::vector<std::string> annotations;  // KEY=VALUE (autoscaling.knative.dev/ optional)
  std::vector<std::string> sweeps;       // KEY=V1,V2,...
  double price_per_pod_hour = 0;
  std::string json_out;
  std::string csv_out;
  std::string html_out;
};

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// Durations as Knative writes them (Go's time.ParseDuration: 500ms, 90s, 1m30s, 6h) or seconds.
absl::StatusOr<double> secondsOf(const std::string& text, const char* what) {
  auto seconds = simulate::parseSpanSeconds(text);
  if (!seconds.ok()) {
    return absl::InvalidArgumentError(common::strCat(what, " \"", text, "\": not a duration (e.g. 500ms, 90s, 1m30s, 6h)"));
  }
  return *seconds;
}

absl::StatusOr<std::pair<std::string, std::string>> keyValue(const std::string& text, const char* what) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    return absl::InvalidArgumentError(common::strCat(what, " \"", text, "\": want KEY=VALUE"));
  }
  return std::make_pair(text.substr(0, eq), text.substr(eq + 1));
}

void printResult(const simulate::SimulationResult& r, double price) {
  std::printf("%-24s %9s %9s %8s %10s %10s %11s %9s %7s %6s\n", "service", "requests", "cold", "cold %",
              "+p50 ms", "+p99 ms", "pod-s", "zero s", "scales", "panic");
  auto row = [](const simulate::ServiceResult& s) {
    std::printf("%-24s %9lld %9lld %8s %10s %10s %11s %9s %7lld %6lld\n", s.name.substr(0, 24).c_str(),
                static_cast<long long>(s.requests), static_cast<long long>(s.cold_start_requests),
                fixed(s.cold_start_share * 100, 3).c_str(), fixed(s.added_latency_p50_ms, 1).c_str(),
                fixed(s.added_latency_p99_ms, 1).c_str(), fixed(s.pod_seconds, 0).c_str(),
                fixed(s.zero_seconds, 0).c_str(), static_cast<long long>(s.scale_events),
                static_cast<long long>(s.panic_episodes));
  };
  for (const auto& s : r.services) row(s);
  if (r.services.size() > 1) row(r.total);
  if (price > 0) std::printf("cost: %s at %s per pod-hour\n", fixed(r.total.price, 2).c_str(), fixed(price, 4).c_str());
}

// --validate: the scenario runs live on the embedded stack, and its `simulation_agrees`
// assertion (added when the scenario has none) replays its per-request loads in the simulator.
int runValidate(const SimulateArgs& a) {
  auto bad = [](const std::string& m) {
    std::cerr << "harness simulate --validate: " << m << "\n";
    return 2;
  };
  auto loaded = scenario::loadScenarioFile(a.validate);
  if (!loaded.ok()) return bad(std::string(common::toStd(loaded.status().message())));
  scenario::Scenario s = std::move(*loaded);
  const bool has_assertion = std::any_of(s.steps.begin(), s.steps.end(), [](const scenario::Step& st) {
    return st.kind == scenario::StepKind::kAssert && st.assertion == "simulation_agrees";
  });
  if (!has_assertion) {
    bool any_load = false;
    for (auto& st : s.steps) {
      if (st.kind != scenario::StepKind::kLoad || !st.graph.empty()) continue;
      st.per_request = true;  // the simulator replays each request's send time
      any_load = true;
    }
    if (!any_load) return bad(common::strCat(a.validate, ": no load step to replay"));
    scenario::Step check;
    check.kind = scenario::StepKind::kAssert;
    check.assertion = "simulation_agrees";
    check.params = {{"tolerance", a.tolerance}};
    s.steps.push_back(std::move(check));
  }
  common::RealTimeSource time;
  auto target = makeCliEmbeddedTarget(time);
  char stamp[32];
  std::time_t now = std::time(nullptr);
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", std::gmtime(&now));
  std::filesystem::path out = a.out.empty() ? std::filesystem::path("reports") / common::strCat("validate-", stamp)
                                            : std::filesystem::path(a.out);
  std::error_code ec;
  std::filesystem::create_directories(out, ec);
  if (ec) return bad(common::strCat("cannot make ", out.string(), ": ", ec.message()));
  std::cerr << "==> " << s.name << " on the embedded stack, then in the simulator\n";
  scenario::RunOptions ro;
  ro.log = [](const std::string& line) { std::cerr << "    " << line << "\n"; };
  ro.out_dir = out / s.name;
  const auto started = std::chrono::steady_clock::now();
  auto r = scenario::runScenario(s, *target, ro, time);
  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  auto report = scenario::reportJson({scenario::resultToJson(r)}, target->describe(), stamp, total_s);
  if (auto st = scenario::writeReport(out, report); !st.ok()) return bad(std::string(common::toStd(st.message())));
  bool agreed = false, found = false;
  for (const auto& as : r.assertions) {
    if (as.name.rfind("simulation_agrees", 0) != 0) continue;
    found = true;
    agreed = as.verdict == scenario::Verdict::kPass;
    std::printf("%-7s %s\n    expected %s\n    measured %s\n    %s\n", scenario::verdictName(as.verdict), as.name.c_str(),
                as.expected.c_str(), as.measured.c_str(), as.why.c_str());
  }
  if (!r.error.empty()) std::printf("error: %s\n", r.error.c_str());
  if (!r.skip_reason.empty()) std::printf("skipped: %s\n", r.skip_reason.c_str());
  std::printf("Report: %s\n", (out / "index.html").string().c_str());
  return found && agreed ? 0 : 1;
}

int runSimulate(const SimulateArgs& a) {
  auto fail = [](const absl::Status& st) {
    std::cerr << "harness simulate: " << common::toStd(st.message()) << "\n";
    return 2;
  };
  if (!a.validate.empty()) {
    if (!a.workloads.empty() || !a.traces.empty() || !a.fleet.empty() || !a.azure.empty()) {
      return fail(absl::InvalidArgumentError("--validate runs a scenario's own loads (no --trace, --workload, --fleet or --azure with it)"));
    }
    return runValidate(a);
  }
  if (a.workloads.empty() && a.traces.empty() && a.fleet.empty() && a.azure.empty()) {
    return fail(absl::InvalidArgumentError(
        "no workload: give --trace FILE, --azure FILE, --fleet N:TOTAL_RATE or --workload NAME=SCHEDULE "
        "(poisson:RATE, constant:RATE, every:SECONDS, diurnal:MEAN_RATE:AMPLITUDE[:PERIOD], onoff:RATE:ON:OFF, "
        "a profile like 100@60s,0@300s, or trace:FILE)"));
  }
  if (a.azure_limit > 0 && a.azure.empty()) return fail(absl::InvalidArgumentError("--azure-limit needs --azure FILE"));
  if (!a.azure.empty() && (!a.fleet.empty() || !a.traces.empty() || !a.workloads.empty())) {
    return fail(
        absl::InvalidArgumentError("--azure runs alone (no --trace, --workload or --fleet with it; --sweep is fine)"));
  }
  double duration_s = 0;
  if (!a.duration.empty()) {
    auto d = secondsOf(a.duration, "--duration");
    if (!d.ok()) return fail(d.status());
    duration_s = *d;
  }
  std::vector<simulate::ServiceWorkload> workloads;
  for (const auto& t : a.traces) {
    auto arrivals = simulate::arrivalsFrom("trace:" + t, duration_s, a.seed);
    if (!arrivals.ok()) return fail(arrivals.status());
    std::string name = t.substr(t.find_last_of('/') + 1);
    name = name.substr(0, name.find('.'));
    workloads.push_back({name, std::move(*arrivals)});
  }
  for (size_t i = 0; i < a.workloads.size(); ++i) {
    auto kv = keyValue(a.workloads[i], "--workload");
    if (!kv.ok()) return fail(kv.status());
    // Each generated service draws from its own seed, so adding one changes no other.
    auto arrivals = simulate::arrivalsFrom(kv->second, duration_s, a.seed + i);
    if (!arrivals.ok()) return fail(arrivals.status());
    workloads.push_back({kv->first, std::move(*arrivals)});
  }
  simulate::ServiceModel model;
  auto service = secondsOf(a.service_time, "--service-time");
  if (!service.ok()) return fail(service.status());
  auto startup = secondsOf(a.pod_startup, "--pod-startup");
  if (!startup.ok()) return fail(startup.status());
  model.service_time_s = *service;
  model.pod_startup_s = *startup;
  // Measured distributions, drawn per request and per pod: FLAG's JSON file through `parse`.
  using SampleParser = absl::StatusOr<std::vector<double>> (*)(const nlohmann::json&);
  auto measured = [](const std::string& path, const char* flag, SampleParser parse,
                     const char* what) -> absl::StatusOr<std::vector<double>> {
    std::ifstream in(path);
    if (!in) return absl::NotFoundError(common::strCat(flag, ": cannot read ", path));
    auto doc = nlohmann::json::parse(in, nullptr, false);
    if (doc.is_discarded()) return absl::InvalidArgumentError(common::strCat(flag, ": ", path, " is not JSON"));
    auto samples = parse(doc);
    if (!samples.ok()) {
      return absl::InvalidArgumentError(
          common::strCat(flag, " ", path, ": ", common::toStd(samples.status().message())));
    }
    std::vector<double> sorted = *samples;
    std::sort(sorted.begin(), sorted.end());
    std::cerr << what << ": " << sorted.size() << " measured value(s) from " << path << ", p50 "
              << fixed(sorted[sorted.size() / 2] * 1000, 1) << " ms, max " << fixed(sorted.back() * 1000, 1)
              << " ms\n";
    return samples;
  };
  if (!a.service_time_from.empty()) {
    auto samples = measured(a.service_time_from, "--service-time-from", &simulate::serviceTimesFromLoadResult,
                            "service time");
    if (!samples.ok()) return fail(samples.status());
    model.service_time_samples = std::move(*samples);
  }
  if (!a.pod_startup_from.empty()) {
    auto samples =
        measured(a.pod_startup_from, "--pod-startup-from", &simulate::podStartupsFromReport, "pod start-up");
    if (!samples.ok()) return fail(samples.status());
    model.pod_startup_samples = std::move(*samples);
  }
  auto drain = secondsOf(a.pod_drain, "--pod-drain");
  if (!drain.ok()) return fail(drain.status());
  model.pod_drain_s = *drain;
  model.container_concurrency = a.container_concurrency;
  for (const auto& text : a.annotations) {
    auto kv = keyValue(text, "--annotation");
    if (!kv.ok()) return fail(kv.status());
    std::string key = kv->first.find('/') == std::string::npos ? "autoscaling.knative.dev/" + kv->first : kv->first;
    model.annotations[key] = kv->second;
  }
  simulate::SimulationSettings settings;
  settings.duration_s = duration_s;
  settings.seed = a.seed;
  auto tick = secondsOf(a.tick, "--tick");
  if (!tick.ok() || *tick <= 0) return fail(absl::InvalidArgumentError("--tick: a duration above 0 (Knative: 2s)"));
  settings.tick_interval_s = *tick;
  auto delay = secondsOf(a.stats_delay, "--stats-delay");
  if (!delay.ok()) return fail(delay.status());
  settings.stats_delay_s = *delay;
  // Pods over time for each service in the JSON and the report, while that stays small.
  settings.keep_series = (!a.json_out.empty() || !a.html_out.empty()) && workloads.size() <= 100;
  settings.price_per_pod_hour = a.price_per_pod_hour;
  for (const auto& text : a.settings) {
    auto kv = keyValue(text, "--set");
    if (!kv.ok()) return fail(kv.status());
    settings.autoscaler[kv->first] = kv->second;
  }
  std::vector<simulate::SweepAxis> axes;
  for (const auto& text : a.sweeps) {
    auto axis = simulate::parseSweepAxis(text);
    if (!axis.ok()) return fail(axis.status());
    axes.push_back(std::move(*axis));
  }
  // A fleet: its services are made one at a time as they are simulated.
  simulate::FleetSpec fleet;
  std::vector<double> rates;
  if (!a.fleet.empty()) {
    if (!a.traces.empty() || !a.workloads.empty()) {
      return fail(absl::InvalidArgumentError("--fleet runs alone (no --trace or --workload with it; --sweep is fine)"));
    }
    if (duration_s <= 0) return fail(absl::InvalidArgumentError("--fleet needs --duration"));
    unsigned long long n = 0;
    double rate = 0, alpha = 1.2;
    int fields = std::sscanf(a.fleet.c_str(), "%llu:%lf:%lf", &n, &rate, &alpha);
    // Each service's rate is kept (8 bytes) and its result (a few hundred): bound N to what fits.
    constexpr unsigned long long kMaxFleet = 10'000'000;
    if (fields < 2 || n == 0 || n > kMaxFleet || rate <= 0 || alpha <= 0) {
      return fail(absl::InvalidArgumentError(common::strCat("--fleet \"", a.fleet, "\": want N:TOTAL_RATE[:ALPHA] with 1 <= N <= 10000000, e.g. 1000:50:1.2")));
    }
    fleet = {static_cast<size_t>(n), rate, alpha, duration_s, a.seed};
    rates = simulate::fleetRates(fleet);
    settings.keep_series = settings.keep_series && n <= 100;
  }
  // An Azure Functions trace: its counts are read now and each function's arrivals made as it is
  // simulated (again for each setting of a sweep).
  simulate::AzureTrace azure;
  if (!a.azure.empty()) {
    simulate::AzureTraceOptions options;
    options.seed = a.seed;
    options.limit = a.azure_limit;
    auto read = simulate::readAzureFunctionsTrace(a.azure, options);
    if (!read.ok()) return fail(read.status());
    azure = std::move(*read);
    if (a.duration.empty()) {
      duration_s = 60.0 * static_cast<double>(azure.minutes);  // the trace's day
      settings.duration_s = duration_s;
    }
    settings.keep_series = settings.keep_series && azure.functions.size() <= 100;
    std::cerr << "read " << azure.functions.size() << " function(s) with invocations from " << a.azure << "\n";
  }
  // Every source as services made one at a time (a fleet's and a trace's are never all in memory).
  const size_t services = !a.fleet.empty() ? fleet.count : !a.azure.empty() ? azure.functions.size() : workloads.size();
  const std::function<simulate::ServiceWorkload(size_t)> workload = [&](size_t i) {
    if (!a.fleet.empty()) return simulate::fleetService(fleet, rates, i);
    if (!a.azure.empty()) return simulate::azureService(azure.functions[i], duration_s);
    return workloads[i];
  };
  std::cerr << "simulating " << services << " service(s)"
            << (axes.empty() ? "" : common::strCat(", sweeping ", axes.size(), " setting(s)")) << "\n";
  const auto started = std::chrono::steady_clock::now();
  auto result = simulate::simulate(services, workload, model, settings);
  const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  if (!result.ok()) return fail(result.status());
  if (result->services.size() > 50) {
    // A fleet: the total, and the busiest services.
    simulate::SimulationResult top;
    top.total = result->total;
    std::vector<size_t> order(result->services.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::partial_sort(order.begin(), order.begin() + 10, order.end(), [&](size_t x, size_t y) {
      return result->services[x].requests > result->services[y].requests;
    });
    for (size_t i = 0; i < 10; ++i) top.services.push_back(result->services[order[i]]);
    std::printf("the 10 busiest of %zu services, then the total:\n", result->services.size());
    printResult(top, a.price_per_pod_hour);
  } else {
    printResult(*result, a.price_per_pod_hour);
  }
  std::cerr << "simulated " << result->total.requests << " requests in " << wall_s << " s of wall time\n";
  // The JSON document only when it is written (a fleet's is ~4 KB a service; the results, ~0.3).
  const bool want_json = !a.json_out.empty() || !a.html_out.empty();
  nlohmann::json out = want_json ? simulate::toJson(*result) : nlohmann::json::object();
  if (!axes.empty()) {
    auto points = simulate::sweep(services, workload, model, settings, axes);
    if (!points.ok()) return fail(points.status());
    std::printf("\nsweep: %zu settings; * on the Pareto front of pod-seconds against cold-start share, "
                "> your current settings\n",
                points->size());
    const simulate::SweepPoint* current = nullptr;
    const simulate::SweepPoint* recommended = nullptr;
    for (const auto& p : *points) {
      std::printf("%s%s %-50s pod-s %11s  cold %8s%%  +p99 %9s ms\n", p.pareto ? "*" : " ", p.current ? ">" : " ",
                  simulate::settingsLabel(p.settings).c_str(), fixed(p.pod_seconds, 0).c_str(), fixed(p.cold_start_share * 100, 3).c_str(),
                  fixed(p.added_latency_p99_ms, 1).c_str());
      if (p.current) current = &p;
    }
    // The cheapest point of the front with no more cold starts than the current settings.
    for (const auto& p : *points) {
      if (!p.pareto || (current != nullptr && p.cold_start_share > current->cold_start_share)) continue;
      if (recommended == nullptr || p.pod_seconds < recommended->pod_seconds) recommended = &p;
    }
    if (recommended != nullptr && current != nullptr && recommended != current &&
        recommended->pod_seconds < current->pod_seconds) {
      const std::string label = simulate::settingsLabel(recommended->settings);
      std::printf("recommendation: %s costs %s%% less pod-time with no more cold starts than your current settings\n",
                  label.c_str(), fixed(100 * (1 - recommended->pod_seconds / std::max(current->pod_seconds, 1e-9)), 1).c_str());
    } else {
      std::printf("recommendation: your current settings are on the front (no setting tried is cheaper without more cold starts)\n");
    }
    out["sweep"] = simulate::toJson(*points);
  }
  if (!a.json_out.empty()) {
    std::ofstream f(a.json_out);
    f << common::jsonText(out, 2) << "\n";
    if (!f) return fail(absl::UnavailableError(common::strCat("cannot write ", a.json_out)));
  }
  if (!a.html_out.empty()) {
    std::ofstream f(a.html_out);
    f << simulate::reportHtml(out);
    if (!f) return fail(absl::UnavailableError(common::strCat("cannot write ", a.html_out)));
  }
  if (!a.csv_out.empty()) {
    std::ofstream f(a.csv_out);
    f << "service,requests,cold_start_requests,cold_start_share,added_p50_ms,added_p99_ms,pod_seconds,zero_seconds,"
         "scale_events,scale_to_zero_events,panic_episodes\n";
    auto line = [&](const simulate::ServiceResult& s) {
      f << s.name << "," << s.requests << "," << s.cold_start_requests << "," << s.cold_start_share << ","
        << s.added_latency_p50_ms << "," << s.added_latency_p99_ms << "," << s.pod_seconds << "," << s.zero_seconds
        << "," << s.scale_events << "," << s.scale_to_zero_events << "," << s.panic_episodes << "\n";
    };
    for (const auto& s : result->services) line(s);
    line(result->total);
    if (!f) return fail(absl::UnavailableError(common::strCat("cannot write ", a.csv_out)));
  }
  return 0;
}

}  // namespace

Command addSimulateCommand(CLI::App& app) {
  auto args = std::make_shared<SimulateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "simulate",
      "What-if for Knative autoscaling: replay workloads through the KPA (the code refstack runs) in\n"
      "virtual time; report cold starts, added latency and pod-seconds; sweep settings for the\n"
      "Pareto front of cost against cold starts.\n"
      "With --validate SCENARIO, checks the simulator against the live embedded stack.\n"
      "Exit status: 0 done (--validate: they agree), 1 --validate: they disagree, 2 bad input.");
  cmd->add_option("--trace", args->traces, "A service's request times: one offset in seconds per line (repeatable)");
  cmd->add_option("--workload", args->workloads,
                  "NAME=SCHEDULE: a generated service (repeatable): poisson:RATE, constant:RATE, every:SECONDS, "
                  "a profile (100@60s,0@300s; ramp:0-50@600s), diurnal:MEAN_RATE:AMPLITUDE[:PERIOD] (Poisson at "
                  "MEAN_RATE*(1+AMPLITUDE*sin(2 pi t/PERIOD)), AMPLITUDE in [0,1], PERIOD 24h by default), "
                  "onoff:RATE:ON:OFF (Poisson at RATE for ON, silent for OFF, repeating: onoff:5:2m:28m), or "
                  "trace:FILE");
  cmd->add_option("--fleet", args->fleet,
                  "N:TOTAL_RATE[:ALPHA]: N services whose Poisson rates follow a Pareto distribution (shape ALPHA, "
                  "default 1.2) and add up to TOTAL_RATE requests/s");
  cmd->add_option("--azure", args->azure,
                  "An Azure Functions trace (AzurePublicDataset invocations_per_function_md.anon.dNN.csv): one "
                  "service per function with invocations; minute k's n invocations are n uniform times in "
                  "[60(k-1), 60k) (seeded)");
  cmd->add_option("--azure-limit", args->azure_limit, "Simulate only the first N functions of --azure (0: all)");
  cmd->add_option("--duration", args->duration,
                  "Simulated time (generated workloads need it; with --azure: the trace's day; default: the last "
                  "request plus 15m)");
  cmd->add_option("--seed", args->seed, "Seed of generated arrivals (service i uses seed + i)")->default_val(1);
  cmd->add_option("--service-time", args->service_time, "Time a request holds its pod")->default_val("50ms");
  cmd->add_option("--pod-startup", args->pod_startup, "From a pod's creation to its readiness")->default_val("1s");
  cmd->add_option("--service-time-from", args->service_time_from,
                  "Draw each request's service time from a measured run: the JSON of harness load -o (its service-time "
                  "percentile curve)");
  cmd->add_option("--pod-startup-from", args->pod_startup_from,
                  "Draw each pod's start-up from measured cold starts: a harness run report.json (refstack's coldstart "
                  "events' time to ready; on the kube target, the cold_start assertion's time to first byte)");
  cmd->add_option("--validate", args->validate,
                  "Run this scenario on the embedded stack and replay its per-request loads in the simulator: the same "
                  "cold starts and scale-to-zero events, pod-seconds within --tolerance (exit 1 when not)");
  cmd->add_option("--tolerance", args->tolerance, "--validate: pod-seconds may differ by this share")->default_val(0.10);
  cmd->add_option("--out", args->out, "--validate: the report directory (default reports/validate-<timestamp>)");
  cmd->add_option("--pod-drain", args->pod_drain,
                  "How long a pod taken away still costs (its drain; Knative on a cluster: up to 30s)")
      ->default_val("0s");
  cmd->add_option("--tick", args->tick, "The decider's period (Knative: 2s; refstack's autoscalerTickSeconds)")
      ->default_val("2s");
  cmd->add_option("--stats-delay", args->stats_delay,
                  "How late a second's stats reach the KPA (a queue-proxy's report read at the next scrape)")
      ->default_val("1s");
  cmd->add_option("--container-concurrency", args->container_concurrency, "Requests a pod serves at once (0: no limit)")
      ->default_val(0);
  cmd->add_option("--set", args->settings,
                  "KEY=VALUE of Knative's config-autoscaler (stable-window=60s, scale-to-zero-grace-period=30s, "
                  "target-burst-capacity=200, ...; repeatable)");
  cmd->add_option("--annotation", args->annotations,
                  "KEY=VALUE revision annotation (min-scale=0, target=10, window=60s, ...; the "
                  "autoscaling.knative.dev/ prefix is added when missing; repeatable)");
  cmd->add_option("--sweep", args->sweeps, "KEY=V1,V2,...: try these config-autoscaler values (repeatable: every combination)");
  cmd->add_option("--price-per-pod-hour", args->price_per_pod_hour, "Report a price beside pod-seconds");
  cmd->add_option("-o,--json", args->json_out, "Write the results (and the sweep) as JSON");
  cmd->add_option("--csv", args->csv_out, "Write the per-service results as CSV");
  cmd->add_option("--html", args->html_out, "Write a self-contained HTML report (pods over time, the sweep's front)");
  return [args] { return runSimulate(*args); };
}

}  // namespace kh::cli
