// `harness run`: scenarios (the default suite or files) against a target, with a report.

#include <ctime>
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "kh/common/strings.h"
#include "kh/common/time_source.h"
#include "kh/scenario/report.h"
#include "kh/scenario/runner.h"
#include "kh/scenario/scenario.h"
#include "kh/scenario/target.h"

namespace kh::cli {
namespace {

namespace fs = std::filesystem;

struct RunArgs {
  std::vector<std::string> files;
  std::string suite;
  std::vector<std::string> target = {"embedded"};
  std::string grpc;
  std::string model;
  std::string context;
  std::string kubectl = "kubectl";
  std::string ingress;  // "" : scenario::defaultKubeIngress()
  std::string model_store;
  std::string kubeconfig;
  uint16_t ingress_grpc = 0;
  bool apply_autoscaler_config = false;
  std::string out;
  std::string filter;
};

int runScenarios(const RunArgs& a) {
  auto bad = [](const std::string& m) {
    std::cerr << "harness run: " << m << "\n";
    return 2;
  };
  // What to run.
  std::vector<scenario::Scenario> scenarios;
  std::error_code suite_ec;
  if (!a.suite.empty() && a.suite != "default" && !fs::is_directory(a.suite, suite_ec)) {
    return bad(common::strCat("--suite takes default or a directory, not ", a.suite));
  }
  if (a.files.empty() || !a.suite.empty()) {
    fs::path dir = a.suite.empty() || a.suite == "default" ? scenario::defaultSuiteDir() : fs::path(a.suite);
    auto suite = scenario::loadSuite(dir);
    if (!suite.ok()) return bad(std::string(common::toStd(suite.status().message())));
    scenarios = std::move(*suite);
  }
  for (const auto& f : a.files) {
    auto s = scenario::loadScenarioFile(f);
    if (!s.ok()) return bad(std::string(common::toStd(s.status().message())));
    scenarios.push_back(std::move(*s));
  }
  if (!a.filter.empty()) {
    std::erase_if(scenarios, [&](const scenario::Scenario& s) { return s.name.find(a.filter) == std::string::npos; });
    if (scenarios.empty()) return bad(common::strCat("no scenario name contains \"", a.filter, "\""));
  }

  // Where.
  common::RealTimeSource time;
  std::unique_ptr<scenario::Target> target;
  const std::string& kind = a.target[0];
  if (kind == "embedded") {
    target = makeCliEmbeddedTarget(time);
  } else if (kind == "endpoint" || kind.rfind("http://", 0) == 0) {
    std::string url = kind == "endpoint" ? (a.target.size() > 1 ? a.target[1] : "") : kind;
    if (url.empty()) return bad("--target endpoint needs a URL: --target endpoint http://HOST:PORT");
    auto t = scenario::makeEndpointTarget(url, a.grpc);
    if (!t.ok()) return bad(std::string(common::toStd(t.status().message())));
    target = std::move(*t);
  } else if (kind == "kube") {
    scenario::KubeOptions ko;
    ko.kubectl = a.kubectl;
    ko.context = a.target.size() > 1 ? a.target[1] : a.context;
    ko.ingress = a.ingress.empty() ? scenario::defaultKubeIngress() : a.ingress;
    ko.model_store = a.model_store;
    ko.kubeconfig = a.kubeconfig;
    ko.grpc_port = a.ingress_grpc;
    ko.apply_autoscaler_config = a.apply_autoscaler_config;
    target = scenario::makeKubeTarget(ko, time);
  } else {
    return bad(common::strCat("--target takes embedded, endpoint URL or kube, not ", kind));
  }

  // The report directory: reports/<UTC timestamp>, with reports/latest pointing to it.
  char stamp[32];
  std::time_t now = std::time(nullptr);
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", std::gmtime(&now));
  fs::path out = a.out.empty() ? fs::path("reports") / stamp : fs::path(a.out);
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) return bad(common::strCat("cannot make ", out.string(), ": ", ec.message()));

  std::vector<nlohmann::json> results;
  const auto started = std::chrono::steady_clock::now();
  bool failed = false;
  for (const auto& s : scenarios) {
    std::cerr << "==> " << s.name << " (" << s.file.filename().string() << ")\n";
    scenario::RunOptions ro;
    ro.log = [](const std::string& line) { std::cerr << "    " << line << "\n"; };
    ro.out_dir = out / s.name;
    ro.model = a.model;
    auto r = scenario::runScenario(s, *target, ro, time);
    std::cerr << "    " << scenario::verdictName(r.verdict) << " in " << static_cast<int>(r.duration_s + 0.5) << "s"
              << (r.skip_reason.empty() ? "" : ": " + r.skip_reason) << (r.error.empty() ? "" : ": " + r.error) << "\n";
    failed = failed || r.verdict == scenario::Verdict::kFail;
    results.push_back(scenario::resultToJson(r));
  }
  double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  auto report = scenario::reportJson(results, target->describe(), stamp, total_s);
  auto st = scenario::writeReport(out, report);
  if (!st.ok()) return bad(std::string(common::toStd(st.message())));
  if (a.out.empty()) {
    fs::remove(fs::path("reports") / "latest", ec);
    fs::create_directory_symlink(stamp, fs::path("reports") / "latest", ec);
  }
  // The table, as summary.md has it.
  for (const auto& s : report["scenarios"]) {
    std::printf("%-8s %-28s %5.1fs  %s\n", s.value("verdict", "").c_str(), s.value("name", "").c_str(),
                s.value("duration_s", 0.0),
                !s.value("error", "").empty() ? s.value("error", "").c_str() : s.value("skip_reason", "").c_str());
    for (const auto& as : s["assertions"]) {
      // A skipped assertion measured nothing: it says why instead.
      bool skipped = as.value("verdict", "") == "skipped";
      std::printf("    %-7s %s: %s\n", as.value("verdict", "").c_str(), as.value("name", "").c_str(),
                  (skipped ? as.value("why", "") : as.value("measured", "")).c_str());
      if (as.value("verdict", "") == "failed") {
        std::printf("            expected %s; %s\n", as.value("expected", "").c_str(), as.value("why", "").c_str());
      }
    }
  }
  std::printf("%d passed, %d failed, %d skipped in %.0fs. Report: %s\n", report.value("passed", 0),
              report.value("failed", 0), report.value("skipped", 0), total_s, (out / "index.html").string().c_str());
  return failed ? 1 : 0;
}

}  // namespace

std::unique_ptr<scenario::Target> makeCliEmbeddedTarget(const common::TimeSource& time) {
  scenario::EmbeddedOptions eo;
  eo.bin_dir = fs::canonical("/proc/self/exe").parent_path();
  const char* env_runtimes = std::getenv("KH_RUNTIMES_DIR");
  eo.runtimes_dir = env_runtimes ? env_runtimes : KH_DEFAULT_RUNTIMES_DIR;
  return scenario::makeEmbeddedTarget(eo, time);
}

Command addRunCommand(CLI::App& app) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* cmd = app.add_subcommand(
      "run", "Run scenarios (the default suite, or files) against a target and write a report.\n"
             "Exit 0 when every scenario passed or was skipped, 1 on a failed assertion, 2 on bad input.");
  cmd->add_option("files", args->files, "scenario files (default: the default suite)");
  cmd->add_option("--suite", args->suite, "default (scenarios/) or a directory of scenario files");
  cmd->add_option("--target", args->target, "embedded (default), endpoint URL, or kube [CONTEXT]")->expected(1, 2);
  cmd->add_option("--grpc", args->grpc, "endpoint target: its V2 gRPC HOST:PORT");
  cmd->add_option("--model", args->model, "endpoint target: the model name behind the URL");
  cmd->add_option("--context", args->context, "kube target: the kubectl context");
  cmd->add_option("--kubectl", args->kubectl, "kube target: the kubectl program");
  cmd->add_option("--ingress", args->ingress,
                  "kube target: the ingress gateway HOST:PORT, sent each service's Host (default: "
                  "$KSERVE_INGRESS_HOST_PORT, else 127.0.0.1:8080, kind-cluster's port mapping)");
  cmd->add_option("--model-store", args->model_store,
                  "kube target: where the cluster keeps reference-impl/models; scenarios' storageUri "
                  "file://reference-impl/models/DIR becomes STORE/DIR (kind-cluster/up.sh fills pvc://kh-models)");
  cmd->add_option("--ingress-grpc-port", args->ingress_grpc,
                  "kube target: the ingress's gRPC port when not the HTTP one (refstack: its --grpc-port)");
  cmd->add_option("--kubeconfig", args->kubeconfig,
                  "kube target: the kubeconfig (default: kubectl's, $KUBECONFIG or ~/.kube/config; refstack: "
                  "<state-dir>/kubeconfig)");
  cmd->add_flag("--apply-autoscaler-config", args->apply_autoscaler_config,
                "kube target: write each scenario's autoscaler settings where the cluster takes them: "
                "KnativeServing spec.config.autoscaler under the Knative Operator, else the "
                "knative-serving/config-autoscaler ConfigMap (changes the cluster's Knative settings; off by default)");
  cmd->add_option("--out", args->out, "report directory (default reports/<timestamp>, with reports/latest)");
  cmd->add_option("--filter", args->filter, "only scenarios whose name contains this");
  return [args] { return runScenarios(*args); };
}

}  // namespace kh::cli
