#include "kh/runtimes/model.h"

#include <algorithm>

#include "dense_model.h"
#include "kh/common/strings.h"
#include "xgboost_model.h"

namespace kh::runtimes {
namespace {

constexpr std::string_view kAuto = "auto";

// "auto": an XGBoost model file wins, then config.json with model.safetensors.
absl::StatusOr<std::string> detectRuntime(const std::filesystem::path& dir) {
  if (findXgboostModelFile(dir).ok()) return std::string("xgboost");
  std::error_code ec;
  if (std::filesystem::is_regular_file(dir / "config.json", ec) &&
      std::filesystem::is_regular_file(dir / "model.safetensors", ec)) {
    return std::string("dense");
  }
  return absl::NotFoundError(
      common::strCat("no model found in ", dir.string(),
                     ": expected model.json, model.ubj or model.bst (xgboost) or config.json with "
                     "model.safetensors (dense)"));
}

}  // namespace

std::vector<std::string> runtimeNames() { return {"xgboost", "dense"}; }

std::vector<std::string> deviceNames() { return {"auto", "cuda", "cpu"}; }

absl::StatusOr<ModelPtr> loadModel(std::string_view runtime, std::string_view model_name,
                                   const std::filesystem::path& model_dir,
                                   const LoadOptions& options) {
  auto devices = deviceNames();
  if (std::find(devices.begin(), devices.end(), options.device) == devices.end()) {
    return absl::InvalidArgumentError(
        common::strCat("unknown device '", options.device, "'; known: auto, cuda, cpu"));
  }
  // An unknown runtime is a configuration error whatever the directory holds: report it first.
  auto names = runtimeNames();
  if (runtime != kAuto && std::find(names.begin(), names.end(), runtime) == names.end()) {
    std::string known(kAuto);
    for (const auto& name : names) known += ", " + name;
    return absl::UnimplementedError(
        common::strCat("unknown runtime '", runtime, "'; known runtimes: ", known));
  }
  std::error_code ec;
  if (!std::filesystem::is_directory(model_dir, ec)) {
    return absl::NotFoundError(
        common::strCat("model directory ", model_dir.string(), " does not exist"));
  }
  std::string chosen(runtime);
  if (chosen == kAuto) {
    auto detected = detectRuntime(model_dir);
    if (!detected.ok()) return detected.status();
    chosen = *detected;
  }
  if (chosen == "xgboost") {
    if (options.device == "cuda") {
      return absl::InvalidArgumentError(
          "the xgboost runtime computes on the CPU only; device 'cuda' is for the dense runtime");
    }
    return loadXgboostModel(model_name, model_dir);
  }
  return loadDenseModel(model_name, model_dir, options);
}

}  // namespace kh::runtimes
