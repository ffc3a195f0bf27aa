// refstack: run the reference serving stack and talk to it like kubectl talks to a cluster.

#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "CLI/CLI.hpp"
#include "kh/common/strings.h"
#include "kh/http/client.h"
#include "kh/refstack/refstack.h"

namespace {

namespace fs = std::filesystem;

kh::refstack::Refstack* g_stack = nullptr;  // for the signal handler only

void onSignal(int) {
  // Async-signal-safe enough: the daemon's main thread waits on a condition; a detached thread
  // would be cleaner, but requestShutdown only takes a mutex the main thread does not hold long.
  if (g_stack) g_stack->requestShutdown();
}

int adminCall(const std::string& admin, const std::string& method, const std::string& path,
              const std::string& body, std::string* out) {
  auto pos = admin.rfind(':');
  std::string host = admin.substr(0, pos);
  auto port = static_cast<uint16_t>(std::stoi(admin.substr(pos + 1)));
  kh::http::Client client(host, port);
  auto res = client.request(method, path, body, "application/yaml");
  if (!res.ok()) {
    std::cerr << "refstack: cannot reach the admin API at " << admin << ": "
              << kh::common::toStd(res.status().message()) << " (is `refstack up` running?)\n";
    return 2;
  }
  *out = res->body();
  if (res->result_int() >= 400) {
    auto j = nlohmann::json::parse(*out, nullptr, false);
    std::cerr << "refstack: " << (j.is_object() && j.contains("error") ? j["error"].get<std::string>() : *out) << "\n";
    return 1;
  }
  return 0;
}

std::string readConditions(const nlohmann::json& item, const std::string& type) {
  for (const auto& c : item["status"].value("conditions", nlohmann::json::array())) {
    if (c["type"] == type) return c["status"];
  }
  return "Unknown";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"refstack: the kserve-harness reference serving stack on one machine"};
  app.require_subcommand(1);
  std::string admin = "127.0.0.1:8090";
  app.add_option("--admin", admin, "Admin API address")->default_val(admin);

  kh::refstack::Config config;
  std::vector<std::string> images;
  std::string state_dir = "/tmp/refstack";
  auto* up = app.add_subcommand("up", "Run the stack (admin API, ingress, reconciler) until `refstack down` or Ctrl-C");
  up->add_option("--state-dir", state_dir, "Pod logs and downloads")->default_val(state_dir);
  up->add_option("--admin-port", config.admin_port, "Admin API port")->default_val(8090);
  up->add_option("--ingress-port", config.ingress_port, "Ingress HTTP port")->default_val(8080);
  up->add_option("--domain", config.domain, "Ingress domain of InferenceService hosts")->default_val("example.com");
  up->add_option("--image", images, "IMAGE=COMMAND: run this command for a container image (repeatable)");

  std::string file;
  auto* apply = app.add_subcommand("apply", "Apply KServe manifests (a YAML file or a directory of them)");
  apply->add_option("-f,--filename", file, "File or directory")->required();

  std::string kind, name, ns = "default", output;
  auto* get = app.add_subcommand("get", "Show InferenceServices: refstack get isvc [NAME]");
  get->add_option("kind", kind, "isvc")->required();
  get->add_option("name", name, "Name");
  get->add_option("-n,--namespace", ns, "Namespace")->default_val("default");
  get->add_option("-o,--output", output, "json, or wide");

  auto* del = app.add_subcommand("delete", "Delete an InferenceService: refstack delete isvc NAME");
  del->add_option("kind", kind, "isvc")->required();
  del->add_option("name", name, "Name")->required();
  del->add_option("-n,--namespace", ns, "Namespace")->default_val("default");

  bool watch = false;
  int64_t since = 0;
  auto* events = app.add_subcommand("events", "Print the event log (JSON lines)");
  events->add_flag("-w,--watch", watch, "Keep printing new events");
  events->add_option("--since", since, "Only events after this sequence number");

  auto* down = app.add_subcommand("down", "Stop a running stack");
  CLI11_PARSE(app, argc, argv);

  if (up->parsed()) {
    config.state_dir = state_dir;
    fs::path self = fs::canonical("/proc/self/exe").parent_path();
    config.images["kserve-harness/modelserver"] = {(self / "modelserver").string()};
    for (const auto& spec : images) {
      auto eq = spec.find('=');
      if (eq == std::string::npos) {
        std::cerr << "refstack: --image wants IMAGE=COMMAND\n";
        return 2;
      }
      std::istringstream words(spec.substr(eq + 1));
      std::vector<std::string> command;
      for (std::string w; words >> w;) command.push_back(w);
      config.images[spec.substr(0, eq)] = command;
    }
    const char* env_runtimes = std::getenv("KH_RUNTIMES_DIR");
    config.runtimes_dir = env_runtimes ? env_runtimes : KH_DEFAULT_RUNTIMES_DIR;
    kh::common::RealTimeSource time;
    auto stack = kh::refstack::Refstack::start(config, time);
    if (!stack.ok()) {
      std::cerr << "refstack: " << kh::common::toStd(stack.status().message()) << "\n";
      return 1;
    }
    g_stack = stack->get();
    std::signal(SIGINT, onSignal);
    std::signal(SIGTERM, onSignal);
    std::cout << "refstack up: admin http://" << config.address << ":" << (*stack)->adminPort()
              << ", ingress http://" << config.address << ":" << (*stack)->ingressPort()
              << ", state " << config.state_dir.string() << std::endl;
    (*stack)->waitForShutdown();
    std::cout << "refstack: stopping pods" << std::endl;
    g_stack = nullptr;
    return 0;
  }
  std::string body, out;
  if (apply->parsed()) {
    std::vector<fs::path> files;
    if (fs::is_directory(file)) {
      for (const auto& f : fs::directory_iterator(file)) {
        if (f.path().extension() == ".yaml" || f.path().extension() == ".yml") files.push_back(f.path());
      }
      std::sort(files.begin(), files.end());
    } else {
      files.push_back(file);
    }
    for (const auto& f : files) {
      std::ifstream in(f);
      if (!in) {
        std::cerr << "refstack: cannot read " << f << "\n";
        return 2;
      }
      std::stringstream text;
      text << in.rdbuf();
      if (!body.empty()) body += "\n---\n";
      body += text.str();
    }
    int rc = adminCall(admin, "POST", "/apply", body, &out);
    if (rc == 0) {
      nlohmann::json result = nlohmann::json::parse(out);
      for (const auto& a : result["applied"]) {
        std::cout << a["kind"].get<std::string>() << "/" << a["name"].get<std::string>() << " applied\n";
      }
    }
    return rc;
  }
  if (get->parsed() || del->parsed()) {
    if (kind != "isvc" && kind != "inferenceservice" && kind != "inferenceservices") {
      std::cerr << "refstack: only isvc (InferenceService) is supported\n";
      return 2;
    }
    std::string path = "/apis/serving.kserve.io/v1beta1/namespaces/" + ns + "/inferenceservices" +
                       (name.empty() ? "" : "/" + name);
    int rc = adminCall(admin, del->parsed() ? "DELETE" : "GET", path, "", &out);
    if (rc != 0) return rc;
    if (del->parsed()) {
      std::cout << "inferenceservice/" << name << " deleted\n";
      return 0;
    }
    auto j = nlohmann::json::parse(out);
    if (output == "json") {
      std::cout << j.dump(2) << "\n";
      return 0;
    }
    std::vector<nlohmann::json> items = j.contains("items") ? j["items"].get<std::vector<nlohmann::json>>()
                                                             : std::vector<nlohmann::json>{j};
    std::printf("%-24s %-48s %-6s %-24s %-24s\n", "NAME", "URL", "READY", "LATEST", "PREV");
    for (const auto& i : items) {
      const auto& p = i["status"].value("components", nlohmann::json::object()).value("predictor", nlohmann::json::object());
      std::string latest, prev;
      for (const auto& t : p.value("traffic", nlohmann::json::array())) {
        std::string entry = t.value("revisionName", "") + " " + std::to_string(t.value("percent", 0)) + "%";
        (t.value("latestRevision", false) ? latest : prev) = entry;
      }
      std::printf("%-24s %-48s %-6s %-24s %-24s\n", i["metadata"]["name"].get<std::string>().c_str(),
                  i["status"].value("url", "").c_str(), readConditions(i, "Ready").c_str(), latest.c_str(), prev.c_str());
    }
    return 0;
  }
  if (events->parsed()) {
    while (true) {
      int rc = adminCall(admin, "GET", "/events?since=" + std::to_string(since), "", &out);
      if (rc != 0) return rc;
      std::istringstream lines(out);
      for (std::string line; std::getline(lines, line);) {
        std::cout << line << "\n";
        since = std::max(since, nlohmann::json::parse(line)["seq"].get<int64_t>());
      }
      std::cout << std::flush;
      if (!watch) return 0;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));  // polling interval
    }
  }
  if (down->parsed()) return adminCall(admin, "POST", "/shutdown", "", &out);
  return 2;
}
