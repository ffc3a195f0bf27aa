// fixed-response: answers every POST (any path) with one fixed status and body: the helper
// services of KServe's graph e2e tests (kserve/success-200-isvc: 200
// {"predictions":[{"message":"SUCCESS"}]}; kserve/error-404-isvc: 404
// {"detail":"Intentional 404 code"}), run as custom containers. GET answers 200
// {"status":"alive"}, as a KServe model server's liveness route, so that readiness probes pass.

#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <iostream>

#include "CLI/CLI.hpp"
#include "kh/common/strings.h"
#include "kh/http/server.h"

namespace {

int g_signal_pipe[2] = {-1, -1};
void onSignal(int) {
  char c = 1;
  (void)!::write(g_signal_pipe[1], &c, 1);
}

class FixedHandler : public kh::http::Handler {
 public:
  FixedHandler(int status, std::string body) : status_(status), body_(std::move(body)) {}

  void handle(kh::http::Request& req, kh::http::Response& res) override {
    res.set(boost::beast::http::field::content_type, "application/json");
    if (req.method() == boost::beast::http::verb::get || req.method() == boost::beast::http::verb::head) {
      res.result(200);
      res.body() = R"({"status":"alive"})";
      return;
    }
    res.result(static_cast<unsigned>(status_));
    res.body() = body_;
  }

 private:
  int status_;
  std::string body_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fixed-response: every POST gets the same status and body"};
  int status = 200;
  std::string body = R"({"predictions":[{"message":"SUCCESS"}]})";
  int port = 0;
  app.add_option("--status", status, "Status of every POST's answer")->check(CLI::Range(100, 599));
  app.add_option("--body", body, "Body of every POST's answer (JSON)");
  app.add_option("--http_port", port, "Port to serve on (default $PORT)");
  CLI11_PARSE(app, argc, argv);
  if (port == 0 && std::getenv("PORT")) port = std::atoi(std::getenv("PORT"));
  FixedHandler handler(status, body);
  kh::http::ServerOptions options;
  options.port = static_cast<uint16_t>(port);
  options.workers = 1;
  options.server_name = "fixed-response";
  auto server = kh::http::HttpServer::create(options, handler);
  if (!server.ok()) {
    std::cerr << "fixed-response: " << kh::common::toStd(server.status().message()) << "\n";
    return 1;
  }
  if (::pipe(g_signal_pipe) != 0) return 1;
  std::signal(SIGTERM, onSignal);
  std::signal(SIGINT, onSignal);
  (*server)->start();
  std::cerr << "fixed-response: " << status << " on 127.0.0.1:" << (*server)->port() << std::endl;
  char c;
  while (::read(g_signal_pipe[0], &c, 1) != 1) {
  }
  (*server)->drain(std::chrono::seconds(5));
  return 0;
}
