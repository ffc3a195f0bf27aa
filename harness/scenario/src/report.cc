// Scenario reports: HTML with inline SVG, Markdown, JSON and JUnit.

#include "kh/scenario/report.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "kh/common/json.h"
#include "kh/common/strings.h"
#include "kh/report/html.h"

namespace kh::scenario {

using nlohmann::json;

namespace {

std::string num(double v, int digits = 1) {
  if (!std::isfinite(v)) return "n/a";
  std::ostringstream s;
  s.precision(digits);
  s << std::fixed << v;
  return s.str();
}

std::string esc(const std::string& s) { return report::escapeHtml(s); }

std::string xmlEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') break;
        out += c;
    }
  }
  return out;
}

const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                          "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
constexpr int kPaletteSize = sizeof kPalette / sizeof kPalette[0];

// Plots of one scenario.
std::string scenarioPlots(const json& s) {
  const json& obs = s.value("observations", json::object());
  std::string html;
  // Pods over time (per service, ready and total) with scale decisions marked.
  std::map<std::string, report::Series> ready, total;
  for (const auto& sample : obs.value("samples", json::array())) {
    std::string isvc = sample.value("isvc", "");
    auto& r = ready[isvc];
    auto& t = total[isvc];
    r.name = isvc + " ready";
    t.name = isvc + " pods";
    t.dashed = true;
    r.points.emplace_back(sample.value("t", 0.0), sample.value("ready", 0));
    t.points.emplace_back(sample.value("t", 0.0), sample.value("total", 0));
  }
  report::PlotOptions pods_opt;
  pods_opt.title = "Pods over time (scale decisions marked)";
  pods_opt.x_label = "seconds since the scenario started";
  pods_opt.y_label = "pods";
  std::map<std::string, int> last_desired;
  for (const auto& e : obs.value("events", json::array())) {
    if (e.value("type", "") != "scale") continue;
    std::string rev = e.value("revision", "");
    int desired = e.value("desired", 0);
    if (last_desired.count(rev) && last_desired[rev] == desired && !e.value("panic", false)) continue;
    last_desired[rev] = desired;
    if (pods_opt.markers.size() < 16) {
      pods_opt.markers.emplace_back(e.value("t", 0.0),
                                    common::strCat("->", desired, e.value("panic", false) ? " panic" : ""));
    }
  }
  if (!ready.empty()) {
    std::vector<report::Series> series;
    int color = 0;
    for (auto& [isvc, r] : ready) {
      r.color = color;
      total[isvc].color = color++;
      series.push_back(r);
      series.push_back(total[isvc]);
    }
    html += "<div class=plot>" + report::svgLinePlot(series, pods_opt) + "</div>\n";
  }
  // Request rate per load.
  std::vector<report::Series> rates;
  std::vector<report::Series> curves;
  for (const auto& l : obs.value("loads", json::array())) {
    report::Series r;
    r.name = l.value("name", "");
    for (const auto& p : l.value("rate_series", json::array())) r.points.emplace_back(p[0].get<double>(), p[1].get<double>());
    if (!r.points.empty()) rates.push_back(r);
    report::Series c;
    c.name = l.value("name", "");
    for (const auto& p : l.value("percentile_curve", json::array())) c.points.emplace_back(p[0].get<double>(), p[1].get<double>());
    if (c.points.size() > 1) curves.push_back(c);
  }
  if (!rates.empty()) {
    report::PlotOptions o;
    o.title = "Request rate over time";
    o.x_label = "seconds since the scenario started";
    o.y_label = "requests/s";
    o.markers = pods_opt.markers;
    html += "<div class=plot>" + report::svgLinePlot(rates, o) + "</div>\n";
  }
  if (!curves.empty()) {
    report::PlotOptions o;
    o.title = "Latency by percentile";
    o.x_label = "percentile";
    o.y_label = "ms";
    o.percentile_x = true;
    html += "<div class=plot>" + report::svgLinePlot(curves, o) + "</div>\n";
  }
  for (const auto& a : s.value("assertions", json::array())) {
    const json& d = a.value("data", json::object());
    std::string kind = d.value("kind", "");
    if (kind == "coldstart" && !d.value("samples", json::array()).empty()) {
      html += "<div class=plot>" + svgColdStartBreakdown(d["samples"]) + "</div>\n";
    } else if (kind == "graph_breakdown" && !d.value("steps", json::array()).empty()) {
      html += "<div class=plot>" + svgGraphBreakdown(d) + "</div>\n";
      html += "<table><tr><th>node</th><th>step</th><th>target</th><th>calls</th><th>start p50 ms</th><th>p50 ms</th>"
              "<th>p99 ms</th><th>statuses</th></tr>\n";
      for (const auto& st : d["steps"]) {
        html += common::strCat("<tr><td>", esc(st.value("node", "")), "</td><td>", esc(st.value("step", "")), "</td><td>",
                               esc(st.value("target", "")), "</td><td>", st.value("calls", 0), "</td><td>",
                               num(st.value("start_p50_ms", 0.0), 2), "</td><td>", num(st.value("p50_ms", 0.0), 2), "</td><td>",
                               num(st.value("p99_ms", 0.0), 2), "</td><td>", esc(common::jsonText(st.value("statuses", json::object()))),
                               "</td></tr>\n");
      }
      html += "</table>\n";
    } else if (kind == "graph_split") {
      for (const auto& st : d.value("steps", json::array())) {
        double n = st.value("n", 0.0);
        double measured = n > 0 ? 100.0 * st.value("k", 0.0) / n : 0;
        html += "<div class=plot>" +
                svgSplitInterval(common::strCat("Splitter ", d.value("graph", ""), "/", d.value("node", ""), ": share of step ",
                                                st.value("step", ""), " (", num(d.value("confidence", 0.999) * 100, 1), "% CI)"),
                                 st.value("expected_percent", 0.0), measured, st.value("ci_low", 0.0), st.value("ci_high", 0.0)) +
                "</div>\n";
      }
    } else if (kind == "canary") {
      double n = d.value("n", 0.0);
      double measured = n > 0 ? 100.0 * d.value("k", 0.0) / n : 0;
      html += "<div class=plot>" +
              svgSplitInterval(common::strCat("Canary split: share of ", d.value("revision", ""), " (", num(d.value("confidence", 0.999) * 100, 1), "% CI)"),
                               d.value("expected_percent", 0.0), measured, d.value("ci_low", 0.0), d.value("ci_high", 0.0)) +
              "</div>\n";
    }
  }
  return html;
}

}  // namespace

std::string svgColdStartBreakdown(const json& samples) {
  // refstack's steps and a cluster's (from its watched objects) in the order they happen; a
  // sample has only the steps its target observes, and the legend names only those seen.
  static const char* kPhases[][2] = {{"buffered_ms", "buffered"},       {"scale_decided_ms", "scale decided"},
                                     {"pod_created_ms", "pod created"}, {"pod_scheduled_ms", "pod scheduled"},
                                     {"pod_spawned_ms", "pod spawned"}, {"process_started_ms", "process started"},
                                     {"model_loaded_ms", "model loaded"}, {"ready_ms", "ready"},
                                     {"forwarded_ms", "forwarded"},     {"first_byte_ms", "first byte"}};
  constexpr int kPhaseCount = sizeof kPhases / sizeof kPhases[0];
  static_assert(kPhaseCount <= kPaletteSize, "a colour per phase");
  bool seen[kPhaseCount] = {};
  for (const auto& s : samples) {
    const json b = s.value("breakdown", json::object());
    for (int i = 0; i < kPhaseCount; ++i) seen[i] = seen[i] || (b.contains(kPhases[i][0]) && b[kPhases[i][0]].is_number());
  }
  const int rows = static_cast<int>(samples.size());
  const int width = 720, left = 150, right = 20, top = 40, bar = 18, gap = 8, legend_step = 110;
  const int legend_per_row = (width - left - right) / legend_step;
  const int legend_rows = (static_cast<int>(std::count(seen, seen + kPhaseCount, true)) + legend_per_row - 1) / legend_per_row;
  const int height = top + rows * (bar + gap) + 45 + 18 * std::max(1, legend_rows);
  double max_ms = 1;
  for (const auto& s : samples) max_ms = std::max(max_ms, s.value("total_ms", 0.0));
  auto x = [&](double ms) { return left + (width - left - right) * ms / max_ms; };
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"coldstart\" width=\"" << width << "\" height=\"" << height
    << "\" font-family=\"sans-serif\" font-size=\"11\">";
  o << "<text x=\"" << width / 2 << "\" y=\"16\" text-anchor=\"middle\" font-size=\"13\">Cold-start breakdown (ms from the request's arrival)</text>";
  int row = 0;
  for (const auto& s : samples) {
    int y = top + row * (bar + gap);
    const json b = s.value("breakdown", json::object());
    o << "<text x=\"" << left - 6 << "\" y=\"" << y + bar - 5 << "\" text-anchor=\"end\">#" << row + 1 << " "
      << num(s.value("total_ms", 0.0), 0) << " ms</text>";
    double prev = 0;
    for (int phase = 0; phase < kPhaseCount; ++phase) {
      const auto& p = kPhases[phase];
      if (b.contains(p[0]) && b[p[0]].is_number()) {
        double at = b[p[0]].get<double>();
        if (at > prev) {
          o << "<rect x=\"" << num(x(prev), 1) << "\" y=\"" << y << "\" width=\"" << num(x(at) - x(prev), 1) << "\" height=\"" << bar
            << "\" fill=\"" << kPalette[phase] << "\"><title>" << p[1] << ": " << num(prev, 1) << "-" << num(at, 1)
            << " ms</title></rect>";
          prev = at;
        }
      }
    }
    ++row;
  }
  int ly = top + rows * (bar + gap) + 20;
  int shown = 0;
  for (int phase = 0; phase < kPhaseCount; ++phase) {
    if (!seen[phase]) continue;
    int lx = left + legend_step * (shown % legend_per_row);
    int y = ly + 18 * (shown / legend_per_row);
    o << "<rect x=\"" << lx << "\" y=\"" << y << "\" width=\"10\" height=\"10\" fill=\"" << kPalette[phase] << "\"/>";
    o << "<text x=\"" << lx + 13 << "\" y=\"" << y + 9 << "\">until " << kPhases[phase][1] << "</text>";
    ++shown;
  }
  const int axis_y = ly + 18 * std::max(1, legend_rows) + 12;
  o << "<text x=\"" << left << "\" y=\"" << axis_y << "\">0 ms</text><text x=\"" << width - right << "\" y=\"" << axis_y
    << "\" text-anchor=\"end\">" << num(max_ms, 0) << " ms</text>";
  o << "</svg>";
  return o.str();
}

std::string svgGraphBreakdown(const json& d) {
  // One bar per step: from its median start to its median start plus its median duration, on
  // the graph request's time line; the graph's own p50 closes the axis.
  const json& steps = d.value("steps", json::array());
  const int rows = static_cast<int>(steps.size());
  const int width = 720, left = 200, right = 20, top = 40, bar = 18, gap = 8;
  const int height = top + rows * (bar + gap) + 40;
  double max_ms = std::max(0.001, d.value("graph_p50_ms", 0.0));
  for (const auto& st : steps) max_ms = std::max(max_ms, st.value("start_p50_ms", 0.0) + st.value("p50_ms", 0.0));
  auto x = [&](double ms) { return left + (width - left - right) * ms / max_ms; };
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"graph\" width=\"" << width << "\" height=\"" << height
    << "\" font-family=\"sans-serif\" font-size=\"11\">";
  o << "<text x=\"" << width / 2 << "\" y=\"16\" text-anchor=\"middle\" font-size=\"13\">InferenceGraph "
    << esc(d.value("graph", "")) << ": where a request spends its time (medians, ms from arrival at the router)</text>";
  int row = 0;
  for (const auto& st : steps) {
    int y = top + row * (bar + gap);
    double start = st.value("start_p50_ms", 0.0), ms = st.value("p50_ms", 0.0);
    o << "<text x=\"" << left - 6 << "\" y=\"" << y + bar - 5 << "\" text-anchor=\"end\">" << esc(st.value("node", "")) << "/"
      << esc(st.value("step", "")) << "</text>";
    o << "<rect x=\"" << num(x(start), 1) << "\" y=\"" << y << "\" width=\"" << num(std::max(1.0, x(start + ms) - x(start)), 1)
      << "\" height=\"" << bar << "\" fill=\"" << kPalette[row % kPaletteSize] << "\"><title>" << esc(st.value("target", "")) << ": p50 "
      << num(ms, 2) << " ms, p99 " << num(st.value("p99_ms", 0.0), 2) << " ms, " << st.value("calls", 0) << " calls</title></rect>";
    o << "<text x=\"" << num(x(start + ms) + 4, 1) << "\" y=\"" << y + bar - 5 << "\">" << num(ms, 2) << " ms</text>";
    ++row;
  }
  int ly = top + rows * (bar + gap) + 20;
  o << "<text x=\"" << left << "\" y=\"" << ly << "\">0 ms</text><text x=\"" << width - right << "\" y=\"" << ly
    << "\" text-anchor=\"end\">" << num(max_ms, 2) << " ms (graph p50 " << num(d.value("graph_p50_ms", 0.0), 2) << ", p99 "
    << num(d.value("graph_p99_ms", 0.0), 2) << ")</text>";
  o << "</svg>";
  return o.str();
}

std::string svgSplitInterval(const std::string& label, double expected, double measured, double low, double high) {
  const int width = 720, height = 90, left = 40, right = 40;
  auto x = [&](double pct) { return left + (width - left - right) * pct / 100.0; };
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"split\" width=\"" << width << "\" height=\"" << height
    << "\" font-family=\"sans-serif\" font-size=\"11\">";
  o << "<text x=\"" << width / 2 << "\" y=\"14\" text-anchor=\"middle\" font-size=\"13\">" << esc(label) << "</text>";
  o << "<line x1=\"" << x(0) << "\" y1=\"55\" x2=\"" << x(100) << "\" y2=\"55\" stroke=\"#888\"/>";
  for (int t = 0; t <= 100; t += 10) {
    o << "<line x1=\"" << x(t) << "\" y1=\"52\" x2=\"" << x(t) << "\" y2=\"58\" stroke=\"#888\"/>";
    o << "<text x=\"" << x(t) << "\" y=\"72\" text-anchor=\"middle\">" << t << "%</text>";
  }
  o << "<rect x=\"" << num(x(low), 2) << "\" y=\"45\" width=\"" << num(std::max(1.0, x(high) - x(low)), 2)
    << "\" height=\"20\" fill=\"#1f77b4\" opacity=\"0.35\"><title>interval " << num(low, 2) << "% - " << num(high, 2) << "%</title></rect>";
  o << "<circle cx=\"" << num(x(measured), 2) << "\" cy=\"55\" r=\"4\" fill=\"#1f77b4\"><title>measured " << num(measured, 2) << "%</title></circle>";
  o << "<line x1=\"" << num(x(expected), 2) << "\" y1=\"35\" x2=\"" << num(x(expected), 2) << "\" y2=\"75\" stroke=\"#d62728\" stroke-width=\"2\"/>";
  o << "<text x=\"" << num(x(expected), 2) << "\" y=\"32\" text-anchor=\"middle\" fill=\"#d62728\">expected " << num(expected, 1) << "%</text>";
  o << "<text x=\"" << num(x(measured), 2) << "\" y=\"88\" text-anchor=\"middle\" fill=\"#1f77b4\">measured " << num(measured, 2) << "% ["
    << num(low, 2) << ", " << num(high, 2) << "]</text>";
  o << "</svg>";
  return o.str();
}

json reportJson(const std::vector<json>& scenarios, const std::string& target, const std::string& started,
                double duration_s) {
  int passed = 0, failed = 0, skipped = 0;
  for (const auto& s : scenarios) {
    std::string v = s.value("verdict", "");
    passed += v == "passed";
    failed += v == "failed";
    skipped += v == "skipped";
  }
  return {{"schema", "kserve-harness/scenario-report/v1"}, {"started", started}, {"target", target},
          {"duration_s", duration_s}, {"passed", passed}, {"failed", failed}, {"skipped", skipped},
          {"scenarios", scenarios}};
}

std::string reportHtml(const json& r) {
  std::ostringstream o;
  o << "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>kserve-harness report " << esc(r.value("started", ""))
    << "</title><style>body{font-family:sans-serif;margin:24px;max-width:1100px}table{border-collapse:collapse;margin:8px 0}"
       "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top;font-size:13px}"
       ".passed{color:#1a7f37;font-weight:bold}.failed{color:#cf222e;font-weight:bold}.skipped{color:#8a6d00;font-weight:bold}"
       ".plot{margin:10px 0}h2{border-top:1px solid #ddd;padding-top:12px}</style></head><body>\n";
  o << "<h1>kserve-harness report</h1><p>Started " << esc(r.value("started", "")) << " on " << esc(r.value("target", ""))
    << "; " << num(r.value("duration_s", 0.0), 1) << " s. <span class=passed>" << r.value("passed", 0)
    << " passed</span>, <span class=failed>" << r.value("failed", 0) << " failed</span>, <span class=skipped>"
    << r.value("skipped", 0) << " skipped</span>.</p>\n";
  // The pass/fail table over every scenario and assertion.
  o << "<h2>Results</h2><table class=results><tr><th>scenario</th><th>check</th><th>verdict</th><th>expected</th><th>measured</th><th>why</th></tr>\n";
  for (const auto& s : r.value("scenarios", json::array())) {
    std::string v = s.value("verdict", "");
    const json& as = s.value("assertions", json::array());
    if (as.empty() || !s.value("skip_reason", "").empty() || !s.value("error", "").empty()) {
      std::string why = !s.value("error", "").empty() ? s.value("error", "") : s.value("skip_reason", "");
      o << "<tr><td><a href=\"#" << esc(s.value("name", "")) << "\">" << esc(s.value("name", "")) << "</a></td><td>(scenario)</td><td class=" << v
        << ">" << v << "</td><td></td><td></td><td>" << esc(why) << "</td></tr>\n";
    }
    for (const auto& a : as) {
      std::string av = a.value("verdict", "");
      o << "<tr><td><a href=\"#" << esc(s.value("name", "")) << "\">" << esc(s.value("name", "")) << "</a></td><td>" << esc(a.value("name", ""))
        << "</td><td class=" << av << ">" << av << "</td><td>" << esc(a.value("expected", "")) << "</td><td>"
        << esc(a.value("measured", "")) << "</td><td>" << esc(a.value("why", "")) << "</td></tr>\n";
    }
  }
  o << "</table>\n";
  for (const auto& s : r.value("scenarios", json::array())) {
    std::string v = s.value("verdict", "");
    o << "<h2 id=\"" << esc(s.value("name", "")) << "\">" << esc(s.value("name", "")) << " <span class=" << v << ">" << v << "</span></h2>\n";
    o << "<p>" << esc(s.value("description", "")) << "</p><p><small>" << esc(s.value("file", "")) << " &middot; "
      << num(s.value("duration_s", 0.0), 1) << " s &middot; " << esc(s.value("target", "")) << "</small></p>\n";
    if (!s.value("skip_reason", "").empty()) o << "<p class=skipped>Skipped: " << esc(s.value("skip_reason", "")) << "</p>\n";
    if (!s.value("error", "").empty()) o << "<p class=failed>Error: " << esc(s.value("error", "")) << "</p>\n";
    o << scenarioPlots(s);
    const json& steps = s.value("observations", json::object()).value("steps", json::array());
    if (!steps.empty()) {
      o << "<details><summary>Steps</summary><table><tr><th>#</th><th>step</th><th>line</th><th>from</th><th>to</th><th>status</th><th>detail</th></tr>";
      for (const auto& st : steps) {
        o << "<tr><td>" << st.value("index", 0) << "</td><td>" << esc(st.value("kind", "")) << " " << esc(st.value("name", ""))
          << "</td><td>" << st.value("line", 0) << "</td><td>" << num(st.value("start_t", 0.0), 2) << "</td><td>"
          << num(st.value("end_t", 0.0), 2) << "</td><td>" << esc(st.value("status", "")) << "</td><td>"
          << esc(st.value("detail", "").substr(0, 300)) << "</td></tr>";
      }
      o << "</table></details>\n";
    }
    const json& loads = s.value("observations", json::object()).value("loads", json::array());
    if (!loads.empty()) {
      o << "<details><summary>Loads</summary><table><tr><th>load</th><th>engine</th><th>host</th><th>succeeded</th><th>failed</th><th>p50 ms</th><th>p99 ms</th><th>revisions</th></tr>";
      for (const auto& l : loads) {
        const json lat = l.value("latency", json::object());
        o << "<tr><td>" << esc(l.value("name", "")) << "</td><td>" << esc(l.value("engine", "")) << "</td><td>"
          << esc(l.value("host", "")) << "</td><td>" << l.value("succeeded", 0) << "</td><td>" << l.value("failed", 0) << "</td><td>"
          << num(lat.value("p50_ms", 0.0), 2) << "</td><td>" << num(lat.value("p99_ms", 0.0), 2) << "</td><td>"
          << esc(common::jsonText(l.value("revisions", json::object()))) << "</td></tr>";
      }
      o << "</table></details>\n";
    }
  }
  o << "</body></html>\n";
  return o.str();
}

std::string reportMarkdown(const json& r) {
  std::ostringstream o;
  o << "# kserve-harness report " << r.value("started", "") << "\n\n";
  o << "Target: " << r.value("target", "") << ". " << r.value("passed", 0) << " passed, " << r.value("failed", 0)
    << " failed, " << r.value("skipped", 0) << " skipped in " << num(r.value("duration_s", 0.0), 1) << " s.\n\n";
  o << "| scenario | check | verdict | expected | measured | why |\n|---|---|---|---|---|---|\n";
  auto cell = [](std::string s) {
    std::string out;
    for (char c : s) out += c == '|' ? std::string("\\|") : c == '\n' ? std::string(" ") : std::string(1, c);
    return out;
  };
  for (const auto& s : r.value("scenarios", json::array())) {
    const json& as = s.value("assertions", json::array());
    if (as.empty() || !s.value("skip_reason", "").empty() || !s.value("error", "").empty()) {
      std::string why = !s.value("error", "").empty() ? s.value("error", "") : s.value("skip_reason", "");
      o << "| " << cell(s.value("name", "")) << " | (scenario) | " << s.value("verdict", "") << " | | | " << cell(why) << " |\n";
    }
    for (const auto& a : as) {
      o << "| " << cell(s.value("name", "")) << " | " << cell(a.value("name", "")) << " | " << a.value("verdict", "") << " | "
        << cell(a.value("expected", "")) << " | " << cell(a.value("measured", "")) << " | " << cell(a.value("why", "")) << " |\n";
    }
  }
  // Where graph requests spend their time, per step.
  for (const auto& s : r.value("scenarios", json::array())) {
    for (const auto& a : s.value("assertions", json::array())) {
      const json d = a.value("data", json::object());
      if (d.value("kind", "") != "graph_breakdown" || d.value("steps", json::array()).empty()) continue;
      o << "\n### " << cell(s.value("name", "")) << ": InferenceGraph " << cell(d.value("graph", "")) << " (graph p50 "
        << num(d.value("graph_p50_ms", 0.0), 2) << " ms, p99 " << num(d.value("graph_p99_ms", 0.0), 2) << " ms)\n\n";
      o << "| node | step | target | calls | start p50 ms | p50 ms | p99 ms |\n|---|---|---|---|---|---|---|\n";
      for (const auto& st : d["steps"]) {
        o << "| " << cell(st.value("node", "")) << " | " << cell(st.value("step", "")) << " | " << cell(st.value("target", ""))
          << " | " << st.value("calls", 0) << " | " << num(st.value("start_p50_ms", 0.0), 2) << " | "
          << num(st.value("p50_ms", 0.0), 2) << " | " << num(st.value("p99_ms", 0.0), 2) << " |\n";
      }
    }
  }
  o << "\nFiles: index.html (plots), results.json, junit.xml.\n";
  return o.str();
}

std::string reportJunit(const json& r) {
  std::ostringstream o;
  int tests = 0, failures = 0, skipped = 0;
  std::ostringstream cases;
  for (const auto& s : r.value("scenarios", json::array())) {
    std::string suite = s.value("name", "");
    auto add = [&](const std::string& name, const std::string& verdict, const std::string& text) {
      ++tests;
      cases << "  <testcase classname=\"scenario." << xmlEscape(suite) << "\" name=\"" << xmlEscape(name) << "\">";
      if (verdict == "failed") {
        ++failures;
        cases << "<failure message=\"" << xmlEscape(text) << "\"/>";
      } else if (verdict == "skipped") {
        ++skipped;
        cases << "<skipped message=\"" << xmlEscape(text) << "\"/>";
      }
      cases << "</testcase>\n";
    };
    if (!s.value("error", "").empty()) add("(scenario)", "failed", s.value("error", ""));
    if (!s.value("skip_reason", "").empty()) add("(scenario)", "skipped", s.value("skip_reason", ""));
    for (const auto& a : s.value("assertions", json::array())) {
      add(a.value("name", ""), a.value("verdict", ""),
          common::strCat("expected ", a.value("expected", ""), "; measured ", a.value("measured", ""), "; ", a.value("why", "")));
    }
  }
  o << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"kserve-harness scenarios\" tests=\"" << tests
    << "\" failures=\"" << failures << "\" skipped=\"" << skipped << "\" time=\"" << num(r.value("duration_s", 0.0), 3) << "\">\n"
    << cases.str() << "</testsuite>\n";
  return o.str();
}

absl::Status writeReport(const std::filesystem::path& dir, const json& report) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(common::strCat("cannot make ", dir.string(), ": ", ec.message()));
  auto write = [&](const char* name, const std::string& text) -> absl::Status {
    std::ofstream out(dir / name, std::ios::binary);
    out << text;
    if (!out) return absl::InternalError(common::strCat("cannot write ", (dir / name).string()));
    return absl::OkStatus();
  };
  for (auto [name, text] : {std::pair<const char*, std::string>{"index.html", reportHtml(report)},
                            {"summary.md", reportMarkdown(report)},
                            {"results.json", common::jsonText(report, 1)},
                            {"junit.xml", reportJunit(report)}}) {
    auto st = write(name, text);
    if (!st.ok()) return st;
  }
  return absl::OkStatus();
}

}  // namespace kh::scenario
