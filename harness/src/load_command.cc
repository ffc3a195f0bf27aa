// `harness load`: drives a model server with one schedule and reports CO-correct latency.

#include <unistd.h>

#include <fstream>
#include <iostream>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <memory>
#include <optional>

#include "commands.h"
#include "kh/common/json.h"
#include "kh/common/net.h"
#include "kh/common/strings.h"
#include "kh/common/time_source.h"
#include "kh/http/client.h"
#include "kh/loadgen/plan.h"
#include "kh/loadgen/results.h"
#include "kh/report/html.h"

namespace kh::cli {
namespace {

using loadgen::parseDuration;

// The run's options (a loadgen::LoadFlags, turned into a LoadSpec by the planner) and what only
// the command does with runs: outputs, searches, scraping, validity.
struct LoadArgs {
  loadgen::LoadFlags load;
  std::string json_out, csv_out, hdr_out, html_out;
  std::string search;
  std::string sweep;
  double precision = 5;
  int max_trials = 3;
  std::string scrape;
  int64_t min_requests = 0;
  std::string min_duration;
  bool quiet = false;
  std::string export_requests;
  std::string export_header = "Kh-Revision";
};

// Reads a Prometheus text exposition: series (name with labels) -> value.
absl::StatusOr<std::map<std::string, double>> scrapeMetrics(const common::HostPort& target,
                                                            const std::string& path) {
  http::Client client(target.host, target.port);
  auto res = client.request("GET", path);
  if (!res.ok()) return res.status();
  if (res->result_int() != 200) {
    return absl::UnavailableError(common::strCat("GET ", path, " answered ", res->result_int()));
  }
  std::map<std::string, double> out;
  std::string_view text = res->body();
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    std::string_view line = text.substr(pos, end == std::string_view::npos ? std::string_view::npos : end - pos);
    pos = end == std::string_view::npos ? text.size() : end + 1;
    if (line.empty() || line[0] == '#') continue;
    auto space = line.rfind(' ');
    if (space == std::string_view::npos) continue;
    char* stop = nullptr;
    std::string value(line.substr(space + 1));
    double v = std::strtod(value.c_str(), &stop);
    if (stop && *stop == '\0') out[std::string(line.substr(0, space))] = v;
  }
  return out;
}

bool writeFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  return static_cast<bool>(out);
}

int fail(const std::string& message, int code = 2) {
  std::cerr << "harness load: " << message << "\n";
  return code;
}

int runLoad(const LoadArgs& a) {
  auto spec = loadgen::loadSpecFromFlags(a.load);
  if (!spec.ok()) return fail(std::string(common::toStd(spec.status().message())));
  if (auto st = loadgen::validateLoadSpec(*spec); !st.ok()) return fail(std::string(common::toStd(st.message())));
  if (!a.export_requests.empty()) {
    if (!a.search.empty()) return fail("--export-requests records one run; it does not go with --search");
    spec->per_request = true;
    spec->record_header = a.export_header;
  }
  // What to send, prepared once for every run (a search runs many).
  auto payload = loadgen::buildPayload(*spec);
  if (!payload.ok()) {
    // A bad request file or an unreachable target is exit 2; metadata the target refuses, 1.
    bool bad = !spec->input.empty() || payload.status().code() == absl::StatusCode::kUnavailable;
    return fail(std::string(common::toStd(payload.status().message())), bad ? 2 : 1);
  }
  bool tty = isatty(STDERR_FILENO) != 0;
  common::RealTimeSource time;

  // One run of `plan`.
  struct Outcome {
    loadgen::RunResult result;
    nlohmann::json doc;
    double start_epoch = 0;
  };
  auto runOne = [&](loadgen::LoadPlan plan, bool show_progress) -> absl::StatusOr<Outcome> {
    const loadgen::RunConfig config = plan.config;
    show_progress = show_progress && !a.quiet;
    if (show_progress) {
      std::cerr << "load: " << (plan.options.schedule ? plan.options.schedule->describe()
                                                      : common::strCat("closed loop, concurrency ",
                                                                       plan.options.concurrency, " for ",
                                                                       config.duration_s, "s"))
                << " -> " << config.target << " model " << config.model << " (" << config.protocol
                << ", " << config.payload << ")\n";
    }
    int64_t last_completed = 0;
    double last_t = 0;
    auto progress = [&](double t, int64_t completed, int64_t errors) {
      if (!show_progress) return;
      double r = static_cast<double>(completed - last_completed) / std::max(1e-9, t - last_t);
      last_completed = completed;
      last_t = t;
      std::string line = common::strCat("  t=", static_cast<int>(t), "s  ", completed, " done  ",
                                        static_cast<int64_t>(r), "/s  ", errors, " errors");
      if (tty) {
        std::cerr << "\r\033[K" << line << std::flush;
      } else {
        std::cerr << line << "\n";
      }
    };
    Outcome out;
    out.start_epoch = std::chrono::duration<double>(time.systemTime().time_since_epoch()).count();
    auto result = loadgen::runPlan(std::move(plan), time, progress);
    if (tty && show_progress) std::cerr << "\r\033[K";
    if (!result.ok()) return result.status();
    out.doc = loadgen::runToJson(*result, config);
    out.result = std::move(*result);
    return out;
  };
  auto failFrom = [&](const absl::Status& st) {
    return fail(std::string(common::toStd(st.message())),
                st.code() == absl::StatusCode::kUnavailable ? 2 : 1);
  };

  if (!a.search.empty()) {
    // Searches: each probe is a full run; a probe counts only when its windows are stable or
    // its SLO verdict is established (LoadGen early stopping).
    std::vector<nlohmann::json> probes;
    auto probeOk = [&](const nlohmann::json& doc, double wanted_rate) {
      const auto& sm = doc["summary"];
      bool healthy = sm["error_rate"].get<double>() <= 0.01;
      if (wanted_rate > 0) {
        healthy = healthy && sm["throughput"].get<double>() >= 0.95 * wanted_rate &&
                  sm["delayed_percent"].get<double>() <= 5.0;
      }
      bool measured = doc["stability"]["stable"].get<bool>() || doc.contains("slo");
      bool slo_ok = !doc.contains("slo") || doc["slo"]["passed"].get<bool>();
      return healthy && measured && slo_ok;
    };
    auto report = [&](const nlohmann::json& doc, bool ok) {
      if (a.quiet) return;
      std::cerr << common::strCat("  probe ", doc["config"]["schedule"].get<std::string>(), ": ",
                                  static_cast<int64_t>(doc["summary"]["throughput"].get<double>()),
                                  "/s p99 ", doc["latency"]["p99_ms"].get<double>(), " ms ",
                                  ok ? "ok" : "fails", doc["stability"]["stable"].get<bool>() ? "" : " (not stable)")
                << "\n";
    };
    // A probe that is neither stable nor SLO-decided is measured again, up to --max-trials
    // times (perf_analyzer extends its measurement the same way).
    auto probe = [&](double rate, int concurrency) -> absl::StatusOr<Outcome> {
      loadgen::LoadSpec probe_spec = *spec;
      probe_spec.rate = rate;
      probe_spec.concurrency = concurrency;
      absl::StatusOr<Outcome> o = absl::UnknownError("no trial");
      for (int trial = 0; trial < std::max(1, a.max_trials); ++trial) {
        auto plan = loadgen::planLoad(probe_spec, *payload);
        if (!plan.ok()) return plan.status();
        o = runOne(std::move(*plan), false);
        if (!o.ok()) return o;
        if (o->doc["stability"]["stable"].get<bool>() || o->doc.contains("slo")) break;
      }
      return o;
    };
    nlohmann::json best;
    if (a.search == "concurrency" || a.search == "rate") {
      std::vector<double> levels;
      for (size_t pos = 0; pos < a.sweep.size();) {
        size_t comma = a.sweep.find(',', pos);
        levels.push_back(std::strtod(a.sweep.substr(pos, comma - pos).c_str(), nullptr));
        pos = comma == std::string::npos ? a.sweep.size() : comma + 1;
      }
      if (levels.empty()) return fail("--search concurrency|rate needs --sweep, e.g. 1,2,4,8");
      for (double level : levels) {
        auto o = a.search == "rate" ? probe(level, 0) : probe(0, static_cast<int>(level));
        if (!o.ok()) return failFrom(o.status());
        bool ok = probeOk(o->doc, a.search == "rate" ? level : 0);
        report(o->doc, ok);
        o->doc["label"] = common::strCat(a.search, " ", level);
        probes.push_back(o->doc);
        if (ok) best = o->doc;
      }
    } else if (a.search == "max-throughput" || a.search == "slo") {
      if (a.search == "slo" && !spec->slo) return fail("--search slo needs --slo pXX=DURATION");
      // Exponential widening from the start rate, then bisection (LoadGen FindPeakPerformance).
      double lo = 0, hi = 0, rate = spec->rate > 0 ? spec->rate : 100;
      while (hi == 0) {
        auto o = probe(rate, 0);
        if (!o.ok()) return failFrom(o.status());
        bool ok = probeOk(o->doc, rate);
        report(o->doc, ok);
        o->doc["label"] = common::strCat("rate ", rate);
        probes.push_back(o->doc);
        if (ok) {
          lo = rate;
          best = o->doc;
          rate *= 2;
          if (rate > 1e7) break;
        } else {
          hi = rate;
        }
      }
      while (hi > 0 && lo > 0 && (hi - lo) / lo > a.precision / 100.0) {
        double mid = (lo + hi) / 2;
        auto o = probe(mid, 0);
        if (!o.ok()) return failFrom(o.status());
        bool ok = probeOk(o->doc, mid);
        report(o->doc, ok);
        o->doc["label"] = common::strCat("rate ", mid);
        probes.push_back(o->doc);
        if (ok) {
          lo = mid;
          best = o->doc;
        } else {
          hi = mid;
        }
      }
    } else {
      return fail("--search must be max-throughput, slo, concurrency or rate");
    }
    nlohmann::json summary = {{"schema", "kserve-harness/load-search/v1"},
                              {"search", a.search},
                              {"found", !best.is_null()},
                              {"best", best.is_null() ? nlohmann::json() : best["config"]},
                              {"best_throughput", best.is_null() ? 0.0 : best["summary"]["throughput"].get<double>()},
                              {"probes", probes}};
    std::cout << "search " << a.search << ": " << probes.size() << " probes; ";
    if (best.is_null()) {
      std::cout << "no probe passed\n";
    } else {
      std::cout << "best " << best["config"]["schedule"].get<std::string>() << " -> "
                << static_cast<int64_t>(best["summary"]["throughput"].get<double>()) << " req/s, p99 "
                << best["latency"]["p99_ms"].get<double>() << " ms\n";
    }
    if (!a.json_out.empty() && !writeFile(a.json_out, common::jsonText(summary, 2) + "\n")) return fail("cannot write " + a.json_out);
    if (!a.csv_out.empty() && !writeFile(a.csv_out, loadgen::perfAnalyzerCsv(probes))) return fail("cannot write " + a.csv_out);
    if (!a.html_out.empty() && !writeFile(a.html_out, report::runReportHtml(probes, "kserve-harness " + a.search + " search"))) return fail("cannot write " + a.html_out);
    return best.is_null() ? 1 : 0;
  }

  // Optional Prometheus scrape of the target before and after the run, diffed.
  std::optional<std::map<std::string, double>> before;
  std::optional<common::HostPort> scrape_target;
  std::string scrape_path = "/metrics";
  if (!a.scrape.empty()) {
    auto hp = common::parseHostPort(a.scrape);
    if (!hp.ok()) return fail(std::string(common::toStd(hp.status().message())));
    scrape_target = *hp;
    if (auto slash = a.scrape.find('/', a.scrape.find("//") + 2); slash != std::string::npos) {
      scrape_path = a.scrape.substr(slash);
    }
    auto m = scrapeMetrics(*scrape_target, scrape_path);
    if (!m.ok()) return fail(common::strCat("--scrape: ", common::toStd(m.status().message())));
    before = std::move(*m);
  }
  // With --scrape, a sampler thread also scrapes at every window boundary so that each window
  // gets its own server-side deltas.
  std::vector<std::pair<int, std::map<std::string, double>>> samples;  // window index -> metrics
  std::mutex sample_mu;
  std::condition_variable sample_cv;
  bool run_done = false;
  std::thread sampler;
  // The single run's plan; a bad trace or golden file is a bad argument.
  auto plan = loadgen::planLoad(*spec, *payload);
  if (!plan.ok()) return fail(std::string(common::toStd(plan.status().message())));
  if (before) {
    auto start = std::chrono::steady_clock::now() + plan->options.warmup;
    auto window_len = plan->options.window;
    sampler = std::thread([&, start, window_len] {
      for (int k = 0;; ++k) {
        std::unique_lock lock(sample_mu);
        if (sample_cv.wait_until(lock, start + k * window_len, [&] { return run_done; })) return;
        lock.unlock();
        auto m = scrapeMetrics(*scrape_target, scrape_path);
        lock.lock();
        if (m.ok()) samples.emplace_back(k, std::move(*m));
      }
    });
  }
  auto outcome = runOne(std::move(*plan), true);
  if (sampler.joinable()) {
    {
      std::lock_guard lock(sample_mu);
      run_done = true;
    }
    sample_cv.notify_all();
    sampler.join();
  }
  if (!outcome.ok()) return failFrom(outcome.status());
  auto diff = [](const std::map<std::string, double>& from, const std::map<std::string, double>& to) {
    nlohmann::json d = nlohmann::json::object();
    for (const auto& [series, value] : to) {
      auto it = from.find(series);
      double delta = value - (it == from.end() ? 0.0 : it->second);
      if (delta != 0) d[series] = delta;
    }
    return d;
  };
  if (before) {
    auto after = scrapeMetrics(*scrape_target, scrape_path);
    if (after.ok()) outcome->doc["server_metrics_delta"] = diff(*before, *after);
    auto& windows = outcome->doc["windows"];
    for (size_t i = 0; i + 1 < samples.size(); ++i) {
      auto w = static_cast<size_t>(samples[i].first);
      if (samples[i + 1].first == samples[i].first + 1 && w < windows.size()) {
        windows[w]["server_metrics_delta"] = diff(samples[i].second, samples[i + 1].second);
      }
    }
  }
  // LoadGen-style validity: a run shorter or smaller than asked for does not count.
  nlohmann::json invalid = nlohmann::json::array();
  if (a.min_requests > 0 && outcome->result.completed < a.min_requests) {
    invalid.push_back(common::strCat("completed ", outcome->result.completed, " requests, fewer than --min-requests ", a.min_requests));
  }
  if (!a.min_duration.empty()) {
    auto min_d = parseDuration(a.min_duration);
    if (!min_d.ok()) return fail(std::string(common::toStd(min_d.status().message())));
    double need = static_cast<double>(min_d->count()) / 1e9;
    if (outcome->result.elapsed_s + 1e-9 < need) {
      invalid.push_back(common::strCat("measured ", outcome->result.elapsed_s, " s, shorter than --min-duration ", need, " s"));
    }
  }
  outcome->doc["valid"] = invalid.empty();
  if (!invalid.empty()) outcome->doc["invalid_because"] = invalid;
  const nlohmann::json& run = outcome->doc;
  std::cout << loadgen::textSummary(run);
  if (!a.json_out.empty() && !writeFile(a.json_out, common::jsonText(run, 2) + "\n")) return fail("cannot write " + a.json_out);
  if (!a.csv_out.empty() && !writeFile(a.csv_out, loadgen::perfAnalyzerCsv({run}))) return fail("cannot write " + a.csv_out);
  if (!a.hdr_out.empty() && !writeFile(a.hdr_out, loadgen::hdrIntervalLog(outcome->result, outcome->start_epoch))) return fail("cannot write " + a.hdr_out);
  if (!a.html_out.empty() && !writeFile(a.html_out, report::runReportHtml({run}, "kserve-harness load run"))) return fail("cannot write " + a.html_out);
  if (!a.export_requests.empty() && !writeFile(a.export_requests, loadgen::requestsJsonl(outcome->result))) {
    return fail("cannot write " + a.export_requests);
  }
  // Exit 1 when nothing succeeded, the run is invalid or the SLO verdict failed.
  if (!invalid.empty()) {
    for (const auto& why : invalid) std::cout << "  INVALID    " << why.get<std::string>() << "\n";
    return 1;
  }
  if (outcome->result.succeeded == 0) return 1;
  if (run.contains("slo") && !run["slo"]["passed"].get<bool>()) return 1;
  return 0;
}

}  // namespace

Command addLoadCommand(CLI::App& app) {
  auto a = std::make_shared<LoadArgs>();
  loadgen::LoadFlags& f = a->load;
  CLI::App* cmd = app.add_subcommand(
      "load",
      "Load a model server (HTTP/1.1 or gRPC) and measure latency from each request's intended "
      "send time (coordinated-omission correct) and service time.\n"
      "Closed loop with --concurrency, open loop with --rate (constant or --arrival poisson), "
      "--profile or --trace.\nExit status: 0 done, 1 no success or SLO not met, 2 bad "
      "arguments or target unreachable.");
  cmd->add_option("--target", f.target, "HTTP base URL")->default_val(f.target);
  cmd->add_option("--grpc", f.grpc, "host:port of the V2 gRPC endpoint (for --protocol grpc)");
  cmd->add_option("--model", f.model, "Model name")->required();
  cmd->add_option("--protocol", f.protocol, "v1, v2, v2-binary or grpc")->default_val("v2");
  cmd->add_option("--concurrency,-c", f.concurrency, "Closed loop: requests in flight");
  cmd->add_option("--rate,-r", f.rate, "Open loop: requests per second");
  cmd->add_option("--arrival", f.arrival, "constant or poisson (open loop)")->default_val("constant");
  cmd->add_option("--seed", f.seed, "Seed for Poisson arrivals and generated data (recorded)")->default_val(1);
  cmd->add_option("--profile", f.profile, "Stages, e.g. 1000@30s,2000@30s or ramp:0-2000@60s");
  cmd->add_option("--trace", f.trace, "File of send offsets in seconds, one per line");
  cmd->add_option("--duration,-d", f.duration, "Run length (closed loop and --rate)")->default_val("10s");
  cmd->add_option("--warmup", f.warmup, "Not measured at the start")->default_val("1s");
  cmd->add_option("--window", f.window, "Measurement window length")->default_val("1s");
  cmd->add_option("--requests,-n", f.requests, "Stop after this many requests (0 = no limit)");
  cmd->add_option("--threads,-t", f.threads, "Worker threads (each its own event loop)")->default_val(1);
  cmd->add_option("--connections", f.connections, "Open loop: connections (gRPC: calls in flight)")->default_val(64);
  cmd->add_option("--input,-i", f.input,
                  "Request file: V2 request JSON, V2 binary-extension body, ModelInferRequest "
                  "text proto (.pbtxt), or a V1 {\"instances\"} body");
  cmd->add_option("--batch", f.batch, "Batch size of generated requests")->default_val(1);
  cmd->add_option("--expect", f.expect, "Golden response (V2 JSON or V1 predictions) to check every response against");
  cmd->add_option("--atol", f.atol, "Absolute tolerance of --expect")->default_val(1e-5);
  cmd->add_option("--rtol", f.rtol, "Relative tolerance of --expect")->default_val(1e-4);
  cmd->add_option("--timeout", f.timeout, "Per-request timeout")->default_val("10s");
  cmd->add_option("--slo", f.slo, "Latency objective for LoadGen early stopping, e.g. p99=50ms");
  cmd->add_option("--slo-confidence", f.slo_confidence, "Confidence of the SLO verdict")->default_val(0.99);
  cmd->add_option("--stability-windows", f.stability_windows, "Windows the stability rule looks at")->default_val(3);
  cmd->add_option("--stability-tolerance", f.stability_tolerance, "Stability tolerance in percent")->default_val(10);
  cmd->add_option("--label", f.label, "Name of this run in reports and comparisons");
  cmd->add_option("--output,-o", a->json_out, "Write the JSON result here");
  cmd->add_option("--csv", a->csv_out, "Write perf_analyzer-compatible CSV here");
  cmd->add_option("--hdr-log", a->hdr_out, "Write an HdrHistogram interval log here");
  cmd->add_option("--html", a->html_out, "Write a self-contained HTML report here");
  cmd->add_option("--search", a->search,
                  "max-throughput (widen then bisect the rate), slo (highest rate meeting --slo), "
                  "concurrency or rate (sweep --sweep levels); each probe runs --duration");
  cmd->add_option("--sweep", a->sweep, "Levels for --search concurrency|rate, e.g. 1,2,4,8");
  cmd->add_option("--precision", a->precision, "Search precision in percent of the rate")->default_val(5);
  cmd->add_option("--max-trials", a->max_trials, "Search: runs of a probe until it is stable")->default_val(3);
  cmd->add_option("--scrape", a->scrape,
                  "Prometheus endpoint of the target (e.g. http://127.0.0.1:8080/metrics), scraped "
                  "before and after the run and at every window boundary; the differences go into "
                  "the JSON result (server_metrics_delta, per window too)");
  cmd->add_option("--header,-H", f.headers,
                  "Extra request header 'Name: value' (repeatable); a Host header routes through an "
                  "ingress, e.g. -H 'Host: iris-default.example.com'");
  cmd->add_option("--min-requests", a->min_requests,
                  "The run is invalid (exit 1) with fewer measured requests (LoadGen's min_query_count)");
  cmd->add_option("--min-duration", a->min_duration,
                  "The run is invalid (exit 1) when the measured part is shorter (LoadGen's min_duration)");
  cmd->add_flag("--quiet,-q", a->quiet, "No progress lines");
  cmd->add_option("--export-requests", a->export_requests,
                  "Write every measured request here as JSON lines: intended, sent, first_byte (HTTP) and done "
                  "(Unix seconds), latency_ms (from intended), service_ms (from sent), status, error, header");
  cmd->add_option("--export-header", a->export_header,
                  "The response header --export-requests keeps with each request (gRPC: the metadata key)")
      ->default_val(a->export_header);
  return [a] { return runLoad(*a); };
}

}  // namespace kh::cli
