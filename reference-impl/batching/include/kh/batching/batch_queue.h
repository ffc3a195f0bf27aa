#pragma once
// The dynamic batcher's decision alone: which queued requests form the next batch, and when.
// Pure: no threads and no clock (time comes in as arguments), so every rule is unit-tested on a
// virtual clock. DynamicBatcher runs it on real threads.
//
// The rules are Triton's dynamic batcher's (docs/user_guide/model_configuration.md, "Dynamic
// Batcher"; src/dynamic_batch_scheduler.cc), for one priority level and no sequences:
//  - requests join a batch in arrival order while their rows fit in max_batch_size;
//  - a batch goes at once when it is full (max_batch_size reached, or the next request would
//    not fit) or when its size is one of the preferred sizes;
//  - otherwise it waits until its oldest request has waited max_queue_delay; then it goes as
//    the longest queue prefix whose size is a preferred size, or else everything that fits;
//  - with no delay, whatever is queued goes whenever an instance asks (Triton likewise forms a
//    batch only when a model instance is free, which is how batches grow under load).

#include <chrono>
#include <deque>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "kh/common/time_source.h"

namespace kh::batching {

/** A model's dynamic batching settings; Triton's names, in its model config's units. */
struct BatchingConfig {
  /** Most rows (the first dimension of every input) in one batch; 0 turns batching off. */
  int max_batch_size = 0;
  /** How long the oldest queued request may wait for a batch to fill. */
  std::chrono::microseconds max_queue_delay{0};
  /** Sizes that go at once when reached, each in [1, max_batch_size]. */
  std::vector<int> preferred_batch_sizes;
  /**
   * Requests waiting at most; one more is refused (503 / UNAVAILABLE). Triton's 0 means
   * unbounded; we always bound the queue.
   */
  int max_queue_size = 1024;
  /** Batches computed at once (Triton's instance_group count). */
  int instances = 1;

  bool enabled() const { return max_batch_size > 0; }
};

/** @return InvalidArgument naming the field when a setting is out of range. */
absl::Status validateBatchingConfig(const BatchingConfig& config);

/**
 * Parses the "dynamic_batching" object of a model directory's config.json:
 * {"max_batch_size": 64, "max_queue_delay_microseconds": 500, "preferred_batch_size": [16, 32],
 *  "max_queue_size": 1024, "instance_count": 1}. Unknown keys are refused (a misspelt setting
 * must not silently leave batching off). `where` names the source in messages.
 */
absl::StatusOr<BatchingConfig> parseBatchingJson(std::string_view json_text, std::string_view where);

/**
 * Reads model_dir/config.json's "dynamic_batching" section.
 * @return batching off when there is no config.json or no such section; InvalidArgument for a
 *         section that does not parse or validate.
 */
absl::StatusOr<BatchingConfig> readBatchingConfig(const std::filesystem::path& model_dir);

/** A queue of requests, each `rows` rows, forming batches by the rules above. Not thread-safe. */
template <typename Payload>
class BatchQueue {
 public:
  struct Item {
    Payload payload;
    int rows = 0;
    common::MonotonicTime enqueued;
  };

  /** `config` must be valid and enabled. */
  explicit BatchQueue(BatchingConfig config) : config_(std::move(config)) {}

  /**
   * Queues a request of 1..max_batch_size rows; false when the queue is full, and then
   * `payload` is left untouched (still the caller's).
   */
  template <typename P>
  bool push(P&& payload, int rows, common::MonotonicTime now) {
    if (static_cast<int>(items_.size()) >= config_.max_queue_size) return false;
    items_.push_back(Item{Payload(std::forward<P>(payload)), rows, now});
    return true;
  }

  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }

  /** Removes every queued request for which pred(payload) holds and returns them, in order. */
  template <typename Pred>
  std::vector<Item> removeIf(Pred&& pred) {
    // Compacted in place: no allocation unless something is removed.
    std::vector<Item> removed;
    size_t kept = 0;
    for (size_t i = 0; i < items_.size(); ++i) {
      if (pred(items_[i].payload)) {
        removed.push_back(std::move(items_[i]));
      } else {
        if (kept != i) items_[kept] = std::move(items_[i]);
        ++kept;
      }
    }
    items_.resize(kept);
    return removed;
  }

  /** Removes and returns everything queued (for shutdown). */
  std::vector<Item> takeAll() {
    std::vector<Item> all(std::make_move_iterator(items_.begin()),
                          std::make_move_iterator(items_.end()));
    items_.clear();
    return all;
  }

  /**
   * The batch to run now, in arrival order, or nothing yet (then ask again at wakeAt(), or when
   * a request arrives).
   */
  std::optional<std::vector<Item>> take(common::MonotonicTime now) {
    if (items_.empty()) return std::nullopt;
    size_t fits = 0;
    int rows = 0;
    while (fits < items_.size() && rows + items_[fits].rows <= config_.max_batch_size) {
      rows += items_[fits].rows;
      ++fits;
    }
    bool full = fits < items_.size() || rows == config_.max_batch_size;
    if (full || isPreferred(rows) || config_.max_queue_delay.count() == 0) return pop(fits);
    if (now < items_.front().enqueued + config_.max_queue_delay) return std::nullopt;
    // Delay expired: the longest prefix of a preferred size, else all that fits.
    int prefix_rows = 0;
    size_t preferred_prefix = 0;
    for (size_t i = 0; i < fits; ++i) {
      prefix_rows += items_[i].rows;
      if (isPreferred(prefix_rows)) preferred_prefix = i + 1;
    }
    return pop(preferred_prefix > 0 ? preferred_prefix : fits);
  }

  /** When the oldest request's delay runs out (nothing when the queue is empty). */
  std::optional<common::MonotonicTime> wakeAt() const {
    if (items_.empty()) return std::nullopt;
    return items_.front().enqueued + config_.max_queue_delay;
  }

 private:
  bool isPreferred(int rows) const {
    for (int p : config_.preferred_batch_sizes) {
      if (p == rows) return true;
    }
    return false;
  }

  std::vector<Item> pop(size_t n) {
    std::vector<Item> batch;
    batch.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      batch.push_back(std::move(items_.front()));
      items_.pop_front();
    }
    return batch;
  }

  BatchingConfig config_;
  std::deque<Item> items_;
};

}  // namespace kh::batching
