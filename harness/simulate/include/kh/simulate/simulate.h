#pragma once
// `harness simulate`: what-if for Knative autoscaling. A workload (request arrival times per
// service) is replayed in virtual time through kh::autoscaler's RevisionAutoscaler, the very KPA
// refstack runs, driven as refstack's KpaReconciler drives it: a revision-wide stat every second
// (the scraper's while pods are ready, the activator's for what it holds), the decider every
// tick, the activator's poke for a request at zero pods, a tick whenever the ready pod count
// changes. Pods take `pod_startup` to become ready; requests wait in one FIFO (the activator's
// buffer, or the queue-proxies' queues) until a ready pod has room under containerConcurrency.
// Deterministic: the same inputs give the same result (arrivals come from seeded schedules).
//
// What it reports per service and in total: requests delayed by a cold start (they arrived with
// no pod ready), the added latency (time waiting for a pod), pod-seconds (cost), time at zero,
// scale events and panic episodes. A sweep over config-autoscaler settings gives the Pareto
// front of cost against cold-start share.
//
// Simplifications, documented where a user reads the results: one queue per service (Knative's
// activator balances by containerConcurrency; without it, kube-proxy spreads requests and each
// queue-proxy queues its own); a pod taken away stops taking requests at once and finishes the
// ones it has; service time is a constant.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace kh::simulate {

/** One service's workload: its request arrival times, seconds from the start, non-decreasing. */
struct ServiceWorkload {
  std::string name;
  std::vector<double> arrivals_s;
};

/**
 * Arrivals from a `harness load` schedule description, the same readers `harness load` uses:
 * "trace:FILE" (one offset in seconds per line), "poisson:RATE" (seeded), "constant:RATE",
 * "every:SECONDS" (one request every SECONDS, from 0), a profile ("100@60s,0@300s",
 * "ramp:0-50@600s": steps and ramps, Poisson gaps with the seed),
 * "diurnal:MEAN_RATE:AMPLITUDE[:PERIOD]" (Poisson at MEAN_RATE * (1 + AMPLITUDE sin(2 pi t /
 * PERIOD)), AMPLITUDE in [0, 1], PERIOD 24h by default) or "onoff:RATE:ON:OFF" (Poisson at RATE
 * for ON, nothing for OFF, repeating from ON at 0; fixed lengths). Durations are Go's (90s, 2m,
 * 24h) or a number of seconds. `duration_s` bounds the generated ones (a trace stops there too
 * when > 0).
 * @return InvalidArgument naming the problem (a trace's bad line with its number).
 */
absl::StatusOr<std::vector<double>> arrivalsFrom(const std::string& schedule, double duration_s, uint64_t seed);

/**
 * A span as the simulator takes it (its flags and schedules): what loadgen::parseDuration reads
 * ("90", "1.5", "500ms", "2m") or a Go duration as Knative's config writes them ("1m30s", "24h").
 * @return seconds; InvalidArgument when negative, NaN, infinite or past int64 nanoseconds.
 */
absl::StatusOr<double> parseSpanSeconds(const std::string& text);

/**
 * A fleet of `count` services whose request rates follow a Pareto distribution (shape `alpha`:
 * a few busy services, a long tail of rare ones, as serverless fleets are) and add up to
 * `total_rate` per second; each service's arrivals are Poisson at its rate over `duration_s`.
 * Seeded: the rates come from `seed`, service i's arrivals from `seed + 1 + i`.
 */
struct FleetSpec {
  size_t count = 0;
  double total_rate = 0;
  double alpha = 1.2;
  double duration_s = 0;
  uint64_t seed = 1;
};

/** The rates of a fleet (requests per second per service), in service order. */
std::vector<double> fleetRates(const FleetSpec& fleet);

/** Service i of a fleet: "fleet-000001"... with its arrivals. */
ServiceWorkload fleetService(const FleetSpec& fleet, const std::vector<double>& rates, size_t i);

/**
 * The Azure Functions public trace (Shahrad et al., "Serverless in the Wild", ATC 2020;
 * AzurePublicDataset's invocations_per_function_md.anon.dNN.csv): a header
 * "HashOwner,HashApp,HashFunction,Trigger,1,2,...,1440" and one row per function whose column k
 * is its invocations in minute k of the day. A header whose minute columns are 1..N for another
 * N is read too (every row must then have N counts); the public files have N = 1440.
 */
struct AzureTraceOptions {
  /** Function r (the r-th data row, from 1) spreads its invocations with seed + r. */
  uint64_t seed = 1;
  /** Read only the first `limit` functions (0: all); the rest of the file is not read. */
  size_t limit = 0;
  /** Leave out functions with no invocation at all (they would only sit at zero). */
  bool skip_idle_functions = true;
};

/** One function of an Azure trace: its invocation counts, kept sparse (most minutes are 0). */
struct AzureFunction {
  /** The HashFunction's first 12 characters and the trigger ("0c5f2a9b1d3e-http"); a repeat gets
   *  "-r<row>" added, so names are unique. */
  std::string name;
  /** The seed its arrivals are spread with (AzureTraceOptions::seed + its row). */
  uint64_t seed = 0;
  /** (minute from 1, invocations) of the minutes with any, in order. */
  std::vector<std::pair<uint32_t, uint32_t>> minutes;
  uint64_t invocations = 0;
};

struct AzureTrace {
  std::vector<AzureFunction> functions;
  /** Minute columns in the header (1440 for the public files). */
  size_t minutes = 0;
};

/**
 * Reads an Azure Functions invocation-count file (CRLF line endings and a UTF-8 BOM accepted;
 * empty lines skipped). Only counts are kept; azureService makes a function's arrivals when it
 * is simulated.
 * @return NotFound for an unreadable file; InvalidArgument naming the file and the 1-based line
 * for a bad header, a row with the wrong number of fields, or a count that is not a
 * non-negative integer below 2^32.
 */
absl::StatusOr<AzureTrace> readAzureFunctionsTrace(const std::string& path, const AzureTraceOptions& options = {});

/**
 * A function's arrivals: minute k's n invocations are n uniform times in [60(k-1), 60k), sorted
 * (a Poisson process conditioned on its count in that minute has exactly this law, so the
 * per-minute counts are kept and nothing is assumed within a minute beyond Poisson), drawn
 * from a std::mt19937_64 seeded with the function's seed. Arrivals at or after `duration_s` are
 * left out when it is > 0.
 */
ServiceWorkload azureService(const AzureFunction& function, double duration_s = 0);

/** How each service's pods behave. */
struct ServiceModel {
  /** Time a request holds its pod. */
  double service_time_s = 0.05;
  /** From a pod's creation to its readiness (a cold start's floor). */
  double pod_startup_s = 1.0;
  /**
   * Measured service times (seconds): when given, each request's is drawn from them at random
   * (seeded by SimulationSettings::seed) instead of service_time_s.
   */
  std::vector<double> service_time_samples;
  /** Measured pod start-up times (seconds), drawn for each new pod instead of pod_startup_s. */
  std::vector<double> pod_startup_samples;
  /** containerConcurrency: requests a pod serves at once (0: unlimited). */
  int container_concurrency = 0;
  /**
   * How long a pod taken away still costs: its queue-proxy's drain (Knative waits out the
   * terminationGracePeriod, 30 s by default on a cluster; refstack's drainQuietPeriod is 1 s).
   */
  double pod_drain_s = 0;
  /** Per-service autoscaling annotations (autoscaling.knative.dev/...), as on the revision. */
  std::map<std::string, std::string> annotations;
};

struct SimulationSettings {
  /** Knative's config-autoscaler keys ("stable-window": "60s", ...), over Knative's defaults. */
  std::map<std::string, std::string> autoscaler;
  /** Simulate until here (seconds); 0: the last arrival plus 15 minutes (time to reach zero). */
  double duration_s = 0;
  /** The decider's period (Knative: 2 s; refstack's autoscalerTickSeconds may be shorter). */
  double tick_interval_s = 2;
  /**
   * How late a second's stats reach the KPA: a queue-proxy reports each second and the
   * autoscaler reads the report at its next scrape, so the stat of [k-1, k] arrives up to a
   * second after k (1 s matches refstack's measured scale-to-zero times).
   */
  double stats_delay_s = 1;
  /** Seeds the draws of measured service and start-up times (service i: seed + i). */
  uint64_t seed = 1;
  /** Cost of a pod-hour, to report a price beside pod-seconds (0: none). */
  double price_per_pod_hour = 0;
  /** Keep each service's pods-over-time series (changes only) in the result. */
  bool keep_series = false;
  /**
   * Jump over the time a revision sits at zero with nothing pending (exact: the KPA has nothing
   * to decide there; a test compares both ways). Off: every second is simulated.
   */
  bool skip_idle = true;
};

struct ServiceResult {
  std::string name;
  int64_t requests = 0;
  /** Requests that arrived when no pod was ready and waited for one to start. */
  int64_t cold_start_requests = 0;
  /** Times a request found the revision at zero replicas and woke it (refstack's "coldstart"
   *  events count these). */
  int64_t cold_starts = 0;
  double cold_start_share = 0;
  /** Time each request waited for a pod (added to its service time), over all requests. */
  double added_latency_p50_ms = 0;
  double added_latency_p99_ms = 0;
  double added_latency_max_ms = 0;
  /** Pods alive (starting, ready or draining) integrated over time. */
  double pod_seconds = 0;
  double price = 0;
  /** Time with no pod at all. */
  double zero_seconds = 0;
  /** Changes of the replicas the KPA asked for; of those, to zero. */
  int64_t scale_events = 0;
  int64_t scale_to_zero_events = 0;
  /** Times the decider entered panic mode. */
  int64_t panic_episodes = 0;
  int max_pods = 0;
  /** KPA ticks simulated: the work done (time skipped at zero costs none). */
  int64_t kpa_ticks = 0;
  double simulated_s = 0;
  /** The total's added latency by percentile of all requests ((percentile, ms), 0 to 100): the
   *  cold-start distribution. Empty for a single service's result. */
  std::vector<std::pair<double, double>> added_latency_curve;
  /** (time, pods alive) at each change, when SimulationSettings::keep_series. */
  std::vector<std::pair<double, int>> pods_series;
};

struct SimulationResult {
  std::vector<ServiceResult> services;
  /** Sums (percentiles: over every request of every service). */
  ServiceResult total;
};

/**
 * Runs every service's workload through its own KPA.
 * @return InvalidArgument for bad autoscaler settings or annotations (Knative's messages).
 */
absl::StatusOr<SimulationResult> simulate(const std::vector<ServiceWorkload>& workloads, const ServiceModel& model,
                                          const SimulationSettings& settings);

/**
 * The same over `count` services made one at a time by `workload(i)` and dropped once simulated,
 * so that a large fleet's arrivals are never all in memory.
 */
absl::StatusOr<SimulationResult> simulate(size_t count, const std::function<ServiceWorkload(size_t)>& workload,
                                          const ServiceModel& model, const SimulationSettings& settings);

/**
 * Service times from a `harness load -o` result (its "service_percentile_curve", else its
 * "percentile_curve": [percentile, ms] points): 1,000 quantiles, evenly spaced in probability and
 * interpolated along the curve, in seconds; draws among them follow the measured distribution.
 * @return InvalidArgument when the document is no load result or has no curve.
 */
absl::StatusOr<std::vector<double>> serviceTimesFromLoadResult(const nlohmann::json& run);

/**
 * Pod start-up times from a `harness run` report (report.json) or a scenario's result: each
 * cold start's time to a ready pod ("coldstart" events' breakdown.ready_ms, refstack's), or,
 * where a run has no breakdown (the kube target), its cold_start assertion samples' time to the
 * first byte (an upper bound: it includes the request's own service time). In seconds.
 * @return InvalidArgument when it finds no cold start.
 */
absl::StatusOr<std::vector<double>> podStartupsFromReport(const nlohmann::json& report);

/** One config-autoscaler key and the values a sweep tries. */
struct SweepAxis {
  std::string key;
  std::vector<std::string> values;
};

/** Parses "stable-window=30s,60s,120s" into an axis. @return InvalidArgument. */
absl::StatusOr<SweepAxis> parseSweepAxis(const std::string& text);

struct SweepPoint {
  std::map<std::string, std::string> settings;  // the swept keys' values
  double pod_seconds = 0;
  double cold_start_share = 0;
  double added_latency_p99_ms = 0;
  /** No other point is at least as good on both cost and cold-start share and better on one. */
  bool pareto = false;
  /** These are the settings the simulation was given (the user's current ones). */
  bool current = false;
};

/**
 * Every combination of the axes' values (over `settings.autoscaler`), simulated; the front
 * marked. The user's current settings (those of `settings`) are simulated too and marked.
 */
absl::StatusOr<std::vector<SweepPoint>> sweep(const std::vector<ServiceWorkload>& workloads, const ServiceModel& model,
                                              const SimulationSettings& settings, const std::vector<SweepAxis>& axes);

/** The same over `count` services made one at a time by `workload(i)` (a fleet, a trace's
 *  functions), made again for each setting rather than all kept in memory. */
absl::StatusOr<std::vector<SweepPoint>> sweep(size_t count, const std::function<ServiceWorkload(size_t)>& workload,
                                              const ServiceModel& model, const SimulationSettings& settings,
                                              const std::vector<SweepAxis>& axes);

/** A sweep point's settings as "key=value key=value", for tables. */
std::string settingsLabel(const std::map<std::string, std::string>& settings);

nlohmann::json toJson(const ServiceResult& r);
nlohmann::json toJson(const SimulationResult& r);
nlohmann::json toJson(const std::vector<SweepPoint>& points);

/**
 * A self-contained HTML report of toJson(SimulationResult) (with "sweep" when there was one):
 * the per-service table, pods over time for the first `series_services` services that have a
 * series, and the sweep's front (pod-seconds against cold-start share) with the current
 * settings marked.
 */
std::string reportHtml(const nlohmann::json& result, size_t series_services = 8);

}  // namespace kh::simulate
