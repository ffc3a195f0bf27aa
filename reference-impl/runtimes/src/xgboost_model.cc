#include "xgboost_model.h"

#include <cmath>
#include <memory>
#include <optional>
#include <random>

#include "compiled_trees.h"
#include "kh/common/strings.h"
#include "nlohmann/json.hpp"
#include "xgboost/c_api.h"

// Thread safety. One booster is shared by every worker thread, without a lock, because
// libxgboost >= 1.4 makes in-place prediction on one booster safe to call concurrently
// (doc/prediction.rst "Thread Safety"; core.py inplace_predict: "Calling only inplace_predict in
// multiple threads is safe and lock free"). In the 1.7.4 sources, XGBoosterPredictFromDense
// builds a fresh DMatrixProxy per call, Learner::InplacePredict writes into GetThreadLocal(), a
// per-thread map keyed by booster (LearnerAPIThreadLocalStore), GBTree::InplacePredict is const,
// and the lazy Configure() is a double-checked lock. Configure() runs here at load (the warm-up
// prediction) so that concurrent calls only ever read. Nothing else touches the booster after
// load: no SetParam, no training, no saving.

namespace kh::runtimes {
namespace {

using protocols::DataType;
using protocols::Tensor;

enum class Output { kClassIndex, kMatrix, kValue };

struct BoosterDeleter {
  void operator()(void* booster) const { XGBoosterFree(booster); }
};
using BoosterPtr = std::unique_ptr<void, BoosterDeleter>;

class XgboostModel final : public Model {
 public:
  XgboostModel(BoosterPtr booster, protocols::ModelMetadata metadata, Output output,
               int64_t num_features, int64_t columns)
      : booster_(std::move(booster)),
        metadata_(std::move(metadata)),
        output_(output),
        num_features_(num_features),
        columns_(columns) {}

  /** Uses `trees` for predictions from now on (after they were checked against libxgboost). */
  void useCompiledTrees(CompiledTrees trees) { compiled_.emplace(std::move(trees)); }
  void setProperty(const std::string& key, std::string value) {
    metadata_.properties[key] = std::move(value);
  }

  /** libxgboost's own in-place prediction (type 0: transformed values) for `rows` rows. */
  absl::StatusOr<std::vector<float>> libxgboostPredict(const float* values, int64_t rows) const {
    // __array_interface__ over the caller's buffer (read-only): libxgboost copies nothing.
    std::string array = common::strCat(R"({"data": [)", reinterpret_cast<uintptr_t>(values),
                                       R"(, true], "shape": [)", rows, ", ", num_features_,
                                       R"(], "typestr": "<f4", "version": 3})");
    static constexpr const char* kConfig =
        R"({"type": 0, "training": false, "iteration_begin": 0, "iteration_end": 0, )"
        R"("strict_shape": false, "missing": NaN, "cache_id": 0})";
    const bst_ulong* out_shape = nullptr;
    bst_ulong out_dim = 0;
    const float* out = nullptr;
    if (XGBoosterPredictFromDense(booster_.get(), array.c_str(), kConfig, nullptr, &out_shape,
                                  &out_dim, &out) != 0) {
      return absl::InternalError(common::strCat("xgboost prediction failed: ", XGBGetLastError()));
    }
    bst_ulong total = 1;
    for (bst_ulong i = 0; i < out_dim; ++i) total *= out_shape[i];
    // `out` lives in this thread's storage inside the booster until this thread's next call.
    return std::vector<float>(out, out + total);
  }

  const protocols::ModelMetadata& metadata() const override { return metadata_; }

  absl::StatusOr<std::vector<Tensor>> predict(std::span<const Tensor> inputs) const override {
    if (inputs.size() != 1) {
      return absl::InvalidArgumentError(common::strCat("xgboost model '", metadata_.name,
                                                       "' takes one input, got ", inputs.size()));
    }
    const Tensor& in = inputs[0];
    if (in.shape.size() != 2 || in.shape[1] != num_features_ || in.shape[0] < 0) {
      return absl::InvalidArgumentError(
          common::strCat("xgboost model '", metadata_.name, "' takes [batch, ", num_features_,
                         "] features, got ", protocols::shapeToString(in.shape)));
    }
    int64_t rows = in.shape[0];
    auto count = static_cast<size_t>(rows * num_features_);
    std::vector<float> converted;
    const float* values;
    if (in.datatype == DataType::kFp32 && in.raw.size() == count * sizeof(float) &&
        reinterpret_cast<uintptr_t>(in.raw.data()) % alignof(float) == 0) {
      values = reinterpret_cast<const float*>(in.raw.data());
    } else {
      auto floats = protocols::toFloatVector(in);
      if (!floats.ok()) return floats.status();
      if (floats->size() != count) {
        return absl::InvalidArgumentError(common::strCat(
            "xgboost model '", metadata_.name, "': input holds ", floats->size(), " values, shape ",
            protocols::shapeToString(in.shape), " needs ", count));
      }
      converted = std::move(*floats);
      values = converted.data();
    }
    std::vector<float> predictions;
    if (rows == 0) {
      // Nothing to predict; libxgboost would still configure a proxy and wake OpenMP.
    } else if (compiled_) {
      compiled_->predict(values, rows, predictions);
    } else {
      auto reference = libxgboostPredict(values, rows);
      if (!reference.ok()) return reference.status();
      predictions = std::move(*reference);
    }
    int64_t expected = output_ == Output::kMatrix ? rows * columns_ : rows;
    if (static_cast<int64_t>(predictions.size()) != expected) {
      return absl::InternalError(common::strCat("xgboost returned ", predictions.size(),
                                                " values for ", rows, " rows, expected ",
                                                expected));
    }
    const std::string& name = metadata_.outputs[0].name;
    std::vector<Tensor> result;
    switch (output_) {
      case Output::kClassIndex: {
        // multi:softmax predicts the class index as a float; the protocol wants an integer.
        std::vector<int64_t> classes(predictions.size());
        for (size_t i = 0; i < predictions.size(); ++i) {
          classes[i] = static_cast<int64_t>(predictions[i]);
        }
        result.push_back(Tensor::fromValues<int64_t>(name, DataType::kInt64, {rows}, classes));
        break;
      }
      case Output::kMatrix:
        result.push_back(
            Tensor::fromValues<float>(name, DataType::kFp32, {rows, columns_}, predictions));
        break;
      case Output::kValue:
        result.push_back(Tensor::fromValues<float>(name, DataType::kFp32, {rows}, predictions));
        break;
    }
    return result;
  }

 private:
  BoosterPtr booster_;
  protocols::ModelMetadata metadata_;
  Output output_;
  int64_t num_features_;
  int64_t columns_;  // output columns for kMatrix
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
        v = pick == 1   ? t
            : pick == 2 ? std::nextafter(t, -INFINITY)
            : pick == 3 ? std::nextafter(t, INFINITY)
                        : t + std::uniform_real_distribution<float>(-2, 2)(rng);
      }
      x.push_back(v);
    }
  }
  return x;
}

// XGBoost writes its parameters as strings ("3"); accept numbers too.
int64_t jsonInt(const nlohmann::json& node) {
  if (node.is_string()) return std::stoll(node.get<std::string>());
  return node.get<int64_t>();
}

struct LearnerInfo {
  std::string objective;
  std::string booster;
  int64_t num_class = 0;
  int64_t num_features = 0;
  int64_t num_target = 1;
};

absl::StatusOr<LearnerInfo> readLearnerInfo(void* booster, const std::filesystem::path& file) {
  bst_ulong len = 0;
  const char* text = nullptr;
  if (XGBoosterSaveJsonConfig(booster, &len, &text) != 0) {
    return absl::InternalError(
        common::strCat(file.string(), ": XGBoosterSaveJsonConfig: ", XGBGetLastError()));
  }
  LearnerInfo info;
  try {
    auto config = nlohmann::json::parse(std::string_view(text, len));
    const auto& learner = config.at("learner");
    info.objective = learner.at("objective").at("name").get<std::string>();
    info.booster = learner.at("gradient_booster").at("name").get<std::string>();
    const auto& params = learner.at("learner_model_param");
    info.num_class = jsonInt(params.at("num_class"));
    info.num_features = jsonInt(params.at("num_feature"));
    if (params.contains("num_target")) info.num_target = jsonInt(params.at("num_target"));
  } catch (const std::exception& e) {  // nlohmann's errors and std::stoll's
    return absl::InvalidArgumentError(
        common::strCat(file.string(), ": cannot read the XGBoost configuration: ", e.what()));
  }
  return info;
}

// Compiles the trees and keeps them only if they agree bit for bit with libxgboost.
std::string tryCompiledTrees(void* booster, XgboostModel& model, int64_t num_features) {
  bst_ulong json_len = 0;
  const char* json_buf = nullptr;
  if (XGBoosterSaveModelToBuffer(booster, R"({"format": "json"})", &json_len, &json_buf) != 0) {
    return common::strCat("libxgboost (cannot save the model as JSON: ", XGBGetLastError(), ")");
  }
  auto compiled = CompiledTrees::fromJson(std::string_view(json_buf, json_len));
  if (!compiled.ok()) {
    return common::strCat(
        "libxgboost (trees not compiled: ", common::toStd(compiled.status().message()), ")");
  }
  if (compiled->features() != num_features) {
    return "libxgboost (compiled trees disagree on the feature count)";
  }
  const int rows = 256;
  auto probes = probeRows(*compiled, rows);
  auto reference = model.libxgboostPredict(probes.data(), rows);
  std::vector<float> ours;
  compiled->predict(probes.data(), rows, ours);
  if (!reference.ok() || *reference != ours) {
    return "libxgboost (compiled trees disagreed on probe rows)";
  }
  model.useCompiledTrees(std::move(*compiled));
  return "compiled trees (checked against libxgboost at load)";
}

}  // namespace

absl::StatusOr<std::filesystem::path> findXgboostModelFile(const std::filesystem::path& dir) {
  for (const char* name : {"model.json", "model.ubj", "model.bst"}) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(dir / name, ec)) return dir / name;
  }
  return absl::NotFoundError(
      common::strCat("no model.json, model.ubj or model.bst in ", dir.string()));
}

absl::StatusOr<ModelPtr> loadXgboostModel(std::string_view model_name,
                                          const std::filesystem::path& dir,
                                          XgboostOptions options) {
  auto file = findXgboostModelFile(dir);
  if (!file.ok()) return file.status();
  BoosterHandle handle = nullptr;
  if (XGBoosterCreate(nullptr, 0, &handle) != 0) {
    return absl::InternalError(common::strCat("XGBoosterCreate: ", XGBGetLastError()));
  }
  BoosterPtr booster(handle);
  if (XGBoosterLoadModel(handle, file->c_str()) != 0) {
    return absl::InvalidArgumentError(
        common::strCat(file->string(), ": XGBoost cannot load it: ", XGBGetLastError()));
  }
  // The server parallelises across requests; one OpenMP thread per prediction avoids waking a
  // thread team for a handful of rows.
  if (XGBoosterSetParam(handle, "nthread", "1") != 0) {
    return absl::InternalError(common::strCat("XGBoosterSetParam nthread: ", XGBGetLastError()));
  }
  auto info = readLearnerInfo(handle, *file);
  if (!info.ok()) return info.status();
  if (info->num_features <= 0) {
    return absl::InvalidArgumentError(
        common::strCat(file->string(), ": the model has no features"));
  }
  bool multiclass = info->objective == "multi:softmax" || info->objective == "multi:softprob";
  if (multiclass && info->num_class < 2) {
    return absl::InvalidArgumentError(
        common::strCat(file->string(), ": ", info->objective, " with num_class ", info->num_class));
  }
  protocols::ModelMetadata meta;
  meta.name = std::string(model_name);
  meta.platform = "xgboost";
  meta.inputs.push_back({"input-0", DataType::kFp32, {-1, info->num_features}});
  meta.properties["objective"] = info->objective;
  meta.properties["booster"] = info->booster;
  Output output = Output::kValue;
  int64_t columns = 1;
  if (info->objective == "multi:softmax") {
    output = Output::kClassIndex;
    meta.outputs.push_back({"output-0", DataType::kInt64, {-1}});
  } else if (info->objective == "multi:softprob") {
    output = Output::kMatrix;
    columns = info->num_class;
    meta.outputs.push_back({"output-0", DataType::kFp32, {-1, columns}});
  } else if (info->num_target > 1) {
    output = Output::kMatrix;
    columns = info->num_target;
    meta.outputs.push_back({"output-0", DataType::kFp32, {-1, columns}});
  } else {
    meta.outputs.push_back({"output-0", DataType::kFp32, {-1}});
  }
  auto model = std::make_unique<XgboostModel>(std::move(booster), std::move(meta), output,
                                              info->num_features, columns);
  // Warm-up: the first prediction runs libxgboost's lazy Configure(); do it now, on one
  // thread, and fail the load rather than the first request if prediction does not work.
  std::vector<float> zeros(static_cast<size_t>(info->num_features), 0.0f);
  auto warm = model->libxgboostPredict(zeros.data(), 1);
  if (!warm.ok()) {
    return absl::InvalidArgumentError(
        common::strCat(file->string(), ": ", common::toStd(warm.status().message())));
  }
  if (static_cast<int64_t>(warm->size()) != columns) {
    return absl::InvalidArgumentError(common::strCat(file->string(), ": one row predicts ",
                                                     warm->size(), " values, expected ", columns));
  }
  model->setProperty("predictor", options.compile_trees
                                      ? tryCompiledTrees(handle, *model, info->num_features)
                                      : "libxgboost (compiled trees disabled)");
  return ModelPtr(std::move(model));
}

}  // namespace kh::runtimes
