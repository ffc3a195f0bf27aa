#pragma once
// The dynamic batcher: requests of one model queue here, BatchQueue decides when they go, and a
// fixed set of instance threads joins them row-wise, runs the model once per batch, and hands
// each request exactly its own rows.

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "kh/batching/batch_queue.h"
#include "kh/common/time_source.h"
#include "kh/protocols/tensor.h"

namespace kh::batching {

using Outputs = absl::StatusOr<std::vector<protocols::Tensor>>;
/** Runs the model on one batch (inputs in model order). Called from instance threads. */
using RunBatch = absl::AnyInvocable<Outputs(std::span<const protocols::Tensor>)>;
/** Receives a request's own outputs, or why it got none. Runs exactly once, on any thread. */
using BatchDone = absl::AnyInvocable<void(Outputs)>;
/** Whether the caller has gone (a cancelled or expired gRPC call); such requests leave the queue. */
using CancelCheck = absl::AnyInvocable<bool() const>;

/** What one batch did, for metrics. */
struct BatchRecord {
  int requests = 0;
  int rows = 0;
  std::chrono::nanoseconds compute{0};
};

/** Receives what the batcher does; called without the batcher's lock held. */
class BatchObserver {
 public:
  virtual ~BatchObserver() = default;
  /** Each request's time in the queue, when its batch starts. */
  virtual void onQueued(std::chrono::nanoseconds waited) = 0;
  virtual void onBatch(const BatchRecord& batch) = 0;
  /** A request refused because the queue was full. */
  virtual void onRefused() = 0;
};

class DynamicBatcher {
 public:
  /**
   * Starts config.instances threads. `config` must be valid and enabled; `observer` may be null
   * and must outlive the batcher. The queue delay runs on `time`: an instance reads it again at
   * least every 10 ms while a batch waits, so a simulated clock works too (the batching rules
   * themselves are tested on a virtual clock through BatchQueue).
   */
  DynamicBatcher(std::string model_name, BatchingConfig config, RunBatch run,
                 const common::TimeSource& time, BatchObserver* observer);
  /** stop() */
  ~DynamicBatcher();

  /**
   * Refuses new requests (Unavailable), runs every queued one, then stops the threads.
   * Idempotent; thread-safe, but not from within a BatchDone or RunBatch.
   */
  void stop();

  DynamicBatcher(const DynamicBatcher&) = delete;
  DynamicBatcher& operator=(const DynamicBatcher&) = delete;

  /**
   * Queues one request: its inputs in model order, each with the same first dimension (rows).
   * `done` gets the request's rows of every output. It is called inline, before submit()
   * returns, when the request is refused: InvalidArgument for more rows than max_batch_size
   * (refused as Triton does, not split), Unavailable when the queue is full or the batcher is
   * stopping. A request of 0 rows runs alone at once.
   */
  void submit(std::vector<protocols::Tensor> inputs, BatchDone done, CancelCheck cancelled = {});

  const BatchingConfig& config() const { return config_; }

 private:
  struct Pending {
    std::vector<protocols::Tensor> inputs;
    BatchDone done;
    CancelCheck cancelled;
  };
  using Queue = BatchQueue<std::unique_ptr<Pending>>;

  void instanceLoop();
  void runBatch(std::vector<Queue::Item> batch);

  const std::string model_name_;
  const BatchingConfig config_;
  RunBatch run_;
  const common::TimeSource& time_;
  BatchObserver* observer_;

  std::mutex mu_;
  std::condition_variable wake_;
  Queue queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int cancellable_ ABSL_GUARDED_BY(mu_) = 0;  // queued requests with a CancelCheck
  std::mutex join_mu_;  // stop() may be called by two threads at once
  std::vector<std::thread> instances_ ABSL_GUARDED_BY(join_mu_);
};

}  // namespace kh::batching
