// `harness load`: drives a model server with one schedule and reports CO-correct latency.

#include <unistd.h>

#include <cmath>
#include <fstream>
#include <iostream>
#include <memory>

#include "commands.h"
#include "kh/common/net.h"
#include "kh/common/strings.h"
#include "kh/common/time_source.h"
#include "kh/loadgen/payload.h"
#include "kh/loadgen/results.h"
#include "kh/loadgen/schedule.h"
#include "kh/report/html.h"

namespace kh::cli {
namespace {

using loadgen::Nanos;

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
  bool quiet = false;
};

absl::StatusOr<Nanos> parseDuration(const std::string& text) {
  double scale = 1e9;
  std::string number = text;
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
  }
  char* end = nullptr;
  double value = std::strtod(number.c_str(), &end);
  if (number.empty() || *end != '\0' || value < 0) {
    return absl::InvalidArgumentError(common::strCat("bad duration '", text, "' (e.g. 500ms, 10s, 2m)"));
  }
  return Nanos(static_cast<int64_t>(value * scale));
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
  absl::StatusOr<loadgen::Payload> payload = absl::UnknownError("");
  if (!a.input.empty()) {
    payload = loadgen::payloadFromFile(a.input, *protocol, a.model);
  } else {
    auto meta = loadgen::fetchMetadata(target->host, target->port,
                                       *protocol == loadgen::WireProtocol::kGrpc ? a.grpc : "",
                                       a.model);
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

  // How to send it.
  loadgen::LoadOptions options;
  loadgen::RunConfig config;
  config.mode = "closed";
  if (!a.profile.empty()) {
    auto stages = loadgen::parseProfile(a.profile);
    if (!stages.ok()) return fail(std::string(common::toStd(stages.status().message())));
    Nanos total{0};
    for (const auto& s : *stages) total += s.duration;
    options.schedule = loadgen::makeProfileSchedule(
        *stages, a.arrival == "poisson" ? std::optional<uint64_t>(a.seed) : std::nullopt);
    options.duration = total;
    config.mode = "profile";
  } else if (!a.trace.empty()) {
    auto trace = loadgen::makeTraceSchedule(a.trace);
    if (!trace.ok()) return fail(std::string(common::toStd(trace.status().message())));
    options.schedule = std::move(*trace);
    options.duration = *duration;
    config.mode = "trace";
  } else if (a.rate > 0) {
    options.schedule = a.arrival == "poisson"
                           ? loadgen::makePoissonSchedule(a.rate, *duration, a.seed)
                           : loadgen::makeConstantSchedule(a.rate, *duration);
    options.duration = *duration;
    config.mode = a.arrival == "poisson" ? "poisson" : "constant";
  } else {
    options.concurrency = std::max(1, a.concurrency);
    options.duration = *duration;
  }
  if (a.arrival != "constant" && a.arrival != "poisson") {
    return fail("--arrival must be constant or poisson");
  }
  options.threads = std::max(1, a.threads);
  options.connections = std::max(1, a.connections);
  options.max_requests = a.requests;
  options.warmup = *warmup;
  options.window = std::max(*window, Nanos(std::chrono::milliseconds(100)));
  options.request_timeout = *timeout;
  if (!a.expect.empty()) {
    auto check = loadgen::makeGoldenCheck(a.expect, *protocol, a.atol, a.rtol);
    if (!check.ok()) return fail(std::string(common::toStd(check.status().message())));
    options.check = std::move(*check);
  }

  config.target = *protocol == loadgen::WireProtocol::kGrpc ? "grpc://" + a.grpc : a.target;
  config.model = a.model;
  config.protocol = loadgen::wireProtocolName(*protocol);
  config.payload = payload->source;
  config.concurrency = options.concurrency;
  config.rate = a.rate;
  config.seed = a.seed;
  config.threads = options.threads;
  config.connections = options.schedule ? options.connections : options.concurrency;
  config.duration_s = static_cast<double>(options.duration.count()) / 1e9;
  config.warmup_s = static_cast<double>(options.warmup.count()) / 1e9;
  config.window_s = static_cast<double>(options.window.count()) / 1e9;
  config.label = a.label;
  config.stability_windows = a.stability_windows;
  config.stability_tolerance = a.stability_tolerance / 100.0;
  if (!a.slo.empty()) {
    // "p99=50ms"
    auto eq = a.slo.find('=');
    if (a.slo[0] != 'p' || eq == std::string::npos) return fail("--slo wants pXX=DURATION, e.g. p99=50ms");
    config.slo_percentile = std::strtod(a.slo.substr(1, eq - 1).c_str(), nullptr);
    auto slo_d = parseDuration(a.slo.substr(eq + 1));
    if (!slo_d.ok() || config.slo_percentile <= 0 || config.slo_percentile >= 100) {
      return fail("--slo wants pXX=DURATION with 0 < XX < 100, e.g. p99=50ms");
    }
    config.slo_ms = static_cast<double>(slo_d->count()) / 1e6;
    config.slo_confidence = a.slo_confidence;
  }

  bool tty = isatty(STDERR_FILENO) != 0;
  if (!a.quiet) {
    std::cerr << "load: " << (options.schedule ? options.schedule->describe()
                                               : common::strCat("closed loop, concurrency ",
                                                                options.concurrency,
                                                                " for ", config.duration_s, "s"))
              << " -> " << config.target << " model " << a.model << " (" << config.protocol
              << ", " << payload->source << ")\n";
  }
  int64_t last_completed = 0;
  double last_t = 0;
  auto progress = [&](double t, int64_t completed, int64_t errors) {
    if (a.quiet) return;
    double rate = (completed - last_completed) / std::max(1e-9, t - last_t);
    last_completed = completed;
    last_t = t;
    std::string line = common::strCat("  t=", static_cast<int>(t), "s  ", completed,
                                      " done  ", static_cast<int64_t>(rate), "/s  ", errors,
                                      " errors");
    if (tty) {
      std::cerr << "\r\033[K" << line << std::flush;
    } else {
      std::cerr << line << "\n";
    }
  };
  common::RealTimeSource time;
  double start_epoch = std::chrono::duration<double>(time.systemTime().time_since_epoch()).count();
  absl::StatusOr<loadgen::RunResult> result =
      *protocol == loadgen::WireProtocol::kGrpc
          ? [&] {
              loadgen::GrpcRequestSpec spec = payload->grpc;
              spec.target = a.grpc;
              spec.channels = std::max(1, options.threads);
              return loadgen::runGrpcLoad(spec, std::move(options), time, progress);
            }()
          : loadgen::runHttpLoad(target->host, target->port, payload->http, std::move(options),
                                 time, progress);
  if (tty && !a.quiet) std::cerr << "\r\033[K";
  if (!result.ok()) {
    return fail(std::string(common::toStd(result.status().message())),
                result.status().code() == absl::StatusCode::kUnavailable ? 2 : 1);
  }
  nlohmann::json run = loadgen::runToJson(*result, config);
  std::cout << loadgen::textSummary(run);
  if (!a.json_out.empty() && !writeFile(a.json_out, run.dump(2) + "\n")) return fail("cannot write " + a.json_out);
  if (!a.csv_out.empty() && !writeFile(a.csv_out, loadgen::perfAnalyzerCsv({run}))) return fail("cannot write " + a.csv_out);
  if (!a.hdr_out.empty() && !writeFile(a.hdr_out, loadgen::hdrIntervalLog(*result, start_epoch))) return fail("cannot write " + a.hdr_out);
  if (!a.html_out.empty() && !writeFile(a.html_out, report::runReportHtml({run}, "kserve-harness load run"))) return fail("cannot write " + a.html_out);
  // Exit 1 when nothing succeeded or the SLO verdict failed.
  if (result->succeeded == 0) return 1;
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
  cmd->add_option("--input,-i", a->input, "Request file: a V2 request JSON or a V1 {\"instances\"} body");
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
  cmd->add_flag("--quiet,-q", a->quiet, "No progress lines");
  return [a] { return runLoad(*a); };
}

}  // namespace kh::cli
