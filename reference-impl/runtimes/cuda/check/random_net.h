#pragma once
// Seeded random networks and a CPU reference in double precision, for the CUDA check and
// benchmark (which build from the CUDA toolkit alone, so no test framework).

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "kh/dense_cuda/dense_cuda.h"

namespace kh::dense_cuda::check {

struct HostNet {
  std::vector<std::vector<float>> weights, biases;
  std::vector<LayerSpec> specs;
};

/** widths = {in, hidden..., out}; weights ~ U(-1, 1) / sqrt(in), so activations stay O(1). */
inline HostNet randomNet(const std::vector<int>& widths, const std::vector<Activation>& acts,
                         uint32_t seed) {
  HostNet net;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (size_t i = 0; i + 1 < widths.size(); ++i) {
    int in = widths[i], out = widths[i + 1];
    std::vector<float> w(static_cast<size_t>(in) * out), b(static_cast<size_t>(out));
    float scale = 1.f / std::sqrt(static_cast<float>(in));
    for (float& v : w) v = u(rng) * scale;
    for (float& v : b) v = u(rng) * 0.1f;
    net.weights.push_back(std::move(w));
    net.biases.push_back(std::move(b));
  }
  for (size_t i = 0; i < net.weights.size(); ++i) {
    LayerSpec s;
    s.weight = net.weights[i].data();
    s.bias = net.biases[i].data();
    s.in = widths[i];
    s.out = widths[i + 1];
    s.activation = acts[i % acts.size()];
    net.specs.push_back(s);
  }
  return net;
}

inline float roundTo(float v, Precision p) {
  if (p == Precision::kFp16) return __half2float(__float2half_rn(v));
  if (p == Precision::kBf16) return __bfloat162float(__float2bfloat16_rn(v));
  return v;
}

/**
 * The network on the CPU, in double, with weights and hidden activations rounded as the GPU
 * stores them in precision `p` (accumulation and the output stay full precision).
 */
inline std::vector<float> cpuForward(const HostNet& net, const std::vector<float>& x, int rows,
                                     Precision p) {
  std::vector<double> cur(x.begin(), x.end());
  for (double& v : cur) v = roundTo(static_cast<float>(v), p);
  for (size_t li = 0; li < net.specs.size(); ++li) {
    const LayerSpec& l = net.specs[li];
    const bool last = li + 1 == net.specs.size();
    std::vector<double> next(static_cast<size_t>(rows) * l.out);
    for (int r = 0; r < rows; ++r) {
      for (int o = 0; o < l.out; ++o) {
        double acc = 0;
        for (int k = 0; k < l.in; ++k) {
          acc += static_cast<double>(roundTo(l.weight[static_cast<size_t>(o) * l.in + k], p)) *
                 cur[static_cast<size_t>(r) * l.in + k];
        }
        next[static_cast<size_t>(r) * l.out + o] = acc + l.bias[o];
      }
      double* row = next.data() + static_cast<size_t>(r) * l.out;
      if (l.activation == Activation::kSoftmax) {
        double mx = row[0], sum = 0;
        for (int o = 0; o < l.out; ++o) mx = std::max(mx, row[o]);
        for (int o = 0; o < l.out; ++o) sum += (row[o] = std::exp(row[o] - mx));
        for (int o = 0; o < l.out; ++o) row[o] /= sum;
      } else {
        for (int o = 0; o < l.out; ++o) {
          double& v = row[o];
          if (l.activation == Activation::kRelu) v = v > 0 ? v : 0;
          if (l.activation == Activation::kSigmoid) v = 1 / (1 + std::exp(-v));
          if (l.activation == Activation::kTanh) v = std::tanh(v);
        }
      }
      if (!last) {
        for (int o = 0; o < l.out; ++o) row[o] = roundTo(static_cast<float>(row[o]), p);
      }
    }
    cur = std::move(next);
  }
  return std::vector<float>(cur.begin(), cur.end());
}

}  // namespace kh::dense_cuda::check
