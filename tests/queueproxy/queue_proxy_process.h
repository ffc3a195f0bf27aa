#pragma once
// Test support: runs the real `queue-proxy` executable on free loopback ports in front of a user
// container, and waits for the events it logs ("listening", "user container ready").

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kh/common/strings.h"
#include "kh/process/subprocess.h"
#include "support/modelserver_process.h"

namespace kh::testing {

struct QueueProxyProcess {
  std::unique_ptr<process::Subprocess> child;
  uint16_t http_port = 0;
  uint16_t admin_port = 0;
  uint16_t grpc_port = 0;  // 0 unless started with --user_grpc_port
  std::string log;  // output read so far

  /** Reads output until a line contains `needle`. */
  bool waitForLog(const std::string& needle,
                  std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    return child->waitForLine(needle, timeout, &log).ok();
  }
};

inline absl::StatusOr<QueueProxyProcess> startQueueProxy(uint16_t user_port,
                                                         std::vector<std::string> extra = {},
                                                         bool wait_ready = true) {
  process::SpawnOptions opts;
  opts.argv = {binDir() + "/queue-proxy", "--user_port", std::to_string(user_port),
               "--http_port", "0", "--admin_port", "0"};
  for (auto& a : extra) opts.argv.push_back(std::move(a));
  auto child = process::Subprocess::spawn(opts);
  if (!child.ok()) return child.status();
  QueueProxyProcess p;
  p.child = std::move(*child);
  auto line = p.child->waitForLine("listening", std::chrono::seconds(20), &p.log);
  if (!line.ok()) {
    return absl::UnavailableError(common::strCat("queue-proxy did not start: ",
                                                 common::toStd(line.status().message()), "\n",
                                                 p.log));
  }
  auto port_after = [&](const std::string& key) -> uint16_t {
    auto pos = line->find(key);
    if (pos == std::string::npos) return 0;
    auto colon = line->find(':', pos + key.size());
    return static_cast<uint16_t>(std::stoi(line->substr(colon + 1)));
  };
  p.http_port = port_after("http=");
  p.admin_port = port_after("admin=");
  p.grpc_port = port_after(" grpc=");
  // The prober may have succeeded (and logged) before the "listening" line.
  if (wait_ready && p.log.find("user container ready") == std::string::npos &&
      !p.waitForLog("user container ready")) {
    return absl::UnavailableError(common::strCat("user container never ready: ", p.log));
  }
  return p;
}

}  // namespace kh::testing
