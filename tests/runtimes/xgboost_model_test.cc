// The xgboost runtime predicts exactly what libxgboost predicts.

#include <fstream>
#include <thread>

#include "gtest/gtest.h"
#include "kh/runtimes/model.h"
#include "xgboost/c_api.h"

namespace kh::runtimes {
namespace {

using protocols::DataType;
using protocols::Tensor;

const std::string kModels = KH_TEST_SOURCE_DIR "/reference-impl/models/";

// Deterministic feature rows covering the iris value ranges.
std::vector<float> rows(int n) {
  std::vector<float> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(4.3f + 0.024f * static_cast<float>(i % 150));
    out.push_back(2.0f + 0.016f * static_cast<float>((i * 7) % 150));
    out.push_back(1.0f + 0.039f * static_cast<float>((i * 13) % 150));
    out.push_back(0.1f + 0.016f * static_cast<float>((i * 31) % 150));
  }
  return out;
}

// libxgboost's own answer through a DMatrix, independent of our in-place path.
std::vector<float> referencePredict(const std::string& model_file, const std::vector<float>& x,
                                    int n) {
  BoosterHandle booster;
  EXPECT_EQ(XGBoosterCreate(nullptr, 0, &booster), 0);
  EXPECT_EQ(XGBoosterLoadModel(booster, model_file.c_str()), 0);
  DMatrixHandle dm;
  EXPECT_EQ(XGDMatrixCreateFromMat(x.data(), n, 4, NAN, &dm), 0);
  bst_ulong len = 0;
  const float* out = nullptr;
  EXPECT_EQ(XGBoosterPredict(booster, dm, 0, 0, 0, &len, &out), 0);
  std::vector<float> result(out, out + len);
  XGDMatrixFree(dm);
  XGBoosterFree(booster);
  return result;
}

TEST(XgboostModel, IrisMetadataAndTheE2eRows) {
  auto model = loadModel("auto", "iris", kModels + "xgboost-iris");
  ASSERT_TRUE(model.ok()) << model.status();
  const auto& meta = (*model)->metadata();
  EXPECT_EQ(meta.name, "iris");
  EXPECT_EQ(meta.inputs[0].shape, (protocols::Shape{-1, 4}));
  EXPECT_EQ(meta.outputs[0].datatype, DataType::kInt64);
  std::vector<float> x = {6.8f, 2.8f, 4.8f, 1.4f, 6.0f, 3.4f, 4.5f, 1.6f};
  Tensor in = Tensor::fromValues<float>("input-0", DataType::kFp32, {2, 4}, x);
  auto out = (*model)->predict({&in, 1});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].at<int64_t>(0), 1);
  EXPECT_EQ((*out)[0].at<int64_t>(1), 1);
}

TEST(XgboostModel, EqualsLibxgboostOnManyRows) {
  for (const char* dir : {"xgboost-iris", "xgboost-regressor"}) {
    auto model = loadModel("xgboost", "m", kModels + dir);
    ASSERT_TRUE(model.ok()) << model.status();
    const int n = 300;
    auto x = rows(n);
    auto expected = referencePredict(kModels + dir + "/model.json", x, n);
    Tensor in = Tensor::fromValues<float>("input-0", DataType::kFp32, {n, 4}, x);
    auto out = (*model)->predict({&in, 1});
    ASSERT_TRUE(out.ok()) << out.status();
    ASSERT_EQ(static_cast<size_t>((*out)[0].heldElements()), expected.size()) << dir;
    for (int i = 0; i < n; ++i) {
      float got = (*out)[0].datatype == DataType::kInt64
                      ? static_cast<float>((*out)[0].at<int64_t>(static_cast<size_t>(i)))
                      : (*out)[0].at<float>(static_cast<size_t>(i));
      EXPECT_FLOAT_EQ(got, expected[static_cast<size_t>(i)]) << dir << " row " << i;
    }
  }
}

TEST(XgboostModel, OtherNumericInputsAreConverted) {
  auto model = loadModel("xgboost", "iris", kModels + "xgboost-iris");
  ASSERT_TRUE(model.ok());
  std::vector<double> x = {6.8, 2.8, 4.8, 1.4};
  Tensor in = Tensor::fromValues<double>("input-0", DataType::kFp64, {1, 4}, x);
  auto out = (*model)->predict({&in, 1});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ((*out)[0].at<int64_t>(0), 1);
}

TEST(XgboostModel, WrongFeatureCountIsInvalidArgument) {
  auto model = loadModel("xgboost", "iris", kModels + "xgboost-iris");
  ASSERT_TRUE(model.ok());
  std::vector<float> x = {1, 2, 3};
  Tensor in = Tensor::fromValues<float>("input-0", DataType::kFp32, {1, 3}, x);
  auto out = (*model)->predict({&in, 1});
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(XgboostModel, ConcurrentPredictionsAgree) {
  auto model = loadModel("xgboost", "iris", kModels + "xgboost-iris");
  ASSERT_TRUE(model.ok());
  const int n = 150;
  auto x = rows(n);
  Tensor in = Tensor::fromValues<float>("input-0", DataType::kFp32, {n, 4}, x);
  auto reference = (*model)->predict({&in, 1});
  ASSERT_TRUE(reference.ok());
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        auto out = (*model)->predict({&in, 1});
        if (!out.ok() || (*out)[0].raw != (*reference)[0].raw) ++mismatches;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST(LoadModel, ErrorsAreClear) {
  EXPECT_EQ(loadModel("auto", "m", "/nonexistent").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(loadModel("tensorflow", "m", kModels + "xgboost-iris").status().code(),
            absl::StatusCode::kUnimplemented);
  std::string empty = ::testing::TempDir() + "/empty-model-dir";
  std::filesystem::create_directories(empty);
  auto r = loadModel("auto", "m", empty);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(r.status().message()).find("model.json"), std::string::npos);
  std::string bad = ::testing::TempDir() + "/bad-xgb";
  std::filesystem::create_directories(bad);
  std::ofstream(bad + "/model.json") << "{ this is not a model";
  EXPECT_EQ(loadModel("auto", "m", bad).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(runtimeNames(), (std::vector<std::string>{"xgboost", "dense"}));
}

}  // namespace
}  // namespace kh::runtimes
