#pragma once
// The dense runtime's CUDA backend, behind a boundary that needs nothing but the C++ standard
// library: it is built as a plugin (libkh_dense_cuda.so) that kh::runtimes opens only when a
// model asks for a GPU, so the model server neither links nor loads CUDA otherwise (its cold
// start stays free of cuBLAS's hundreds of megabytes), and it builds standalone, from the CUDA
// toolkit alone, on a GPU machine that has none of our other dependencies.
//
// Math: cuBLAS GEMM per layer (FP32, or FP16/BF16 weights and activations with FP32
// accumulation) and one fused kernel of ours for bias + activation (softmax per row).
// Memory: weights uploaded once; per stream, device buffers for max_rows rows, pinned host
// staging and a cuBLAS workspace, all allocated at creation: none per request.

#include <string>

namespace kh::dense_cuda {

enum class Precision : int { kFp32 = 0, kFp16 = 1, kBf16 = 2 };
/** Same order as kh::runtimes::Activation. */
enum class Activation : int { kNone = 0, kRelu, kSigmoid, kTanh, kSoftmax };

/** One layer: y = activation(x * weight^T + bias); weight [out, in] row-major, bias [out]. */
struct LayerSpec {
  const float* weight = nullptr;
  const float* bias = nullptr;
  int in = 0;
  int out = 0;
  Activation activation = Activation::kNone;
};

struct NetSpec {
  const LayerSpec* layers = nullptr;
  int layer_count = 0;
  /** Weights are converted to this on upload (exact for weights stored in it). */
  Precision precision = Precision::kFp32;
  /** Rows the device buffers hold; larger calls run in chunks of this many rows. */
  int max_rows = 256;
  /** Calls computed at once, each on its own stream with its own buffers. */
  int streams = 1;
  int device = 0;
};

/** A network on the GPU. Thread-safe: a call takes a free stream, or waits for one. */
class Net {
 public:
  virtual ~Net() = default;
  /**
   * Computes `rows` rows: x is [rows, first in] FP32, y receives [rows, last out] FP32.
   * @return "" on success, else the CUDA or cuBLAS error text (and failed() turns true).
   */
  virtual std::string forward(const float* x, int rows, float* y) = 0;
  /** "NVIDIA H200 (sm_90, 139 GiB)" */
  virtual std::string deviceName() const = 0;
  /** A CUDA error happened; the model should report not ready. */
  virtual bool failed() const = 0;
  /**
   * Benchmark aid: runs the layer stack `iterations` times on rows already on the device (no
   * copies), timed with CUDA events. @return "" or the error text; *ms_per_forward the mean.
   */
  virtual std::string timeResident(int rows, int iterations, double* ms_per_forward) = 0;
};

}  // namespace kh::dense_cuda

extern "C" {
/**
 * @return a new Net (delete it), or null with *error set (no device, out of memory, ...).
 * The plugin's entry points; kh::runtimes finds them with dlsym.
 */
kh::dense_cuda::Net* kh_dense_cuda_create(const kh::dense_cuda::NetSpec* spec, std::string* error);
/** @return visible CUDA devices; 0 with *error set when there is no device or driver. */
int kh_dense_cuda_device_count(std::string* error);
}
