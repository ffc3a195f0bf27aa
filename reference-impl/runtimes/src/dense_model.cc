#include "dense_model.h"

#include <cblas.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>

#include "kh/common/json.h"
#include "kh/common/status_macros.h"
#include "kh/common/strings.h"
#include "nlohmann/json.hpp"
#include "safetensors.h"

// <cblas.h> may be another vendor's header (Debian's alternatives); libopenblas, which we link,
// defines this either way.
#ifndef OPENBLAS_VERSION
extern "C" void openblas_set_num_threads(int num_threads);
#endif

namespace kh::runtimes {
namespace {

using nlohmann::json;
using protocols::DataType;
using protocols::Tensor;

void activate(Activation a, float* y, int rows, int cols) {
  size_t n = static_cast<size_t>(rows) * static_cast<size_t>(cols);
  switch (a) {
    case Activation::kNone:
      break;
    case Activation::kRelu:
      for (size_t i = 0; i < n; ++i) y[i] = y[i] > 0 ? y[i] : 0;
      break;
    case Activation::kSigmoid:
      for (size_t i = 0; i < n; ++i) y[i] = 1.0f / (1.0f + std::exp(-y[i]));
      break;
    case Activation::kTanh:
      for (size_t i = 0; i < n; ++i) y[i] = std::tanh(y[i]);
      break;
    case Activation::kSoftmax:
      // Shifted by the row maximum so large logits cannot overflow exp().
      for (int r = 0; r < rows; ++r) {
        float* row = y + static_cast<size_t>(r) * static_cast<size_t>(cols);
        float mx = *std::max_element(row, row + cols);
        float sum = 0;
        for (int c = 0; c < cols; ++c) sum += (row[c] = std::exp(row[c] - mx));
        for (int c = 0; c < cols; ++c) row[c] /= sum;
      }
      break;
  }
}

class CpuDenseBackend final : public DenseBackend {
 public:
  explicit CpuDenseBackend(std::vector<DenseLayer> layers) : layers_(std::move(layers)) {}

  const char* name() const override { return "cpu-openblas"; }

  absl::Status forward(const float* x, int rows, float* y) const override {
    // Per-thread ping-pong buffers for the hidden layers: no allocation once warm, nothing
    // shared between concurrent requests. The last layer writes straight into `y`.
    thread_local std::vector<float> scratch[2];
    const float* current = x;
    for (size_t i = 0; i < layers_.size(); ++i) {
      const DenseLayer& layer = layers_[i];
      float* next = y;
      if (i + 1 < layers_.size()) {
        auto& buffer = scratch[i % 2];
        buffer.resize(static_cast<size_t>(rows) * static_cast<size_t>(layer.out));
        next = buffer.data();
      }
      // Y[rows, out] = X[rows, in] * W[out, in]^T, then the bias row added to every row.
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, layer.out, layer.in, 1.0f, current,
                  layer.in, layer.weight.data(), layer.in, 0.0f, next, layer.out);
      for (int r = 0; r < rows; ++r) {
        float* row = next + static_cast<size_t>(r) * static_cast<size_t>(layer.out);
        for (int c = 0; c < layer.out; ++c) row[c] += layer.bias[static_cast<size_t>(c)];
      }
      activate(layer.activation, next, rows, layer.out);
      current = next;
    }
    return absl::OkStatus();
  }

 private:
  std::vector<DenseLayer> layers_;
};

class DenseModel final : public Model {
 public:
  DenseModel(protocols::ModelMetadata meta, int in_features, int out_features,
             std::unique_ptr<DenseBackend> backend)
      : metadata_(std::move(meta)),
        in_features_(in_features),
        out_features_(out_features),
        backend_(std::move(backend)) {}

  const protocols::ModelMetadata& metadata() const override { return metadata_; }
  absl::Status health() const override { return backend_->health(); }

  absl::StatusOr<std::vector<Tensor>> predict(std::span<const Tensor> inputs) const override {
    if (inputs.size() != 1) {
      return absl::InvalidArgumentError(common::strCat("dense model '", metadata_.name,
                                                       "' takes one input, got ", inputs.size()));
    }
    const Tensor& in = inputs[0];
    if (in.shape.size() != 2 || in.shape[1] != in_features_ || in.shape[0] < 0) {
      return absl::InvalidArgumentError(common::strCat("dense model '", metadata_.name,
                                                       "' takes [batch, ", in_features_, "], got ",
                                                       protocols::shapeToString(in.shape)));
    }
    // cblas takes int dimensions; a batch beyond that is refused rather than truncated.
    if (in.shape[0] > INT_MAX / std::max(in_features_, out_features_)) {
      return absl::InvalidArgumentError(common::strCat(
          "dense model '", metadata_.name, "': batch of ", in.shape[0], " rows is too large"));
    }
    int rows = static_cast<int>(in.shape[0]);
    size_t in_count = static_cast<size_t>(rows) * static_cast<size_t>(in_features_);
    std::vector<float> converted;
    const float* x = nullptr;
    if (in.datatype == DataType::kFp32 && in.raw.size() == in_count * sizeof(float) &&
        reinterpret_cast<uintptr_t>(in.raw.data()) % alignof(float) == 0) {
      x = reinterpret_cast<const float*>(in.raw.data());
    } else {
      auto floats = protocols::toFloatVector(in);
      if (!floats.ok()) return floats.status();
      if (floats->size() != in_count) {
        return absl::InvalidArgumentError(common::strCat(
            "dense model '", metadata_.name, "': input holds ", floats->size(), " values, shape ",
            protocols::shapeToString(in.shape), " needs ", in_count));
      }
      converted = std::move(*floats);
      x = converted.data();
    }
    Tensor out;
    out.name = metadata_.outputs[0].name;
    out.datatype = DataType::kFp32;
    out.shape = {rows, out_features_};
    out.raw.resize(static_cast<size_t>(rows) * static_cast<size_t>(out_features_) * sizeof(float));
    if (rows > 0) {
      // The string buffer (heap or in-object) is at least 8-byte aligned: fine for float.
      KH_RETURN_IF_ERROR(backend_->forward(x, rows, reinterpret_cast<float*>(out.raw.data())));
    }
    std::vector<Tensor> result;
    result.push_back(std::move(out));
    return result;
  }

 private:
  protocols::ModelMetadata metadata_;
  int in_features_;
  int out_features_;
  std::unique_ptr<DenseBackend> backend_;
};

absl::Status configError(const std::filesystem::path& config_path, std::string_view what) {
  return absl::InvalidArgumentError(common::strCat(config_path.string(), ": ", what));
}

// Reads "inputs" or "outputs": exactly one tensor of shape [batch, width], width > 0.
absl::StatusOr<protocols::TensorMetadata> parseTensorSpec(const json& config,
                                                          const std::string& key,
                                                          const std::filesystem::path& path) {
  const json* list = config.contains(key) ? &config[key] : nullptr;
  if (list == nullptr || !list->is_array() || list->size() != 1) {
    return configError(path, common::strCat("'", key,
                                            "' must be a list of exactly one tensor "
                                            "(a dense model has one input and one output)"));
  }
  const json& t = (*list)[0];
  if (!t.is_object() || !t.contains("name") || !t["name"].is_string() ||
      t["name"].get<std::string>().empty() || !t.contains("shape") || !t["shape"].is_array()) {
    return configError(path, common::strCat("each of '", key, "' needs a name and a shape"));
  }
  protocols::TensorMetadata m;
  m.name = t["name"].get<std::string>();
  std::string type_name = "FP32";
  if (t.contains("datatype")) {
    if (!t["datatype"].is_string()) {
      return configError(path, common::strCat(key, " '", m.name, "': datatype must be a string"));
    }
    type_name = t["datatype"].get<std::string>();
  }
  auto type = protocols::parseDataType(type_name);
  if (!type || *type == DataType::kBytes || *type == DataType::kBool) {
    return configError(path, common::strCat(key, " '", m.name, "': datatype '", type_name,
                                            "' is not a numeric V2 datatype"));
  }
  m.datatype = *type;
  for (const auto& d : t["shape"]) {
    if (!d.is_number_integer()) {
      return configError(path, common::strCat(key, " '", m.name, "': shape ", common::jsonText(t["shape"]),
                                              " must hold integers"));
    }
    m.shape.push_back(d.get<int64_t>());
  }
  if (m.shape.size() != 2 || m.shape[0] < -1 || m.shape[1] <= 0 || m.shape[1] > INT_MAX) {
    return configError(path, common::strCat(key, " '", m.name,
                                            "': shape must be [batch, width] "
                                            "with batch -1 or fixed and width > 0, got ",
                                            common::jsonText(t["shape"])));
  }
  return m;
}

// Builds the layers from config.json's "layers" and the weights, checking that widths chain.
absl::StatusOr<std::vector<DenseLayer>> buildLayers(const json& config,
                                                    const SafeTensorsFile& weights,
                                                    int64_t in_width, int64_t out_width,
                                                    const std::filesystem::path& path) {
  static const std::map<std::string, Activation> kActivations = {{"none", Activation::kNone},
                                                                 {"relu", Activation::kRelu},
                                                                 {"sigmoid", Activation::kSigmoid},
                                                                 {"tanh", Activation::kTanh},
                                                                 {"softmax", Activation::kSoftmax}};
  if (!config.contains("layers") || !config["layers"].is_array() || config["layers"].empty()) {
    return configError(path, "'layers' must be a non-empty list");
  }
  const json& list = config["layers"];
  std::vector<DenseLayer> layers;
  int64_t width = in_width;
  for (size_t i = 0; i < list.size(); ++i) {
    const json& spec = list[i];
    std::string where = common::strCat("layer ", i);
    if (!spec.is_object() || !spec.contains("weight") || !spec["weight"].is_string() ||
        !spec.contains("bias") || !spec["bias"].is_string()) {
      return configError(path, common::strCat(where,
                                              ": needs \"weight\" and \"bias\" tensor "
                                              "names"));
    }
    std::string w_name = spec["weight"].get<std::string>();
    std::string b_name = spec["bias"].get<std::string>();
    std::string act_name = "none";
    if (spec.contains("activation")) {
      if (!spec["activation"].is_string()) {
        return configError(path, common::strCat(where, ": activation must be a string"));
      }
      act_name = spec["activation"].get<std::string>();
    }
    auto act = kActivations.find(act_name);
    if (act == kActivations.end()) {
      return configError(path, common::strCat(where, ": unknown activation '", act_name,
                                              "' (none, relu, sigmoid, tanh, softmax)"));
    }
    auto w = weights.tensors.find(w_name);
    auto b = weights.tensors.find(b_name);
    for (const auto& [name, it] : {std::pair{w_name, w}, std::pair{b_name, b}}) {
      if (it == weights.tensors.end()) {
        return configError(
            path, common::strCat(where, ": tensor '", name, "' must be in model.safetensors"));
      }
    }
    const auto& ws = w->second.shape;
    const auto& bs = b->second.shape;
    if (ws.size() != 2 || ws[0] <= 0 || ws[1] <= 0 || ws[0] > INT_MAX || ws[1] > INT_MAX) {
      return configError(path, common::strCat(where, ": weight '", w_name,
                                              "' must be [out, in] with out, in > 0, got ",
                                              protocols::shapeToString(ws)));
    }
    if (bs.size() != 1 || bs[0] != ws[0]) {
      return configError(path, common::strCat(where, ": bias '", b_name, "' must be [", ws[0],
                                              "] to match weight ", protocols::shapeToString(ws),
                                              ", got ", protocols::shapeToString(bs)));
    }
    if (ws[1] != width) {
      return configError(
          path, common::strCat(where, ": weight ", protocols::shapeToString(ws), " takes ", ws[1],
                               " features but receives ", width,
                               i == 0 ? " (the input's width)" : " (the previous layer's out)"));
    }
    DenseLayer layer;
    layer.in = static_cast<int>(ws[1]);
    layer.out = static_cast<int>(ws[0]);
    layer.activation = act->second;
    auto wf = w->second.toFloats();
    if (!wf.ok()) {
      return configError(path, common::strCat(where, ": weight '", w_name,
                                              "': ", common::toStd(wf.status().message())));
    }
    auto bf = b->second.toFloats();
    if (!bf.ok()) {
      return configError(path, common::strCat(where, ": bias '", b_name,
                                              "': ", common::toStd(bf.status().message())));
    }
    layer.weight = std::move(*wf);
    layer.stored_dtype = w->second.dtype;
    layer.bias = std::move(*bf);
    width = layer.out;
    layers.push_back(std::move(layer));
  }
  if (width != out_width) {
    return configError(path, common::strCat("the last layer gives ", width,
                                            " values per row but the output declares ", out_width));
  }
  return layers;
}

}  // namespace

std::unique_ptr<DenseBackend> makeCpuDenseBackend(std::vector<DenseLayer> layers) {
  // Parallelism comes from concurrent requests, not from inside one small sgemm; OpenBLAS's
  // own thread pool would only add wake-ups. (Process-wide: OpenBLAS has no per-call setting.)
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
  return std::make_unique<CpuDenseBackend>(std::move(layers));
}

absl::StatusOr<ModelPtr> loadDenseModel(std::string_view model_name,
                                        const std::filesystem::path& dir,
                                        const LoadOptions& options) {
  std::filesystem::path config_path = dir / "config.json";
  std::ifstream in(config_path);
  if (!in) return absl::NotFoundError(common::strCat(config_path.string(), ": no such file"));
  std::string config_text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto weights = readSafeTensors(dir / "model.safetensors");
  if (!weights.ok()) return weights.status();
  return buildDenseModel(model_name, config_text, *weights, config_path, options);
}

absl::StatusOr<ModelPtr> buildDenseModel(std::string_view model_name, std::string_view config_text,
                                         const SafeTensorsFile& weights,
                                         const std::filesystem::path& config_path,
                                         const LoadOptions& options) {
  json config;
  try {
    config = json::parse(config_text);
  } catch (const json::exception& e) {
    return configError(config_path, common::strCat("not valid JSON: ", e.what()));
  }
  if (!config.is_object()) return configError(config_path, "must be a JSON object");

  protocols::ModelMetadata meta;
  meta.name = std::string(model_name);
  meta.platform = "kh_dense";
  absl::StatusOr<protocols::TensorMetadata> input, output;
  absl::StatusOr<std::vector<DenseLayer>> layers;
  try {  // every access is checked first; this is the net for anything missed
    input = parseTensorSpec(config, "inputs", config_path);
    if (!input.ok()) return input.status();
    output = parseTensorSpec(config, "outputs", config_path);
    if (!output.ok()) return output.status();
    if (output->datatype != DataType::kFp32) {
      return configError(config_path, common::strCat("output '", output->name,
                                                     "' is computed in FP32; "
                                                     "declare datatype FP32, not ",
                                                     protocols::dataTypeName(output->datatype)));
    }
    layers = buildLayers(config, weights, input->shape[1], output->shape[1], config_path);
    if (!layers.ok()) return layers.status();
  } catch (const json::exception& e) {
    return configError(config_path, e.what());
  }
  int in_features = static_cast<int>(input->shape[1]);
  int out_features = static_cast<int>(output->shape[1]);
  std::unique_ptr<DenseBackend> backend;
  std::string device_note;
  if (options.device == "cuda" || (options.device == "auto" && nvidiaDeviceNodesPresent())) {
    auto cuda = makeCudaDenseBackend(*layers, options.max_batch_rows, options.streams);
    if (cuda.ok()) {
      backend = std::move(*cuda);
    } else if (options.device == "cuda") {
      return absl::FailedPreconditionError(common::strCat(
          "model '", model_name, "': device 'cuda' cannot be used: ", cuda.status().message()));
    } else {
      device_note = common::strCat(" (auto: CUDA unusable: ", cuda.status().message(), ")");
    }
  } else if (options.device == "auto") {
    device_note = " (auto: no NVIDIA device)";
  }
  if (!backend) backend = makeCpuDenseBackend(std::move(*layers));
  meta.properties["backend"] = backend->name();
  meta.properties["device"] = backend->device() + device_note;
  meta.inputs.push_back(std::move(*input));
  meta.outputs.push_back(std::move(*output));
  return ModelPtr(new DenseModel(std::move(meta), in_features, out_features, std::move(backend)));
}

}  // namespace kh::runtimes
