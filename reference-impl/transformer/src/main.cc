// passthrough-transformer: the smallest KServe-style transformer. It serves HTTP on $PORT (or
// --http_port), forwards every inference request unchanged to the predictor named by
// --predictor_host, reaching it through the ingress at $KH_INGRESS_ADDRESS (as a transformer in
// KServe reaches the predictor's cluster-local host), and marks the answer with
// "Kh-Transformer: passthrough". GET / answers 200 once listening (its readiness probe).

#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <vector>

#include "CLI/CLI.hpp"
#include "kh/common/json.h"
#include "kh/common/net.h"
#include "kh/common/strings.h"
#include "kh/http/server.h"
#include "kh/http/upstream_pool.h"
#include "nlohmann/json.hpp"

namespace {

int g_signal_pipe[2] = {-1, -1};
void onSignal(int) {
  char c = 1;
  (void)!::write(g_signal_pipe[1], &c, 1);
}

// Answers on the server's workers without blocking them: each worker forwards through its own
// keep-alive pool to the ingress, so a slow predictor (one held at zero pods, say) holds only
// its own requests, not every connection on the worker.
class Forwarder : public kh::http::Handler {
 public:
  explicit Forwarder(std::string predictor_host) : predictor_host_(std::move(predictor_host)) {}

  /** One pool per worker, bound to its executor; before the server starts. */
  absl::Status connect(kh::http::HttpServer& server, const kh::common::HostPort& ingress) {
    for (int w = 0; w < server.workerCount(); ++w) {
      kh::http::UpstreamPoolOptions o;
      o.host = ingress.host;
      o.port = ingress.port;
      auto pool = kh::http::UpstreamPool::create(server.workerExecutor(w), o);
      if (!pool.ok()) return pool.status();
      pools_.push_back(std::move(*pool));
    }
    return absl::OkStatus();
  }
  /** Closes the pools; once the workers have stopped (after drain), while the server exists. */
  void disconnect() { pools_.clear(); }

  void handle(kh::http::Request&, kh::http::Response& res) override {  // not called: isAsync()
    res.result(500);
  }
  bool isAsync() const override { return true; }

  void handleAsync(kh::http::Request&& req, kh::http::Responder responder) override {
    namespace bhttp = boost::beast::http;
    if (req.target() == "/" && req.method() == bhttp::verb::get) {
      kh::http::Response res;
      res.result(200);
      res.body() = "passthrough-transformer\n";
      return responder.send(std::move(res));
    }
    int worker = responder.workerIndex();
    if (worker < 0 || static_cast<size_t>(worker) >= pools_.size()) {
      return responder.send(error(500, "transformer: no worker pool for this request"));
    }
    req.set(bhttp::field::host, predictor_host_);
    req.erase(bhttp::field::content_length);
    pools_[static_cast<size_t>(worker)]->send(
        std::move(req), std::chrono::seconds(300),
        [responder = std::move(responder)](kh::http::UpstreamResult&& answer, bool) mutable {
          if (!answer.ok()) {
            return responder.send(error(502, kh::common::strCat("transformer: predictor unreachable: ",
                                                                answer.status().message())));
          }
          // The predictor's answer as the ingress relays a pod's: its own headers less the per-hop ones.
          kh::http::Response res = std::move(*answer);
          kh::http::removeHopByHopHeaders(res.base());
          res.erase(bhttp::field::server);
          res.set("Kh-Transformer", "passthrough");
          responder.send(std::move(res));
        });
  }

 private:
  static kh::http::Response error(int status, const std::string& message) {
    kh::http::Response res;
    res.result(static_cast<boost::beast::http::status>(status));
    res.set(boost::beast::http::field::content_type, "application/json");
    res.body() = kh::common::jsonText(nlohmann::json{{"error", message}});
    return res;
  }

  std::string predictor_host_;
  std::vector<std::unique_ptr<kh::http::UpstreamPool>> pools_;  // by worker index
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"passthrough-transformer: forwards requests to the predictor through the ingress"};
  std::string predictor_host;
  int port = 0;
  std::string ingress = "127.0.0.1:8080";
  app.add_option("--predictor_host", predictor_host, "Host of the predictor (KServe passes {{.PredictorHost}})")->required();
  app.add_option("--http_port", port, "Port to serve on (default $PORT)");
  app.add_option("--ingress", ingress, "Ingress address (default $KH_INGRESS_ADDRESS)");
  CLI11_PARSE(app, argc, argv);
  if (port == 0 && std::getenv("PORT")) port = std::atoi(std::getenv("PORT"));
  if (std::getenv("KH_INGRESS_ADDRESS") && app.count("--ingress") == 0) ingress = std::getenv("KH_INGRESS_ADDRESS");
  auto address = kh::common::parseHostPort(ingress);
  if (!address.ok()) {
    std::cerr << "passthrough-transformer: --ingress: " << kh::common::toStd(address.status().message()) << "\n";
    return 2;
  }
  Forwarder forwarder(predictor_host);
  kh::http::ServerOptions options;
  options.port = static_cast<uint16_t>(port);
  options.workers = 4;
  options.server_name = "passthrough-transformer";
  auto server = kh::http::HttpServer::create(options, forwarder);
  if (!server.ok()) {
    std::cerr << "passthrough-transformer: " << kh::common::toStd(server.status().message()) << "\n";
    return 1;
  }
  if (auto st = forwarder.connect(**server, *address); !st.ok()) {
    forwarder.disconnect();
    std::cerr << "passthrough-transformer: --ingress: " << kh::common::toStd(st.message()) << "\n";
    return 2;
  }
  if (::pipe(g_signal_pipe) != 0) return 1;
  std::signal(SIGTERM, onSignal);
  std::signal(SIGINT, onSignal);
  (*server)->start();
  std::cerr << "passthrough-transformer: listening on 127.0.0.1:" << (*server)->port() << ", predictor "
            << predictor_host << " via " << ingress << std::endl;
  char c;
  while (::read(g_signal_pipe[0], &c, 1) != 1) {
  }
  (*server)->drain(std::chrono::seconds(10));
  forwarder.disconnect();  // the workers have stopped; their io_contexts go with the server
  return 0;
}
