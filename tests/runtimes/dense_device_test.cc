// The dense runtime's device choice. The GPU tests run where a CUDA device is usable and are
// skipped with the reason otherwise; the no-device tests run where it is not (CI here).

#include <cmath>
#include <random>

#include "dense_model.h"
#include "gtest/gtest.h"
#include "kh/runtimes/model.h"
#include "test_util.h"

namespace kh::runtimes {
namespace {

using protocols::DataType;
using protocols::Tensor;

LoadOptions onDevice(std::string device) {
  LoadOptions o;
  o.device = std::move(device);
  o.max_batch_rows = 64;
  o.streams = 2;
  return o;
}

// Why CUDA cannot be used here, or "" when it can.
std::string cudaUnusable() {
  auto m = loadModel("dense", "probe", testing::modelsDir() / "dense-iris", onDevice("cuda"));
  return m.ok() ? "" : std::string(m.status().message());
}

TEST(DenseDeviceTest, UnknownDeviceIsRefused) {
  auto m = loadModel("dense", "m", testing::modelsDir() / "dense-iris", onDevice("tpu"));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("unknown device 'tpu'"), std::string_view::npos);
}

TEST(DenseDeviceTest, XgboostRefusesCuda) {
  auto m = loadModel("auto", "m", testing::modelsDir() / "xgboost-iris", onDevice("cuda"));
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("CPU only"), std::string_view::npos) << m.status();
}

TEST(DenseDeviceTest, CudaWithoutAUsableDeviceFailsToLoadWithTheReason) {
  std::string why = cudaUnusable();
  if (why.empty()) GTEST_SKIP() << "a CUDA device is usable here";
  auto m = loadModel("dense", "m", testing::modelsDir() / "dense-iris", onDevice("cuda"));
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(m.status().message().find("device 'cuda' cannot be used: "), std::string_view::npos)
      << m.status();
  // The reason is CUDA's own (driver or device) or, without the toolkit at build time, that the
  // plugin was not built.
  bool cuda_text = why.find("cudaGetDeviceCount") != std::string::npos ||
                   why.find("no CUDA plugin") != std::string::npos ||
                   why.find("no CUDA device") != std::string::npos;
  EXPECT_TRUE(cuda_text) << why;
}

TEST(DenseDeviceTest, AutoComputesOnTheCpuWithoutADeviceAndSaysSo) {
  if (cudaUnusable().empty()) GTEST_SKIP() << "a CUDA device is usable here";
  auto m = loadModel("dense", "m", testing::modelsDir() / "dense-iris", onDevice("auto"));
  ASSERT_TRUE(m.ok()) << m.status();
  const auto& props = (*m)->metadata().properties;
  ASSERT_TRUE(props.contains("device"));
  EXPECT_TRUE(props.at("device").starts_with("cpu (auto: ")) << props.at("device");
  EXPECT_EQ(props.at("backend"), "cpu-openblas");
}

// GPU against CPU within tolerance, on both committed dense models and a seeded batch that is
// larger than the device buffers (so it runs in chunks).
TEST(DenseDeviceTest, GpuMatchesCpuWithinTolerance) {
  std::string why = cudaUnusable();
  if (!why.empty()) GTEST_SKIP() << "no usable CUDA device: " << why;
  for (const char* name : {"dense-iris", "dense-fp16"}) {
    auto gpu = loadModel("dense", name, testing::modelsDir() / name, onDevice("cuda"));
    auto cpu = loadModel("dense", name, testing::modelsDir() / name, onDevice("cpu"));
    ASSERT_TRUE(gpu.ok()) << gpu.status();
    ASSERT_TRUE(cpu.ok()) << cpu.status();
    EXPECT_TRUE((*gpu)->metadata().properties.at("device").starts_with("cuda: "));
    std::mt19937 rng(13);
    std::uniform_real_distribution<float> u(0.f, 8.f);
    std::vector<float> x(150 * 4);
    for (float& v : x) v = u(rng);
    std::vector<Tensor> in;
    in.push_back(Tensor::fromValues<float>("input-0", DataType::kFp32, {150, 4}, x));
    auto a = (*gpu)->predict(in);
    auto b = (*cpu)->predict(in);
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE(b.ok()) << b.status();
    double tol = std::string(name) == "dense-fp16" ? 2e-2 : 1e-4;
    for (int64_t i = 0; i < (*b)[0].heldElements(); ++i) {
      float g = (*a)[0].at<float>(static_cast<size_t>(i)), c = (*b)[0].at<float>(static_cast<size_t>(i));
      ASSERT_LE(std::fabs(g - c), tol * (1 + std::fabs(c))) << name << " value " << i;
    }
    EXPECT_TRUE((*gpu)->health().ok());
  }
}

}  // namespace
}  // namespace kh::runtimes
