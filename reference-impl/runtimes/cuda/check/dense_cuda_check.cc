// The CUDA backend against a CPU reference: every activation, FP32/FP16/BF16, batches below,
// at and above the device buffers' rows (chunked), and concurrent callers on several streams.
// Needs only the CUDA toolkit (no test framework). Exit status: 0 passed, 1 failed, 77 skipped
// (no device: the reason is printed).

#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "random_net.h"

namespace kh::dense_cuda::check {
namespace {

int failures = 0;

void expectClose(const std::vector<float>& got, const std::vector<float>& want, double tol,
                 const std::string& what) {
  double worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    double err = std::fabs(got[i] - want[i]) / (1.0 + std::fabs(want[i]));
    if (!(err <= worst)) {
      worst = err;
      at = i;
    }
  }
  bool ok = got.size() == want.size() && worst <= tol;
  std::printf("%s %-58s max rel err %.3g (tolerance %.3g)\n", ok ? "PASS" : "FAIL", what.c_str(),
              worst, tol);
  if (!ok) {
    std::printf("     at %zu: got %.9g want %.9g\n", at, got[at], want[at]);
    ++failures;
  }
}

std::vector<float> input(int rows, int width, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  std::vector<float> x(static_cast<size_t>(rows) * width);
  for (float& v : x) v = u(rng);
  return x;
}

const char* name(Precision p) {
  return p == Precision::kFp32 ? "fp32" : p == Precision::kFp16 ? "fp16" : "bf16";
}

void checkNet(const std::vector<int>& widths, const std::vector<Activation>& acts, Precision p,
              double tol, const std::string& label) {
  HostNet net = randomNet(widths, acts, 7);
  NetSpec spec;
  spec.layers = net.specs.data();
  spec.layer_count = static_cast<int>(net.specs.size());
  spec.precision = p;
  spec.max_rows = 64;
  spec.streams = 2;
  std::string error;
  Net* gpu = kh_dense_cuda_create(&spec, &error);
  if (gpu == nullptr) {
    std::printf("FAIL %s: create: %s\n", label.c_str(), error.c_str());
    ++failures;
    return;
  }
  for (int rows : {1, 7, 64, 150}) {  // 150 rows run as 64 + 64 + 22
    std::vector<float> x = input(rows, widths.front(), static_cast<uint32_t>(rows));
    std::vector<float> y(static_cast<size_t>(rows) * widths.back());
    std::string e = gpu->forward(x.data(), rows, y.data());
    if (!e.empty()) {
      std::printf("FAIL %s rows %d: %s\n", label.c_str(), rows, e.c_str());
      ++failures;
      continue;
    }
    expectClose(y, cpuForward(net, x, rows, p), tol,
                label + " " + name(p) + " rows " + std::to_string(rows));
  }
  // Concurrent callers share two streams; each must get its own rows.
  std::vector<std::thread> threads;
  std::vector<int> bad(8, 0);
  std::vector<float> x = input(33, widths.front(), 99);
  std::vector<float> want(static_cast<size_t>(33) * widths.back());
  gpu->forward(x.data(), 33, want.data());
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::vector<float> y(want.size());
      for (int i = 0; i < 20; ++i) {
        if (!gpu->forward(x.data(), 33, y.data()).empty() || y != want) bad[t] = 1;
      }
    });
  }
  for (auto& th : threads) th.join();
  int bad_total = 0;
  for (int b : bad) bad_total += b;
  std::printf("%s %-58s\n", bad_total == 0 ? "PASS" : "FAIL",
              (label + " " + name(p) + " 8 threads on 2 streams, same result").c_str());
  failures += bad_total;
  if (gpu->failed()) {
    std::printf("FAIL %s: failed() after successful calls\n", label.c_str());
    ++failures;
  }
  delete gpu;
}

}  // namespace
}  // namespace kh::dense_cuda::check

int main() {
  using namespace kh::dense_cuda;
  using namespace kh::dense_cuda::check;
  std::string error;
  int devices = kh_dense_cuda_device_count(&error);
  if (devices == 0) {
    std::printf("SKIP dense_cuda_check: %s\n", error.c_str());
    return 77;
  }
  for (Precision p : {Precision::kFp32, Precision::kFp16, Precision::kBf16}) {
    double tol = p == Precision::kFp32 ? 1e-4 : 2e-2;
    checkNet({4, 16, 3}, {Activation::kRelu, Activation::kSoftmax}, p, tol, "iris-shaped");
    checkNet({96, 300, 257, 33, 10},
             {Activation::kTanh, Activation::kSigmoid, Activation::kNone, Activation::kSoftmax}, p,
             tol, "odd widths, every activation");
    checkNet({512, 1024, 1024, 512}, {Activation::kRelu, Activation::kRelu, Activation::kNone}, p,
             p == Precision::kFp32 ? 1e-4 : 5e-2, "wide");
  }
  std::printf("%s: %d failure(s)\n", failures == 0 ? "PASSED" : "FAILED", failures);
  return failures == 0 ? 0 : 1;
}
