// loadModel(): runtime names, "auto" detection, and the errors for what is missing.

#include <fstream>

#include "gtest/gtest.h"
#include "kh/runtimes/model.h"
#include "test_util.h"

namespace kh::runtimes {
namespace {

TEST(LoadModel, RuntimeNames) {
  EXPECT_EQ(runtimeNames(), (std::vector<std::string>{"xgboost", "dense"}));
}

TEST(LoadModel, AutoDetectsEachCommittedModel) {
  const std::pair<const char*, const char*> cases[] = {{"xgboost-iris", "xgboost"},
                                                       {"xgboost-regressor", "xgboost"},
                                                       {"dense-iris", "kh_dense"},
                                                       {"dense-fp16", "kh_dense"}};
  for (const auto& [dir, platform] : cases) {
    auto model = loadModel("auto", dir, testing::modelsDir() / dir);
    ASSERT_TRUE(model.ok()) << dir << ": " << model.status();
    EXPECT_EQ((*model)->metadata().name, dir);
    EXPECT_EQ((*model)->metadata().platform, platform) << dir;
  }
}

TEST(LoadModel, ExplicitRuntimeMustMatchTheFiles) {
  EXPECT_EQ(loadModel("dense", "m", testing::modelsDir() / "xgboost-iris").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(loadModel("xgboost", "m", testing::modelsDir() / "dense-iris").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(LoadModel, UnknownRuntimeListsTheKnownOnes) {
  for (const char* dir : {"xgboost-iris", "does-not-exist"}) {
    auto r = loadModel("tensorflow", "m", testing::modelsDir() / dir);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnimplemented) << dir;
    EXPECT_EQ(r.status().message(),
              "unknown runtime 'tensorflow'; known runtimes: auto, xgboost, dense");
  }
  EXPECT_EQ(loadModel("", "m", testing::modelsDir() / "xgboost-iris").status().code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(loadModel("XGBoost", "m", testing::modelsDir() / "xgboost-iris").status().code(),
            absl::StatusCode::kUnimplemented);
}

TEST(LoadModel, MissingOrEmptyDirectoryIsNotFound) {
  for (const char* runtime : {"auto", "xgboost", "dense"}) {
    auto r = loadModel(runtime, "m", "/nonexistent/model-dir");
    EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << runtime;
    EXPECT_NE(std::string(r.status().message()).find("/nonexistent/model-dir"), std::string::npos);
  }
  auto empty = testing::freshDir("empty");
  auto r = loadModel("auto", "m", empty);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(r.status().message()).find("model.json"), std::string::npos);
  // A file where the directory should be.
  std::ofstream(empty / "file") << "x";
  EXPECT_EQ(loadModel("auto", "m", empty / "file").status().code(), absl::StatusCode::kNotFound);
  // config.json alone is not a dense model.
  std::ofstream(empty / "config.json") << "{}";
  EXPECT_EQ(loadModel("auto", "m", empty).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace kh::runtimes
