// modelserver: serves one model over V1 REST, V2 REST and V2 gRPC, taking its arguments the way
// KServe's runtimes do (--model_name, --model_dir, --http_port, --grpc_port, --workers).

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <thread>
#include <cstdio>
#include <cstdlib>

#include "CLI/CLI.hpp"
#include "kh/common/files.h"
#include "kh/common/strings.h"
#include "kh/modelserver/model_server.h"
#include "kh/runtimes/model.h"
#include "spdlog/spdlog.h"

namespace {
// The one piece of process-wide state: a signal handler can reach nothing else.
int g_wake_pipe[2] = {-1, -1};

void onSignal(int sig) {
  char byte = static_cast<char>(sig);
  (void)!write(g_wake_pipe[1], &byte, 1);
}

int64_t monotonicNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

int main(int argc, char** argv) {
  // Start-up times for a cold-start breakdown (refstack sets KH_STARTUP_FILE): CLOCK_MONOTONIC is
  // one clock for every process on the machine, so the reader can place them on its own timeline.
  const int64_t process_started_ns = monotonicNanos();
  kh::modelserver::ModelServerOptions opts;
  int64_t max_body_mb = 32;
  int64_t header_timeout_ms = 10'000, idle_timeout_ms = 60'000, load_delay_ms = 0, infer_delay_ms = 0;
  int64_t drain_grace_ms = 30'000;
  std::string port_file;
  std::string runtimes;
  for (const auto& r : kh::runtimes::runtimeNames()) runtimes += (runtimes.empty() ? "" : ", ") + r;

  CLI::App app{"kserve-harness model server: V1 + V2 REST on --http_port, V2 gRPC on --grpc_port"};
  app.add_option("--model_name", opts.model_name, "Name the model is served under")
      ->default_val("model");
  app.add_option("--model_dir", opts.model_dir, "Directory holding the model files")
      ->required()
      ->check(CLI::ExistingDirectory);
  app.add_option("--runtime", opts.runtime,
                 "Runtime: auto (from the files in --model_dir), " + runtimes)
      ->default_val("auto");
  app.add_option("--device", opts.device,
                 "Where the dense runtime computes: auto (CUDA when an NVIDIA device is visible "
                 "and usable, else CPU), cuda (fail to load without one), cpu")
      ->default_val("auto")
      ->check(CLI::IsMember({"auto", "cuda", "cpu"}));
  app.add_option("--host", opts.host, "Address to listen on")->default_val("127.0.0.1");
  app.add_option("--http_port", opts.http_port, "V1/V2 REST port (0 = any free port)")
      ->default_val(8080);
  app.add_option("--grpc_port", opts.grpc_port, "V2 gRPC port (0 = any free port)")
      ->default_val(8081);
  app.add_option("--workers", opts.workers, "HTTP worker threads")->default_val(1)->check(
      CLI::Range(1, 256));
  app.add_option("--grpc_max_message_length", opts.grpc_max_message_bytes,
                 "Largest gRPC message in bytes")
      ->default_val(8 * 1024 * 1024);
  app.add_option("--max_body_mb", max_body_mb, "Largest HTTP request body (413 above)")
      ->default_val(32);
  app.add_option("--max_connections", opts.http.max_connections,
                 "Connections open at once; one more is answered 503 and closed (0 = no limit)")
      ->default_val(opts.http.max_connections);
  app.add_option("--header_timeout_ms", header_timeout_ms,
                 "Time allowed to send a request's headers once started (408 after)")
      ->default_val(10'000);
  app.add_option("--idle_timeout_ms", idle_timeout_ms, "Keep-alive idle timeout")
      ->default_val(60'000);
  app.add_option("--drain_grace_ms", drain_grace_ms,
                 "On SIGTERM, how long in-flight requests may take before being cut")
      ->default_val(30'000);
  app.add_option("--load_delay_ms", load_delay_ms,
                 "Testing aid: wait this long before loading the model (not ready meanwhile)")
      ->default_val(0);
  app.add_option("--infer_delay_ms", infer_delay_ms,
                 "Every prediction takes at least this long, holding its worker (a slow model, for "
                 "scaling and back-pressure tests)")
      ->default_val(0);
  int max_batch_size = 0, max_queue_size = 0, batch_instances = 1;
  int64_t max_queue_delay_us = 0;
  std::vector<int> preferred_batch_sizes;
  auto* batch_flag = app.add_option(
      "--max_batch_size", max_batch_size,
      "Dynamic batching: most rows in one batch (0 = off). Overrides model_dir/config.json's "
      "\"dynamic_batching\" section, as do the other batching flags")
      ->check(CLI::Range(0, 1 << 20))
      ->group("Dynamic batching");
  auto* delay_flag = app.add_option("--max_queue_delay_microseconds", max_queue_delay_us,
                                    "How long the oldest queued request waits for a batch to fill")
                         ->check(CLI::Range(int64_t{0}, int64_t{60'000'000}))
                         ->group("Dynamic batching");
  auto* preferred_flag =
      app.add_option("--preferred_batch_size", preferred_batch_sizes,
                     "Batch sizes sent at once when reached (repeat or comma-separate)")
          ->delimiter(',')
          ->group("Dynamic batching");
  auto* queue_flag = app.add_option("--max_queue_size", max_queue_size,
                                    "Requests waiting for a batch at most; more get 503 / "
                                    "UNAVAILABLE (default 1024)")
                         ->check(CLI::Range(1, 1 << 24))
                         ->group("Dynamic batching");
  auto* instances_flag =
      app.add_option("--batch_instances", batch_instances, "Batches computed at once (threads)")
          ->check(CLI::Range(1, 64))
          ->group("Dynamic batching");
  app.add_option("--port_file", port_file,
                 "Write {\"http_port\": N, \"grpc_port\": N} here once listening (for port 0)");
  CLI11_PARSE(app, argc, argv);

  if (batch_flag->count() > 0) opts.batching.max_batch_size = max_batch_size;
  if (delay_flag->count() > 0) opts.batching.max_queue_delay_us = max_queue_delay_us;
  if (preferred_flag->count() > 0) opts.batching.preferred_batch_sizes = preferred_batch_sizes;
  if (queue_flag->count() > 0) opts.batching.max_queue_size = max_queue_size;
  if (instances_flag->count() > 0) opts.batching.instances = batch_instances;
  opts.http.max_body_bytes = static_cast<size_t>(max_body_mb) * 1024 * 1024;
  opts.http.header_timeout = std::chrono::milliseconds(header_timeout_ms);
  opts.http.idle_timeout = std::chrono::milliseconds(idle_timeout_ms);
  opts.load_delay = std::chrono::milliseconds(load_delay_ms);
  opts.infer_delay = std::chrono::milliseconds(infer_delay_ms);

  // Signals reach this thread through a self-pipe: libraries (OpenBLAS, OpenMP) start threads
  // before main(), so blocking signals for sigwait cannot cover every thread.
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

  // Knative tells each pod its revision; answering with it lets a harness behind a real ingress
  // see which revision served (refstack's ingress adds Kh-Revision itself).
  if (const char* revision = std::getenv("K_REVISION"); revision && *revision) opts.revision = revision;
  if (const char* startup_file = std::getenv("KH_STARTUP_FILE"); startup_file && *startup_file) {
    // Written before the model is marked ready, so a reader that saw the server ready finds it.
    opts.on_model_loaded = [path = std::string(startup_file), process_started_ns] {
      int64_t loaded_ns = monotonicNanos();
      auto written = kh::common::writeFileAtomically(
          path, kh::common::strCat("{\"process_started_monotonic_ns\": ", process_started_ns,
                                   ", \"model_loaded_monotonic_ns\": ", loaded_ns, "}\n"),
          kh::common::Durability::kVisibleOnly);
      if (!written.ok()) spdlog::warn("startup file: {}", kh::common::toStd(written.message()));
    };
  }
  kh::common::RealTimeSource time;
  auto server = kh::modelserver::ModelServer::create(opts, time);
  if (!server.ok()) {
    spdlog::error("{}", kh::common::toStd(server.status().message()));
    return 1;
  }
  if (!port_file.empty()) {
    // Readers (tests, refstack) must never see half a file.
    auto written = kh::common::writeFileAtomically(
        port_file, kh::common::strCat("{\"http_port\": ",
                                      (*server)->httpPort(), ", \"grpc_port\": ", (*server)->grpcPort(), "}\n"));
    if (!written.ok()) spdlog::warn("port file: {}", kh::common::toStd(written.message()));
  }
  spdlog::info("modelserver listening: http={}:{} grpc={}:{} model={} dir={}", opts.host,
               (*server)->httpPort(), opts.host, (*server)->grpcPort(), opts.model_name,
               opts.model_dir);

  // The loader reports a failed load through the same pipe (byte 0).
  int exit_code = 0;
  std::thread watch([&] {
    absl::Status st = (*server)->waitForLoad();
    if (!st.ok()) {
      spdlog::error("model '{}' failed to load: {}", opts.model_name,
                    kh::common::toStd(st.message()));
      exit_code = 1;
      char zero = 0;
      (void)!write(g_wake_pipe[1], &zero, 1);
    } else {
      spdlog::info("model '{}' loaded and ready", opts.model_name);
    }
  });
  char wake = 0;
  while (read(g_wake_pipe[0], &wake, 1) < 0 && errno == EINTR) {
  }
  if (wake != 0) spdlog::info("signal {}: stopping", static_cast<int>(wake));
  (*server)->drain(std::chrono::milliseconds(drain_grace_ms));
  watch.join();
  spdlog::info("modelserver stopped");
  return exit_code;
}
