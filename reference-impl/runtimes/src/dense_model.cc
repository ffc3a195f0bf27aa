#include "dense_model.h"

#include <cblas.h>

#include <cmath>
#include <fstream>
#include <mutex>

#include "kh/common/strings.h"
#include "nlohmann/json.hpp"
#include "safetensors.h"

namespace kh::runtimes {
namespace {

using protocols::DataType;
using protocols::Tensor;

enum class Activation { kNone, kRelu, kSigmoid, kTanh, kSoftmax };

struct Layer {
  std::vector<float> weight;  // [out, in]
  std::vector<float> bias;    // [out]
  int in = 0, out = 0;
  Activation activation = Activation::kNone;
};

class CpuBackend final : public MatmulBackend {
 public:
  const char* name() const override { return "cpu-openblas"; }
  void matmulTransposed(const float* x, int rows, int in, const float* w, int out,
                        float* y) const override {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, out, in, 1.0f, x, in, w, in, 0.0f,
                y, out);
  }
};

void activate(Activation a, float* y, int rows, int cols) {
  size_t n = static_cast<size_t>(rows) * static_cast<size_t>(cols);
  switch (a) {
    case Activation::kNone: break;
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
      for (int r = 0; r < rows; ++r) {
        float* row = y + static_cast<size_t>(r) * cols;
        float mx = row[0];
        for (int c = 1; c < cols; ++c) mx = std::max(mx, row[c]);
        float sum = 0;
        for (int c = 0; c < cols; ++c) sum += (row[c] = std::exp(row[c] - mx));
        for (int c = 0; c < cols; ++c) row[c] /= sum;
      }
      break;
  }
}

class DenseModel final : public Model {
 public:
  DenseModel(protocols::ModelMetadata meta, std::vector<Layer> layers,
             std::unique_ptr<MatmulBackend> backend)
      : metadata_(std::move(meta)), layers_(std::move(layers)), backend_(std::move(backend)) {}

  const protocols::ModelMetadata& metadata() const override { return metadata_; }

  absl::StatusOr<std::vector<Tensor>> predict(std::span<const Tensor> inputs) const override {
    const Tensor& in = inputs[0];
    int features = layers_.front().in;
    if (in.shape.size() != 2 || in.shape[1] != features) {
      return absl::InvalidArgumentError(common::strCat("dense model '", metadata_.name,
                                                       "' takes [batch, ", features, "], got ",
                                                       protocols::shapeToString(in.shape)));
    }
    int rows = static_cast<int>(in.shape[0]);
    auto x = protocols::toFloatVector(in);
    if (!x.ok()) return x.status();
    // Scratch buffers per thread: no locks, no sharing between concurrent predictions.
    std::vector<float> current = std::move(*x), next;
    for (const Layer& layer : layers_) {
      next.resize(static_cast<size_t>(rows) * static_cast<size_t>(layer.out));
      backend_->matmulTransposed(current.data(), rows, layer.in, layer.weight.data(), layer.out,
                                 next.data());
      for (int r = 0; r < rows; ++r) {
        float* row = next.data() + static_cast<size_t>(r) * layer.out;
        for (int c = 0; c < layer.out; ++c) row[c] += layer.bias[static_cast<size_t>(c)];
      }
      activate(layer.activation, next.data(), rows, layer.out);
      current.swap(next);
    }
    const auto& out_meta = metadata_.outputs[0];
    std::vector<Tensor> result;
    result.push_back(Tensor::fromValues<float>(out_meta.name, DataType::kFp32,
                                               {rows, layers_.back().out}, current));
    return result;
  }

 private:
  protocols::ModelMetadata metadata_;
  std::vector<Layer> layers_;
  std::unique_ptr<MatmulBackend> backend_;
};

absl::StatusOr<std::vector<protocols::TensorMetadata>> parseTensorList(const nlohmann::json& list,
                                                                       const std::string& what) {
  if (!list.is_array() || list.empty()) {
    return absl::InvalidArgumentError(common::strCat("config.json: '", what, "' must be a non-empty list"));
  }
  std::vector<protocols::TensorMetadata> out;
  for (const auto& t : list) {
    protocols::TensorMetadata m;
    m.name = t.value("name", "");
    auto type = protocols::parseDataType(t.value("datatype", "FP32"));
    if (m.name.empty() || !type || !t.contains("shape") || !t["shape"].is_array()) {
      return absl::InvalidArgumentError(
          common::strCat("config.json: each of '", what, "' needs name, datatype and shape"));
    }
    m.datatype = *type;
    for (const auto& d : t["shape"]) m.shape.push_back(d.get<int64_t>());
    out.push_back(std::move(m));
  }
  return out;
}

}  // namespace

std::unique_ptr<MatmulBackend> makeCpuBackend() {
  // Parallelism comes from concurrent requests, not from inside one small sgemm.
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
  return std::make_unique<CpuBackend>();
}

absl::StatusOr<ModelPtr> loadDenseModel(std::string_view model_name,
                                        const std::filesystem::path& dir) {
  std::ifstream in(dir / "config.json");
  if (!in) return absl::NotFoundError(common::strCat("no config.json in ", dir.string()));
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(common::strCat((dir / "config.json").string(),
                                                     ": not valid JSON: ", e.what()));
  }
  auto weights = readSafeTensors(dir / "model.safetensors");
  if (!weights.ok()) return weights.status();

  protocols::ModelMetadata meta;
  meta.name = std::string(model_name);
  meta.platform = "kh_dense";
  auto inputs = parseTensorList(config.value("inputs", nlohmann::json()), "inputs");
  if (!inputs.ok()) return inputs.status();
  auto outputs = parseTensorList(config.value("outputs", nlohmann::json()), "outputs");
  if (!outputs.ok()) return outputs.status();
  meta.inputs = std::move(*inputs);
  meta.outputs = std::move(*outputs);
  if (meta.inputs.size() != 1 || meta.outputs.size() != 1 || meta.inputs[0].shape.size() != 2 ||
      meta.outputs[0].shape.size() != 2) {
    return absl::InvalidArgumentError(
        "config.json: a dense model has one input [-1, features] and one output [-1, classes]");
  }
  const auto& layer_list = config.value("layers", nlohmann::json());
  if (!layer_list.is_array() || layer_list.empty()) {
    return absl::InvalidArgumentError("config.json: 'layers' must be a non-empty list");
  }
  static const std::map<std::string, Activation> kActivations = {
      {"none", Activation::kNone},       {"relu", Activation::kRelu},
      {"sigmoid", Activation::kSigmoid}, {"tanh", Activation::kTanh},
      {"softmax", Activation::kSoftmax}};
  std::vector<Layer> layers;
  int64_t width = meta.inputs[0].shape[1];
  for (size_t i = 0; i < layer_list.size(); ++i) {
    const auto& spec = layer_list[i];
    std::string where = common::strCat("config.json: layer ", i);
    std::string w_name = spec.value("weight", ""), b_name = spec.value("bias", "");
    auto w = weights->tensors.find(w_name);
    auto b = weights->tensors.find(b_name);
    if (w == weights->tensors.end() || b == weights->tensors.end()) {
      return absl::InvalidArgumentError(common::strCat(
          where, ": tensors '", w_name, "' and '", b_name, "' must be in model.safetensors"));
    }
    auto act = kActivations.find(spec.value("activation", "none"));
    if (act == kActivations.end()) {
      return absl::InvalidArgumentError(common::strCat(where, ": unknown activation '",
                                                       spec.value("activation", ""),
                                                       "' (none, relu, sigmoid, tanh, softmax)"));
    }
    const auto& ws = w->second.shape;
    const auto& bs = b->second.shape;
    if (ws.size() != 2 || bs.size() != 1 || bs[0] != ws[0]) {
      return absl::InvalidArgumentError(common::strCat(
          where, ": weight must be [out, in] and bias [out]; got ",
          protocols::shapeToString(ws), " and ", protocols::shapeToString(bs)));
    }
    if (ws[1] != width) {
      return absl::InvalidArgumentError(common::strCat(where, ": takes ", ws[1],
                                                       " features but receives ", width));
    }
    Layer layer;
    layer.in = static_cast<int>(ws[1]);
    layer.out = static_cast<int>(ws[0]);
    layer.activation = act->second;
    auto wf = w->second.toFloats();
    if (!wf.ok()) return wf.status();
    auto bf = b->second.toFloats();
    if (!bf.ok()) return bf.status();
    layer.weight = std::move(*wf);
    layer.bias = std::move(*bf);
    width = layer.out;
    layers.push_back(std::move(layer));
  }
  if (width != meta.outputs[0].shape[1]) {
    return absl::InvalidArgumentError(common::strCat("config.json: the last layer gives ", width,
                                                     " values but the output declares ",
                                                     meta.outputs[0].shape[1]));
  }
  if (meta.inputs[0].datatype == DataType::kBytes) {
    return absl::InvalidArgumentError("config.json: the input must be numeric");
  }
  meta.outputs[0].datatype = DataType::kFp32;
  meta.properties["backend"] = "cpu-openblas";
  return ModelPtr(new DenseModel(std::move(meta), std::move(layers), makeCpuBackend()));
}

}  // namespace kh::runtimes
