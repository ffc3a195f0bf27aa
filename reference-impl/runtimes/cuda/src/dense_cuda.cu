// The dense runtime on CUDA: cuBLAS GEMM per layer plus our fused bias + activation kernel.
// See dense_cuda.h for the memory plan. Row-major tensors meet column-major cuBLAS as follows:
// a row-major [r, c] matrix is a column-major [c, r] one, so Y[rows, out] = X[rows, in] W^T
// is, column-major, Y' (out x rows) = W' ^T (W' = W as column-major [in, out]) times X'
// (in x rows): GEMM with op(A) = T on W (lda = in), op(B) = N on X (ldb = in), m = out,
// n = rows, k = in, ldc = out.

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kh/dense_cuda/dense_cuda.h"

namespace kh::dense_cuda {
namespace {

std::string cudaText(const char* what, cudaError_t e) {
  return std::string(what) + ": " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e);
}

std::string cublasText(const char* what, cublasStatus_t s) {
  return std::string(what) + ": " + cublasGetStatusName(s) + ": " + cublasGetStatusString(s);
}

#define KH_CUDA(expr)                                                  \
  do {                                                                 \
    if (cudaError_t kh_e = (expr); kh_e != cudaSuccess) return cudaText(#expr, kh_e); \
  } while (0)
#define KH_CUBLAS(expr)                                                            \
  do {                                                                             \
    if (cublasStatus_t kh_s = (expr); kh_s != CUBLAS_STATUS_SUCCESS) return cublasText(#expr, kh_s); \
  } while (0)

constexpr size_t kCublasWorkspaceBytes = 32u << 20;  // NVIDIA's advice for Hopper

template <typename T>
__device__ __forceinline__ T fromFloat(float v);
template <>
__device__ __forceinline__ float fromFloat<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half fromFloat<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 fromFloat<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

__device__ __forceinline__ float activate(float v, int act) {
  switch (act) {
    case static_cast<int>(Activation::kRelu): return v > 0.f ? v : 0.f;
    case static_cast<int>(Activation::kSigmoid): return 1.f / (1.f + expf(-v));
    case static_cast<int>(Activation::kTanh): return tanhf(v);
    default: return v;
  }
}

// out[r, c] = act(gemm[r, c] + bias[c]); the one pass over the GEMM's output.
template <typename Out>
__global__ void biasActivate(const float* __restrict__ gemm, const float* __restrict__ bias,
                             int rows, int cols, int act, Out* __restrict__ out) {
  const size_t n = static_cast<size_t>(rows) * static_cast<size_t>(cols);
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    out[i] = fromFloat<Out>(activate(gemm[i] + bias[i % cols], act));
  }
}

// Softmax of (gemm row + bias), one block per row, shifted by the row maximum.
template <typename Out>
__global__ void biasSoftmax(const float* __restrict__ gemm, const float* __restrict__ bias,
                            int cols, Out* __restrict__ out) {
  __shared__ float shared[32];
  const float* row = gemm + static_cast<size_t>(blockIdx.x) * cols;
  Out* dst = out + static_cast<size_t>(blockIdx.x) * cols;
  auto blockReduce = [&](float v, bool is_max) {
    for (int o = 16; o > 0; o >>= 1) {
      float other = __shfl_xor_sync(0xffffffffu, v, o);
      v = is_max ? fmaxf(v, other) : v + other;
    }
    if ((threadIdx.x & 31) == 0) shared[threadIdx.x >> 5] = v;
    __syncthreads();
    const int warps = (blockDim.x + 31) >> 5;
    v = threadIdx.x < warps ? shared[threadIdx.x] : (is_max ? -INFINITY : 0.f);
    if (threadIdx.x < 32) {
      for (int o = 16; o > 0; o >>= 1) {
        float other = __shfl_xor_sync(0xffffffffu, v, o);
        v = is_max ? fmaxf(v, other) : v + other;
      }
      if (threadIdx.x == 0) shared[0] = v;
    }
    __syncthreads();
    float result = shared[0];
    __syncthreads();
    return result;
  };
  float mx = -INFINITY;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) mx = fmaxf(mx, row[c] + bias[c]);
  mx = blockReduce(mx, true);
  float sum = 0.f;
  for (int c = threadIdx.x; c < cols; c += blockDim.x) sum += expf(row[c] + bias[c] - mx);
  sum = blockReduce(sum, false);
  for (int c = threadIdx.x; c < cols; c += blockDim.x) {
    dst[c] = fromFloat<Out>(expf(row[c] + bias[c] - mx) / sum);
  }
}

template <typename Out>
__global__ void convertInput(const float* __restrict__ in, size_t n, Out* __restrict__ out) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    out[i] = fromFloat<Out>(in[i]);
  }
}

int gridFor(size_t n) { return static_cast<int>(std::min<size_t>((n + 255) / 256, 4096)); }

cudaDataType cudaType(Precision p) {
  switch (p) {
    case Precision::kFp16: return CUDA_R_16F;
    case Precision::kBf16: return CUDA_R_16BF;
    default: return CUDA_R_32F;
  }
}

size_t elementSize(Precision p) { return p == Precision::kFp32 ? 4 : 2; }

// Host-side conversion of weights to the upload precision.
std::vector<char> convertHost(const float* v, size_t n, Precision p) {
  std::vector<char> out(n * elementSize(p));
  if (p == Precision::kFp32) {
    std::memcpy(out.data(), v, n * sizeof(float));
  } else if (p == Precision::kFp16) {
    auto* h = reinterpret_cast<__half*>(out.data());
    for (size_t i = 0; i < n; ++i) h[i] = __float2half_rn(v[i]);
  } else {
    auto* b = reinterpret_cast<__nv_bfloat16*>(out.data());
    for (size_t i = 0; i < n; ++i) b[i] = __float2bfloat16_rn(v[i]);
  }
  return out;
}

struct DeviceLayer {
  void* weight = nullptr;  // [out, in] in the upload precision
  float* bias = nullptr;
  int in = 0, out = 0;
  Activation activation = Activation::kNone;
};

// One stream's private resources.
struct Slot {
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  void* workspace = nullptr;
  float* x = nullptr;          // [max_rows, in0] FP32 input
  void* act[2] = {nullptr, nullptr};  // hidden activations, upload precision
  float* gemm = nullptr;       // [max_rows, widest] GEMM output
  float* y = nullptr;          // [max_rows, out_last] FP32 output
  float* host_in = nullptr;    // pinned staging
  float* host_out = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
};

class CudaNet final : public Net {
 public:
  ~CudaNet() override {
    cudaSetDevice(spec_.device);
    for (Slot& s : slots_) {
      if (s.stream) cudaStreamSynchronize(s.stream);
      if (s.cublas) cublasDestroy(s.cublas);
      cudaFree(s.workspace);
      cudaFree(s.x);
      cudaFree(s.act[0]);
      cudaFree(s.act[1]);
      cudaFree(s.gemm);
      cudaFree(s.y);
      cudaFreeHost(s.host_in);
      cudaFreeHost(s.host_out);
      if (s.start) cudaEventDestroy(s.start);
      if (s.stop) cudaEventDestroy(s.stop);
      if (s.stream) cudaStreamDestroy(s.stream);
    }
    for (DeviceLayer& l : layers_) {
      cudaFree(l.weight);
      cudaFree(l.bias);
    }
  }

  std::string init(const NetSpec& spec) {
    spec_ = spec;
    spec_.layers = nullptr;  // not kept: the caller's memory
    KH_CUDA(cudaSetDevice(spec.device));
    cudaDeviceProp prop{};
    KH_CUDA(cudaGetDeviceProperties(&prop, spec.device));
    device_name_ = std::string(prop.name) + " (sm_" + std::to_string(prop.major) +
                   std::to_string(prop.minor) + ", " +
                   std::to_string(prop.totalGlobalMem >> 30) + " GiB)";
    int widest = 0;
    for (int i = 0; i < spec.layer_count; ++i) {
      const LayerSpec& l = spec.layers[i];
      DeviceLayer d;
      d.in = l.in;
      d.out = l.out;
      d.activation = l.activation;
      size_t wn = static_cast<size_t>(l.in) * static_cast<size_t>(l.out);
      std::vector<char> w = convertHost(l.weight, wn, spec.precision);
      KH_CUDA(cudaMalloc(&d.weight, w.size()));
      layers_.push_back(d);  // owned from here on, freed by the destructor
      KH_CUDA(cudaMemcpy(d.weight, w.data(), w.size(), cudaMemcpyHostToDevice));
      KH_CUDA(cudaMalloc(&layers_.back().bias, sizeof(float) * static_cast<size_t>(l.out)));
      KH_CUDA(cudaMemcpy(layers_.back().bias, l.bias, sizeof(float) * static_cast<size_t>(l.out),
                         cudaMemcpyHostToDevice));
      widest = std::max({widest, l.in, l.out});
    }
    in_ = layers_.front().in;
    out_ = layers_.back().out;
    const size_t rows = static_cast<size_t>(spec.max_rows);
    slots_.resize(static_cast<size_t>(spec.streams));
    for (Slot& s : slots_) {
      KH_CUDA(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking));
      KH_CUBLAS(cublasCreate(&s.cublas));
      KH_CUBLAS(cublasSetStream(s.cublas, s.stream));
      KH_CUDA(cudaMalloc(&s.workspace, kCublasWorkspaceBytes));
      KH_CUBLAS(cublasSetWorkspace(s.cublas, s.workspace, kCublasWorkspaceBytes));
      KH_CUDA(cudaMalloc(&s.x, sizeof(float) * rows * static_cast<size_t>(in_)));
      for (void*& a : s.act) {
        KH_CUDA(cudaMalloc(&a, elementSize(spec.precision) * rows * static_cast<size_t>(widest)));
      }
      KH_CUDA(cudaMalloc(&s.gemm, sizeof(float) * rows * static_cast<size_t>(widest)));
      KH_CUDA(cudaMalloc(&s.y, sizeof(float) * rows * static_cast<size_t>(out_)));
      KH_CUDA(cudaMallocHost(&s.host_in, sizeof(float) * rows * static_cast<size_t>(in_)));
      KH_CUDA(cudaMallocHost(&s.host_out, sizeof(float) * rows * static_cast<size_t>(out_)));
      KH_CUDA(cudaEventCreate(&s.start));
      KH_CUDA(cudaEventCreate(&s.stop));
      free_.push_back(&s);
    }
    // Warm-up: loads the kernels and lets cuBLAS pick its algorithms before the first request.
    std::vector<float> zeros(rows * static_cast<size_t>(in_)), out(rows * static_cast<size_t>(out_));
    for (Slot& s : slots_) {
      if (std::string e = forwardOn(s, zeros.data(), spec.max_rows, out.data()); !e.empty()) {
        return e;
      }
    }
    return "";
  }

  std::string forward(const float* x, int rows, float* y) override {
    Slot* slot = acquire();
    std::string error = forwardOn(*slot, x, rows, y);
    release(slot);
    if (!error.empty()) failed_.store(true);
    return error;
  }

  std::string deviceName() const override { return device_name_; }
  bool failed() const override { return failed_.load(); }

  std::string timeResident(int rows, int iterations, double* ms_per_forward) override {
    if (rows < 1 || rows > spec_.max_rows) return "rows must be in [1, max_rows]";
    Slot* slot = acquire();
    std::string error = [&]() -> std::string {
      KH_CUDA(cudaSetDevice(spec_.device));
      KH_CUDA(cudaMemsetAsync(slot->x, 0, sizeof(float) * static_cast<size_t>(rows) * in_,
                              slot->stream));
      if (std::string e = layerStack(*slot, rows); !e.empty()) return e;  // warm
      KH_CUDA(cudaEventRecord(slot->start, slot->stream));
      for (int i = 0; i < iterations; ++i) {
        if (std::string e = layerStack(*slot, rows); !e.empty()) return e;
      }
      KH_CUDA(cudaEventRecord(slot->stop, slot->stream));
      KH_CUDA(cudaEventSynchronize(slot->stop));
      float ms = 0;
      KH_CUDA(cudaEventElapsedTime(&ms, slot->start, slot->stop));
      *ms_per_forward = ms / std::max(iterations, 1);
      return "";
    }();
    release(slot);
    return error;
  }

 private:
  Slot* acquire() {
    std::unique_lock lock(mu_);
    available_.wait(lock, [&] { return !free_.empty(); });
    Slot* s = free_.back();
    free_.pop_back();
    return s;
  }
  void release(Slot* s) {
    {
      std::lock_guard lock(mu_);
      free_.push_back(s);
    }
    available_.notify_one();
  }

  std::string forwardOn(Slot& s, const float* x, int rows, float* y) {
    KH_CUDA(cudaSetDevice(spec_.device));
    for (int done = 0; done < rows; done += spec_.max_rows) {
      const int n = std::min(spec_.max_rows, rows - done);
      const size_t in_bytes = sizeof(float) * static_cast<size_t>(n) * in_;
      const size_t out_bytes = sizeof(float) * static_cast<size_t>(n) * out_;
      std::memcpy(s.host_in, x + static_cast<size_t>(done) * in_, in_bytes);
      KH_CUDA(cudaMemcpyAsync(s.x, s.host_in, in_bytes, cudaMemcpyHostToDevice, s.stream));
      if (std::string e = layerStack(s, n); !e.empty()) return e;
      KH_CUDA(cudaMemcpyAsync(s.host_out, s.y, out_bytes, cudaMemcpyDeviceToHost, s.stream));
      KH_CUDA(cudaStreamSynchronize(s.stream));
      std::memcpy(y + static_cast<size_t>(done) * out_, s.host_out, out_bytes);
    }
    return "";
  }

  template <typename T>
  std::string launchEpilogue(Slot& s, const DeviceLayer& l, int rows, void* out) {
    if (l.activation == Activation::kSoftmax) {
      int threads = std::min(1024, std::max(32, (l.out + 31) / 32 * 32));
      biasSoftmax<T><<<rows, threads, 0, s.stream>>>(s.gemm, l.bias, l.out, static_cast<T*>(out));
    } else {
      size_t n = static_cast<size_t>(rows) * l.out;
      biasActivate<T><<<gridFor(n), 256, 0, s.stream>>>(s.gemm, l.bias, rows, l.out,
                                                        static_cast<int>(l.activation),
                                                        static_cast<T*>(out));
    }
    KH_CUDA(cudaGetLastError());
    return "";
  }

  std::string epilogue(Slot& s, const DeviceLayer& l, int rows, void* out, bool last) {
    if (last || spec_.precision == Precision::kFp32) return launchEpilogue<float>(s, l, rows, out);
    if (spec_.precision == Precision::kFp16) return launchEpilogue<__half>(s, l, rows, out);
    return launchEpilogue<__nv_bfloat16>(s, l, rows, out);
  }

  // Input (s.x, FP32) through every layer into s.y, on the slot's stream; no synchronisation.
  std::string layerStack(Slot& s, int rows) {
    const void* current = s.x;
    if (spec_.precision != Precision::kFp32) {
      size_t n = static_cast<size_t>(rows) * in_;
      if (spec_.precision == Precision::kFp16) {
        convertInput<__half><<<gridFor(n), 256, 0, s.stream>>>(s.x, n, static_cast<__half*>(s.act[1]));
      } else {
        convertInput<__nv_bfloat16><<<gridFor(n), 256, 0, s.stream>>>(
            s.x, n, static_cast<__nv_bfloat16*>(s.act[1]));
      }
      KH_CUDA(cudaGetLastError());
      current = s.act[1];
    }
    const cudaDataType ab = cudaType(spec_.precision);
    const float alpha = 1.f, beta = 0.f;
    for (size_t i = 0; i < layers_.size(); ++i) {
      const DeviceLayer& l = layers_[i];
      const bool last = i + 1 == layers_.size();
      KH_CUBLAS(cublasGemmEx(s.cublas, CUBLAS_OP_T, CUBLAS_OP_N, l.out, rows, l.in, &alpha,
                             l.weight, ab, l.in, current, ab, l.in, &beta, s.gemm, CUDA_R_32F,
                             l.out, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      void* next = last ? static_cast<void*>(s.y) : s.act[i % 2];
      if (std::string e = epilogue(s, l, rows, next, last); !e.empty()) return e;
      current = next;
    }
    return "";
  }

  NetSpec spec_;
  std::string device_name_;
  std::vector<DeviceLayer> layers_;
  int in_ = 0, out_ = 0;
  std::vector<Slot> slots_;
  std::mutex mu_;
  std::condition_variable available_;
  std::vector<Slot*> free_;
  std::atomic<bool> failed_{false};
};

}  // namespace
}  // namespace kh::dense_cuda

extern "C" kh::dense_cuda::Net* kh_dense_cuda_create(const kh::dense_cuda::NetSpec* spec,
                                                     std::string* error) {
  using namespace kh::dense_cuda;
  if (spec == nullptr || spec->layer_count < 1 || spec->max_rows < 1 || spec->streams < 1) {
    *error = "kh_dense_cuda_create: a net needs at least one layer, max_rows >= 1, streams >= 1";
    return nullptr;
  }
  auto net = std::make_unique<CudaNet>();
  if (std::string e = net->init(*spec); !e.empty()) {
    *error = e;
    return nullptr;
  }
  return net.release();
}

extern "C" int kh_dense_cuda_device_count(std::string* error) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    *error = kh::dense_cuda::cudaText("cudaGetDeviceCount", e);
    return 0;
  }
  if (count == 0) *error = "no CUDA device is visible";
  return count;
}
