// `harness compare` and `harness report`: render saved runs; flag regressions.

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "commands.h"
#include "kh/common/json.h"
#include "kh/common/strings.h"
#include "kh/report/html.h"

namespace kh::cli {
namespace {

absl::StatusOr<std::vector<nlohmann::json>> readRuns(const std::vector<std::string>& paths) {
  std::vector<nlohmann::json> runs;
  for (const auto& p : paths) {
    std::ifstream in(p);
    if (!in) return absl::NotFoundError(common::strCat("cannot read ", p));
    auto j = nlohmann::json::parse(in, nullptr, false);
    if (!j.is_object() || j["schema"] != "kserve-harness/load-run/v1") {
      return absl::InvalidArgumentError(
          common::strCat(p, " is not a `harness load -o` result (schema kserve-harness/load-run/v1)"));
    }
    // Runs with the same label are told apart by their file name.
    for (const auto& other : runs) {
      if (other["label"] == j["label"]) j["label"] = std::filesystem::path(p).stem().string();
    }
    runs.push_back(std::move(j));
  }
  return runs;
}

bool writeFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  return static_cast<bool>(out);
}

}  // namespace

Command addCompareCommand(CLI::App& app) {
  struct Args {
    std::vector<std::string> runs;
    std::string out_dir = "reports/compare";
    std::string thresholds;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "compare",
      "Compare load runs side by side (the first is the baseline): tables and overlaid plots in "
      "DIR/index.html, DIR/summary.md and DIR/comparison.json.\nExit status: 0 no regression, 1 "
      "a threshold was crossed, 2 bad input.");
  cmd->add_option("runs", a->runs, "Results of `harness load -o`")->required()->expected(2, -1);
  cmd->add_option("--output,-o", a->out_dir, "Output directory")->default_val("reports/compare");
  cmd->add_option("--threshold", a->thresholds,
                  "Regression rules against the baseline, e.g. p99=+10%,throughput=-5%");
  return [a]() -> int {
    auto runs = readRuns(a->runs);
    if (!runs.ok()) {
      std::cerr << "harness compare: " << common::toStd(runs.status().message()) << "\n";
      return 2;
    }
    auto thresholds = report::parseThresholds(a->thresholds);
    if (!thresholds.ok()) {
      std::cerr << "harness compare: " << common::toStd(thresholds.status().message()) << "\n";
      return 2;
    }
    auto comparison = report::compareRuns(*runs, *thresholds);
    std::error_code ec;
    std::filesystem::create_directories(a->out_dir, ec);
    if (ec) {
      std::cerr << "harness compare: cannot create " << a->out_dir << ": " << ec.message() << "\n";
      return 2;
    }
    std::filesystem::path dir(a->out_dir);
    std::string md = report::compareMarkdown(comparison);
    if (!writeFile(dir / "index.html", report::compareHtml(*runs, comparison)) ||
        !writeFile(dir / "summary.md", md) ||
        !writeFile(dir / "comparison.json", common::jsonText(comparison, 2) + "\n")) {
      std::cerr << "harness compare: cannot write to " << a->out_dir << "\n";
      return 2;
    }
    std::cout << md << "\nWrote " << (dir / "index.html").string() << "\n";
    return comparison["regressions"].empty() ? 0 : 1;
  };
}

Command addReportCommand(CLI::App& app) {
  struct Args {
    std::vector<std::string> runs;
    std::string out = "report.html";
    std::string title = "kserve-harness load run";
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("report", "Render saved load runs as a self-contained HTML page.");
  cmd->add_option("runs", a->runs, "Results of `harness load -o`")->required();
  cmd->add_option("--output,-o", a->out, "HTML file to write")->default_val("report.html");
  cmd->add_option("--title", a->title, "Page title");
  return [a]() -> int {
    auto runs = readRuns(a->runs);
    if (!runs.ok()) {
      std::cerr << "harness report: " << common::toStd(runs.status().message()) << "\n";
      return 2;
    }
    if (!writeFile(a->out, report::runReportHtml(*runs, a->title))) {
      std::cerr << "harness report: cannot write " << a->out << "\n";
      return 2;
    }
    std::cout << "Wrote " << a->out << "\n";
    return 0;
  };
}

}  // namespace kh::cli
