#include "kh/report/html.h"

#include <algorithm>
#include <cmath>

#include "fmt/format.h"
#include "kh/common/json.h"
#include "kh/common/strings.h"

namespace kh::report {
namespace {

using nlohmann::json;

constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                   "#9467bd", "#8c564b", "#e377c2", "#17becf"};

double nines(double percentile) {
  double p = std::min(percentile, 99.9999) / 100.0;
  return std::log10(1.0 / (1.0 - p));
}

// Rounded tick step for a range.
double niceStep(double range, int ticks) {
  double raw = range / std::max(1, ticks);
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double norm = raw / mag;
  double nice = norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10;
  return nice * mag;
}

std::string formatTick(double v) {
  if (v == 0) return "0";
  if (std::fabs(v) >= 1000) return fmt::format("{:.0f}", v);
  if (std::fabs(v) >= 10) return fmt::format("{:.0f}", v);
  if (std::fabs(v) >= 1) return fmt::format("{:.1f}", v);
  return fmt::format("{:.3g}", v);
}

const char* kStyle = R"(<style>
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0;font-size:13px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}
td.l,th.l{text-align:left}.bad{color:#b00;font-weight:bold}.good{color:#080}
svg{background:#fff;border:1px solid #ddd;margin:6px 0}
.note{color:#666;font-size:12px}
</style>)";

std::string num(double v, int digits = 3) { return fmt::format("{:.{}f}", v, digits); }

}  // namespace

std::string escapeHtml(std::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string svgLinePlot(const std::vector<Series>& series, const PlotOptions& o) {
  const double W = 760, H = 320, left = 70, right = 170, top = 34, bottom = 48;
  double pw = W - left - right, ph = H - top - bottom;
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  auto xOf = [&](double x) { return o.percentile_x ? nines(x) : x; };
  for (const auto& s : series) {
    for (const auto& [x, y] : s.points) {
      xmin = std::min(xmin, xOf(x));
      xmax = std::max(xmax, xOf(x));
      ymin = std::min(ymin, y);
      ymax = std::max(ymax, y);
    }
  }
  std::string svg = fmt::format(
      R"(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" role="img" aria-label="{}">)",
      W, H, W, H, escapeHtml(o.title));
  svg += fmt::format(R"(<text x="{}" y="20" font-size="14" font-weight="bold">{}</text>)", left,
                     escapeHtml(o.title));
  if (!std::isfinite(xmin)) {
    svg += fmt::format(R"(<text x="{}" y="{}" font-size="13" fill="#888">no data</text></svg>)",
                       left + 10, top + ph / 2);
    return svg;
  }
  if (o.y_from_zero) ymin = std::min(0.0, ymin);
  if (ymax <= ymin) ymax = ymin + 1;
  if (xmax <= xmin) xmax = xmin + 1;
  ymax += (ymax - ymin) * 0.05;
  auto px = [&](double x) { return left + (xOf(x) - xmin) / (xmax - xmin) * pw; };
  auto pxRaw = [&](double xv) { return left + (xv - xmin) / (xmax - xmin) * pw; };
  auto py = [&](double y) { return top + ph - (y - ymin) / (ymax - ymin) * ph; };
  // Axes and grid.
  svg += fmt::format(R"(<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#999"/>)",
                     left, top, pw, ph);
  double ystep = niceStep(ymax - ymin, 5);
  for (double y = std::ceil(ymin / ystep) * ystep; y <= ymax + 1e-12; y += ystep) {
    svg += fmt::format(R"(<line x1="{}" x2="{}" y1="{:.1f}" y2="{:.1f}" stroke="#eee"/>)", left,
                       left + pw, py(y), py(y));
    svg += fmt::format(R"(<text x="{}" y="{:.1f}" font-size="11" text-anchor="end">{}</text>)",
                       left - 6, py(y) + 4, formatTick(y));
  }
  if (o.percentile_x) {
    const std::pair<double, const char*> ticks[] = {{0, "0%"},      {1, "90%"},    {2, "99%"},
                                                    {3, "99.9%"},   {4, "99.99%"}, {5, "99.999%"},
                                                    {6, "99.9999%"}};
    for (const auto& [n, label] : ticks) {
      if (n < xmin - 1e-9 || n > xmax + 1e-9) continue;
      svg += fmt::format(R"(<line x1="{:.1f}" x2="{:.1f}" y1="{}" y2="{}" stroke="#eee"/>)",
                         pxRaw(n), pxRaw(n), top, top + ph);
      svg += fmt::format(R"(<text x="{:.1f}" y="{}" font-size="11" text-anchor="middle">{}</text>)",
                         pxRaw(n), top + ph + 16, label);
    }
  } else {
    double xstep = niceStep(xmax - xmin, 6);
    for (double x = std::ceil(xmin / xstep) * xstep; x <= xmax + 1e-12; x += xstep) {
      svg += fmt::format(R"(<line x1="{:.1f}" x2="{:.1f}" y1="{}" y2="{}" stroke="#eee"/>)",
                         pxRaw(x), pxRaw(x), top, top + ph);
      svg += fmt::format(R"(<text x="{:.1f}" y="{}" font-size="11" text-anchor="middle">{}</text>)",
                         pxRaw(x), top + ph + 16, formatTick(x));
    }
  }
  svg += fmt::format(R"(<text x="{}" y="{}" font-size="12" text-anchor="middle">{}</text>)",
                     left + pw / 2, H - 10, escapeHtml(o.x_label));
  svg += fmt::format(
      R"~(<text x="16" y="{}" font-size="12" text-anchor="middle" transform="rotate(-90 16 {})">{}</text>)~",
      top + ph / 2, top + ph / 2, escapeHtml(o.y_label));
  for (const auto& [x, label] : o.markers) {
    if (xOf(x) < xmin || xOf(x) > xmax) continue;
    svg += fmt::format(
        R"~(<line x1="{0:.1f}" x2="{0:.1f}" y1="{1}" y2="{2}" stroke="#aaa" stroke-dasharray="3,3"/><text x="{0:.1f}" y="{3}" font-size="10" fill="#666" transform="rotate(-90 {0:.1f} {3})">{4}</text>)~",
        px(x), top, top + ph, top + 60, escapeHtml(label));
  }
  // Lines and legend.
  for (size_t i = 0; i < series.size(); ++i) {
    const auto& s = series[i];
    const char* color = kColors[static_cast<size_t>(s.color >= 0 ? s.color : static_cast<int>(i)) %
                                std::size(kColors)];
    std::string points;
    for (const auto& [x, y] : s.points) points += fmt::format("{:.1f},{:.1f} ", px(x), py(y));
    svg += fmt::format(R"(<polyline class="series" fill="none" stroke="{}" stroke-width="2"{} points="{}"/>)",
                       color, s.dashed ? R"( stroke-dasharray="6,4")" : "", points);
    // Few points: mark them, so a single window still shows.
    if (s.points.size() <= 40) {
      for (const auto& [x, y] : s.points) {
        svg += fmt::format(R"(<circle cx="{:.1f}" cy="{:.1f}" r="2.5" fill="{}"/>)", px(x), py(y), color);
      }
    }
    double ly = top + 14 + 18 * static_cast<double>(i);
    svg += fmt::format(R"(<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="{}" stroke-width="2"{}/>)",
                       left + pw + 12, left + pw + 34, ly - 4, ly - 4, color,
                       s.dashed ? R"( stroke-dasharray="6,4")" : "");
    svg += fmt::format(R"(<text x="{}" y="{}" font-size="11">{}</text>)", left + pw + 40, ly,
                       escapeHtml(s.name.substr(0, 22)));
  }
  svg += "</svg>";
  return svg;
}

std::string runReportHtml(const std::vector<json>& runs, const std::string& title) {
  std::string html = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>" +
                     escapeHtml(title) + "</title>" + kStyle + "</head><body>";
  html += "<h1>" + escapeHtml(title) + "</h1>";
  html += "<h2>Summary</h2><table><tr><th class=l>run</th><th class=l>schedule</th><th>req/s</th>"
          "<th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th>"
          "<th>service p50 ms</th><th>errors</th><th>delayed</th><th>stable</th><th class=l>SLO</th></tr>";
  for (const auto& r : runs) {
    const auto& l = r["latency"];
    const auto& s = r["summary"];
    html += fmt::format(
        "<tr><td class=l>{}</td><td class=l>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
        "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=l>{}</td></tr>",
        escapeHtml(r["label"].get<std::string>()), escapeHtml(r["config"]["schedule"].get<std::string>()),
        num(s["throughput"].get<double>(), 1), num(l["p50_ms"].get<double>()),
        num(l["p90_ms"].get<double>()), num(l["p99_ms"].get<double>()),
        num(l["p999_ms"].get<double>()), num(l["max_ms"].get<double>()),
        num(r["service_time"]["p50_ms"].get<double>()), s["errors"].get<int64_t>(),
        s["delayed"].get<int64_t>(), r["stability"]["stable"].get<bool>() ? "yes" : "no",
        r.contains("slo") ? escapeHtml(r["slo"]["verdict"].get<std::string>()) : "");
  }
  html += "</table><p class=note>Latency is measured from each request's intended send time "
          "(coordinated-omission correct); service time from the actual send.</p>";

  // HTTP runs: where the service time went.
  bool any_phases = false;
  for (const auto& r : runs) any_phases = any_phases || r.contains("http_phases");
  if (any_phases) {
    html += "<h2>HTTP phases</h2><table><tr><th class=l>run</th><th class=l>phase</th><th>count</th>"
            "<th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>max ms</th></tr>";
    for (const auto& r : runs) {
      if (!r.contains("http_phases")) continue;
      for (const char* phase : {"connect", "send", "wait", "receive"}) {
        const auto& p = r["http_phases"][phase];
        html += fmt::format(
            "<tr><td class=l>{}</td><td class=l>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escapeHtml(r["label"].get<std::string>()), phase, p["count"].get<int64_t>(),
            num(p["p50_ms"].get<double>()), num(p["p90_ms"].get<double>()), num(p["p99_ms"].get<double>()),
            num(p["max_ms"].get<double>()));
      }
    }
    html += "</table><p class=note>connect: the TCP handshake, charged to the first request on each new "
            "connection; send: until the request is written; wait: from written to the response's first "
            "byte; receive: from the first byte to the last.</p>";
  }

  std::vector<Series> curves, service, throughput, p99, p50;
  int color = 0;
  for (const auto& r : runs) {
    std::string name = r["label"].get<std::string>();
    Series c{name, {}, false, color}, sv{name + " (service)", {}, true, color};
    for (const auto& pt : r["percentile_curve"]) c.points.emplace_back(pt[0].get<double>(), pt[1].get<double>());
    for (const auto& pt : r["service_percentile_curve"]) sv.points.emplace_back(pt[0].get<double>(), pt[1].get<double>());
    curves.push_back(c);
    if (runs.size() == 1) curves.push_back(sv);
    Series t{name, {}, false, color}, q99{name + " p99", {}, false, color},
        q50{name + " p50", {}, true, color};
    for (const auto& w : r["windows"]) {
      double x = w["start_s"].get<double>();
      t.points.emplace_back(x, w["throughput"].get<double>());
      q99.points.emplace_back(x, w["p99_ms"].get<double>());
      q50.points.emplace_back(x, w["p50_ms"].get<double>());
    }
    throughput.push_back(t);
    p99.push_back(q99);
    p99.push_back(q50);
    ++color;
  }
  html += "<h2>Latency by percentile</h2>";
  html += svgLinePlot(curves, {"Latency percentile distribution", "percentile", "latency (ms)", true, true, {}});
  html += "<h2>Over time</h2>";
  html += svgLinePlot(throughput, {"Throughput per window", "time (s)", "requests/s", false, true, {}});
  html += svgLinePlot(p99, {"Latency per window (p99 solid, p50 dashed)", "time (s)", "latency (ms)", false, true, {}});
  for (const auto& r : runs) {
    html += "<h2>Windows: " + escapeHtml(r["label"].get<std::string>()) + "</h2>";
    html += "<table><tr><th>start s</th><th>completed</th><th>errors</th><th>req/s</th><th>p50 ms</th>"
            "<th>p90 ms</th><th>p99 ms</th><th>max ms</th></tr>";
    for (const auto& w : r["windows"]) {
      html += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                          num(w["start_s"].get<double>(), 1), w["completed"].get<int64_t>(),
                          w["errors"].get<int64_t>(), num(w["throughput"].get<double>(), 1),
                          num(w["p50_ms"].get<double>()), num(w["p90_ms"].get<double>()),
                          num(w["p99_ms"].get<double>()), num(w["max_ms"].get<double>()));
    }
    html += "</table>";
    html += "<p class=note>" + escapeHtml(common::jsonText(r["config"])) + "</p>";
  }
  html += "</body></html>\n";
  return html;
}

absl::StatusOr<std::vector<Threshold>> parseThresholds(const std::string& text) {
  std::vector<Threshold> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t comma = text.find(',', pos);
    std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    pos = comma == std::string::npos ? text.size() : comma + 1;
    if (item.empty()) continue;
    auto eq = item.find('=');
    if (eq == std::string::npos || item.back() != '%') {
      return absl::InvalidArgumentError(
          common::strCat("threshold '", item, "': expected METRIC=+N% or METRIC=-N%"));
    }
    Threshold t;
    t.metric = item.substr(0, eq);
    static const char* kMetrics[] = {"throughput", "p50", "p90", "p99", "p999", "max", "error_rate", "mean"};
    if (std::find(std::begin(kMetrics), std::end(kMetrics), t.metric) == std::end(kMetrics)) {
      return absl::InvalidArgumentError(common::strCat(
          "threshold '", item, "': metric must be throughput, p50, p90, p99, p999, max, mean or error_rate"));
    }
    std::string number = item.substr(eq + 1, item.size() - eq - 2);
    t.drop = !number.empty() && number[0] == '-';
    char* end = nullptr;
    t.percent = std::strtod(number.c_str(), &end);
    if (number.empty() || *end != '\0') {
      return absl::InvalidArgumentError(common::strCat("threshold '", item, "': bad percentage"));
    }
    out.push_back(t);
  }
  return out;
}

namespace {
double metricOf(const json& run, const std::string& metric) {
  if (metric == "throughput") return run["summary"]["throughput"].get<double>();
  if (metric == "error_rate") return run["summary"]["error_rate"].get<double>();
  if (metric == "mean") return run["latency"]["mean_ms"].get<double>();
  return run["latency"][metric + "_ms"].get<double>();
}
}  // namespace

json compareRuns(const std::vector<json>& runs, const std::vector<Threshold>& thresholds) {
  const char* kShown[] = {"throughput", "p50", "p90", "p99", "p999", "max", "error_rate"};
  json rows = json::array(), regressions = json::array();
  const json& base = runs.front();
  for (size_t i = 0; i < runs.size(); ++i) {
    json metrics = json::object(), changes = json::object();
    for (const char* m : kShown) {
      double v = metricOf(runs[i], m), b = metricOf(base, m);
      metrics[m] = v;
      changes[m] = b != 0 ? 100.0 * (v - b) / b : (v == 0 ? 0.0 : INFINITY);
    }
    rows.push_back({{"label", runs[i]["label"]}, {"metrics", metrics}, {"change_percent", changes}});
    if (i == 0) continue;
    for (const auto& t : thresholds) {
      double v = metricOf(runs[i], t.metric), b = metricOf(base, t.metric);
      double change = b != 0 ? 100.0 * (v - b) / b : (v > 0 ? INFINITY : 0.0);
      bool flagged = t.drop ? change < t.percent : change > t.percent;
      if (flagged) {
        regressions.push_back({{"run", runs[i]["label"]},
                               {"metric", t.metric},
                               {"baseline", b},
                               {"value", v},
                               {"change_percent", change},
                               {"threshold_percent", t.percent}});
      }
    }
  }
  return {{"baseline", base["label"]}, {"rows", rows}, {"regressions", regressions}};
}

std::string compareMarkdown(const json& c) {
  std::string out = "| run | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | error rate |\n"
                    "|---|---|---|---|---|---|---|---|\n";
  for (const auto& row : c["rows"]) {
    const auto& m = row["metrics"];
    const auto& ch = row["change_percent"];
    auto cell = [&](const char* k, int digits) {
      std::string v = num(m[k].get<double>(), digits);
      if (row["label"] != c["baseline"]) v += fmt::format(" ({:+.1f}%)", ch[k].get<double>());
      return v;
    };
    out += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} |\n",
                       row["label"].get<std::string>(), cell("throughput", 1), cell("p50", 3),
                       cell("p90", 3), cell("p99", 3), cell("p999", 3), cell("max", 3),
                       num(m["error_rate"].get<double>(), 4));
  }
  if (c["regressions"].empty()) {
    out += "\nNo regressions against `" + c["baseline"].get<std::string>() + "`.\n";
  } else {
    out += "\nRegressions against `" + c["baseline"].get<std::string>() + "`:\n";
    for (const auto& r : c["regressions"]) {
      out += fmt::format("- {}: {} {:.3f} -> {:.3f} ({:+.1f}%, threshold {:+.1f}%)\n",
                         r["run"].get<std::string>(), r["metric"].get<std::string>(),
                         r["baseline"].get<double>(), r["value"].get<double>(),
                         r["change_percent"].get<double>(), r["threshold_percent"].get<double>());
    }
  }
  return out;
}

std::string compareHtml(const std::vector<json>& runs, const json& c) {
  std::string page = runReportHtml(runs, "kserve-harness comparison");
  std::string block = "<h2>Regressions</h2>";
  if (c["regressions"].empty()) {
    block += "<p class=good>No regressions against " + escapeHtml(c["baseline"].get<std::string>()) + ".</p>";
  } else {
    block += "<table><tr><th class=l>run</th><th class=l>metric</th><th>baseline</th><th>value</th><th>change</th><th>threshold</th></tr>";
    for (const auto& r : c["regressions"]) {
      block += fmt::format("<tr class=bad><td class=l>{}</td><td class=l>{}</td><td>{}</td><td>{}</td><td>{:+.1f}%</td><td>{:+.1f}%</td></tr>",
                           escapeHtml(r["run"].get<std::string>()), r["metric"].get<std::string>(),
                           num(r["baseline"].get<double>()), num(r["value"].get<double>()),
                           r["change_percent"].get<double>(), r["threshold_percent"].get<double>());
    }
    block += "</table>";
  }
  auto at = page.find("<h2>Latency by percentile</h2>");
  page.insert(at, block);
  return page;
}

}  // namespace kh::report
