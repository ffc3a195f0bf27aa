// The dense network on the GPU against cuBLAS GEMM alone, on the same shapes and precision.
// For each batch size: rows/s end to end (host in, host out, one stream), the layer stack's
// FLOP/s with the rows already on the device, and cuBLAS GEMM's FLOP/s for the same GEMMs
// without our epilogue. Prints one JSON object per line; exit 77 (skipped) without a device.
//
// dense_cuda_bench [layers=4] [width=4096] [precision=fp32|fp16|bf16] [batches=1,8,64,256,1024]

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "random_net.h"

using namespace kh::dense_cuda;

namespace {

int iterationsFor(double flops) {
  // About 0.2 s of work at 200 TFLOP/s, at least 10 and at most 2000 iterations.
  double n = 4e13 / std::max(flops, 1.0);
  return static_cast<int>(std::min(2000.0, std::max(10.0, n)));
}

// Mean ms of the network's GEMMs alone (no bias, activation or conversion kernels).
double gemmAloneMs(const std::vector<int>& widths, int rows, Precision p, int iterations) {
  cudaDataType ab = p == Precision::kFp32 ? CUDA_R_32F : p == Precision::kFp16 ? CUDA_R_16F : CUDA_R_16BF;
  size_t es = p == Precision::kFp32 ? 4 : 2;
  int widest = 0;
  for (int w : widths) widest = std::max(widest, w);
  cublasHandle_t h;
  cublasCreate(&h);
  std::vector<void*> weights;
  for (size_t i = 0; i + 1 < widths.size(); ++i) {
    void* w;
    cudaMalloc(&w, es * widths[i] * widths[i + 1]);
    cudaMemset(w, 0, es * widths[i] * widths[i + 1]);
    weights.push_back(w);
  }
  void *x, *y;
  cudaMalloc(&x, es * static_cast<size_t>(rows) * widest);
  cudaMemset(x, 0, es * static_cast<size_t>(rows) * widest);
  cudaMalloc(&y, sizeof(float) * static_cast<size_t>(rows) * widest);
  const float alpha = 1.f, beta = 0.f;
  auto pass = [&] {
    for (size_t i = 0; i < weights.size(); ++i) {
      cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, widths[i + 1], rows, widths[i], &alpha, weights[i],
                   ab, widths[i], x, ab, widths[i], &beta, y, CUDA_R_32F, widths[i + 1],
                   CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    }
  };
  pass();
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  cudaEventRecord(a);
  for (int i = 0; i < iterations; ++i) pass();
  cudaEventRecord(b);
  cudaEventSynchronize(b);
  float ms = 0;
  cudaEventElapsedTime(&ms, a, b);
  for (void* w : weights) cudaFree(w);
  cudaFree(x);
  cudaFree(y);
  cublasDestroy(h);
  return ms / iterations;
}

}  // namespace

int main(int argc, char** argv) {
  int layers = argc > 1 ? std::atoi(argv[1]) : 4;
  int width = argc > 2 ? std::atoi(argv[2]) : 4096;
  std::string prec = argc > 3 ? argv[3] : "fp32";
  std::string batch_list = argc > 4 ? argv[4] : "1,8,64,256,1024";
  Precision p = prec == "fp16" ? Precision::kFp16 : prec == "bf16" ? Precision::kBf16 : Precision::kFp32;
  std::string error;
  if (kh_dense_cuda_device_count(&error) == 0) {
    std::printf("SKIP dense_cuda_bench: %s\n", error.c_str());
    return 77;
  }
  std::vector<int> batches;
  std::stringstream ss(batch_list);
  for (std::string item; std::getline(ss, item, ',');) batches.push_back(std::atoi(item.c_str()));
  int max_rows = 1;
  for (int b : batches) max_rows = std::max(max_rows, b);

  std::vector<int> widths(static_cast<size_t>(layers) + 1, width);
  check::HostNet net = check::randomNet(widths, {Activation::kRelu}, 1);
  net.specs.back().activation = Activation::kNone;
  NetSpec spec;
  spec.layers = net.specs.data();
  spec.layer_count = layers;
  spec.precision = p;
  spec.max_rows = max_rows;
  spec.streams = 1;
  Net* gpu = kh_dense_cuda_create(&spec, &error);
  if (gpu == nullptr) {
    std::fprintf(stderr, "create: %s\n", error.c_str());
    return 1;
  }
  for (int rows : batches) {
    double flops = 0;
    for (int i = 0; i < layers; ++i) flops += 2.0 * rows * widths[i] * widths[i + 1];
    int iterations = iterationsFor(flops);
    double resident_ms = 0;
    if (std::string e = gpu->timeResident(rows, iterations, &resident_ms); !e.empty()) {
      std::fprintf(stderr, "timeResident: %s\n", e.c_str());
      return 1;
    }
    double gemm_ms = gemmAloneMs(widths, rows, p, iterations);
    std::vector<float> x(static_cast<size_t>(rows) * width, 0.5f), y(static_cast<size_t>(rows) * width);
    int calls = std::max(5, iterations / 4);
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) {
      if (std::string e = gpu->forward(x.data(), rows, y.data()); !e.empty()) {
        std::fprintf(stderr, "forward: %s\n", e.c_str());
        return 1;
      }
    }
    double end_to_end_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / calls;
    std::printf(
        "{\"device\": \"%s\", \"layers\": %d, \"width\": %d, \"precision\": \"%s\", \"batch\": %d, "
        "\"rows_per_s\": %.1f, \"end_to_end_ms\": %.4f, \"net_ms\": %.4f, \"net_tflops\": %.2f, "
        "\"gemm_alone_ms\": %.4f, \"gemm_alone_tflops\": %.2f, \"ratio_to_gemm\": %.3f}\n",
        gpu->deviceName().c_str(), layers, width, prec.c_str(), rows, rows / end_to_end_s,
        end_to_end_s * 1e3, resident_ms, flops / resident_ms / 1e9, gemm_ms,
        flops / gemm_ms / 1e9, gemm_ms / resident_ms);
    std::fflush(stdout);
  }
  delete gpu;
  return 0;
}
