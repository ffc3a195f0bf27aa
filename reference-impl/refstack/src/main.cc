// refstack: run the reference serving stack and talk to it like kubectl talks to a cluster.

#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "CLI/CLI.hpp"
#include "boost/asio/connect.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http/empty_body.hpp"
#include "boost/beast/http/parser.hpp"
#include "boost/beast/http/read.hpp"
#include "boost/beast/http/string_body.hpp"
#include "boost/beast/http/write.hpp"
#include "kh/common/strings.h"
#include "kh/common/yaml_json.h"
#include "kh/http/client.h"
#include "kh/refstack/refstack.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The daemon's main thread waits for this pipe; the signal handler only writes to it.
int g_signal_pipe[2] = {-1, -1};
void onSignal(int) {
  char c = 1;
  (void)!::write(g_signal_pipe[1], &c, 1);
}

struct AdminTarget {
  std::string host = "127.0.0.1";
  uint16_t port = 8090;
  std::string token;
};

AdminTarget parseAdmin(const std::string& admin, const std::string& token) {
  AdminTarget t;
  auto pos = admin.rfind(':');
  t.host = admin.substr(0, pos);
  t.port = static_cast<uint16_t>(std::stoi(admin.substr(pos + 1)));
  t.token = token;
  return t;
}

int adminCall(const AdminTarget& admin, boost::beast::http::verb method, const std::string& path,
              const std::string& body, std::string* out) {
  kh::http::Client client(admin.host, admin.port);
  kh::http::Request req{method, path, 11};
  if (!admin.token.empty()) req.set(boost::beast::http::field::authorization, "Bearer " + admin.token);
  if (!body.empty()) {
    req.set(boost::beast::http::field::content_type, "application/yaml");
    req.body() = body;
  }
  auto res = client.send(std::move(req));
  if (!res.ok()) {
    std::cerr << "refstack: cannot reach the admin API at " << admin.host << ":" << admin.port << ": "
              << kh::common::toStd(res.status().message()) << " (is `refstack up` running?)\n";
    return 2;
  }
  *out = res->body();
  if (res->result_int() >= 400) {
    auto j = json::parse(*out, nullptr, false);
    std::cerr << "refstack: " << (j.is_object() && j.contains("error") ? j["error"].get<std::string>() : *out) << "\n";
    return 1;
  }
  return 0;
}

// Follows the chunked watch stream, printing each JSON line as it arrives.
int watchEvents(const AdminTarget& admin, int64_t since) {
  namespace net = boost::asio;
  namespace bhttp = boost::beast::http;
  net::io_context ioc;
  net::ip::tcp::socket socket(ioc);
  boost::beast::error_code ec;
  net::ip::tcp::resolver resolver(ioc);
  auto endpoints = resolver.resolve(admin.host, std::to_string(admin.port), ec);
  if (!ec) net::connect(socket, endpoints, ec);
  if (ec) {
    std::cerr << "refstack: cannot reach the admin API at " << admin.host << ":" << admin.port << ": "
              << ec.message() << " (is `refstack up` running?)\n";
    return 2;
  }
  bhttp::request<bhttp::empty_body> req{bhttp::verb::get, "/events?watch=true&since=" + std::to_string(since), 11};
  req.set(bhttp::field::host, admin.host);
  if (!admin.token.empty()) req.set(bhttp::field::authorization, "Bearer " + admin.token);
  bhttp::write(socket, req, ec);
  boost::beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(boost::none);
  std::string pending;
  auto on_chunk = [&](uint64_t, boost::beast::string_view data, boost::beast::error_code&) {
    pending.append(data.data(), data.size());
    for (size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
      std::cout << pending.substr(0, nl) << std::endl;
      pending.erase(0, nl + 1);
    }
    return data.size();
  };
  parser.on_chunk_body(on_chunk);
  bhttp::read_header(socket, buffer, parser, ec);
  if (ec) {
    std::cerr << "refstack: watch failed: " << ec.message() << "\n";
    return 2;
  }
  if (parser.get().result_int() != 200) {
    bhttp::read(socket, buffer, parser, ec);
    std::cerr << "refstack: " << parser.get().body() << "\n";
    return 1;
  }
  while (!parser.is_done()) {
    bhttp::read_some(socket, buffer, parser, ec);
    if (ec) break;
  }
  return 0;  // the daemon went away or ended the stream
}

std::string condition(const json& item, const std::string& type) {
  for (const auto& c : item["status"].value("conditions", json::array())) {
    if (c["type"] == type) return c["status"];
  }
  return "Unknown";
}

enum class Kind { kInferenceService, kServingRuntime, kClusterServingRuntime, kUnknown };

Kind parseKind(const std::string& k) {
  if (k == "isvc" || k == "inferenceservice" || k == "inferenceservices") return Kind::kInferenceService;
  if (k == "servingruntime" || k == "servingruntimes" || k == "sr") return Kind::kServingRuntime;
  if (k == "clusterservingruntime" || k == "clusterservingruntimes" || k == "csr") return Kind::kClusterServingRuntime;
  return Kind::kUnknown;
}

std::string resourcePath(Kind kind, const std::string& ns, const std::string& name) {
  std::string suffix = name.empty() ? "" : "/" + name;
  switch (kind) {
    case Kind::kInferenceService:
      return "/apis/serving.kserve.io/v1beta1/namespaces/" + ns + "/inferenceservices" + suffix;
    case Kind::kServingRuntime:
      return "/apis/serving.kserve.io/v1alpha1/namespaces/" + ns + "/servingruntimes" + suffix;
    default:
      return "/apis/serving.kserve.io/v1alpha1/clusterservingruntimes" + suffix;
  }
}

void printServices(const std::vector<json>& items, bool wide) {
  if (wide) {
    std::printf("%-24s %-44s %-6s %-28s %-28s %s\n", "NAME", "URL", "READY", "PREV", "LATEST",
                "PODS ready/total per revision (desired, panic mode, activator in path)");
  } else {
    std::printf("%-24s %-44s %-6s %-28s %-28s\n", "NAME", "URL", "READY", "PREV", "LATEST");
  }
  for (const auto& i : items) {
    const json& p = i["status"].value("components", json::object()).value("predictor", json::object());
    std::string latest, prev;
    for (const auto& t : p.value("traffic", json::array())) {
      std::string entry = t.value("revisionName", "") + " " + std::to_string(t.value("percent", 0)) + "%";
      (t.value("latestRevision", false) ? latest : prev) = entry;
    }
    std::printf("%-24s %-44s %-6s %-28s %-28s", i["metadata"].value("name", "").c_str(),
                i["status"].value("url", "").c_str(), condition(i, "Ready").c_str(), prev.c_str(), latest.c_str());
    if (wide) {
      std::string pods;
      const json revisions = i["status"].value("refstack", json::object()).value("revisions", json::object());
      for (const auto& [rev, counts] : revisions.items()) {
        pods += rev + "=" + std::to_string(counts.value("ready", 0)) + "/" + std::to_string(counts.value("pods", 0));
        if (counts.contains("desired")) {
          pods += "(desired " + std::to_string(counts.value("desired", 0)) +
                  (counts.value("panic", false) ? ", panic" : "") +
                  (counts.value("activatorInPath", false) ? ", activator" : "") + ")";
        }
        pods += " ";
      }
      std::printf(" %s", pods.c_str());
    }
    std::printf("\n");
  }
}

void printRuntimes(const std::vector<json>& items) {
  std::printf("%-28s %-40s %s\n", "NAME", "MODEL FORMATS", "PROTOCOLS");
  for (const auto& i : items) {
    std::string formats, protocols;
    for (const auto& f : i["spec"].value("supportedModelFormats", json::array())) formats += f.value("name", "") + " ";
    for (const auto& p : i["spec"].value("protocolVersions", json::array())) protocols += p.get<std::string>() + " ";
    std::printf("%-28s %-40s %s\n", i["metadata"].value("name", "").c_str(), formats.c_str(), protocols.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"refstack: the kserve-harness reference serving stack on one machine.\n"
               "Start it with `refstack up`, then apply KServe manifests and send requests to the\n"
               "ingress with the InferenceService's Host header."};
  app.require_subcommand(1);
  std::string admin = "127.0.0.1:8090";
  std::string token;
  app.add_option("--admin", admin, "Admin API address")->default_val(admin)->envname("KH_REFSTACK_ADMIN");
  app.add_option("--token", token, "Bearer token of the admin API (up: require it; others: send it)")
      ->envname("KH_REFSTACK_TOKEN");

  kh::refstack::Config config;
  std::vector<std::string> images;
  std::string state_dir = "/tmp/refstack", config_file, domain;
  uint16_t admin_port = 8090, ingress_port = 8080, grpc_port = 8081;
  auto* up = app.add_subcommand("up", "Run the stack (admin API, ingress, reconciler) until `refstack down` or Ctrl-C");
  up->add_option("--config", config_file, "YAML config file (see reference-impl/refstack/README.md)");
  auto* state_opt = up->add_option("--state-dir", state_dir, "State, pod logs and downloads")->default_val(state_dir);
  auto* admin_opt = up->add_option("--admin-port", admin_port, "Admin API port")->default_val(8090);
  auto* ingress_opt = up->add_option("--ingress-port", ingress_port, "Ingress HTTP port")->default_val(8080);
  auto* grpc_opt = up->add_option("--grpc-port", grpc_port, "Ingress gRPC port")->default_val(8081);
  auto* domain_opt = up->add_option("--domain", domain, "Ingress domain of InferenceService hosts (default example.com)");
  up->add_option("--image", images, "IMAGE=COMMAND: run this command for a container image (repeatable)");

  std::string file;
  auto* apply = app.add_subcommand("apply", "Apply KServe manifests (a YAML file, a directory of them, or - for stdin)");
  apply->add_option("-f,--filename", file, "File or directory")->required();

  std::string kind, name, ns = "default", output;
  auto* get = app.add_subcommand("get", "Show resources: refstack get isvc|servingruntime|clusterservingruntime [NAME]");
  get->add_option("kind", kind, "isvc, servingruntime (sr), clusterservingruntime (csr)")->required();
  get->add_option("name", name, "Name");
  get->add_option("-n,--namespace", ns, "Namespace")->default_val("default");
  get->add_option("-o,--output", output, "json, yaml or wide")->check(CLI::IsMember({"json", "yaml", "wide"}));

  auto* del = app.add_subcommand("delete", "Delete a resource: refstack delete isvc NAME");
  del->add_option("kind", kind, "isvc, servingruntime (sr), clusterservingruntime (csr)")->required();
  del->add_option("name", name, "Name")->required();
  del->add_option("-n,--namespace", ns, "Namespace")->default_val("default");

  bool watch = false;
  int64_t since = 0;
  auto* events = app.add_subcommand("events", "Print the event log (JSON lines: status, revision, pod events)");
  events->add_flag("-w,--watch", watch, "Keep printing new events as they happen");
  events->add_option("--since", since, "Only events after this sequence number");

  auto* down = app.add_subcommand("down", "Stop a running stack (its pods stop with it)");
  CLI11_PARSE(app, argc, argv);
  AdminTarget target = parseAdmin(admin, token);

  if (up->parsed()) {
    fs::path self = fs::canonical("/proc/self/exe").parent_path();
    config.images["kserve-harness/modelserver"] = {(self / "modelserver").string()};
    config.images["kserve-harness/passthrough-transformer"] = {(self / "passthrough-transformer").string()};
    config.queue_proxy = {(self / "queue-proxy").string()};
    const char* env_runtimes = std::getenv("KH_RUNTIMES_DIR");
    config.runtimes_dir = env_runtimes ? env_runtimes : KH_DEFAULT_RUNTIMES_DIR;
    if (!config_file.empty()) {
      auto loaded = kh::refstack::loadConfigFile(config_file, config);
      if (!loaded.ok()) {
        std::cerr << "refstack: " << kh::common::toStd(loaded.status().message()) << "\n";
        return 2;
      }
      config = *loaded;
    }
    // Flags given on the command line win over the config file.
    if (state_opt->count() || config_file.empty()) config.state_dir = state_dir;
    if (admin_opt->count() || config_file.empty()) config.admin_port = admin_port;
    if (ingress_opt->count() || config_file.empty()) config.ingress_port = ingress_port;
    if (grpc_opt->count() || config_file.empty()) config.grpc_ingress_port = grpc_port;
    if (domain_opt->count()) config.domain = domain;
    if (!token.empty()) config.admin_token = token;
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
    if (::pipe(g_signal_pipe) != 0) return 1;
    std::signal(SIGINT, onSignal);
    std::signal(SIGTERM, onSignal);
    kh::common::RealTimeSource time;
    auto stack = kh::refstack::Refstack::start(config, time);
    if (!stack.ok()) {
      std::cerr << "refstack: " << kh::common::toStd(stack.status().message()) << "\n";
      return 1;
    }
    std::thread signals([&] {
      char c;
      if (::read(g_signal_pipe[0], &c, 1) == 1 && c == 1) (*stack)->requestShutdown();
    });
    std::cout << "refstack up: admin http://" << config.address << ":" << (*stack)->adminPort()
              << ", ingress http://" << config.address << ":" << (*stack)->ingressPort()
              << " grpc " << config.address << ":" << (*stack)->grpcIngressPort()
              << ", state " << config.state_dir.string() << std::endl;
    (*stack)->waitForShutdown();
    std::cout << "refstack: stopping pods" << std::endl;
    char stop = 0;
    (void)!::write(g_signal_pipe[1], &stop, 1);
    signals.join();
    stack->reset();
    std::cout << "refstack: stopped" << std::endl;
    return 0;
  }
  std::string body, out;
  using boost::beast::http::verb;
  if (apply->parsed()) {
    std::vector<fs::path> files;
    if (file == "-") {
      std::stringstream text;
      text << std::cin.rdbuf();
      body = text.str();
    } else if (fs::is_directory(file)) {
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
        std::cerr << "refstack: cannot read " << f.string() << "\n";
        return 2;
      }
      std::stringstream text;
      text << in.rdbuf();
      if (!body.empty()) body += "\n---\n";
      body += text.str();
    }
    int rc = adminCall(target, verb::post, "/apply", body, &out);
    if (rc == 0) {
      json result = json::parse(out);
      for (const auto& a : result["applied"]) {
        std::cout << a["kind"].get<std::string>() << "/" << a["name"].get<std::string>() << " applied\n";
      }
    }
    return rc;
  }
  if (get->parsed() || del->parsed()) {
    Kind k = parseKind(kind);
    if (k == Kind::kUnknown) {
      std::cerr << "refstack: unknown kind '" << kind << "' (isvc, servingruntime, clusterservingruntime)\n";
      return 2;
    }
    int rc = adminCall(target, del->parsed() ? verb::delete_ : verb::get, resourcePath(k, ns, name), "", &out);
    if (rc != 0) return rc;
    if (del->parsed()) {
      std::cout << kind << "/" << name << " deleted\n";
      return 0;
    }
    auto j = json::parse(out);
    if (output == "json") {
      std::cout << j.dump(2) << "\n";
      return 0;
    }
    if (output == "yaml") {
      std::cout << kh::common::jsonToYaml(j);
      return 0;
    }
    std::vector<json> items = j.contains("items") ? j["items"].get<std::vector<json>>() : std::vector<json>{j};
    if (k == Kind::kInferenceService) printServices(items, output == "wide");
    else printRuntimes(items);
    return 0;
  }
  if (events->parsed()) {
    if (watch) return watchEvents(target, since);
    int rc = adminCall(target, verb::get, "/events?since=" + std::to_string(since), "", &out);
    std::cout << out << std::flush;
    return rc;
  }
  if (down->parsed()) {
    int rc = adminCall(target, verb::post, "/shutdown", "", &out);
    if (rc == 0) std::cout << "refstack: shutting down\n";
    return rc;
  }
  return 2;
}
