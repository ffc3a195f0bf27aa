// queue-proxy: Knative's per-pod sidecar in front of one user container (a model server on
// 127.0.0.1:--user_port). Traffic on --http_port; stats and readiness on --admin_port.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>

#include "CLI/CLI.hpp"
#include "kh/common/files.h"
#include "kh/common/strings.h"
#include "kh/queueproxy/queue_proxy.h"
#include "spdlog/spdlog.h"

namespace {
// The one piece of process-wide state: a signal handler can reach nothing else.
int g_wake_pipe[2] = {-1, -1};

void onSignal(int sig) {
  char byte = static_cast<char>(sig);
  (void)!write(g_wake_pipe[1], &byte, 1);
}
}  // namespace

int main(int argc, char** argv) {
  kh::queueproxy::QueueProxyOptions opts;
  int64_t revision_timeout_ms = 300'000, drain_quiet_period_ms = 30'000;
  int64_t reporting_period_ms = 1'000;
  std::string port_file;

  CLI::App app{"kserve-harness queue-proxy: breaker, timeout, stats and probes in front of one "
               "user container"};
  app.add_option("--host", opts.host, "Address to listen on")->default_val("127.0.0.1");
  app.add_option("--http_port", opts.http_port, "Traffic port (0 = any free port)")
      ->default_val(8012);
  app.add_option("--admin_port", opts.admin_port,
                 "Admin port: GET /stats, /ready, /wait-for-drain (0 = any free port)")
      ->default_val(8022);
  app.add_option("--user_port", opts.user_port, "The user container's HTTP port on 127.0.0.1")
      ->required();
  app.add_option("--user_grpc_port", opts.user_grpc_port,
                 "The user container's gRPC port on 127.0.0.1 (0 = no gRPC proxying)")
      ->default_val(0);
  app.add_option("--grpc_port", opts.grpc_port,
                 "gRPC traffic port, used with --user_grpc_port (0 = any free port)")
      ->default_val(0);
  app.add_option("--container_concurrency", opts.container_concurrency,
                 "Requests in flight to the user container at once (0 = unlimited, no breaker)")
      ->default_val(0)
      ->check(CLI::NonNegativeNumber);
  app.add_option("--revision_timeout_ms", revision_timeout_ms,
                 "Per-request timeout from arrival, queueing included (504 after)")
      ->default_val(300'000)
      ->check(CLI::PositiveNumber);
  app.add_option("--drain_quiet_period_ms", drain_quiet_period_ms,
                 "On SIGTERM, the time without requests before in-flight requests are drained")
      ->default_val(30'000)
      ->check(CLI::NonNegativeNumber);
  app.add_option("--user_readiness_path", opts.user_readiness_path,
                 "The user container's readiness path")
      ->default_val("/v2/health/ready");
  int64_t readiness_retry_ms = 50;
  app.add_option("--readiness_retry_ms", readiness_retry_ms,
                 "Retry interval of the aggressive user-container probe until it is first ready "
                 "(Knative: 50)")
      ->default_val(50)
      ->check(CLI::PositiveNumber);
  app.add_option("--reporting_period_ms", reporting_period_ms, "Stats reporting period")
      ->default_val(1'000)
      ->check(CLI::PositiveNumber);
  app.add_option("--pod_name", opts.pod_name, "Reported as pod_name in /stats")
      ->default_val("queue-proxy");
  app.add_option("--workers", opts.workers, "Traffic worker threads")
      ->default_val(1)
      ->check(CLI::Range(1, 256));
  app.add_option("--port_file", port_file,
                 "Write {\"http_port\": N, \"admin_port\": N} here once listening (for port 0)");
  CLI11_PARSE(app, argc, argv);
  opts.readiness_retry_interval = std::chrono::milliseconds(readiness_retry_ms);

  opts.revision_timeout = std::chrono::milliseconds(revision_timeout_ms);
  opts.drain_quiet_period = std::chrono::milliseconds(drain_quiet_period_ms);
  opts.reporting_period = std::chrono::milliseconds(reporting_period_ms);

  // Signals reach this thread through a self-pipe (as in modelserver).
  if (pipe2(g_wake_pipe, O_CLOEXEC) != 0) {
    spdlog::error("pipe: {}", std::strerror(errno));
    return 1;
  }
  struct sigaction action {};
  action.sa_handler = onSignal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  kh::common::RealTimeSource time;
  auto proxy = kh::queueproxy::QueueProxy::create(opts, time);
  if (!proxy.ok()) {
    spdlog::error("{}", kh::common::toStd(proxy.status().message()));
    return 1;
  }
  (*proxy)->start();
  if (!port_file.empty()) {
    // Readers (tests, refstack) must never see half a file.
    auto written = kh::common::writeFileAtomically(
        port_file, kh::common::strCat("{\"http_port\": ", (*proxy)->httpPort(), ", \"admin_port\": ",
                                      (*proxy)->adminPort(), ", \"grpc_port\": ", (*proxy)->grpcPort(), "}\n"));
    if (!written.ok()) spdlog::warn("port file: {}", kh::common::toStd(written.message()));
  }
  spdlog::info("queue-proxy listening: http={}:{} admin={}:{} grpc={}:{} user=127.0.0.1:{} user_grpc={} cc={}",
               opts.host, (*proxy)->httpPort(), opts.host, (*proxy)->adminPort(), opts.host, (*proxy)->grpcPort(),
               opts.user_port, opts.user_grpc_port, opts.container_concurrency);

  char wake = 0;
  while (read(g_wake_pipe[0], &wake, 1) < 0 && errno == EINTR) {
  }
  spdlog::info("signal {} received", static_cast<int>(wake));
  (*proxy)->shutdown();
  spdlog::info("queue-proxy stopped");
  return 0;
}
