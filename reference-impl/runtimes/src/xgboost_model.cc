#include "xgboost_model.h"

#include <cmath>
#include <mutex>
#include <optional>
#include <random>

#include "compiled_trees.h"
#include "kh/common/strings.h"
#include "nlohmann/json.hpp"
#include "xgboost/c_api.h"

namespace kh::runtimes {
namespace {

using protocols::DataType;
using protocols::Tensor;

enum class Output { kClassIndex, kProbabilities, kValue };

class XgboostModel final : public Model {
 public:
  XgboostModel(BoosterHandle booster, protocols::ModelMetadata metadata, Output output,
               int64_t num_features, int64_t num_class)
      : booster_(booster),
        metadata_(std::move(metadata)),
        output_(output),
        num_features_(num_features),
        num_class_(num_class) {}

  /** Uses `trees` for predictions from now on (after they were checked against libxgboost). */
  void useCompiledTrees(CompiledTrees trees) { compiled_.emplace(std::move(trees)); }

  /** libxgboost's own prediction (type 0) for `rows` rows. */
  absl::StatusOr<std::vector<float>> libxgboostPredict(const float* values, int64_t rows) const {
    std::string array = common::strCat(
        R"({"data": [)", reinterpret_cast<uintptr_t>(values), R"(, true], "shape": [)", rows, ", ",
        num_features_, R"(], "typestr": "<f4", "version": 3})");
    static constexpr const char* kConfig =
        R"({"type": 0, "training": false, "iteration_begin": 0, "iteration_end": 0, )"
        R"("strict_shape": false, "missing": NaN, "cache_id": 0})";
    const bst_ulong* out_shape = nullptr;
    bst_ulong out_dim = 0;
    const float* out = nullptr;
    if (XGBoosterPredictFromDense(booster_, array.c_str(), kConfig, nullptr, &out_shape, &out_dim,
                                  &out) != 0) {
      return absl::InternalError(common::strCat("xgboost prediction failed: ", XGBGetLastError()));
    }
    bst_ulong total = 1;
    for (bst_ulong i = 0; i < out_dim; ++i) total *= out_shape[i];
    return std::vector<float>(out, out + total);
  }
  ~XgboostModel() override { XGBoosterFree(booster_); }

  const protocols::ModelMetadata& metadata() const override { return metadata_; }
  void setMetadata(protocols::ModelMetadata meta) { metadata_ = std::move(meta); }

  absl::StatusOr<std::vector<Tensor>> predict(std::span<const Tensor> inputs) const override {
    const Tensor& in = inputs[0];
    if (in.shape.size() != 2 || in.shape[1] != num_features_) {
      return absl::InvalidArgumentError(common::strCat(
          "xgboost model '", metadata_.name, "' takes [batch, ", num_features_,
          "] features, got ", protocols::shapeToString(in.shape)));
    }
    int64_t rows = in.shape[0];
    std::vector<float> converted;
    const float* values;
    if (in.datatype == DataType::kFp32) {
      values = reinterpret_cast<const float*>(in.raw.data());
    } else {
      auto floats = protocols::toFloatVector(in);
      if (!floats.ok()) return floats.status();
      converted = std::move(*floats);
      values = converted.data();
    }
    std::vector<float> predictions;
    if (compiled_) {
      compiled_->predict(values, rows, predictions);
    } else {
      // In-place prediction over an __array_interface__ description of the caller's buffer;
      // thread-safe (XGBoost >= 1.4), results in thread-local storage.
      auto reference = libxgboostPredict(values, rows);
      if (!reference.ok()) return reference.status();
      predictions = std::move(*reference);
    }
    const float* out = predictions.data();
    auto total = static_cast<bst_ulong>(predictions.size());
    std::vector<Tensor> result;
    switch (output_) {
      case Output::kClassIndex: {
        std::vector<int64_t> classes(static_cast<size_t>(total));
        for (bst_ulong i = 0; i < total; ++i) classes[i] = static_cast<int64_t>(out[i]);
        result.push_back(Tensor::fromValues<int64_t>(metadata_.outputs[0].name, DataType::kInt64,
                                                     {rows}, classes));
        break;
      }
      case Output::kProbabilities:
        if (static_cast<int64_t>(total) != rows * num_class_) {
          return absl::InternalError("xgboost returned an unexpected number of probabilities");
        }
        result.push_back(Tensor::fromValues<float>(metadata_.outputs[0].name, DataType::kFp32,
                                                   {rows, num_class_},
                                                   std::span<const float>(out, total)));
        break;
      case Output::kValue:
        result.push_back(Tensor::fromValues<float>(metadata_.outputs[0].name, DataType::kFp32,
                                                   {rows}, std::span<const float>(out, total)));
        break;
    }
    return result;
  }

 private:
  BoosterHandle booster_;
  protocols::ModelMetadata metadata_;
  Output output_;
  int64_t num_features_;
  int64_t num_class_;
  std::optional<CompiledTrees> compiled_;
};

// Probe rows for checking the compiled trees: values at, just below and just above split
// thresholds, random values between them, and missing values.
std::vector<float> probeRows(const CompiledTrees& trees, int rows) {
  std::mt19937 rng(12345);
  std::vector<float> x;
  int features = trees.features();
  for (int r = 0; r < rows; ++r) {
    for (int f = 0; f < features; ++f) {
      const auto& th = trees.thresholds()[static_cast<size_t>(f)];
      float v;
      int pick = static_cast<int>(rng() % 8);
      if (pick == 0) {
        v = NAN;
      } else if (th.empty()) {
        v = std::uniform_real_distribution<float>(-10, 10)(rng);
      } else {
        float t = th[rng() % th.size()];
        v = pick == 1 ? t : pick == 2 ? std::nextafter(t, -INFINITY) : pick == 3
            ? std::nextafter(t, INFINITY) : t + std::uniform_real_distribution<float>(-2, 2)(rng);
      }
      x.push_back(v);
    }
  }
  return x;
}

int64_t jsonInt(const nlohmann::json& node) {
  // XGBoost writes its parameters as strings.
  if (node.is_string()) return std::stoll(node.get<std::string>());
  if (node.is_number()) return node.get<int64_t>();
  return 0;
}

}  // namespace

absl::StatusOr<std::filesystem::path> findXgboostModelFile(const std::filesystem::path& dir) {
  for (const char* name : {"model.json", "model.ubj", "model.bst"}) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(dir / name, ec)) return dir / name;
  }
  return absl::NotFoundError(common::strCat("no model.json, model.ubj or model.bst in ",
                                            dir.string()));
}

absl::StatusOr<ModelPtr> loadXgboostModel(std::string_view model_name,
                                          const std::filesystem::path& dir) {
  auto file = findXgboostModelFile(dir);
  if (!file.ok()) return file.status();
  BoosterHandle booster = nullptr;
  if (XGBoosterCreate(nullptr, 0, &booster) != 0) {
    return absl::InternalError(common::strCat("XGBoosterCreate: ", XGBGetLastError()));
  }
  if (XGBoosterLoadModel(booster, file->c_str()) != 0) {
    std::string error = XGBGetLastError();
    XGBoosterFree(booster);
    return absl::InvalidArgumentError(
        common::strCat("cannot load XGBoost model ", file->string(), ": ", error));
  }
  // The server parallelises across requests; one thread per prediction avoids OpenMP overhead.
  XGBoosterSetParam(booster, "nthread", "1");
  bst_ulong len = 0;
  const char* config_text = nullptr;
  if (XGBoosterSaveJsonConfig(booster, &len, &config_text) != 0) {
    XGBoosterFree(booster);
    return absl::InternalError(common::strCat("XGBoosterSaveJsonConfig: ", XGBGetLastError()));
  }
  std::string objective;
  int64_t num_class = 0, num_features = 0;
  try {
    auto config = nlohmann::json::parse(std::string_view(config_text, len));
    const auto& learner = config.at("learner");
    objective = learner.at("objective").at("name").get<std::string>();
    num_class = jsonInt(learner.at("learner_model_param").at("num_class"));
    num_features = jsonInt(learner.at("learner_model_param").at("num_feature"));
  } catch (const std::exception& e) {
    XGBoosterFree(booster);
    return absl::InvalidArgumentError(
        common::strCat("cannot read the XGBoost configuration of ", file->string(), ": ", e.what()));
  }
  if (num_features <= 0) {
    XGBoosterFree(booster);
    return absl::InvalidArgumentError(common::strCat(file->string(), ": model has no features"));
  }
  protocols::ModelMetadata meta;
  meta.name = std::string(model_name);
  meta.platform = "xgboost";
  meta.inputs.push_back({"input-0", DataType::kFp32, {-1, num_features}});
  meta.properties["objective"] = objective;
  Output output = Output::kValue;
  if (objective == "multi:softmax") {
    output = Output::kClassIndex;
    meta.outputs.push_back({"output-0", DataType::kInt64, {-1}});
  } else if (objective == "multi:softprob") {
    output = Output::kProbabilities;
    meta.outputs.push_back({"output-0", DataType::kFp32, {-1, num_class}});
  } else {
    meta.outputs.push_back({"output-0", DataType::kFp32, {-1}});
  }
  auto model = std::make_unique<XgboostModel>(booster, meta, output, num_features, num_class);
  // Compile the trees and keep them only if they agree exactly with libxgboost.
  bst_ulong json_len = 0;
  const char* json_buf = nullptr;
  std::string predictor = "libxgboost";
  if (XGBoosterSaveModelToBuffer(booster, R"({"format": "json"})", &json_len, &json_buf) == 0) {
    auto compiled = CompiledTrees::fromJson(std::string_view(json_buf, json_len));
    if (compiled.ok() && compiled->features() == num_features) {
      const int rows = 256;
      auto probes = probeRows(*compiled, rows);
      auto reference = model->libxgboostPredict(probes.data(), rows);
      std::vector<float> ours;
      compiled->predict(probes.data(), rows, ours);
      if (reference.ok() && *reference == ours) {
        model->useCompiledTrees(std::move(*compiled));
        predictor = "compiled trees (checked against libxgboost at load)";
      } else {
        predictor = "libxgboost (compiled trees disagreed on probe rows)";
      }
    } else if (!compiled.ok()) {
      predictor = common::strCat("libxgboost (", common::toStd(compiled.status().message()),
                                 " not compiled)");
    }
  }
  meta.properties["predictor"] = predictor;
  model->setMetadata(std::move(meta));
  return ModelPtr(std::move(model));
}

}  // namespace kh::runtimes
