#pragma once
// The dense runtime: a multi-layer perceptron described by config.json (layers, activations,
// tensor names and shapes) with weights in model.safetensors (F32, F16, BF16 or F64, converted
// to FP32 at load), computed whole batches at a time.
//
// config.json:
//   {"inputs":  [{"name": "input-0",  "datatype": "FP32", "shape": [-1, 4]}],
//    "outputs": [{"name": "output-0", "datatype": "FP32", "shape": [-1, 3]}],
//    "layers":  [{"weight": "fc1.weight", "bias": "fc1.bias", "activation": "relu"}, ...]}
// Weights are [out, in] (PyTorch's nn.Linear layout), biases [out]; activations: none (the
// default), relu, sigmoid, tanh, softmax (per row). The input may be declared with any numeric
// datatype (it is converted to FP32); the output is FP32.

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "kh/runtimes/model.h"

namespace kh::runtimes {

enum class Activation { kNone, kRelu, kSigmoid, kTanh, kSoftmax };

/** One fully connected layer: y = activation(x * weight^T + bias). */
struct DenseLayer {
  std::vector<float> weight;  // [out, in], row-major
  std::vector<float> bias;    // [out]
  int in = 0;
  int out = 0;
  Activation activation = Activation::kNone;
  /** The weight's dtype in model.safetensors ("F32", "F16", "BF16", "F64"). */
  std::string stored_dtype = "F32";
};

/**
 * Where the network runs. A backend owns the layers (a GPU backend would upload them once) and
 * runs the whole forward pass, so intermediate activations never have to leave the device.
 */
class DenseBackend {
 public:
  virtual ~DenseBackend() = default;
  virtual const char* name() const = 0;
  /**
   * Computes the network for `rows` rows: `x` is [rows, first layer's in], `y` receives
   * [rows, last layer's out]. Thread-safe: concurrent calls share no mutable state.
   */
  virtual absl::Status forward(const float* x, int rows, float* y) const = 0;
  /** See Model::health(). */
  virtual absl::Status health() const { return absl::OkStatus(); }
  /** Where it runs, for the model's metadata ("cpu", "cuda: NVIDIA H200 (sm_90, 139 GiB)"). */
  virtual std::string device() const { return "cpu"; }
};

/** OpenBLAS cblas_sgemm on the CPU, one BLAS thread (the server parallelises requests). */
std::unique_ptr<DenseBackend> makeCpuDenseBackend(std::vector<DenseLayer> layers);

/**
 * The CUDA backend (the libkh_dense_cuda.so plugin): FP16 or BF16 on the device when every
 * weight is stored so, else FP32. @return FailedPrecondition with the plugin's or CUDA's error
 * text when it cannot run (no plugin, no device, out of memory).
 */
absl::StatusOr<std::unique_ptr<DenseBackend>> makeCudaDenseBackend(
    const std::vector<DenseLayer>& layers, int max_rows, int streams);

/** Whether NVIDIA's device nodes exist (a cheap test before "auto" opens the CUDA plugin). */
bool nvidiaDeviceNodesPresent();

absl::StatusOr<ModelPtr> loadDenseModel(std::string_view model_name,
                                        const std::filesystem::path& dir,
                                        const LoadOptions& options = {});

struct SafeTensorsFile;
/**
 * loadDenseModel() from config.json's text and the parsed weights (what it does after reading
 * the two files; the fuzz target calls it directly). `config_path` names the config in messages.
 */
absl::StatusOr<ModelPtr> buildDenseModel(std::string_view model_name, std::string_view config_text,
                                         const SafeTensorsFile& weights,
                                         const std::filesystem::path& config_path,
                                         const LoadOptions& options = {});

}  // namespace kh::runtimes
