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

#include "CLI/CLI.hpp"
#include "kh/common/net.h"
#include "kh/common/strings.h"
#include "kh/http/client.h"
#include "kh/http/server.h"

namespace {

int g_signal_pipe[2] = {-1, -1};
void onSignal(int) {
  char c = 1;
  (void)!::write(g_signal_pipe[1], &c, 1);
}

class Forwarder : public kh::http::Handler {
 public:
  Forwarder(std::string ingress_host, uint16_t ingress_port, std::string predictor_host)
      : ingress_host_(std::move(ingress_host)),
        ingress_port_(ingress_port),
        predictor_host_(std::move(predictor_host)) {}

  void handle(kh::http::Request& req, kh::http::Response& res) override {
    if (req.target() == "/" && req.method() == boost::beast::http::verb::get) {
      res.result(200);
      res.body() = "passthrough-transformer\n";
      return;
    }
    // One keep-alive connection per worker thread; handle() runs on the worker.
    thread_local std::unique_ptr<kh::http::Client> client;
    if (!client) client = std::make_unique<kh::http::Client>(ingress_host_, ingress_port_, std::chrono::seconds(300));
    kh::http::Request upstream = req;
    upstream.set(boost::beast::http::field::host, predictor_host_);
    upstream.erase(boost::beast::http::field::content_length);
    auto answer = client->send(std::move(upstream));
    if (!answer.ok()) {
      res.result(502);
      res.set(boost::beast::http::field::content_type, "application/json");
      res.body() = kh::common::strCat(R"({"error":"transformer: predictor unreachable: )",
                                      kh::common::toStd(answer.status().message()), "\"}");
      return;
    }
    res.result(answer->result());
    for (const auto& field : *answer) {
      if (field.name() == boost::beast::http::field::content_length ||
          field.name() == boost::beast::http::field::connection ||
          field.name() == boost::beast::http::field::server) {
        continue;
      }
      res.set(field.name_string(), field.value());
    }
    res.set("Kh-Transformer", "passthrough");
    res.body() = std::move(answer->body());
  }

 private:
  std::string ingress_host_;
  uint16_t ingress_port_;
  std::string predictor_host_;
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
  Forwarder forwarder(address->host, address->port, predictor_host);
  kh::http::ServerOptions options;
  options.port = static_cast<uint16_t>(port);
  options.workers = 4;
  options.server_name = "passthrough-transformer";
  auto server = kh::http::HttpServer::create(options, forwarder);
  if (!server.ok()) {
    std::cerr << "passthrough-transformer: " << kh::common::toStd(server.status().message()) << "\n";
    return 1;
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
  return 0;
}
