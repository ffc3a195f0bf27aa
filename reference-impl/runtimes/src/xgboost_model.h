#pragma once
// The xgboost runtime: a real XGBoost booster (libxgboost C API) loaded from model.json,
// model.ubj or model.bst, predicting with thread-safe in-place prediction.

#include <filesystem>
#include <string>

#include "absl/status/statusor.h"
#include "kh/runtimes/model.h"

namespace kh::runtimes {

/** @return the model file XGBoost can load from `dir`, or NotFound. */
absl::StatusOr<std::filesystem::path> findXgboostModelFile(const std::filesystem::path& dir);

absl::StatusOr<ModelPtr> loadXgboostModel(std::string_view model_name,
                                          const std::filesystem::path& dir);

}  // namespace kh::runtimes
