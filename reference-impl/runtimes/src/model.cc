#include "kh/runtimes/model.h"

#include "dense_model.h"
#include "kh/common/strings.h"
#include "xgboost_model.h"

namespace kh::runtimes {

std::vector<std::string> runtimeNames() { return {"xgboost", "dense"}; }

absl::StatusOr<ModelPtr> loadModel(std::string_view runtime, std::string_view model_name,
                                   const std::filesystem::path& model_dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(model_dir, ec)) {
    return absl::NotFoundError(common::strCat("model directory ", model_dir.string(),
                                              " does not exist"));
  }
  std::string chosen(runtime);
  if (chosen == "auto") {
    if (findXgboostModelFile(model_dir).ok()) {
      chosen = "xgboost";
    } else if (std::filesystem::is_regular_file(model_dir / "config.json", ec) &&
               std::filesystem::is_regular_file(model_dir / "model.safetensors", ec)) {
      chosen = "dense";
    } else {
      return absl::NotFoundError(common::strCat(
          "no model found in ", model_dir.string(),
          ": expected model.json, model.ubj or model.bst (xgboost) or config.json with "
          "model.safetensors (dense)"));
    }
  }
  if (chosen == "xgboost") return loadXgboostModel(model_name, model_dir);
  if (chosen == "dense") return loadDenseModel(model_name, model_dir);
  return absl::UnimplementedError(common::strCat("unknown runtime '", runtime,
                                                 "'; known runtimes: auto, xgboost, dense"));
}

}  // namespace kh::runtimes
