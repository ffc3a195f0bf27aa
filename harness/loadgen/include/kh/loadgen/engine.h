#pragma once
// The load engine: drives one request template over HTTP/1.1 (Boost.Beast, keep-alive) or gRPC
// (callback API) from N threads, each with its own io_context and its own connections. Open-loop
// runs follow a Schedule and measure latency from each request's intended send time
// (coordinated-omission correct) as well as service time from the actual send; late requests
// wait for a free connection and are counted, never dropped. On request, every measured request
// is also kept as a RequestRecord (per-request recording).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kh/common/time_source.h"
#include "kh/loadgen/hdr_histogram.h"
#include "kh/loadgen/schedule.h"

namespace kh::loadgen {

/** What goes on the wire, prepared once. */
struct HttpRequestSpec {
  std::string method = "POST";
  std::string path;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

/** A gRPC ModelInfer request, serialized once (inference.ModelInferRequest bytes). */
struct GrpcRequestSpec {
  std::string serialized_request;
  std::string target;  // host:port
  int channels = 2;
  /** :authority of every call when set (an ingress routes gRPC by it, as HTTP by Host). */
  std::string authority;
};

enum class ErrorKind { kNone, kConnect, kTimeout, kHttpStatus, kProtocol, kCheck, kCount };
const char* errorKindName(ErrorKind kind);

/** Checks a response body; return false to count a kCheck error (e.g. golden outputs). */
using ResponseCheck = std::function<bool(int status, const std::string& body)>;

/** Per-request recording: which requests' records RunResult::records holds. */
struct RequestRecording {
  /** Keep a record of every measured request (after warm-up), errors included. */
  bool enabled = false;
  /**
   * The response header whose value each record keeps: an HTTP header (matched without regard
   * to case) or, for gRPC, the server's initial-metadata key (matched in lower case). Empty:
   * none.
   */
  std::string header;
  /** How many records to expect (request budget, or rate x duration), reserved up front so
   *  that recording does not reallocate while the run goes; 0 = unknown. */
  int64_t expected = 0;
};

/** One measured request, as per-request recording keeps it. */
struct RequestRecord {
  /** Intended send time, seconds from the start of the run (RunResult::started). */
  double intended_s = 0;
  /** done - intended (coordinated-omission corrected), and done - sent. */
  int64_t latency_ns = 0;
  int64_t service_ns = 0;
  /** HTTP: first byte of the response − intended (its status line parsed); -1 when none came
   *  or for gRPC. */
  int64_t first_byte_ns = -1;
  /** HTTP status, or the gRPC status code; 0 when no HTTP response came. */
  int status = 0;
  ErrorKind error = ErrorKind::kNone;
  /** The recorded header's value ("" when absent or none was asked for). */
  std::string header;
};

struct LoadOptions {
  /** Open loop when set; otherwise closed loop with `concurrency` requests in flight. */
  std::unique_ptr<Schedule> schedule;
  int concurrency = 1;
  /** Worker threads; each has its own event loop and its share of the connections. */
  int threads = 1;
  /** Open loop: connections in total (requests queue for a free one). */
  int connections = 16;
  /** Closed loop: stop after this long (open loop: when the schedule ends). */
  Nanos duration{std::chrono::seconds(10)};
  /** Stop after this many completed requests (0 = no limit). */
  int64_t max_requests = 0;
  /** Completed requests before this point are not measured. */
  Nanos warmup{0};
  /** Length of a measurement window. */
  Nanos window{std::chrono::seconds(1)};
  Nanos request_timeout{std::chrono::seconds(10)};
  /** A request more than this late counts as delayed (perf_analyzer uses 1 ms). */
  Nanos late_threshold{std::chrono::milliseconds(1)};
  ResponseCheck check;
  RequestRecording recording;
};

/** Figures of one measurement window (after warm-up). */
struct Window {
  double start_s = 0;  // from the start of measurement
  int64_t completed = 0;
  int64_t errors = 0;
  double throughput = 0;  // completed per second
  int64_t p50_ns = 0, p90_ns = 0, p99_ns = 0, max_ns = 0;  // corrected latency
  double mean_ns = 0;
};

/**
 * Where HTTP requests' time went, for the requests that got a response (as k6's and curl's
 * timings): connect is the TCP handshake, charged to the first request on each connection;
 * send from taking the connection to the request written; wait from written to the first byte
 * of the response (its status line parsed: time to first byte less the send); receive from
 * the first byte to the last.
 */
struct HttpPhases {
  HdrHistogram connect, send, wait, receive;
};

struct RunResult {
  std::string schedule;  // description, or "closed loop, concurrency N"
  std::string transport;
  bool open_loop = false;
  double elapsed_s = 0;        // measured part
  int64_t completed = 0;       // measured requests (successes and errors)
  int64_t succeeded = 0;
  int64_t warmup_requests = 0;
  std::map<std::string, int64_t> errors;       // by kind
  std::map<int, int64_t> status_codes;         // HTTP status or gRPC code
  HdrHistogram corrected;                      // done - intended
  HdrHistogram service;                        // done - sent
  HdrHistogram slip;                           // sent - intended (open loop)
  int64_t delayed = 0;                         // slip > late_threshold
  std::vector<Window> windows;
  std::vector<HdrHistogram> window_histograms;  // corrected latency per window (2 digits)
  double throughput = 0;                       // completed per second over the measured part
  double generator_cpu_percent = 0;            // this process's CPU over the run
  std::string first_error;                     // one example message
  /** Wall-clock time of the run's start, from which intended send times count. */
  common::SystemTime started{};
  /** With LoadOptions::recording: every measured request, ordered by intended send time. */
  std::vector<RequestRecord> records;
  /** HTTP runs: the phases of the measured requests that got a response. */
  std::optional<HttpPhases> http_phases;
};

using ProgressCallback = std::function<void(double elapsed_s, int64_t completed, int64_t errors)>;

/** Runs an HTTP/1.1 load against host:port. @return Unavailable when no connection can be made. */
absl::StatusOr<RunResult> runHttpLoad(const std::string& host, uint16_t port,
                                      const HttpRequestSpec& spec, LoadOptions options,
                                      const common::TimeSource& time,
                                      const ProgressCallback& progress = {});

/** Runs a gRPC ModelInfer load. */
absl::StatusOr<RunResult> runGrpcLoad(const GrpcRequestSpec& spec, LoadOptions options,
                                      const common::TimeSource& time,
                                      const ProgressCallback& progress = {});

}  // namespace kh::loadgen
