// `harness load`: drives a model server with one schedule and reports CO-correct latency.

#include <unistd.h>

#include <cmath>
#include <fstream>
#include <iostream>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>
#include <memory>
#include <optional>

#include "commands.h"
#include "kh/common/net.h"
#include "kh/common/strings.h"
#include "kh/common/time_source.h"
#include "kh/http/client.h"
#include "kh/loadgen/payload.h"
#include "kh/loadgen/results.h"
#include "kh/loadgen/schedule.h"
#include "kh/report/html.h"

namespace kh::cli {
namespace {

using loadgen::Nanos;
using loadgen::parseDuration;

struct LoadArgs {
  std::string target = "http://127.0.0.1:8080";
  std::string grpc;
  std::string model;
  std::string protocol = "v2";
  int concurrency = 0;
  double rate = 0;
  std::string arrival = "constant";
  uint64_t seed = 1;
  std::string profile;
  std::string trace;
  std::string duration = "10s";
  std::string warmup = "1s";
  std::string window = "1s";
  int64_t requests = 0;
  int threads = 1;
  int connections = 64;
  std::string input;
  int batch = 1;
  std::string expect;
  double atol = 1e-5, rtol = 1e-4;
  std::string timeout = "10s";
  std::string slo;
  double slo_confidence = 0.99;
  int stability_windows = 3;
  double stability_tolerance = 10;
  std::string label;
  std::string json_out, csv_out, hdr_out, html_out;
  std::string search;
  std::string sweep;
  double precision = 5;
  int max_trials = 3;
  std::string scrape;
  std::vector<std::string> headers;
  int64_t min_requests = 0;
  std::string min_duration;
  bool quiet = false;
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
  auto protocol = loadgen::parseWireProtocol(a.protocol);
  if (!protocol.ok()) return fail(std::string(common::toStd(protocol.status().message())));
  auto target = common::parseHostPort(a.target);
  if (!target.ok()) return fail(std::string(common::toStd(target.status().message())));
  if (*protocol == loadgen::WireProtocol::kGrpc && a.grpc.empty()) {
    return fail("--protocol grpc needs --grpc HOST:PORT");
  }
  auto duration = parseDuration(a.duration);
  auto warmup = parseDuration(a.warmup);
  auto window = parseDuration(a.window);
  auto timeout = parseDuration(a.timeout);
  for (const auto* d : {&duration, &warmup, &window, &timeout}) {
    if (!d->ok()) return fail(std::string(common::toStd(d->status().message())));
  }

  // What to send.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string authority;
  for (const auto& h : a.headers) {
    auto colon = h.find(':');
    if (colon == std::string::npos) return fail("--header wants 'Name: value'");
    std::string value = h.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    std::string name = h.substr(0, colon);
    std::string lower = name;
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower == "host") authority = value;
    headers.emplace_back(name, value);
  }
  absl::StatusOr<loadgen::Payload> payload = absl::UnknownError("");
  if (!a.input.empty()) {
    payload = loadgen::payloadFromFile(a.input, *protocol, a.model);
  } else {
    auto meta = loadgen::fetchMetadata(target->host, target->port,
                                       *protocol == loadgen::WireProtocol::kGrpc ? a.grpc : "",
                                       a.model, headers);
    if (!meta.ok()) {
      return fail(common::strCat("cannot read the model's metadata: ",
                                 common::toStd(meta.status().message())),
                  meta.status().code() == absl::StatusCode::kUnavailable ? 2 : 1);
    }
    payload = loadgen::encodePayload(loadgen::generateRequest(*meta, a.batch, a.seed), *protocol,
                                     a.model,
                                     common::strCat("generated from metadata (batch ", a.batch,
                                                    ", seed ", a.seed, ")"));
  }
  if (!payload.ok()) return fail(std::string(common::toStd(payload.status().message())));
  for (auto& h : headers) payload->http.headers.push_back(h);
  payload->grpc.authority = authority;

  if (a.arrival != "constant" && a.arrival != "poisson") {
    return fail("--arrival must be constant or poisson");
  }
  std::optional<loadgen::ResponseCheck> check;
  if (!a.expect.empty()) {
    auto c = loadgen::makeGoldenCheck(a.expect, *protocol, a.atol, a.rtol);
    if (!c.ok()) return fail(std::string(common::toStd(c.status().message())));
    check = std::move(*c);
  }
  double slo_percentile = 0, slo_ms = 0;
  if (!a.slo.empty()) {
    // "p99=50ms"
    auto eq = a.slo.find('=');
    if (a.slo[0] != 'p' || eq == std::string::npos) return fail("--slo wants pXX=DURATION, e.g. p99=50ms");
    slo_percentile = std::strtod(a.slo.substr(1, eq - 1).c_str(), nullptr);
    auto slo_d = parseDuration(a.slo.substr(eq + 1));
    if (!slo_d.ok() || slo_percentile <= 0 || slo_percentile >= 100) {
      return fail("--slo wants pXX=DURATION with 0 < XX < 100, e.g. p99=50ms");
    }
    slo_ms = static_cast<double>(slo_d->count()) / 1e6;
  }
  std::vector<loadgen::Stage> stages;
  if (!a.profile.empty()) {
    auto parsed = loadgen::parseProfile(a.profile);
    if (!parsed.ok()) return fail(std::string(common::toStd(parsed.status().message())));
    stages = std::move(*parsed);
  }
  bool tty = isatty(STDERR_FILENO) != 0;
  common::RealTimeSource time;

  // One run; `rate` > 0 makes it open loop at that rate, else closed loop at `concurrency`.
  struct Outcome {
    loadgen::RunResult result;
    nlohmann::json doc;
    double start_epoch = 0;
  };
  auto runOne = [&](double rate, int concurrency, bool show_progress) -> absl::StatusOr<Outcome> {
    loadgen::LoadOptions options;
    loadgen::RunConfig config;
    config.mode = "closed";
    if (!stages.empty()) {
      Nanos total{0};
      for (const auto& st : stages) total += st.duration;
      options.schedule = loadgen::makeProfileSchedule(
          stages, a.arrival == "poisson" ? std::optional<uint64_t>(a.seed) : std::nullopt);
      options.duration = total;
      config.mode = "profile";
    } else if (!a.trace.empty()) {
      auto trace = loadgen::makeTraceSchedule(a.trace);
      if (!trace.ok()) return trace.status();
      options.schedule = std::move(*trace);
      options.duration = *duration;
      config.mode = "trace";
    } else if (rate > 0) {
      options.schedule = a.arrival == "poisson"
                             ? loadgen::makePoissonSchedule(rate, *duration, a.seed)
                             : loadgen::makeConstantSchedule(rate, *duration);
      options.duration = *duration;
      config.mode = a.arrival == "poisson" ? "poisson" : "constant";
    } else {
      options.concurrency = std::max(1, concurrency);
      options.duration = *duration;
    }
    options.threads = std::max(1, a.threads);
    options.connections = std::max(1, a.connections);
    options.max_requests = a.requests;
    options.warmup = *warmup;
    options.window = std::max(*window, Nanos(std::chrono::milliseconds(100)));
    options.request_timeout = *timeout;
    if (check) options.check = *check;
    config.target = *protocol == loadgen::WireProtocol::kGrpc ? "grpc://" + a.grpc : a.target;
    config.model = a.model;
    config.protocol = loadgen::wireProtocolName(*protocol);
    config.payload = payload->source;
    config.concurrency = options.concurrency;
    config.rate = rate;
    config.seed = a.seed;
    config.threads = options.threads;
    config.connections = options.schedule ? options.connections : options.concurrency;
    config.duration_s = static_cast<double>(options.duration.count()) / 1e9;
    config.warmup_s = static_cast<double>(options.warmup.count()) / 1e9;
    config.window_s = static_cast<double>(options.window.count()) / 1e9;
    config.label = a.label;
    config.stability_windows = a.stability_windows;
    config.stability_tolerance = a.stability_tolerance / 100.0;
    config.slo_percentile = slo_percentile;
    config.slo_ms = slo_ms;
    config.slo_confidence = a.slo_confidence;
    show_progress = show_progress && !a.quiet;
    if (show_progress) {
      std::cerr << "load: " << (options.schedule ? options.schedule->describe()
                                                 : common::strCat("closed loop, concurrency ",
                                                                  options.concurrency, " for ",
                                                                  config.duration_s, "s"))
                << " -> " << config.target << " model " << a.model << " (" << config.protocol
                << ", " << payload->source << ")\n";
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
    absl::StatusOr<loadgen::RunResult> result =
        *protocol == loadgen::WireProtocol::kGrpc
            ? [&] {
                loadgen::GrpcRequestSpec spec = payload->grpc;
                spec.target = a.grpc;
                spec.authority = payload->grpc.authority;
                spec.channels = std::max(1, options.threads);
                return loadgen::runGrpcLoad(spec, std::move(options), time, progress);
              }()
            : loadgen::runHttpLoad(target->host, target->port, payload->http,
                                   std::move(options), time, progress);
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
      absl::StatusOr<Outcome> o = absl::UnknownError("no trial");
      for (int trial = 0; trial < std::max(1, a.max_trials); ++trial) {
        o = runOne(rate, concurrency, false);
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
      if (a.search == "slo" && slo_ms <= 0) return fail("--search slo needs --slo pXX=DURATION");
      // Exponential widening from the start rate, then bisection (LoadGen FindPeakPerformance).
      double lo = 0, hi = 0, rate = a.rate > 0 ? a.rate : 100;
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
    if (!a.json_out.empty() && !writeFile(a.json_out, summary.dump(2) + "\n")) return fail("cannot write " + a.json_out);
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
  if (before) {
    auto start = std::chrono::steady_clock::now() + *warmup;
    auto window_len = std::max(*window, Nanos(std::chrono::milliseconds(100)));
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
  auto outcome = runOne(a.rate, a.concurrency, true);
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
  if (!a.json_out.empty() && !writeFile(a.json_out, run.dump(2) + "\n")) return fail("cannot write " + a.json_out);
  if (!a.csv_out.empty() && !writeFile(a.csv_out, loadgen::perfAnalyzerCsv({run}))) return fail("cannot write " + a.csv_out);
  if (!a.hdr_out.empty() && !writeFile(a.hdr_out, loadgen::hdrIntervalLog(outcome->result, outcome->start_epoch))) return fail("cannot write " + a.hdr_out);
  if (!a.html_out.empty() && !writeFile(a.html_out, report::runReportHtml({run}, "kserve-harness load run"))) return fail("cannot write " + a.html_out);
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
  CLI::App* cmd = app.add_subcommand(
      "load",
      "Load a model server (HTTP/1.1 or gRPC) and measure latency from each request's intended "
      "send time (coordinated-omission correct) and service time.\n"
      "Closed loop with --concurrency, open loop with --rate (constant or --arrival poisson), "
      "--profile or --trace.\nExit status: 0 done, 1 no success or SLO not met, 2 bad "
      "arguments or target unreachable.");
  cmd->add_option("--target", a->target, "HTTP base URL")->default_val(a->target);
  cmd->add_option("--grpc", a->grpc, "host:port of the V2 gRPC endpoint (for --protocol grpc)");
  cmd->add_option("--model", a->model, "Model name")->required();
  cmd->add_option("--protocol", a->protocol, "v1, v2, v2-binary or grpc")->default_val("v2");
  cmd->add_option("--concurrency,-c", a->concurrency, "Closed loop: requests in flight");
  cmd->add_option("--rate,-r", a->rate, "Open loop: requests per second");
  cmd->add_option("--arrival", a->arrival, "constant or poisson (open loop)")->default_val("constant");
  cmd->add_option("--seed", a->seed, "Seed for Poisson arrivals and generated data (recorded)")->default_val(1);
  cmd->add_option("--profile", a->profile, "Stages, e.g. 1000@30s,2000@30s or ramp:0-2000@60s");
  cmd->add_option("--trace", a->trace, "File of send offsets in seconds, one per line");
  cmd->add_option("--duration,-d", a->duration, "Run length (closed loop and --rate)")->default_val("10s");
  cmd->add_option("--warmup", a->warmup, "Not measured at the start")->default_val("1s");
  cmd->add_option("--window", a->window, "Measurement window length")->default_val("1s");
  cmd->add_option("--requests,-n", a->requests, "Stop after this many requests (0 = no limit)");
  cmd->add_option("--threads,-t", a->threads, "Worker threads (each its own event loop)")->default_val(1);
  cmd->add_option("--connections", a->connections, "Open loop: connections (gRPC: calls in flight)")->default_val(64);
  cmd->add_option("--input,-i", a->input,
                  "Request file: V2 request JSON, V2 binary-extension body, ModelInferRequest "
                  "text proto (.pbtxt), or a V1 {\"instances\"} body");
  cmd->add_option("--batch", a->batch, "Batch size of generated requests")->default_val(1);
  cmd->add_option("--expect", a->expect, "Golden response (V2 JSON or V1 predictions) to check every response against");
  cmd->add_option("--atol", a->atol, "Absolute tolerance of --expect")->default_val(1e-5);
  cmd->add_option("--rtol", a->rtol, "Relative tolerance of --expect")->default_val(1e-4);
  cmd->add_option("--timeout", a->timeout, "Per-request timeout")->default_val("10s");
  cmd->add_option("--slo", a->slo, "Latency objective for LoadGen early stopping, e.g. p99=50ms");
  cmd->add_option("--slo-confidence", a->slo_confidence, "Confidence of the SLO verdict")->default_val(0.99);
  cmd->add_option("--stability-windows", a->stability_windows, "Windows the stability rule looks at")->default_val(3);
  cmd->add_option("--stability-tolerance", a->stability_tolerance, "Stability tolerance in percent")->default_val(10);
  cmd->add_option("--label", a->label, "Name of this run in reports and comparisons");
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
  cmd->add_option("--header,-H", a->headers,
                  "Extra request header 'Name: value' (repeatable); a Host header routes through an "
                  "ingress, e.g. -H 'Host: iris-default.example.com'");
  cmd->add_option("--min-requests", a->min_requests,
                  "The run is invalid (exit 1) with fewer measured requests (LoadGen's min_query_count)");
  cmd->add_option("--min-duration", a->min_duration,
                  "The run is invalid (exit 1) when the measured part is shorter (LoadGen's min_duration)");
  cmd->add_flag("--quiet,-q", a->quiet, "No progress lines");
  return [a] { return runLoad(*a); };
}

}  // namespace kh::cli
