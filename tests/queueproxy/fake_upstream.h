#pragma once
// Test support: a user container in the test process with observable behaviour. One thread per
// connection (blocking Beast I/O), so it can count connections and hold requests until told:
//   GET  <readiness path>   200 while ready, else 503
//   *    /hold              waits until releaseHolds(), then 200 "held"
//   *    anything else      200, body "<method> <target> <body>", header X-Upstream: fake
// It records the headers of the last request it served.

#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/http/read.hpp"
#include "boost/beast/http/write.hpp"
#include "kh/http/server.h"

namespace kh::testing {

class FakeUpstream {
 public:
  explicit FakeUpstream(std::string readiness_path = "/v2/health/ready")
      : readiness_path_(std::move(readiness_path)),
        acceptor_(ioc_, boost::asio::ip::tcp::endpoint(
                            boost::asio::ip::make_address("127.0.0.1"), 0)) {
    accept_thread_ = std::thread([this] { acceptLoop(); });
  }
  ~FakeUpstream() { stop(); }

  uint16_t port() const { return port_; }
  void setReady(bool ready) {
    std::lock_guard lock(mu_);
    ready_ = ready;
  }
  /** Held requests complete, and later /hold requests pass straight through. */
  void releaseHolds() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  /** Waits until `n` requests are held at the same time. */
  bool waitHeld(int n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return held_ >= n; });
  }
  int held() {
    std::lock_guard lock(mu_);
    return held_;
  }
  int maxHeld() {
    std::lock_guard lock(mu_);
    return max_held_;
  }
  int connectionsAccepted() {
    std::lock_guard lock(mu_);
    return connections_;
  }
  int requestsServed(const std::string& target) {
    std::lock_guard lock(mu_);
    return static_cast<int>(std::count(targets_.begin(), targets_.end(), target));
  }
  http::Request lastRequest() {
    std::lock_guard lock(mu_);
    return last_;
  }

  void stop() {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
      cv_.notify_all();
      // shutdown() wakes threads blocked in accept() and read() on these sockets.
      ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
      for (auto& s : sockets_) ::shutdown(s->native_handle(), SHUT_RDWR);
    }
    if (accept_thread_.joinable()) accept_thread_.join();
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mu_);
      threads.swap(threads_);
    }
    for (auto& t : threads) t.join();
  }

 private:
  using tcp = boost::asio::ip::tcp;

  void acceptLoop() {
    for (;;) {
      auto socket = std::make_shared<tcp::socket>(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(*socket, ec);
      std::lock_guard lock(mu_);
      if (ec || stopping_) return;
      ++connections_;
      sockets_.push_back(socket);
      threads_.emplace_back([this, socket] { serve(*socket); });
    }
  }

  void serve(tcp::socket& socket) {
    namespace bhttp = boost::beast::http;
    boost::beast::flat_buffer buffer;
    for (;;) {
      http::Request request;
      boost::system::error_code ec;
      bhttp::read(socket, buffer, request, ec);
      if (ec) return;
      http::Response response;
      response.version(11);
      response.result(200);
      std::string target(request.target());
      {
        std::unique_lock lock(mu_);
        targets_.push_back(target);
        if (target == readiness_path_) {
          response.result(ready_ ? 200 : 503);
        } else if (target == "/hold") {
          ++held_;
          max_held_ = std::max(max_held_, held_);
          cv_.notify_all();
          cv_.wait(lock, [&] { return released_ || stopping_; });
          --held_;
          response.body() = "held";
        } else {
          last_ = request;
          response.set("X-Upstream", "fake");
          response.body() = std::string(request.method_string()) + " " + target + " " +
                            request.body();
        }
      }
      response.keep_alive(request.keep_alive());
      response.prepare_payload();
      bhttp::write(socket, response, ec);
      if (ec || !request.keep_alive()) return;
    }
  }

  const std::string readiness_path_;
  boost::asio::io_context ioc_;
  tcp::acceptor acceptor_;
  const uint16_t port_ = acceptor_.local_endpoint().port();
  std::thread accept_thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool ready_ = true;
  bool released_ = false;
  bool stopping_ = false;
  int held_ = 0;
  int max_held_ = 0;
  int connections_ = 0;
  std::vector<std::string> targets_;
  http::Request last_;
  std::vector<std::shared_ptr<tcp::socket>> sockets_;
  std::vector<std::thread> threads_;
};

}  // namespace kh::testing
