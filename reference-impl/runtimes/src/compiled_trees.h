#pragma once
// A flat evaluator for XGBoost tree ensembles. libxgboost stays the loader and the reference:
// its in-place prediction costs tens of microseconds per call (it re-reads cgroup CPU limits
// and wakes OpenMP every time), which dwarfs the work for small batches. The trees are copied
// out of the model's JSON form into flat arrays and evaluated with the same float arithmetic;
// the xgboost runtime uses them only after they reproduce libxgboost's output exactly on probe
// rows at load time.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace kh::runtimes {

class CompiledTrees {
 public:
  /**
   * Builds the evaluator from XGBoost's JSON model (XGBoosterSaveModelToBuffer, format json).
   * @return Unimplemented for what it does not cover (dart, categorical splits, multi-target
   *   trees, unknown objectives): the caller then keeps using libxgboost.
   */
  static absl::StatusOr<CompiledTrees> fromJson(std::string_view model_json);

  /** Raw margins, [rows, groups], row-major; `x` is [rows, features] with NaN for missing. */
  void margins(const float* x, int64_t rows, float* out) const;
  /**
   * What XGBoost's predict returns for the objective (type 0): probabilities, values or class
   * indices (as floats), [rows] or [rows, groups] for multi:softprob.
   */
  void predict(const float* x, int64_t rows, std::vector<float>& out) const;

  int groups() const { return groups_; }
  int features() const { return features_; }
  const std::string& objective() const { return objective_; }
  /** Split thresholds per feature, for probe rows. */
  const std::vector<std::vector<float>>& thresholds() const { return thresholds_; }

 private:
  struct Node {
    int32_t left = -1;  // -1 for a leaf
    int32_t right = -1;
    int32_t feature = 0;
    float value = 0;  // split condition, or the leaf's value
    bool default_left = false;
  };
  std::vector<Node> nodes_;
  std::vector<int32_t> roots_;  // index of each tree's root in nodes_
  std::vector<int32_t> groups_of_tree_;
  float base_margin_ = 0;
  int groups_ = 1;
  int features_ = 0;
  std::string objective_;
  std::vector<std::vector<float>> thresholds_;
};

}  // namespace kh::runtimes
