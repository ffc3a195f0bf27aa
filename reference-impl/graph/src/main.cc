// graph-router: KServe's InferenceGraph router (cmd/router) as refstack runs it, as the pods of a
// graph's own revision behind a queue-proxy. `--graph-json` is the graph's spec with each
// serviceName step's serviceUrl filled in by the controller; every request, on any path and
// method except GET /readyz, runs the graph's root node on its body.
//
// As KServe's router: listens on $PORT (8080 by default); /readyz answers 200, and 503 "shutting
// down" from SIGTERM on, while the server keeps serving for --drain_seconds (KServe: 30) and then
// finishes what is in flight; headers matching $PROPAGATE_HEADERS are passed to every step; the
// server timeouts come from routerTimeouts. Each answer carries Kh-Graph-Steps, the per-step
// breakdown (node, step, target, status, start and duration in ms) that reports show.

#include <sys/select.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "CLI/CLI.hpp"
#include "boost/asio/steady_timer.hpp"
#include "kh/common/net.h"
#include "kh/common/random.h"
#include "kh/common/strings.h"
#include "kh/graph/http_step_client.h"
#include "kh/graph/router.h"
#include "kh/http/server.h"
#include "spdlog/spdlog.h"

namespace {

namespace http = boost::beast::http;
using kh::graph::GraphResponse;

int g_signal_pipe[2] = {-1, -1};
void onSignal(int) {
  char c = 1;
  (void)!::write(g_signal_pipe[1], &c, 1);
}

kh::http::Response jsonAnswer(int status, std::string body) {
  kh::http::Response res;
  res.result(static_cast<unsigned>(status));
  res.set(http::field::content_type, "application/json");
  res.body() = std::move(body);
  return res;
}

class GraphHandler final : public kh::http::Handler {
 public:
  GraphHandler(kh::graph::GraphSpec graph, kh::graph::RouterOptions options, std::optional<kh::graph::HostPort> ingress,
               std::chrono::seconds write_timeout, uint64_t seed)
      : graph_(std::move(graph)),
        options_(std::move(options)),
        ingress_(std::move(ingress)),
        write_timeout_(write_timeout),
        random_(seed) {}

  /** One step client and router per worker (bound to its executor: no locks between requests). */
  void bind(kh::http::HttpServer& server) {
    for (int i = 0; i < server.workerCount(); ++i) {
      auto w = std::make_unique<Worker>();
      w->executor = server.workerExecutor(i);
      w->client = std::make_unique<kh::graph::HttpStepClient>(w->executor, ingress_);
      w->router = std::make_unique<kh::graph::Router>(graph_, options_, *w->client, random_);
      workers_.push_back(std::move(w));
    }
  }

  void setShuttingDown() { shutting_down_ = true; }

  bool isAsync() const override { return true; }
  void handle(kh::http::Request&, kh::http::Response&) override {}  // isAsync(): never called

  void handleAsync(kh::http::Request&& req, kh::http::Responder responder) override {
    if (req.target() == "/readyz") {
      kh::http::Response res;
      if (shutting_down_) {
        // Go's http.Error.
        res.result(http::status::service_unavailable);
        res.set(http::field::content_type, "text/plain; charset=utf-8");
        res.set("X-Content-Type-Options", "nosniff");
        res.body() = "shutting down\n";
      } else {
        res.result(http::status::ok);
      }
      return responder.send(std::move(res));
    }
    if (req[http::field::content_type].starts_with("application/grpc")) {
      return responder.send(jsonAnswer(
          415, R"({"error":"Failed to process request","cause":"the InferenceGraph router serves HTTP only (KServe's router has no gRPC): send the V1 or V2 REST request"})"));
    }
    int index = responder.workerIndex();
    if (index < 0 || index >= static_cast<int>(workers_.size())) index = 0;
    Worker& w = *workers_[index];
    kh::graph::Headers headers;
    for (const auto& f : req) headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    // Everything below runs on this worker's thread: the router's steps call back here.
    struct Pending {
      kh::http::Responder responder;
      bool answered = false;
      boost::asio::steady_timer timer;
      explicit Pending(boost::asio::any_io_executor ex) : timer(std::move(ex)) {}
    };
    auto pending = std::make_shared<Pending>(w.executor);
    pending->responder = std::move(responder);
    pending->timer.expires_after(write_timeout_);
    // serverWrite: Go closes the connection when the handler overruns it; we answer 504 so that
    // no accepted request goes unanswered.
    pending->timer.async_wait([pending, secs = write_timeout_.count()](const boost::system::error_code& ec) {
      if (ec || pending->answered) return;
      pending->answered = true;
      pending->responder.send(jsonAnswer(
          504, kh::common::strCat(
          "{\"error\":\"Failed to process request\",\"cause\":\"the graph took longer than the "
          "router's write timeout (routerTimeouts.serverWrite ",
          secs, " s)\"}")));
    });
    w.router->route(std::move(req.body()), headers, [pending](GraphResponse r) mutable {
      if (pending->answered) return;
      pending->answered = true;
      pending->timer.cancel();
      kh::http::Response res;
      res.result(static_cast<unsigned>(r.status));
      if (r.json) res.set(http::field::content_type, "application/json");
      res.set("Kh-Graph-Steps", kh::graph::stepsHeader(r.steps));
      res.body() = std::move(r.body);
      pending->responder.send(std::move(res));
    });
  }

 private:
  struct Worker {
    boost::asio::any_io_executor executor;
    std::unique_ptr<kh::graph::HttpStepClient> client;
    std::unique_ptr<kh::graph::Router> router;
  };
  kh::graph::GraphSpec graph_;
  kh::graph::RouterOptions options_;
  std::optional<kh::graph::HostPort> ingress_;
  std::chrono::seconds write_timeout_;
  kh::common::SeededRandom random_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<bool> shutting_down_{false};
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"graph-router: runs an InferenceGraph (KServe's router) on every request"};
  std::string graph_json;
  std::string name = "graph";
  int port = 0;
  int workers = 2;
  int drain_seconds = 30;
  uint64_t seed = 0;
  std::string ingress;
  app.add_option("--graph-json", graph_json, "The InferenceGraph's spec as JSON, or @FILE")->required();
  app.add_option("--name", name, "The graph's name (in messages)");
  app.add_option("--http_port", port, "Port to serve on (default $PORT, else 8080)");
  app.add_option("--workers", workers, "Server worker threads")->check(CLI::Range(1, 64));
  app.add_option("--drain_seconds", drain_seconds,
                 "After SIGTERM: how long /readyz answers 503 while requests are still served (KServe: 30)")
      ->check(CLI::Range(0, 3600));
  app.add_option("--seed", seed, "Seed of the Splitter's draws (default $KH_RANDOM_SEED, else from the clock)");
  app.add_option("--ingress", ingress, "Where steps on cluster hosts go (default $KH_INGRESS_ADDRESS)");
  CLI11_PARSE(app, argc, argv);
  if (port == 0) port = std::getenv("PORT") ? std::atoi(std::getenv("PORT")) : 8080;
  if (ingress.empty() && std::getenv("KH_INGRESS_ADDRESS")) ingress = std::getenv("KH_INGRESS_ADDRESS");
  if (!graph_json.empty() && graph_json.front() == '@') {
    std::ifstream in(graph_json.substr(1));
    if (!in) {
      std::cerr << "graph-router: cannot read " << graph_json.substr(1) << "\n";
      return 2;
    }
    std::stringstream text;
    text << in.rdbuf();
    graph_json = text.str();
  }
  nlohmann::json spec = nlohmann::json::parse(graph_json, nullptr, false);
  if (spec.is_discarded()) {
    std::cerr << "graph-router: failed to unmarshall inference graph json: --graph-json is not JSON\n";
    return 1;
  }
  // The controller's spec: serviceName steps carry the serviceUrl it resolved them to.
  auto graph = kh::graph::loadGraph(name, spec, /*resolved=*/true);
  if (!graph.ok()) {
    std::cerr << "graph-router: " << kh::common::toStd(graph.status().message()) << "\n";
    return 1;
  }
  kh::graph::RouterOptions options;
  if (const char* patterns = std::getenv("PROPAGATE_HEADERS")) {
    std::vector<std::string> warnings;
    options.propagate = kh::graph::HeaderPatterns::parse(patterns, &warnings);
    for (const auto& w : warnings) spdlog::warn("Failed to compile some header patterns: {}", w);
  }
  const auto& t = graph->router_timeouts;
  if (t.service_client) options.step_timeout = std::chrono::seconds(*t.service_client);
  std::optional<kh::graph::HostPort> ingress_address;
  if (!ingress.empty()) {
    auto a = kh::common::parseHostPort(ingress);
    if (!a.ok()) {
      std::cerr << "graph-router: --ingress: " << kh::common::toStd(a.status().message()) << "\n";
      return 2;
    }
    ingress_address = kh::graph::HostPort{a->host, a->port};
  }
  // refstack seeds each pod (KH_RANDOM_SEED) so that a run's Splitter draws repeat with its seed.
  if (seed == 0 && std::getenv("KH_RANDOM_SEED")) seed = std::strtoull(std::getenv("KH_RANDOM_SEED"), nullptr, 10);
  if (seed == 0) seed = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  GraphHandler handler(*graph, options, ingress_address,
                       std::chrono::seconds(t.server_write.value_or(kh::graph::kDefaultServerWriteSeconds)), seed);
  kh::http::ServerOptions server_options;
  server_options.port = static_cast<uint16_t>(port);
  server_options.workers = workers;
  server_options.server_name = "graph-router";
  auto read = std::chrono::seconds(t.server_read.value_or(kh::graph::kDefaultServerReadSeconds));
  server_options.header_timeout = read;
  server_options.body_timeout = read;
  server_options.idle_timeout = std::chrono::seconds(t.server_idle.value_or(kh::graph::kDefaultServerIdleSeconds));
  auto server = kh::http::HttpServer::create(server_options, handler);
  if (!server.ok()) {
    std::cerr << "graph-router: " << kh::common::toStd(server.status().message()) << "\n";
    return 1;
  }
  handler.bind(**server);
  if (::pipe(g_signal_pipe) != 0) return 1;
  std::signal(SIGTERM, onSignal);
  std::signal(SIGINT, onSignal);
  (*server)->start();
  spdlog::info("graph-router: graph {} ({} nodes) listening on 127.0.0.1:{}, steps on cluster hosts via {}", name,
               graph->nodes.size(), (*server)->port(), ingress.empty() ? "(none)" : ingress);
  char c;
  while (::read(g_signal_pipe[0], &c, 1) != 1) {
  }
  handler.setShuttingDown();
  spdlog::info("graph-router: shutting down; /readyz answers 503 for {} s, then in-flight requests finish",
               drain_seconds);
  // The drain sleep, interruptible by a second signal.
  struct timeval tv{drain_seconds, 0};
  fd_set fds;
  FD_ZERO(&fds);
  FD_SET(g_signal_pipe[0], &fds);
  (void)::select(g_signal_pipe[0] + 1, &fds, nullptr, nullptr, &tv);
  (*server)->drain(std::chrono::seconds(t.server_write.value_or(kh::graph::kDefaultServerWriteSeconds)));
  return 0;
}
