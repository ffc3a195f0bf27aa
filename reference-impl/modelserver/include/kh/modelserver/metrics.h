#pragma once
// Prometheus metrics of the model server: requests by protocol, endpoint and status code, and
// latency histograms by protocol and endpoint. Each series is created on first use (so /metrics
// lists only what happened) and cached, so the request path is an atomic load and increment.

#include <array>
#include <atomic>
#include <mutex>
#include <memory>
#include <string>

#include "kh/batching/dynamic_batcher.h"
#include "prometheus/counter.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace kh::modelserver {

enum class Protocol { kV1, kV2, kGrpc, kOther, kCount };

enum class Endpoint {
  kRoot,
  kMetrics,
  kServerLive,
  kServerReady,
  kServerMetadata,
  kModelList,
  kModelReady,
  kModelMetadata,
  kInfer,
  kExplain,
  kRepository,
  kUnknown,
  kCount
};

/**
 * Also the batcher's observer: batch sizes (rows), each request's time in the batch queue,
 * compute time per batch, and requests refused by a full queue.
 */
class ServerMetrics final : public batching::BatchObserver {
 public:
  /** The batching series exist only when `batching` (a server without it does not list them). */
  explicit ServerMetrics(bool batching = false);

  // batching::BatchObserver
  void onQueued(std::chrono::nanoseconds waited) override;
  void onBatch(const batching::BatchRecord& batch) override;
  void onRefused() override;

  /** Records one finished request. Thread-safe and lock-free for counters. */
  void record(Protocol protocol, Endpoint endpoint, int code, double seconds);
  /** The Prometheus text exposition of every metric. */
  std::string serialize() const;

 private:
  static constexpr std::array<int, 12> kCodes = {200, 400, 404, 405, 408, 413, 431, 500, 501, 503, 504, 0};
  static constexpr size_t kP = static_cast<size_t>(Protocol::kCount);
  static constexpr size_t kE = static_cast<size_t>(Endpoint::kCount);

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* requests_family_;
  prometheus::Family<prometheus::Histogram>* latency_family_;
  prometheus::Histogram* batch_rows_ = nullptr;
  prometheus::Histogram* batch_requests_ = nullptr;
  prometheus::Histogram* batch_queue_seconds_ = nullptr;
  prometheus::Histogram* batch_compute_seconds_ = nullptr;
  prometheus::Counter* batch_refused_ = nullptr;
  std::mutex create_mu_;  // only taken the first time a series is used
  std::array<std::array<std::array<std::atomic<prometheus::Counter*>, kCodes.size()>, kE>, kP>
      requests_{};
  std::array<std::array<std::atomic<prometheus::Histogram*>, kE>, kP> latency_{};
};

}  // namespace kh::modelserver
