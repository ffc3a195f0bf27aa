#pragma once
// The dense runtime: a multi-layer perceptron described by config.json (layers, activations,
// tensor names and shapes) with weights in model.safetensors (F32, F16 or BF16), computed with
// OpenBLAS sgemm, whole batches at a time.
//
// config.json:
//   {"inputs":  [{"name": "input-0",  "datatype": "FP32", "shape": [-1, 4]}],
//    "outputs": [{"name": "output-0", "datatype": "FP32", "shape": [-1, 3]}],
//    "layers":  [{"weight": "fc1.weight", "bias": "fc1.bias", "activation": "relu"}, ...]}
// Weights are [out, in] (PyTorch's layout), biases [out]; activations: none, relu, sigmoid,
// tanh, softmax (per row).

#include <filesystem>

#include "absl/status/statusor.h"
#include "kh/runtimes/model.h"

namespace kh::runtimes {

/** Computes Y[rows, out] = X[rows, in] * W[out, in]^T on some device. Thread-safe. */
class MatmulBackend {
 public:
  virtual ~MatmulBackend() = default;
  virtual const char* name() const = 0;
  virtual void matmulTransposed(const float* x, int rows, int in, const float* w, int out,
                                float* y) const = 0;
};

/** OpenBLAS cblas_sgemm on the CPU. */
std::unique_ptr<MatmulBackend> makeCpuBackend();

absl::StatusOr<ModelPtr> loadDenseModel(std::string_view model_name,
                                        const std::filesystem::path& dir);

}  // namespace kh::runtimes
