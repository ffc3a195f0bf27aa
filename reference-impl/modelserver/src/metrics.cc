#include "kh/modelserver/metrics.h"

#include <sstream>

#include "prometheus/text_serializer.h"

namespace kh::modelserver {
namespace {
constexpr const char* kProtocolNames[] = {"v1", "v2", "grpc", "other"};
constexpr const char* kEndpointNames[] = {"root", "metrics", "server_live", "server_ready",
                                          "server_metadata", "model_list", "model_ready",
                                          "model_metadata", "infer", "explain", "repository",
                                          "unknown"};
}  // namespace

const prometheus::Histogram::BucketBoundaries kBuckets = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5, 1, 2.5, 5, 10};

ServerMetrics::ServerMetrics(bool batching) : registry_(std::make_shared<prometheus::Registry>()) {
  requests_family_ = &prometheus::BuildCounter()
                          .Name("kh_modelserver_requests_total")
                          .Help("Requests answered, by protocol, endpoint and status code")
                          .Register(*registry_);
  latency_family_ = &prometheus::BuildHistogram()
                         .Name("kh_modelserver_request_duration_seconds")
                         .Help("Time from a whole request read to its response ready")
                         .Register(*registry_);
  if (!batching) return;
  const prometheus::Histogram::BucketBoundaries sizes = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
  batch_rows_ = &prometheus::BuildHistogram()
                     .Name("kh_modelserver_batch_size")
                     .Help("Rows per batch run by the dynamic batcher")
                     .Register(*registry_)
                     .Add({}, sizes);
  batch_requests_ = &prometheus::BuildHistogram()
                         .Name("kh_modelserver_batch_requests")
                         .Help("Requests joined in each batch run by the dynamic batcher")
                         .Register(*registry_)
                         .Add({}, sizes);
  batch_queue_seconds_ = &prometheus::BuildHistogram()
                              .Name("kh_modelserver_batch_queue_duration_seconds")
                              .Help("Time each request waited in the batch queue")
                              .Register(*registry_)
                              .Add({}, kBuckets);
  batch_compute_seconds_ = &prometheus::BuildHistogram()
                                .Name("kh_modelserver_batch_compute_duration_seconds")
                                .Help("Time to compute one batch (join, predict)")
                                .Register(*registry_)
                                .Add({}, kBuckets);
  batch_refused_ = &prometheus::BuildCounter()
                        .Name("kh_modelserver_batch_queue_refused_total")
                        .Help("Requests refused because the batch queue was full")
                        .Register(*registry_)
                        .Add({});
}

void ServerMetrics::onQueued(std::chrono::nanoseconds waited) {
  if (batch_queue_seconds_ == nullptr) return;
  batch_queue_seconds_->Observe(std::chrono::duration<double>(waited).count());
}

void ServerMetrics::onBatch(const batching::BatchRecord& batch) {
  if (batch_rows_ == nullptr) return;
  batch_rows_->Observe(batch.rows);
  batch_requests_->Observe(batch.requests);
  batch_compute_seconds_->Observe(std::chrono::duration<double>(batch.compute).count());
}

void ServerMetrics::onRefused() {
  if (batch_refused_ != nullptr) batch_refused_->Increment();
}

void ServerMetrics::record(Protocol protocol, Endpoint endpoint, int code, double seconds) {
  size_t p = static_cast<size_t>(protocol), e = static_cast<size_t>(endpoint);
  size_t c = kCodes.size() - 1;
  for (size_t i = 0; i + 1 < kCodes.size(); ++i) {
    if (kCodes[i] == code) {
      c = i;
      break;
    }
  }
  prometheus::Counter* counter = requests_[p][e][c].load(std::memory_order_acquire);
  prometheus::Histogram* histogram = latency_[p][e].load(std::memory_order_acquire);
  if (counter == nullptr || histogram == nullptr) {
    std::lock_guard lock(create_mu_);
    std::string code_label = kCodes[c] ? std::to_string(kCodes[c]) : "other";
    counter = &requests_family_->Add({{"protocol", kProtocolNames[p]},
                                      {"endpoint", kEndpointNames[e]},
                                      {"code", code_label}});
    histogram = &latency_family_->Add(
        {{"protocol", kProtocolNames[p]}, {"endpoint", kEndpointNames[e]}}, kBuckets);
    requests_[p][e][c].store(counter, std::memory_order_release);
    latency_[p][e].store(histogram, std::memory_order_release);
  }
  counter->Increment();
  histogram->Observe(seconds);
}

std::string ServerMetrics::serialize() const {
  prometheus::TextSerializer serializer;
  std::ostringstream out;
  serializer.Serialize(out, registry_->Collect());
  return out.str();
}

}  // namespace kh::modelserver
