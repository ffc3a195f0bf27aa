// `harness conform`: runs the data-driven protocol conformance suite against a target: a model's
// V1, V2 REST and V2 gRPC cases (--model), and InferenceGraph cases (--graph).

#include <fstream>
#include <iostream>
#include <memory>

#include "commands.h"
#include "kh/common/json.h"
#include "kh/common/net.h"
#include "kh/common/strings.h"
#include "kh/conformance/conformance.h"

namespace kh::cli {
namespace {

struct ConformArgs {
  std::string target = "http://127.0.0.1:8080";
  std::string grpc;
  std::string model;
  std::vector<std::string> graphs;
  std::string graph_host = "{graph}-default.example.com";
  std::string protocol = "all";
  std::string sample;
  std::string junit;
  std::string json_out;
  std::string cases_dir;
  std::string filter;
  int timeout_ms = 10'000;
  bool quiet = false;
};

bool writeFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  return static_cast<bool>(out);
}

int runConform(const ConformArgs& a) {
  if (a.model.empty() && a.graphs.empty()) {
    std::cerr << "harness conform: say what to test: --model NAME (protocol cases) and/or --graph NAME (graph cases)\n";
    return 2;
  }
  auto target = common::parseHostPort(a.target);
  if (!target.ok()) {
    std::cerr << "harness conform: --target " << common::toStd(target.status().message()) << "\n";
    return 2;
  }
  std::string dir = a.cases_dir.empty() ? conformance::defaultCaseDir() : a.cases_dir;
  auto cases = conformance::loadCases(dir);
  if (!cases.ok()) {
    std::cerr << "harness conform: " << common::toStd(cases.status().message()) << "\n";
    return 2;
  }
  conformance::RunOptions options;
  options.http_host = target->host;
  options.http_port = target->port;
  if (!a.grpc.empty()) options.grpc_target = a.grpc;
  options.model = a.model;
  options.graphs = a.graphs;
  options.graph_host = a.graph_host;
  options.protocols = a.protocol;
  if (!a.sample.empty()) options.sample_file = a.sample;
  options.filter = a.filter;
  options.timeout = std::chrono::milliseconds(a.timeout_ms);
  options.samples_dir = dir + "/samples";
  options.on_notice = [](const std::string& notice) { std::cout << "note: " << notice << "\n" << std::flush; };

  std::string graphs;
  for (const auto& g : a.graphs) graphs += (graphs.empty() ? "" : ",") + g;
  std::cout << "conformance: " << cases->size() << " cases from " << dir << " against " << a.target
            << (a.grpc.empty() ? "" : " and grpc " + a.grpc)
            << (a.model.empty() ? "" : ", model '" + a.model + "'")
            << (graphs.empty() ? "" : ", graphs " + graphs + " (Host " + (a.graph_host.empty() ? "host:port" : a.graph_host) + ")")
            << "\n";
  auto summary = conformance::runCases(*cases, options, [&](const conformance::CaseResult& r) {
    if (a.quiet && r.outcome == conformance::Outcome::kPass) return;
    std::cout << conformance::formatResult(r) << "\n" << std::flush;
  });
  if (!summary.ok()) {
    std::cerr << "harness conform: " << common::toStd(summary.status().message()) << "\n";
    return summary.status().code() == absl::StatusCode::kUnavailable ? 2 : 1;
  }
  if (!a.junit.empty() && !writeFile(a.junit, conformance::junitXml(*summary, options))) {
    std::cerr << "harness conform: cannot write " << a.junit << "\n";
    return 1;
  }
  if (!a.json_out.empty() &&
      !writeFile(a.json_out, common::jsonText(conformance::resultsJson(*summary, options), 2) + "\n")) {
    std::cerr << "harness conform: cannot write " << a.json_out << "\n";
    return 1;
  }
  if (summary->must_failed > 0) {
    std::cout << summary->must_failed << " MUST case(s) failed: the target does not conform\n";
  }
  std::cout << summary->passed << " passed, " << summary->failed << " failed, "
            << summary->skipped << " skipped\n";
  return summary->must_failed == 0 ? 0 : 1;
}

}  // namespace

Command addConformCommand(CLI::App& app) {
  auto args = std::make_shared<ConformArgs>();
  CLI::App* cmd = app.add_subcommand(
      "conform",
      "Check that a server speaks KServe V1, V2 REST and V2 gRPC correctly (--model), and that\n"
      "InferenceGraphs answer as KServe's router does (--graph; deploy protocols/conformance/graphs/\n"
      "first: kubectl apply -f protocols/conformance/graphs/).\n"
      "A model whose metadata lists no inputs (KServe's own servers answer \"inputs\": []) gets a demo\n"
      "sample when it is a well-known one (iris), else the cases that need a sample are skipped with\n"
      "that reason: pass --sample to run them.\n"
      "Exit status: 0 every MUST case that could run passed (skipped cases do not fail the run), 1 a\n"
      "MUST case failed, 2 target unreachable or bad usage.");
  cmd->add_option("--target", args->target, "HTTP base URL of the server (V1 and V2 REST)")
      ->default_val("http://127.0.0.1:8080");
  cmd->add_option("--grpc", args->grpc, "host:port of the V2 gRPC endpoint (gRPC cases skipped without it)");
  cmd->add_option("--model", args->model, "Model name to test (protocol cases)");
  cmd->add_option("--graph", args->graphs,
                  "InferenceGraph(s) whose cases run (comma-separated, or 'all'): the graphs of "
                  "protocols/conformance/graphs/")
      ->delimiter(',');
  cmd->add_option("--graph-host", args->graph_host,
                  "Host header of graph requests, {graph} replaced by the graph's name (\"\": host:port, "
                  "for a graph router reached directly)")
      ->default_val("{graph}-default.example.com");
  cmd->add_option("--protocol", args->protocol, "Which suites: v1, v2, grpc, graph or all (comma-separated)")
      ->default_val("all");
  cmd->add_option("--sample", args->sample,
                  "A V2 inference request JSON whose inputs are used as valid sample data "
                  "(default: made from the model's V2 metadata)");
  cmd->add_option("--junit", args->junit, "Write JUnit XML here");
  cmd->add_option("--json", args->json_out, "Write JSON results here");
  cmd->add_option("--cases", args->cases_dir, "Directory of case files (default: protocols/conformance)");
  cmd->add_option("--filter", args->filter, "Only cases whose id contains this text");
  cmd->add_option("--timeout-ms", args->timeout_ms, "Per-request timeout")->default_val(10'000);
  cmd->add_flag("--quiet,-q", args->quiet, "Print only failures, skips and the summary");
  return [args] { return runConform(*args); };
}

}  // namespace kh::cli
