// The client commands: `refstack apply`, `get`, `delete`, `events` and `down`, over the admin
// port (refstack's routes and the Kubernetes API; kubectl works there too).

#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "boost/asio/connect.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http/empty_body.hpp"
#include "boost/beast/http/parser.hpp"
#include "boost/beast/http/read.hpp"
#include "boost/beast/http/string_body.hpp"
#include "boost/beast/http/write.hpp"
#include "commands.h"
#include "kh/common/files.h"
#include "kh/common/json.h"
#include "kh/common/net.h"
#include "kh/common/strings.h"
#include "kh/common/yaml_json.h"
#include "kh/http/client.h"
#include "nlohmann/json.hpp"

namespace kh::refstack::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct AdminTarget {
  std::string host = "127.0.0.1";
  uint16_t port = 8090;
  std::string token;
};

// The --admin address (or KH_REFSTACK_ADMIN); nullopt, with the reason printed, when it is not host:port.
std::optional<AdminTarget> parseAdmin(const AdminFlags& flags) {
  auto hp = common::parseHostPort(flags.address);
  if (!hp.ok() || hp->port == 0) {
    std::cerr << "refstack: --admin (or KH_REFSTACK_ADMIN) must be host:port, not '" << flags.address << "'\n";
    return std::nullopt;
  }
  return AdminTarget{hp->host, hp->port, flags.token};
}

// One request to the admin port; the body of the answer in `out`. Errors are printed.
int adminCall(const AdminFlags& flags, boost::beast::http::verb method, const std::string& path,
              const std::string& body, std::string* out) {
  auto parsed_admin = parseAdmin(flags);
  if (!parsed_admin) return 2;
  const AdminTarget& admin = *parsed_admin;
  kh::http::Client client(admin.host, admin.port);
  kh::http::Request req{method, path, 11};
  req.set(boost::beast::http::field::accept, "application/json");
  if (!admin.token.empty()) req.set(boost::beast::http::field::authorization, "Bearer " + admin.token);
  if (!body.empty()) {
    req.set(boost::beast::http::field::content_type, "application/yaml");
    req.body() = body;
  }
  auto res = client.send(std::move(req));
  if (!res.ok()) {
    std::cerr << "refstack: cannot reach the admin API at " << admin.host << ":" << admin.port << ": "
              << common::toStd(res.status().message()) << " (is `refstack up` running?)\n";
    return 2;
  }
  *out = res->body();
  if (res->result_int() >= 400) {
    // refstack's routes answer {"error": ...}, the Kubernetes API a Status with a message.
    auto j = json::parse(*out, nullptr, false);
    std::string why = *out;
    if (j.is_object() && j.contains("error") && j["error"].is_string()) why = j["error"];
    if (j.is_object() && j.contains("message") && j["message"].is_string()) why = j["message"];
    std::cerr << "refstack: " << why << "\n";
    return 1;
  }
  return 0;
}

// Follows the chunked watch stream, printing each JSON line as it arrives.
int watchEvents(const AdminFlags& flags, int64_t since) {
  auto parsed_admin = parseAdmin(flags);
  if (!parsed_admin) return 2;
  const AdminTarget& admin = *parsed_admin;
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
  for (const auto& c : item.value("status", json::object()).value("conditions", json::array())) {
    if (c.value("type", "") == type) return c.value("status", "Unknown");
  }
  return "Unknown";
}

enum class Kind { kInferenceService, kServingRuntime, kClusterServingRuntime, kInferenceGraph, kUnknown };

Kind parseKind(const std::string& k) {
  if (k == "isvc" || k == "inferenceservice" || k == "inferenceservices") return Kind::kInferenceService;
  if (k == "servingruntime" || k == "servingruntimes" || k == "sr") return Kind::kServingRuntime;
  if (k == "clusterservingruntime" || k == "clusterservingruntimes" || k == "csr") return Kind::kClusterServingRuntime;
  if (k == "ig" || k == "inferencegraph" || k == "inferencegraphs") return Kind::kInferenceGraph;
  return Kind::kUnknown;
}

std::string resourcePath(Kind kind, const std::string& ns, const std::string& name) {
  std::string suffix = name.empty() ? "" : "/" + name;
  switch (kind) {
    case Kind::kInferenceService:
      return "/apis/serving.kserve.io/v1beta1/namespaces/" + ns + "/inferenceservices" + suffix;
    case Kind::kServingRuntime:
      return "/apis/serving.kserve.io/v1alpha1/namespaces/" + ns + "/servingruntimes" + suffix;
    case Kind::kInferenceGraph:
      return "/apis/serving.kserve.io/v1alpha1/namespaces/" + ns + "/inferencegraphs" + suffix;
    default:
      return "/apis/serving.kserve.io/v1alpha1/clusterservingruntimes" + suffix;
  }
}

// Pods and the KPA's decision per revision of an InferenceService, read from its Pods and
// PodAutoscalers as on a cluster.
std::string podsColumn(const AdminFlags& admin, const json& isvc) {
  std::string ns = isvc["metadata"].value("namespace", "default");
  std::string name = isvc["metadata"].value("name", "");
  std::string selector = "?labelSelector=serving.kserve.io%2Finferenceservice%3D" + name;
  std::string pods_text, pas_text;
  if (adminCall(admin, boost::beast::http::verb::get, "/api/v1/namespaces/" + ns + "/pods" + selector, "", &pods_text) != 0) {
    return "";
  }
  (void)adminCall(admin, boost::beast::http::verb::get,
                  "/apis/autoscaling.internal.knative.dev/v1alpha1/namespaces/" + ns + "/podautoscalers" + selector, "",
                  &pas_text);
  struct Counts {
    int ready = 0, total = 0;
    std::optional<json> pa;
  };
  std::map<std::string, Counts> revisions;
  for (const auto& pod : json::parse(pods_text, nullptr, false).value("items", json::array())) {
    auto& c = revisions[pod["metadata"].value("labels", json::object()).value("serving.knative.dev/revision", "?")];
    c.total += 1;
    if (condition(pod, "Ready") == "True") c.ready += 1;
  }
  json pas = json::parse(pas_text, nullptr, false);
  if (pas.is_object()) {
    for (const auto& pa : pas.value("items", json::array())) revisions[pa["metadata"].value("name", "?")].pa = pa;
  }
  std::string out;
  for (const auto& [rev, c] : revisions) {
    out += rev + "=" + std::to_string(c.ready) + "/" + std::to_string(c.total);
    if (c.pa) {
      const json r = c.pa->value("status", json::object()).value("refstack", json::object());
      out += "(desired " + std::to_string(r.value("replicas", 0)) + (r.value("panic", false) ? ", panic" : "") +
             (r.value("activatorInPath", false) ? ", activator" : "") + ")";
    }
    out += " ";
  }
  return out;
}

void printServices(const AdminFlags& admin, const std::vector<json>& items, bool wide) {
  if (wide) {
    std::printf("%-24s %-44s %-6s %-28s %-28s %s\n", "NAME", "URL", "READY", "PREV", "LATEST",
                "PODS ready/total per revision (desired, panic mode, activator in path)");
  } else {
    std::printf("%-24s %-44s %-6s %-28s %-28s\n", "NAME", "URL", "READY", "PREV", "LATEST");
  }
  for (const auto& i : items) {
    const json status = i.value("status", json::object());
    const json p = status.value("components", json::object()).value("predictor", json::object());
    std::string latest, prev;
    for (const auto& t : p.value("traffic", json::array())) {
      std::string entry = t.value("revisionName", "") + " " + std::to_string(t.value("percent", 0)) + "%";
      (t.value("latestRevision", false) ? latest : prev) = entry;
    }
    std::printf("%-24s %-44s %-6s %-28s %-28s", i["metadata"].value("name", "").c_str(),
                status.value("url", "").c_str(), condition(i, "Ready").c_str(), prev.c_str(), latest.c_str());
    if (wide) std::printf(" %s", podsColumn(admin, i).c_str());
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

void printGraphs(const std::vector<json>& items) {
  std::printf("%-28s %-44s %s\n", "NAME", "URL", "READY");
  for (const auto& i : items) {
    std::printf("%-28s %-44s %s\n", i["metadata"].value("name", "").c_str(),
                i.value("status", json::object()).value("url", "").c_str(), condition(i, "Ready").c_str());
  }
}

struct ClientArgs {
  std::string file, kind, name, ns = "default", output;
  bool watch = false;
  int64_t since = 0;
};

int runApply(const ClientArgs& a, const AdminFlags& admin) {
  std::string body, out;
  std::vector<fs::path> files;
  if (a.file == "-") {
    std::stringstream text;
    text << std::cin.rdbuf();
    body = text.str();
  } else if (std::error_code ec; fs::is_directory(a.file, ec)) {
    auto listed = common::filesIn(a.file, {".yaml", ".yml"});
    if (!listed.ok()) {
      std::cerr << "refstack: " << common::toStd(listed.status().message()) << "\n";
      return 2;
    }
    files = std::move(*listed);
  } else {
    files.push_back(a.file);
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
  int rc = adminCall(admin, boost::beast::http::verb::post, "/apply", body, &out);
  if (rc == 0) {
    auto result = common::parseJson(out);
    if (!result.ok() || !result->is_object() || !(*result)["applied"].is_array()) {
      std::cerr << "refstack: the admin API's answer to /apply is not refstack's: " << out.substr(0, 200) << "\n";
      return 1;
    }
    auto text = [](const json& r, const char* key) {
      auto it = r.is_object() ? r.find(key) : r.end();
      return it != r.end() && it->is_string() ? it->get<std::string>() : std::string("?");
    };
    for (const auto& r : (*result)["applied"]) std::cout << text(r, "kind") << "/" << text(r, "name") << " applied\n";
  }
  return rc;
}

int runGetOrDelete(const ClientArgs& a, const AdminFlags& admin, bool remove) {
  Kind k = parseKind(a.kind);
  if (k == Kind::kUnknown) {
    std::cerr << "refstack: unknown kind '" << a.kind
              << "' (isvc, servingruntime, clusterservingruntime, ig; kubectl shows every other kind)\n";
    return 2;
  }
  std::string out;
  int rc = adminCall(admin, remove ? boost::beast::http::verb::delete_ : boost::beast::http::verb::get,
                     resourcePath(k, a.ns, a.name), "", &out);
  if (rc != 0) return rc;
  if (remove) {
    std::cout << a.kind << "/" << a.name << " deleted\n";
    return 0;
  }
  auto parsed = common::parseJson(out);
  if (!parsed.ok()) {
    std::cerr << "refstack: the admin API answered with something other than JSON: " << out.substr(0, 200) << "\n";
    return 1;
  }
  json j = std::move(*parsed);
  if (a.output == "json") {
    std::cout << common::jsonText(j, 2) << "\n";
    return 0;
  }
  if (a.output == "yaml") {
    std::cout << common::jsonToYaml(j);
    return 0;
  }
  std::vector<json> items = j.contains("items") ? j["items"].get<std::vector<json>>() : std::vector<json>{j};
  if (k == Kind::kInferenceService) {
    printServices(admin, items, a.output == "wide");
  } else if (k == Kind::kInferenceGraph) {
    printGraphs(items);
  } else {
    printRuntimes(items);
  }
  return 0;
}

}  // namespace

Command addApplyCommand(CLI::App& app, const AdminFlags& admin) {
  auto args = std::make_shared<ClientArgs>();
  auto* cmd = app.add_subcommand("apply", "Apply KServe manifests (a YAML file, a directory of them, or - for stdin)");
  cmd->add_option("-f,--filename", args->file, "File or directory")->required();
  return [args, &admin] { return runApply(*args, admin); };
}

Command addGetCommand(CLI::App& app, const AdminFlags& admin) {
  auto args = std::make_shared<ClientArgs>();
  auto* cmd = app.add_subcommand("get", "Show resources: refstack get isvc|servingruntime|clusterservingruntime|ig [NAME]");
  cmd->add_option("kind", args->kind, "isvc, servingruntime (sr), clusterservingruntime (csr), inferencegraph (ig)")->required();
  cmd->add_option("name", args->name, "Name");
  cmd->add_option("-n,--namespace", args->ns, "Namespace")->default_val("default");
  cmd->add_option("-o,--output", args->output, "json, yaml or wide")->check(CLI::IsMember({"json", "yaml", "wide"}));
  return [args, &admin] { return runGetOrDelete(*args, admin, false); };
}

Command addDeleteCommand(CLI::App& app, const AdminFlags& admin) {
  auto args = std::make_shared<ClientArgs>();
  auto* cmd = app.add_subcommand("delete", "Delete a resource: refstack delete isvc NAME");
  cmd->add_option("kind", args->kind, "isvc, servingruntime (sr), clusterservingruntime (csr), inferencegraph (ig)")->required();
  cmd->add_option("name", args->name, "Name")->required();
  cmd->add_option("-n,--namespace", args->ns, "Namespace")->default_val("default");
  return [args, &admin] { return runGetOrDelete(*args, admin, true); };
}

Command addEventsCommand(CLI::App& app, const AdminFlags& admin) {
  auto args = std::make_shared<ClientArgs>();
  auto* cmd = app.add_subcommand("events", "Print the event log (JSON lines: status, revision, pod, scale, coldstart ...)");
  cmd->add_flag("-w,--watch", args->watch, "Keep printing new events as they happen");
  cmd->add_option("--since", args->since, "Only events after this sequence number");
  return [args, &admin] {
    if (args->watch) return watchEvents(admin, args->since);
    std::string out;
    int rc = adminCall(admin, boost::beast::http::verb::get, "/events?since=" + std::to_string(args->since), "", &out);
    std::cout << out << std::flush;
    return rc;
  };
}

Command addDownCommand(CLI::App& app, const AdminFlags& admin) {
  app.add_subcommand("down", "Stop a running stack (its pods stop with it)");
  return [&admin] {
    std::string out;
    int rc = adminCall(admin, boost::beast::http::verb::post, "/shutdown", "", &out);
    if (rc == 0) std::cout << "refstack: shutting down\n";
    return rc;
  };
}

}  // namespace kh::refstack::cli
