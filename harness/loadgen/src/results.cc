#include "kh/loadgen/results.h"

#include <zlib.h>

#include <cmath>
#include <ctime>

#include "kh/common/json.h"
#include "kh/common/strings.h"
#include "fmt/format.h"

namespace kh::loadgen {
namespace {

using nlohmann::json;

json latencyJson(const HdrHistogram& h) {
  auto ms = [](int64_t ns) { return static_cast<double>(ns) / 1e6; };
  return {{"count", h.totalCount()},
          {"min_ms", ms(h.min())},
          {"mean_ms", h.mean() / 1e6},
          {"stddev_ms", h.stddev() / 1e6},
          {"p50_ms", ms(h.valueAtPercentile(50))},
          {"p75_ms", ms(h.valueAtPercentile(75))},
          {"p90_ms", ms(h.valueAtPercentile(90))},
          {"p95_ms", ms(h.valueAtPercentile(95))},
          {"p99_ms", ms(h.valueAtPercentile(99))},
          {"p999_ms", ms(h.valueAtPercentile(99.9))},
          {"p9999_ms", ms(h.valueAtPercentile(99.99))},
          {"max_ms", ms(h.max())}};
}

// Percentile curve for plots: percentiles 1 - 10^(-k/10), HdrHistogram-plotter style.
json percentileCurve(const HdrHistogram& h) {
  json points = json::array();
  if (h.totalCount() == 0) return points;
  for (int k = 0; k <= 60; ++k) {
    double p = 100.0 * (1.0 - std::pow(10.0, -k / 10.0));
    // Past the last sample's own percentile there is only the maximum: end the curve there.
    double last = 100.0 - 100.0 / static_cast<double>(h.totalCount());
    if (p > last && k > 0) {
      points.push_back({last, static_cast<double>(h.max()) / 1e6});
      break;
    }
    points.push_back({p, static_cast<double>(h.valueAtPercentile(p)) / 1e6});
  }
  return points;
}

// ---- HdrHistogram V2 encoding (ZigZag LEB128 counts with zero runs, then zlib) ----

void putBigEndian(std::string& out, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void putZigZag(std::string& out, int64_t value) {
  uint64_t v = (static_cast<uint64_t>(value) << 1) ^ static_cast<uint64_t>(value >> 63);
  do {
    uint8_t byte = v & 0x7f;
    v >>= 7;
    if (v) byte |= 0x80;
    out.push_back(static_cast<char>(byte));
  } while (v);
}

std::string base64(const std::string& in) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t n = static_cast<uint8_t>(in[i]) << 16;
    if (i + 1 < in.size()) n |= static_cast<uint8_t>(in[i + 1]) << 8;
    if (i + 2 < in.size()) n |= static_cast<uint8_t>(in[i + 2]);
    out += k[(n >> 18) & 63];
    out += k[(n >> 12) & 63];
    out += i + 1 < in.size() ? k[(n >> 6) & 63] : '=';
    out += i + 2 < in.size() ? k[n & 63] : '=';
  }
  return out;
}

// Encodes counts by value: the V2 layout indexes counts by HdrHistogram's own bucket index, so
// we re-record each bucket's value into a histogram of the log's settings and walk its counts.
std::string encodeHistogram(const HdrHistogram& h) {
  // The log uses lowest 1, highest 3,600,000,000,000, 3 digits: the same as our defaults, whose
  // counts-array index we reproduce by recording bucket values in order.
  HdrHistogram shaped;
  for (const auto& [value, count] : h.buckets()) shaped.record(value, count);
  // Walk values in ascending order; emit counts with zero runs as negative lengths.
  std::string payload;
  const int sub_bucket_half_count_magnitude = 10;  // 2048 sub-buckets for 3 digits
  const int64_t sub_bucket_half_count = 1024;
  int64_t zero_run = 0;
  auto buckets = shaped.buckets();
  size_t next = 0;
  // Index -> value as in HdrHistogram (unit magnitude 0).
  auto valueAt = [&](int64_t index) {
    int64_t bucket = (index >> sub_bucket_half_count_magnitude) - 1;
    int64_t sub = (index & (sub_bucket_half_count - 1)) + sub_bucket_half_count;
    if (bucket < 0) {
      sub -= sub_bucket_half_count;
      bucket = 0;
    }
    return sub << bucket;
  };
  int64_t max_index = 0;
  if (!buckets.empty()) {
    // Find the counts index of the largest recorded value.
    int64_t v = buckets.back().first;
    int pow2 = 64 - std::countl_zero(static_cast<uint64_t>(v | 2047));
    int64_t bucket = pow2 - (sub_bucket_half_count_magnitude + 1);
    int64_t sub = v >> bucket;
    max_index = ((bucket + 1) << sub_bucket_half_count_magnitude) + (sub - sub_bucket_half_count);
  }
  for (int64_t i = 0; i <= max_index && !buckets.empty(); ++i) {
    int64_t lo = valueAt(i);
    int64_t count = 0;
    if (next < buckets.size() && shaped.lowestEquivalent(buckets[next].first) == lo) {
      count = buckets[next].second;
      ++next;
    }
    if (count == 0) {
      ++zero_run;
      continue;
    }
    if (zero_run > 0) {
      putZigZag(payload, zero_run == 1 ? 0 : -zero_run);
      zero_run = 0;
    }
    putZigZag(payload, count);
  }
  std::string header;
  putBigEndian(header, 0x1c849313, 4);  // V2 encoding cookie (| 0x10: zero-run encoding)
  putBigEndian(header, payload.size(), 4);
  putBigEndian(header, 0, 4);  // normalizing index offset
  putBigEndian(header, 3, 4);  // significant digits
  putBigEndian(header, 1, 8);  // lowest discernible value
  putBigEndian(header, 3'600'000'000'000, 8);
  double ratio = 1.0;
  uint64_t ratio_bits;
  std::memcpy(&ratio_bits, &ratio, 8);
  putBigEndian(header, ratio_bits, 8);
  std::string raw = header + payload;
  uLongf compressed_len = compressBound(raw.size());
  std::string compressed(compressed_len, '\0');
  compress2(reinterpret_cast<Bytef*>(compressed.data()), &compressed_len,
            reinterpret_cast<const Bytef*>(raw.data()), raw.size(), Z_DEFAULT_COMPRESSION);
  compressed.resize(compressed_len);
  std::string out;
  putBigEndian(out, 0x1c849314, 4);  // compressed V2 cookie, as HdrHistogram writes it
  putBigEndian(out, compressed.size(), 4);
  return base64(out + compressed);
}

}  // namespace

json runToJson(const RunResult& r, const RunConfig& c) {
  json errors = json::object();
  int64_t error_total = 0;
  for (const auto& [k, v] : r.errors) {
    errors[k] = v;
    error_total += v;
  }
  json codes = json::object();
  for (const auto& [k, v] : r.status_codes) codes[std::to_string(k)] = v;
  json windows = json::array();
  std::vector<WindowFigures> figures;
  for (const auto& w : r.windows) {
    windows.push_back({{"start_s", w.start_s},
                       {"completed", w.completed},
                       {"errors", w.errors},
                       {"throughput", w.throughput},
                       {"p50_ms", static_cast<double>(w.p50_ns) / 1e6},
                       {"p90_ms", static_cast<double>(w.p90_ns) / 1e6},
                       {"p99_ms", static_cast<double>(w.p99_ns) / 1e6},
                       {"max_ms", static_cast<double>(w.max_ns) / 1e6},
                       {"mean_ms", w.mean_ns / 1e6}});
    figures.push_back({w.throughput, w.mean_ns});
  }
  // Stability: only full windows count (the last one may be partial).
  std::vector<WindowFigures> full = figures;
  if (!full.empty() && r.elapsed_s < static_cast<double>(full.size()) * c.window_s - 1e-9) {
    full.pop_back();
  }
  bool stable = isStable(full, c.stability_windows, c.stability_tolerance);
  json out = {
      {"schema", "kserve-harness/load-run/v1"},
      {"label", c.label.empty() ? common::strCat(c.protocol, " ", c.mode) : c.label},
      {"config",
       {{"target", c.target},
        {"model", c.model},
        {"protocol", c.protocol},
        {"payload", c.payload},
        {"mode", c.mode},
        {"schedule", r.schedule},
        {"concurrency", c.concurrency},
        {"rate", c.rate},
        {"seed", c.seed},
        {"threads", c.threads},
        {"connections", c.connections},
        {"duration_s", c.duration_s},
        {"warmup_s", c.warmup_s},
        {"window_s", c.window_s}}},
      {"summary",
       {{"elapsed_s", r.elapsed_s},
        {"completed", r.completed},
        {"succeeded", r.succeeded},
        {"errors", error_total},
        {"error_rate", r.completed ? static_cast<double>(error_total) / static_cast<double>(r.completed) : 0.0},
        {"throughput", r.throughput},
        {"warmup_requests", r.warmup_requests},
        {"delayed", r.delayed},
        {"delayed_percent", r.completed ? 100.0 * static_cast<double>(r.delayed) / static_cast<double>(r.completed) : 0.0},
        {"generator_cpu_percent", r.generator_cpu_percent},
        {"first_error", r.first_error}}},
      {"latency", latencyJson(r.corrected)},
      {"service_time", latencyJson(r.service)},
      {"schedule_slip", latencyJson(r.slip)},
      {"errors_by_kind", errors},
      {"status_codes", codes},
      {"percentile_curve", percentileCurve(r.corrected)},
      {"service_percentile_curve", percentileCurve(r.service)},
      {"windows", windows},
      {"stability",
       {{"stable", stable},
        {"windows", c.stability_windows},
        {"tolerance", c.stability_tolerance},
        {"rule", "last N full windows: throughput and mean latency max/min <= 1 + tolerance"}}}};
  if (r.http_phases) {
    out["http_phases"] = {{"connect", latencyJson(r.http_phases->connect)},
                          {"send", latencyJson(r.http_phases->send)},
                          {"wait", latencyJson(r.http_phases->wait)},
                          {"receive", latencyJson(r.http_phases->receive)}};
  }
  if (c.slo_percentile > 0) {
    double target_ns = c.slo_ms * 1e6;
    int64_t over = r.completed - r.corrected.countAtOrBelow(static_cast<int64_t>(target_ns));
    auto verdict = earlyStopping(r.completed, over, c.slo_percentile / 100.0, c.slo_confidence,
                                 c.slo_ms);
    out["slo"] = {{"percentile", c.slo_percentile},
                  {"target_ms", c.slo_ms},
                  {"confidence", c.slo_confidence},
                  {"queries", r.completed},
                  {"over_target", over},
                  {"min_queries", verdict.min_queries},
                  {"passed", verdict.passed},
                  {"verdict", verdict.describe()}};
  }
  return out;
}

std::string textSummary(const json& run) {
  const auto& s = run["summary"];
  const auto& l = run["latency"];
  const auto& v = run["service_time"];
  std::string out = fmt::format(
      "{} against {} (model {}, {}):\n"
      "  requests   {} completed in {:.2f}s = {:.1f}/s, {} errors ({:.2f}%)\n"
      "  latency    p50 {:.3f} ms  p90 {:.3f}  p99 {:.3f}  p99.9 {:.3f}  max {:.3f}  (from intended send time)\n"
      "  service    p50 {:.3f} ms  p90 {:.3f}  p99 {:.3f}  max {:.3f}  (from actual send)\n",
      run["config"]["schedule"].get<std::string>(), run["config"]["target"].get<std::string>(),
      run["config"]["model"].get<std::string>(), run["config"]["protocol"].get<std::string>(),
      s["completed"].get<int64_t>(), s["elapsed_s"].get<double>(), s["throughput"].get<double>(),
      s["errors"].get<int64_t>(), 100 * s["error_rate"].get<double>(), l["p50_ms"].get<double>(),
      l["p90_ms"].get<double>(), l["p99_ms"].get<double>(), l["p999_ms"].get<double>(),
      l["max_ms"].get<double>(), v["p50_ms"].get<double>(), v["p90_ms"].get<double>(),
      v["p99_ms"].get<double>(), v["max_ms"].get<double>());
  if (run.contains("http_phases")) {
    const auto& p = run["http_phases"];
    auto phase = [&](const char* name) {
      return fmt::format("{} {:.3f}/{:.3f}", name, p[name]["p50_ms"].get<double>(), p[name]["p99_ms"].get<double>());
    };
    out += "  phases     " + phase("send") + "  " + phase("wait") + "  " + phase("receive");
    const int64_t connects = p["connect"]["count"].get<int64_t>();
    if (connects > 0) out += "  " + phase("connect") + " (" + std::to_string(connects) + " new connections)";
    out += "  (p50/p99 ms)\n";
  }
  if (run["config"]["mode"] != "closed") {
    out += fmt::format("  schedule   {} delayed > 1 ms ({:.2f}%), slip p99 {:.3f} ms\n",
                       s["delayed"].get<int64_t>(), s["delayed_percent"].get<double>(),
                       run["schedule_slip"]["p99_ms"].get<double>());
  }
  out += fmt::format("  generator  {:.0f}% CPU; stability: {}\n",
                     s["generator_cpu_percent"].get<double>(),
                     run["stability"]["stable"].get<bool>() ? "stable" : "not stable");
  if (run.contains("slo")) out += "  SLO        " + run["slo"]["verdict"].get<std::string>() + "\n";
  if (s["errors"].get<int64_t>() > 0) {
    out += "  errors     " + common::jsonText(run["errors_by_kind"]) + "; first: " +
           s["first_error"].get<std::string>() + "\n";
  }
  return out;
}

std::string perfAnalyzerCsv(const std::vector<json>& runs) {
  bool rate = !runs.empty() && runs[0]["config"]["mode"] != "closed";
  std::string out = rate ? "Request Rate" : "Concurrency";
  out +=
      ",Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,Server Compute "
      "Input,Server Compute Infer,Server Compute Output,Client Recv,p50 latency,p90 latency,p95 "
      "latency,p99 latency,Avg latency,request/response,response wait\n";
  std::vector<json> sorted = runs;
  std::sort(sorted.begin(), sorted.end(), [](const json& a, const json& b) {
    return a["summary"]["throughput"].get<double>() < b["summary"]["throughput"].get<double>();
  });
  for (const auto& r : sorted) {
    auto us = [&](const char* key) {
      return static_cast<int64_t>(std::llround(r["latency"][key].get<double>() * 1000));
    };
    double load = rate ? r["config"]["rate"].get<double>() : r["config"]["concurrency"].get<double>();
    int64_t service_mean = static_cast<int64_t>(std::llround(r["service_time"]["mean_ms"].get<double>() * 1000));
    // Without server statistics the whole service time is network + server.
    out += fmt::format("{},{:.2f},0,{},0,0,0,0,0,{},{},{},{},{},{},{}\n", load,
                       r["summary"]["throughput"].get<double>(), service_mean, us("p50_ms"),
                       us("p90_ms"), us("p95_ms"), us("p99_ms"), us("mean_ms"), service_mean,
                       service_mean);
  }
  return out;
}

std::string requestsJsonl(const RunResult& result) {
  const double start =
      std::chrono::duration<double>(result.started.time_since_epoch()).count();
  auto micros = [](double t) { return std::round(t * 1e6) / 1e6; };
  std::string out;
  out.reserve(result.records.size() * 160);
  for (const RequestRecord& r : result.records) {
    const double intended = start + r.intended_s;
    const double done = intended + static_cast<double>(r.latency_ns) / 1e9;
    const double sent = done - static_cast<double>(r.service_ns) / 1e9;
    nlohmann::json line = {{"intended", micros(intended)},
                           {"sent", micros(sent)},
                           {"done", micros(done)},
                           {"latency_ms", static_cast<double>(r.latency_ns) / 1e6},
                           {"service_ms", static_cast<double>(r.service_ns) / 1e6},
                           {"status", r.status},
                           {"error", errorKindName(r.error)},
                           {"header", r.header}};
    if (r.first_byte_ns >= 0) line["first_byte"] = micros(intended + static_cast<double>(r.first_byte_ns) / 1e9);
    out += common::jsonText(line);
    out += '\n';
  }
  return out;
}

std::string hdrIntervalLog(const RunResult& result, double start_epoch_s) {
  std::string out = "#[Histogram log format version 1.3]\n";
  std::time_t t = static_cast<std::time_t>(start_epoch_s);
  char date[64];
  std::strftime(date, sizeof date, "%a %b %d %H:%M:%S UTC %Y", std::gmtime(&t));
  out += fmt::format("#[StartTime: {:.3f} (seconds since epoch), {}]\n", start_epoch_s, date);
  out += "#[BaseTime: 0.000 (seconds since epoch)]\n";
  out += "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n";
  double window = result.windows.size() > 1 ? result.windows[1].start_s - result.windows[0].start_s : 1.0;
  for (size_t i = 0; i < result.window_histograms.size(); ++i) {
    const auto& h = result.window_histograms[i];
    // Values in the log are in milliseconds of the interval max; counts stay in nanoseconds.
    out += fmt::format("{:.3f},{:.3f},{:.3f},{}\n", result.windows[i].start_s, window,
                       static_cast<double>(h.max()) / 1e6, encodeHistogram(h));
  }
  return out;
}

}  // namespace kh::loadgen
