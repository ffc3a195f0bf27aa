#pragma once
// The xgboost runtime: a real XGBoost booster (libxgboost C API) loaded from model.json,
// model.ubj or model.bst. Predictions come from libxgboost's in-place prediction, or from
// CompiledTrees when those reproduce libxgboost exactly on probe rows at load.
//
// Metadata: input "input-0" FP32 [-1, num_feature] (any numeric datatype is accepted and
// converted); output "output-0" by objective: multi:softmax INT64 [-1] class index,
// multi:softprob FP32 [-1, num_class] probabilities, multi-target models FP32 [-1, num_target],
// anything else (binary:logistic probability, reg:* value, ...) FP32 [-1].

#include <filesystem>
#include <string_view>

#include "absl/status/statusor.h"
#include "kh/runtimes/model.h"

namespace kh::runtimes {

struct XgboostOptions {
  /** Try CompiledTrees (kept only when they match libxgboost on probe rows). */
  bool compile_trees = true;
};

/** @return the model file XGBoost can load from `dir` (model.json, .ubj, .bst), or NotFound. */
absl::StatusOr<std::filesystem::path> findXgboostModelFile(const std::filesystem::path& dir);

/**
 * Loads the booster in `dir`. The metadata's "predictor" property says which path predicts.
 * @return NotFound without a model file, InvalidArgument when libxgboost cannot load it.
 */
absl::StatusOr<ModelPtr> loadXgboostModel(std::string_view model_name,
                                          const std::filesystem::path& dir,
                                          XgboostOptions options = {});

}  // namespace kh::runtimes
