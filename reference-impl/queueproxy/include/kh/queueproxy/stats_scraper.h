#pragma once
// The autoscaler's side of the queue-proxy's stats (Knative pkg/autoscaler/metrics
// stats_scraper.go): GET /stats on each pod's admin port, all pods at once, over keep-alive
// connections kept between scrapes.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "kh/queueproxy/request_stats.h"

namespace kh::queueproxy {

/** One pod's stat as its queue-proxy reports it (GET /stats on the admin port). */
struct PodStat {
  std::string pod_name;
  StatsReport report;
  double process_uptime_s = 0;
};

/** The JSON body of GET /stats for `stat`. */
std::string podStatJson(const PodStat& stat);
/** Parses a GET /stats body. @return InvalidArgument naming what is wrong. */
absl::StatusOr<PodStat> parsePodStat(std::string_view body);

/**
 * Scrapes many queue-proxies in parallel from one I/O thread of its own. Thread-safe: scrape()
 * may be called from any thread (calls are served one after another).
 */
class StatsScraper {
 public:
  StatsScraper();
  ~StatsScraper();
  StatsScraper(const StatsScraper&) = delete;
  StatsScraper& operator=(const StatsScraper&) = delete;

  /**
   * GET /stats on 127.0.0.1:port for every port at once; returns when all have answered or
   * `timeout` passed. Connections to ports not in this call are closed.
   * @return one result per port, in order: the stat, or why there is none (Unavailable,
   *     DeadlineExceeded, InvalidArgument for a body that is not a stat).
   */
  std::vector<absl::StatusOr<PodStat>> scrape(const std::vector<uint16_t>& ports,
                                              std::chrono::milliseconds timeout);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kh::queueproxy
