#pragma once
// Test support: `refstack up` as a real process on free ports (the addresses read from its first
// line), and whether a program (kubectl) is on PATH.

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <regex>
#include <string>

#include "absl/status/statusor.h"
#include "kh/process/subprocess.h"
#include "support/modelserver_process.h"

namespace kh::testing {

/** Whether `program` is an executable in one of PATH's directories. */
inline bool onPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "";
  for (size_t start = 0; start <= dirs.size();) {
    size_t colon = dirs.find(':', start);
    std::filesystem::path candidate = std::filesystem::path(dirs.substr(start, colon - start)) / program;
    if (::access(candidate.c_str(), X_OK) == 0) return true;
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return false;
}

/** A running `refstack up`. */
struct RefstackProcess {
  std::unique_ptr<process::Subprocess> process;
  std::string admin;  // host:port
  uint16_t ingress_port = 0;
  uint16_t grpc_port = 0;
};

/** Starts `refstack up --state-dir DIR` on free ports, from the source tree; waits until it serves. */
inline absl::StatusOr<RefstackProcess> startRefstackProcess(const std::filesystem::path& state_dir) {
  using namespace std::chrono_literals;
  process::SpawnOptions o;
  o.argv = {binDir() + "/refstack", "up", "--state-dir", state_dir.string(), "--admin-port", "0", "--ingress-port", "0",
            "--grpc-port", "0"};
  o.working_dir = sourceDir();
  auto child = process::Subprocess::spawn(o);
  if (!child.ok()) return child.status();
  RefstackProcess r;
  r.process = std::move(*child);
  auto line = r.process->waitForLine("refstack up:", 30s);
  if (!line.ok()) return line.status();
  std::smatch m;
  if (!std::regex_search(*line, m, std::regex(R"(admin http://([0-9.]+:[0-9]+), ingress http://[0-9.]+:([0-9]+) grpc [0-9.]+:([0-9]+))"))) {
    return absl::InternalError("unexpected first line: " + *line);
  }
  r.admin = m[1];
  r.ingress_port = static_cast<uint16_t>(std::stoi(m[2]));
  r.grpc_port = static_cast<uint16_t>(std::stoi(m[3]));
  return r;
}

}  // namespace kh::testing
