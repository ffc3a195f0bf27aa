#include "kh/queueproxy/stats_scraper.h"

#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/post.hpp"
#include "kh/common/json.h"
#include "kh/common/strings.h"
#include "kh/http/upstream_pool.h"
#include "nlohmann/json.hpp"

namespace kh::queueproxy {

namespace net = boost::asio;
using nlohmann::json;

std::string podStatJson(const PodStat& s) {
  // Numbers in their shortest exact form (0, not 0.0), as the harness and tests read them.
  return common::strCat("{\"pod_name\":", common::jsonText(json(s.pod_name)),
                        ",\"average_concurrent_requests\":", s.report.average_concurrency,
                        ",\"average_proxied_concurrent_requests\":", s.report.average_proxied_concurrency,
                        ",\"request_count\":", s.report.request_count,
                        ",\"proxied_request_count\":", s.report.proxied_request_count,
                        ",\"process_uptime\":", s.process_uptime_s, "}");
}

absl::StatusOr<PodStat> parsePodStat(std::string_view body) {
  json j = json::parse(body, nullptr, false);
  if (!j.is_object()) return absl::InvalidArgumentError("a queue-proxy stat must be a JSON object");
  PodStat s;
  auto number = [&](const char* key, double& out) -> absl::Status {
    if (!j.contains(key)) return absl::OkStatus();
    if (!j[key].is_number()) return absl::InvalidArgumentError(common::strCat("stat field '", key, "' must be a number"));
    out = j[key].get<double>();
    return absl::OkStatus();
  };
  for (auto st : {number("average_concurrent_requests", s.report.average_concurrency),
                  number("average_proxied_concurrent_requests", s.report.average_proxied_concurrency),
                  number("request_count", s.report.request_count),
                  number("proxied_request_count", s.report.proxied_request_count),
                  number("process_uptime", s.process_uptime_s)}) {
    if (!st.ok()) return st;
  }
  if (j.contains("pod_name") && j["pod_name"].is_string()) s.pod_name = j["pod_name"].get<std::string>();
  return s;
}

struct StatsScraper::Impl {
  Impl() : work(net::make_work_guard(io)), thread([this] { io.run(); }) {}
  ~Impl() {
    // Pools belong to the I/O thread: they go there, then the thread ends.
    net::post(io, [this] { pools.clear(); });
    work.reset();
    thread.join();
  }

  net::io_context io;
  net::executor_work_guard<net::io_context::executor_type> work;
  std::map<uint16_t, std::unique_ptr<http::UpstreamPool>> pools;  // only on the I/O thread
  std::mutex scrape_mu;  // one scrape at a time
  std::thread thread;
};

StatsScraper::StatsScraper() : impl_(std::make_unique<Impl>()) {}
StatsScraper::~StatsScraper() = default;

std::vector<absl::StatusOr<PodStat>> StatsScraper::scrape(const std::vector<uint16_t>& ports,
                                                          std::chrono::milliseconds timeout) {
  std::lock_guard lock(impl_->scrape_mu);
  struct Round {
    std::vector<absl::StatusOr<PodStat>> results;
    size_t pending = 0;
    std::promise<void> done;
  };
  auto round = std::make_shared<Round>();
  round->results.assign(ports.size(), absl::UnavailableError("not scraped"));
  round->pending = ports.size();
  if (ports.empty()) return {};
  auto future = round->done.get_future();
  auto deadline = std::chrono::steady_clock::now() + timeout;
  net::post(impl_->io, [impl = impl_.get(), round, ports, deadline] {
    // Connections to pods that are gone are closed.
    for (auto it = impl->pools.begin(); it != impl->pools.end();) {
      if (std::find(ports.begin(), ports.end(), it->first) == ports.end()) {
        it = impl->pools.erase(it);
      } else {
        ++it;
      }
    }
    for (size_t i = 0; i < ports.size(); ++i) {
      auto finish = [round, i](absl::StatusOr<PodStat> r) {
        round->results[i] = std::move(r);
        if (--round->pending == 0) round->done.set_value();
      };
      auto& pool = impl->pools[ports[i]];
      if (!pool) {
        http::UpstreamPoolOptions o;
        o.port = ports[i];
        o.max_idle_connections = 1;
        auto created = http::UpstreamPool::create(impl->io.get_executor(), o);
        if (!created.ok()) {
          finish(created.status());
          continue;
        }
        pool = std::move(*created);
      }
      http::Request req{boost::beast::http::verb::get, "/stats", 11};
      req.keep_alive(true);
      pool->send(std::move(req), deadline, [finish, port = ports[i]](http::UpstreamResult&& res, bool) mutable {
        if (!res.ok()) return finish(res.status());
        if (res->result_int() != 200) {
          return finish(absl::UnavailableError(common::strCat("GET /stats on port ", port, ": HTTP ", res->result_int())));
        }
        finish(parsePodStat(res->body()));
      });
    }
  });
  future.wait();
  return std::move(round->results);
}

}  // namespace kh::queueproxy
