#pragma once
// The load planner: one typed description of a load run (LoadSpec) and the one function that
// turns it into what the engine runs (planLoad: LoadOptions with the schedule, the payload and
// the RunConfig recorded with the result). `harness load` fills a LoadSpec from its flags and a
// scenario `load` step from its options, both through LoadFlags, so that the same options give
// the same run whichever way they were written.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kh/common/net.h"
#include "kh/common/time_source.h"
#include "kh/loadgen/engine.h"
#include "kh/loadgen/payload.h"
#include "kh/loadgen/results.h"
#include "kh/loadgen/schedule.h"
#include "nlohmann/json.hpp"

namespace kh::loadgen {

/** How open-loop requests are spaced: evenly, or with exponential (Poisson) gaps. */
enum class Arrival { kConstant, kPoisson };

/** The schedule a spec runs; its name is RunConfig::mode ("closed", "constant", ...). */
enum class ScheduleKind { kClosed, kConstant, kPoisson, kProfile, kTrace };
const char* scheduleKindName(ScheduleKind kind);

/** A latency objective, "p99=50ms": the percentile (0 < p < 100) and its bound. */
struct Slo {
  double percentile = 0;
  double target_ms = 0;
};

/**
 * Everything one load run needs, typed. The defaults are `harness load`'s (README.md); fields a
 * caller does not set keep them. No I/O happens until buildPayload() / planLoad().
 */
struct LoadSpec {
  // Where the requests go.
  /** HTTP base URL ("http://host:port"); REST metadata is read here too. */
  std::string target = "http://127.0.0.1:8080";
  /** host:port of the V2 gRPC endpoint; needed by WireProtocol::kGrpc. */
  std::string grpc_target;
  std::string model;
  WireProtocol protocol = WireProtocol::kV2;

  // What is sent.
  /** A request file (see payloadFromFile); empty: generated from the model's V2 metadata. */
  std::string input;
  /** Batch size and seed of a generated request; the seed also seeds Poisson arrivals. */
  int batch = 1;
  uint64_t seed = 1;
  /** Extra headers of every request (and of the metadata read); a Host is the gRPC :authority. */
  std::vector<std::pair<std::string, std::string>> headers;
  /** A golden response checked against every response (empty: none), with its tolerances. */
  std::string expect;
  double atol = 1e-5;
  double rtol = 1e-4;

  // When requests are sent: `stages` (a profile) when given, else `trace`, else open loop at
  // `rate` when it is > 0, else closed loop with `concurrency` requests in flight (see
  // scheduleKind()).
  std::vector<Stage> stages;
  /** A file of send offsets (makeTraceSchedule). */
  std::string trace;
  double rate = 0;
  /** Gaps of the `rate` and of the stages. */
  Arrival arrival = Arrival::kConstant;
  /** Closed loop; values below 1 mean 1. */
  int concurrency = 1;

  // How the run goes.
  int threads = 1;
  /** Open loop: connections (gRPC: calls in flight) over all threads. */
  int connections = 64;
  /** Length of a closed-loop or `rate` run, and the bound of a trace replay. */
  Nanos duration{std::chrono::seconds(10)};
  /** Stop after this many requests (0 = no limit). */
  int64_t requests = 0;
  Nanos warmup{std::chrono::seconds(1)};
  /** Measurement window; shorter than 100 ms counts as 100 ms. */
  Nanos window{std::chrono::seconds(1)};
  /** Per-request timeout. */
  Nanos timeout{std::chrono::seconds(10)};

  // Reported with the run (RunConfig).
  std::optional<Slo> slo;
  double slo_confidence = 0.99;
  int stability_windows = 3;
  /** A fraction (0.10 = 10%). */
  double stability_tolerance = 0.10;
  /** The run's name in reports (default: protocol and mode). */
  std::string label;

  // Per-request recording (RunResult::records).
  bool per_request = false;
  /** Response header kept with each record (gRPC: the initial-metadata key); empty: none. */
  std::string record_header;
};

/** Which schedule `spec` runs: a profile, else a trace, else `rate` > 0, else closed loop. */
ScheduleKind scheduleKind(const LoadSpec& spec);

/**
 * Checks what can be checked without I/O: the target parses, a model is named, gRPC has an
 * endpoint, numbers are in range. @return InvalidArgument with a message naming the field.
 */
absl::Status validateLoadSpec(const LoadSpec& spec);

/**
 * What the request carries, prepared once per spec (a search runs many plans with one payload):
 * read from `spec.input` or generated from the model's metadata (fetched from the target, over
 * gRPC for the grpc protocol), with the spec's headers and :authority.
 * @return validateLoadSpec()'s errors, the file's (InvalidArgument, NotFound), or the metadata
 *         fetch's with its code kept (Unavailable: the target did not answer), prefixed
 *         "cannot read the model's metadata: ".
 */
absl::StatusOr<Payload> buildPayload(const LoadSpec& spec);

/** What the engine runs: a plan is used up by one run (its schedule is consumed). */
struct LoadPlan {
  LoadOptions options;
  Payload payload;  // grpc.target and grpc.channels filled in
  RunConfig config;
  /** HTTP transports: where to connect. */
  common::HostPort http;
  bool grpc = false;
};

/**
 * The one planner: the schedule (made here and nowhere else), the engine's options (threads,
 * connections, budget, warm-up, window, timeouts, golden check, per-request recording with
 * room reserved from the budget or rate x duration) and the RunConfig, for `payload` (from
 * buildPayload(spec)). Reads the trace and golden files. @return InvalidArgument / NotFound.
 */
absl::StatusOr<LoadPlan> planLoad(const LoadSpec& spec, const Payload& payload);
/** buildPayload() and planLoad() in one. */
absl::StatusOr<LoadPlan> planLoad(const LoadSpec& spec);

/** Runs `plan` on its transport (runHttpLoad or runGrpcLoad). */
absl::StatusOr<RunResult> runPlan(LoadPlan plan, const common::TimeSource& time,
                                  const ProgressCallback& progress = {});

/**
 * `harness load`'s options as written: strings where the command line takes durations, the
 * SLO, the protocol, the arrival process, the profile and headers. Field names are the long
 * flag names with '_' for '-' (headers is --header, repeatable). The defaults are the CLI's.
 */
struct LoadFlags {
  std::string target = "http://127.0.0.1:8080";
  std::string grpc;
  std::string model;
  std::string protocol = "v2";
  int concurrency = 0;
  double rate = 0;
  std::string arrival = "constant";
  uint64_t seed = 1;
  std::string profile;
  std::string trace;
  std::string duration = "10s";
  std::string warmup = "1s";
  std::string window = "1s";
  int64_t requests = 0;
  int threads = 1;
  int connections = 64;
  std::string input;
  int batch = 1;
  std::string expect;
  double atol = 1e-5;
  double rtol = 1e-4;
  std::string timeout = "10s";
  std::string slo;
  double slo_confidence = 0.99;
  int stability_windows = 3;
  /** Percent. */
  double stability_tolerance = 10;
  std::string label;
  std::vector<std::string> headers;  // "Name: value"
};

/**
 * Converts flags to a spec, parsing every textual value. Messages name the option as
 * `option_prefix` + its name: "--slo wants pXX=DURATION ..." for the command line ("--" also
 * turns '_' into '-'), "load.slo wants ..." for a scenario ("load."). Only the text is checked
 * here; validateLoadSpec() checks the rest. @return InvalidArgument.
 */
absl::StatusOr<LoadSpec> loadSpecFromFlags(const LoadFlags& flags,
                                           std::string_view option_prefix = "--");

/**
 * Overrides `base` with JSON options named as LoadFlags' fields (a scenario step's `load`
 * options): durations as seconds (numbers) or duration strings, numbers, strings, and
 * `headers` as a list of "Name: value". Relative `input`, `trace` and `expect` paths resolve
 * against `base_dir`. @return InvalidArgument naming the option (`option_prefix` + key) for an
 * unknown key or a value of the wrong type.
 */
absl::StatusOr<LoadFlags> loadFlagsFromJson(const nlohmann::json& options, LoadFlags base,
                                            const std::filesystem::path& base_dir = {},
                                            std::string_view option_prefix = "load.");

}  // namespace kh::loadgen
