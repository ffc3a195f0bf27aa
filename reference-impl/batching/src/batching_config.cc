#include <fstream>
#include <sstream>

#include "kh/batching/batch_queue.h"
#include "kh/common/strings.h"
#include "nlohmann/json.hpp"

namespace kh::batching {
namespace {

using nlohmann::json;

absl::Status fieldError(std::string_view where, std::string_view field, std::string_view what) {
  return absl::InvalidArgumentError(common::strCat(where, where.empty() ? "" : ": ",
                                                   "dynamic_batching.", field, " ", what));
}

}  // namespace

absl::Status validateBatchingConfig(const BatchingConfig& c) {
  constexpr std::string_view kWhere = "";
  if (c.max_batch_size < 0) return fieldError(kWhere, "max_batch_size", "must be >= 0");
  if (!c.enabled()) return absl::OkStatus();
  if (c.max_queue_delay.count() < 0) {
    return fieldError(kWhere, "max_queue_delay_microseconds", "must be >= 0");
  }
  if (c.max_queue_delay > std::chrono::seconds(60)) {
    return fieldError(kWhere, "max_queue_delay_microseconds", "must be at most 60000000 (60 s)");
  }
  for (int p : c.preferred_batch_sizes) {
    if (p < 1 || p > c.max_batch_size) {
      return fieldError(kWhere, "preferred_batch_size",
                        common::strCat("holds ", p, "; each must be in [1, max_batch_size = ",
                                       c.max_batch_size, "]"));
    }
  }
  if (c.max_queue_size < 1) return fieldError(kWhere, "max_queue_size", "must be >= 1");
  if (c.instances < 1 || c.instances > 64) {
    return fieldError(kWhere, "instance_count", "must be in [1, 64]");
  }
  return absl::OkStatus();
}

namespace {
absl::StatusOr<BatchingConfig> fromJson(const json& section, std::string_view where) {
  if (!section.is_object()) {
    return absl::InvalidArgumentError(common::strCat(where, ": dynamic_batching must be an object"));
  }
  BatchingConfig c;
  auto integer = [&](const json& v, std::string_view field, int64_t lo,
                     int64_t hi) -> absl::StatusOr<int64_t> {
    if (!v.is_number_integer()) return fieldError(where, field, "must be an integer");
    int64_t n = v.get<int64_t>();
    if (n < lo || n > hi) {
      return fieldError(where, field, common::strCat("must be in [", lo, ", ", hi, "], got ", n));
    }
    return n;
  };
  for (const auto& [key, value] : section.items()) {
    if (key == "max_batch_size") {
      auto n = integer(value, key, 0, 1 << 20);
      if (!n.ok()) return n.status();
      c.max_batch_size = static_cast<int>(*n);
    } else if (key == "max_queue_delay_microseconds") {
      auto n = integer(value, key, 0, 60'000'000);
      if (!n.ok()) return n.status();
      c.max_queue_delay = std::chrono::microseconds(*n);
    } else if (key == "preferred_batch_size") {
      if (!value.is_array()) return fieldError(where, key, "must be a list of integers");
      for (const auto& p : value) {
        auto n = integer(p, key, 1, 1 << 20);
        if (!n.ok()) return n.status();
        c.preferred_batch_sizes.push_back(static_cast<int>(*n));
      }
    } else if (key == "max_queue_size") {
      auto n = integer(value, key, 1, 1 << 24);
      if (!n.ok()) return n.status();
      c.max_queue_size = static_cast<int>(*n);
    } else if (key == "instance_count") {
      auto n = integer(value, key, 1, 64);
      if (!n.ok()) return n.status();
      c.instances = static_cast<int>(*n);
    } else {
      return absl::InvalidArgumentError(common::strCat(
          where, ": dynamic_batching has no setting '", key,
          "' (max_batch_size, max_queue_delay_microseconds, preferred_batch_size, "
          "max_queue_size, instance_count)"));
    }
  }
  if (absl::Status st = validateBatchingConfig(c); !st.ok()) {
    return absl::InvalidArgumentError(common::strCat(where, ": ", st.message()));
  }
  return c;
}
}  // namespace

absl::StatusOr<BatchingConfig> parseBatchingJson(std::string_view json_text,
                                                 std::string_view where) {
  json section;
  try {
    section = json::parse(json_text);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(common::strCat(where, ": not valid JSON: ", e.what()));
  }
  return fromJson(section, where);
}

absl::StatusOr<BatchingConfig> readBatchingConfig(const std::filesystem::path& model_dir) {
  std::filesystem::path path = model_dir / "config.json";
  std::ifstream in(path);
  if (!in) return BatchingConfig{};
  std::stringstream text;
  text << in.rdbuf();
  json config;
  try {
    config = json::parse(text.str());
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(common::strCat(path.string(), ": not valid JSON: ", e.what()));
  }
  if (!config.is_object() || !config.contains("dynamic_batching")) return BatchingConfig{};
  return fromJson(config["dynamic_batching"], path.string());
}

}  // namespace kh::batching
