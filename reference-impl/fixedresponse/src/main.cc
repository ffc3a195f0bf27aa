// fixed-response: answers every POST (any path) with one fixed status and body: the helper
// services of KServe's graph e2e tests (kserve/success-200-isvc: 200
// {"predictions":[{"message":"SUCCESS"}]}; kserve/error-404-isvc: 404
// {"detail":"Intentional 404 code"}), run as custom containers. GET answers 200
// {"status":"alive"}, as a KServe model server's liveness route, so that readiness probes pass.
// With --never_answer (the fault suite's hung server) every POST is accepted and never answered;
// with --close_mid_response every POST's answer starts (200, chunked, part of a body) and the
// connection closes before it ends; with --startup_delay_ms it listens only after that long (a
// slow model load: the activator holds requests meanwhile).

#include <poll.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <mutex>

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
  FixedHandler(int status, std::string body, bool never_answer, bool close_mid_response)
      : status_(status),
        body_(std::move(body)),
        never_answer_(never_answer),
        close_mid_response_(close_mid_response) {}

  bool isAsync() const override { return never_answer_ || close_mid_response_; }
  void handleAsync(kh::http::Request&& req, kh::http::Responder responder) override {
    if (req.method() == boost::beast::http::verb::post && close_mid_response_) {
      kh::http::Response head;
      head.result(static_cast<unsigned>(status_));
      head.set(boost::beast::http::field::content_type, "application/json");
      auto writer = responder.stream(std::move(head));
      writer->write(body_.substr(0, body_.size() / 2));
      writer->abort();
      return;
    }
    if (req.method() == boost::beast::http::verb::post) {
      // Held, not answered. Bounded: past 100,000 held, the oldest is dropped (answered 500 by
      // kh::http), so a long run cannot grow without limit.
      std::lock_guard lock(mu_);
      held_.push_back(std::move(responder));
      if (held_.size() > 100'000) held_.pop_front();
      return;
    }
    kh::http::Response res;
    handle(req, res);
    responder.send(std::move(res));
  }

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

  /** Lets the held requests go (kh::http answers each 500), so that a drain need not wait. */
  void releaseHeld() {
    std::deque<kh::http::Responder> held;
    {
      std::lock_guard lock(mu_);
      held.swap(held_);
    }
  }

 private:
  int status_;
  std::string body_;
  bool never_answer_;
  bool close_mid_response_;
  std::mutex mu_;
  std::deque<kh::http::Responder> held_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fixed-response: every POST gets the same status and body"};
  int status = 200;
  std::string body = R"({"predictions":[{"message":"SUCCESS"}]})";
  int port = 0;
  bool never_answer = false, close_mid_response = false;
  app.add_option("--status", status, "Status of every POST's answer")->check(CLI::Range(100, 599));
  app.add_flag("--never_answer", never_answer,
               "Accept every POST and never answer it (a hung server, for fault tests)");
  app.add_flag("--close_mid_response", close_mid_response,
               "Start every POST's answer and close the connection halfway through its body (fault tests)");
  int startup_delay_ms = 0;
  app.add_option("--startup_delay_ms", startup_delay_ms,
                 "Listen only after this many milliseconds (a slow model load, for fault tests)")
      ->check(CLI::Range(0, 600'000));
  app.add_option("--body", body, "Body of every POST's answer (JSON)");
  app.add_option("--http_port", port, "Port to serve on (default $PORT)");
  CLI11_PARSE(app, argc, argv);
  if (port == 0 && std::getenv("PORT")) port = std::atoi(std::getenv("PORT"));
  if (::pipe(g_signal_pipe) != 0) return 1;
  std::signal(SIGTERM, onSignal);
  std::signal(SIGINT, onSignal);
  if (startup_delay_ms > 0) {
    // The delay is the fault itself; a SIGTERM meanwhile ends the process at once.
    pollfd signalled{g_signal_pipe[0], POLLIN, 0};
    if (::poll(&signalled, 1, startup_delay_ms) > 0) return 0;
  }
  FixedHandler handler(status, body, never_answer, close_mid_response);
  kh::http::ServerOptions options;
  options.port = static_cast<uint16_t>(port);
  options.workers = 1;
  options.server_name = "fixed-response";
  auto server = kh::http::HttpServer::create(options, handler);
  if (!server.ok()) {
    std::cerr << "fixed-response: " << kh::common::toStd(server.status().message()) << "\n";
    return 1;
  }
  (*server)->start();
  std::cerr << "fixed-response: " << status << " on 127.0.0.1:" << (*server)->port() << std::endl;
  char c;
  while (::read(g_signal_pipe[0], &c, 1) != 1) {
  }
  handler.releaseHeld();
  (*server)->drain(std::chrono::seconds(5));
  return 0;
}
