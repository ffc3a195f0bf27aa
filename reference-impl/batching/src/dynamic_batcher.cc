#include "kh/batching/dynamic_batcher.h"

#include <algorithm>

#include "kh/batching/tensor_rows.h"
#include "kh/common/strings.h"

namespace kh::batching {
namespace {
// How long an instance sleeps at most before it reads the clock again while a batch waits for
// its delay. A real clock needs no recheck (the wait is exact); a simulated one moves without
// telling anyone.
constexpr std::chrono::milliseconds kClockRecheck{10};
}  // namespace

DynamicBatcher::DynamicBatcher(std::string model_name, BatchingConfig config, RunBatch run,
                               const common::TimeSource& time, BatchObserver* observer)
    : model_name_(std::move(model_name)),
      config_(std::move(config)),
      run_(std::move(run)),
      time_(time),
      observer_(observer),
      queue_(config_) {
  std::lock_guard lock(join_mu_);
  instances_.reserve(static_cast<size_t>(config_.instances));
  for (int i = 0; i < config_.instances; ++i) instances_.emplace_back([this] { instanceLoop(); });
}

DynamicBatcher::~DynamicBatcher() { stop(); }

void DynamicBatcher::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  std::lock_guard lock(join_mu_);
  for (auto& t : instances_) {
    if (t.joinable()) t.join();
  }
}

void DynamicBatcher::submit(std::vector<protocols::Tensor> inputs, BatchDone done,
                            CancelCheck cancelled) {
  int64_t rows = inputs.empty() || inputs.front().shape.empty() ? 0 : inputs.front().shape[0];
  if (rows > config_.max_batch_size) {
    // Triton's wording for the same refusal.
    done(absl::InvalidArgumentError(common::strCat("inference request batch-size must be <= ",
                                                   config_.max_batch_size, " for '", model_name_,
                                                   "'")));
    return;
  }
  if (rows <= 0) {
    done(run_(inputs));
    return;
  }
  auto pending = std::make_unique<Pending>(
      Pending{std::move(inputs), std::move(done), std::move(cancelled)});
  Pending* raw = pending.get();
  bool queued = false, stopping = false;
  {
    std::lock_guard lock(mu_);
    stopping = stopping_;
    if (!stopping) {
      bool has_check = static_cast<bool>(raw->cancelled);
      queued = queue_.push(std::move(pending), static_cast<int>(rows), time_.monotonicTime());
      if (queued && has_check) ++cancellable_;
    }
  }
  if (queued) {
    wake_.notify_one();
    return;
  }
  // push() leaves the payload alone when it refuses, so `pending` still owns the request.
  if (!stopping && observer_ != nullptr) observer_->onRefused();
  raw->done(absl::UnavailableError(
      stopping ? common::strCat("model '", model_name_, "' is shutting down")
               : common::strCat("model '", model_name_, "': the batch queue is full (",
                                config_.max_queue_size, " requests waiting); retry later")));
}

void DynamicBatcher::instanceLoop() {
  std::unique_lock lock(mu_);
  while (true) {
    std::vector<Queue::Item> gone;
    if (cancellable_ > 0) {
      gone = queue_.removeIf([](const std::unique_ptr<Pending>& p) {
        return p->cancelled && p->cancelled();
      });
      cancellable_ -= static_cast<int>(gone.size());
    }
    std::optional<std::vector<Queue::Item>> batch;
    if (stopping_) {
      // Drain: everything left goes now, in batches as large as allowed.
      if (!queue_.empty()) batch = queue_.take(common::MonotonicTime::max());
    } else {
      batch = queue_.take(time_.monotonicTime());
    }
    if (batch) {
      for (const auto& item : *batch) {
        if (item.payload->cancelled) --cancellable_;
      }
    }
    if (!gone.empty() || batch) {
      // Another instance may be asleep while what is left could already go.
      bool more = !queue_.empty();
      lock.unlock();
      if (more) wake_.notify_one();
      for (auto& item : gone) {
        item.payload->done(absl::CancelledError("the request was cancelled while queued"));
      }
      if (batch) runBatch(std::move(*batch));
      lock.lock();
      continue;
    }
    if (stopping_) return;
    if (auto wake = queue_.wakeAt()) {
      // The clock may be simulated, so wait in real time for what is left on it, at most
      // kClockRecheck at once: a condition variable cannot wait for a simulated time point.
      auto left = std::clamp<std::chrono::nanoseconds>(*wake - time_.monotonicTime(), std::chrono::nanoseconds(0),
                                                       kClockRecheck);
      wake_.wait_for(lock, left);
    } else {
      wake_.wait(lock);
    }
  }
}

void DynamicBatcher::runBatch(std::vector<Queue::Item> batch) {
  auto started = time_.monotonicTime();
  if (observer_ != nullptr) {
    for (const auto& item : batch) observer_->onQueued(started - item.enqueued);
  }
  BatchRecord record;
  record.requests = static_cast<int>(batch.size());
  Outputs outputs;
  std::vector<int> rows;
  rows.reserve(batch.size());
  for (const auto& item : batch) {
    rows.push_back(item.rows);
    record.rows += item.rows;
  }
  if (batch.size() == 1) {
    outputs = run_(batch.front().payload->inputs);
  } else {
    std::vector<const std::vector<protocols::Tensor>*> parts;
    parts.reserve(batch.size());
    for (const auto& item : batch) parts.push_back(&item.payload->inputs);
    auto joined = concatRows(parts);
    outputs = joined.ok() ? run_(*joined) : Outputs(joined.status());
  }
  record.compute = time_.monotonicTime() - started;
  if (observer_ != nullptr) observer_->onBatch(record);
  if (!outputs.ok()) {
    for (auto& item : batch) item.payload->done(outputs.status());
    return;
  }
  auto split = splitRows(std::move(*outputs), rows);
  for (size_t k = 0; k < batch.size(); ++k) {
    batch[k].payload->done(split.ok() ? Outputs(std::move((*split)[k])) : Outputs(split.status()));
  }
}

}  // namespace kh::batching
