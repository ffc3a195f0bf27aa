#pragma once
// Test support: runs the real `modelserver` executable on free loopback ports and waits for the
// events it logs ("listening", "loaded and ready") rather than sleeping.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kh/common/strings.h"
#include "kh/process/subprocess.h"

namespace kh::testing {

inline std::string sourceDir() { return KH_TEST_SOURCE_DIR; }
inline std::string binDir() { return KH_TEST_BIN_DIR; }
inline std::string modelDir(const std::string& name) {
  return sourceDir() + "/reference-impl/models/" + name;
}

struct ModelServerProcess {
  std::unique_ptr<process::Subprocess> child;
  uint16_t http_port = 0;
  uint16_t grpc_port = 0;
  std::string log;  // output read so far

  std::string grpcTarget() const { return common::strCat("127.0.0.1:", grpc_port); }
};

/**
 * Starts modelserver with `extra` arguments appended; returns once it listens and, when
 * `wait_ready`, once the model has loaded.
 */
inline absl::StatusOr<ModelServerProcess> startModelServer(const std::string& model_name,
                                                           const std::string& model_dir,
                                                           std::vector<std::string> extra = {},
                                                           bool wait_ready = true,
                                                           std::map<std::string, std::string> env = {}) {
  process::SpawnOptions opts;
  opts.env = std::move(env);
  opts.argv = {binDir() + "/modelserver", "--model_name", model_name, "--model_dir", model_dir,
               "--http_port", "0", "--grpc_port", "0"};
  for (auto& a : extra) opts.argv.push_back(std::move(a));
  // A test that crashes or aborts must not leave its server running.
  opts.die_with_parent = true;
  auto child = process::Subprocess::spawn(opts);
  if (!child.ok()) return child.status();
  ModelServerProcess p;
  p.child = std::move(*child);
  auto line = p.child->waitForLine("listening", std::chrono::seconds(20), &p.log);
  if (!line.ok()) {
    return absl::UnavailableError(common::strCat("modelserver did not start: ",
                                                 common::toStd(line.status().message()),
                                                 "\n", p.log));
  }
  auto port_after = [&](const std::string& key) -> uint16_t {
    auto pos = line->find(key);
    if (pos == std::string::npos) return 0;
    auto colon = line->find(':', pos + key.size());
    return static_cast<uint16_t>(std::stoi(line->substr(colon + 1)));
  };
  p.http_port = port_after("http=");
  p.grpc_port = port_after("grpc=");
  if (wait_ready) {
    auto ready = p.child->waitForLine("loaded and ready", std::chrono::seconds(30), &p.log);
    if (!ready.ok()) {
      return absl::UnavailableError(common::strCat("model did not load: ", p.log));
    }
  }
  return p;
}

}  // namespace kh::testing
