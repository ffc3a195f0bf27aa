// The dense runtime equals a naive reference MLP; config errors are precise.

#include <cmath>
#include <fstream>

#include "gtest/gtest.h"
#include "kh/runtimes/model.h"
#include "nlohmann/json.hpp"
#include "safetensors.h"

namespace kh::runtimes {
namespace {

using protocols::DataType;
using protocols::Tensor;

const std::string kModels = KH_TEST_SOURCE_DIR "/reference-impl/models/";

// Reads weights and computes the network with plain loops.
std::vector<float> naive(const std::string& dir, const std::vector<float>& x, int rows) {
  auto file = readSafeTensors(dir + "/model.safetensors");
  EXPECT_TRUE(file.ok());
  nlohmann::json config = nlohmann::json::parse(std::ifstream(dir + "/config.json"));
  std::vector<float> cur = x;
  int width = 4;
  for (const auto& layer : config["layers"]) {
    const auto& w = file->tensors.at(layer["weight"].get<std::string>());
    auto wv = *w.toFloats();
    auto bv = *file->tensors.at(layer["bias"].get<std::string>()).toFloats();
    int out = static_cast<int>(w.shape[0]);
    std::vector<float> next(static_cast<size_t>(rows * out));
    for (int r = 0; r < rows; ++r) {
      for (int o = 0; o < out; ++o) {
        double acc = bv[static_cast<size_t>(o)];
        for (int i = 0; i < width; ++i) {
          acc += static_cast<double>(cur[static_cast<size_t>(r * width + i)]) *
                 wv[static_cast<size_t>(o * width + i)];
        }
        next[static_cast<size_t>(r * out + o)] = static_cast<float>(acc);
      }
    }
    std::string act = layer["activation"];
    for (int r = 0; r < rows; ++r) {
      float* row = next.data() + r * out;
      if (act == "relu") {
        for (int o = 0; o < out; ++o) row[o] = std::max(0.0f, row[o]);
      } else if (act == "softmax") {
        float mx = *std::max_element(row, row + out), sum = 0;
        for (int o = 0; o < out; ++o) sum += (row[o] = std::exp(row[o] - mx));
        for (int o = 0; o < out; ++o) row[o] /= sum;
      }
    }
    cur = next;
    width = out;
  }
  return cur;
}

std::vector<float> inputs(int rows) {
  std::vector<float> x;
  for (int i = 0; i < rows * 4; ++i) x.push_back(std::sin(0.37f * static_cast<float>(i)) * 4.0f + 3.0f);
  return x;
}

TEST(DenseModel, EqualsNaiveReferenceForSeveralBatchSizes) {
  for (const char* dir : {"dense-iris", "dense-fp16"}) {
    auto model = loadModel("auto", "dense", kModels + dir);
    ASSERT_TRUE(model.ok()) << model.status();
    for (int rows : {1, 2, 7, 64}) {
      auto x = inputs(rows);
      Tensor in = Tensor::fromValues<float>("input-0", DataType::kFp32, {rows, 4}, x);
      auto out = (*model)->predict({&in, 1});
      ASSERT_TRUE(out.ok()) << out.status();
      EXPECT_EQ((*out)[0].shape, (protocols::Shape{rows, 3}));
      auto expected = naive(kModels + dir, x, rows);
      for (size_t i = 0; i < expected.size(); ++i) {
        EXPECT_NEAR((*out)[0].at<float>(i), expected[i], 1e-5) << dir << " batch " << rows;
      }
    }
  }
}

TEST(DenseModel, Fp16WeightsStayCloseToFp32) {
  auto f32 = loadModel("dense", "a", kModels + "dense-iris");
  auto f16 = loadModel("dense", "b", kModels + "dense-fp16");
  ASSERT_TRUE(f32.ok() && f16.ok());
  auto x = inputs(16);
  Tensor in = Tensor::fromValues<float>("input-0", DataType::kFp32, {16, 4}, x);
  auto a = (*f32)->predict({&in, 1});
  auto b = (*f16)->predict({&in, 1});
  for (size_t i = 0; i < 48; ++i) EXPECT_NEAR((*a)[0].at<float>(i), (*b)[0].at<float>(i), 5e-3);
}

// Writes a model dir from pieces, to break one thing at a time.
std::string writeModel(const std::string& name, const nlohmann::json& config,
                       const SafeTensorsFile& weights) {
  std::string dir = ::testing::TempDir() + "/" + name;
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/config.json") << config.dump();
  EXPECT_TRUE(writeSafeTensors(dir + "/model.safetensors", weights).ok());
  return dir;
}

SafeTensorsFile weights(int in, int out) {
  SafeTensorsFile f;
  f.tensors["w"] = {"F32", {out, in}, std::string(static_cast<size_t>(in * out) * 4, '\0')};
  f.tensors["b"] = {"F32", {out}, std::string(static_cast<size_t>(out) * 4, '\0')};
  return f;
}

nlohmann::json config(int in, int out, const std::string& activation = "none") {
  return {{"inputs", {{{"name", "x"}, {"datatype", "FP32"}, {"shape", {-1, in}}}}},
          {"outputs", {{{"name", "y"}, {"datatype", "FP32"}, {"shape", {-1, out}}}}},
          {"layers", {{{"weight", "w"}, {"bias", "b"}, {"activation", activation}}}}};
}

std::string loadError(const std::string& dir) {
  auto r = loadModel("dense", "m", dir);
  return r.ok() ? "OK" : std::string(r.status().message());
}

TEST(DenseModel, ConfigErrorsNameTheProblem) {
  EXPECT_EQ(loadError(writeModel("ok", config(4, 3), weights(4, 3))), "OK");
  EXPECT_NE(loadError(writeModel("dims", config(5, 3), weights(4, 3))).find("takes 4 features"),
            std::string::npos);
  EXPECT_NE(loadError(writeModel("outw", config(4, 2), weights(4, 3))).find("declares 2"),
            std::string::npos);
  EXPECT_NE(loadError(writeModel("act", config(4, 3, "gelu6"), weights(4, 3))).find("unknown activation"),
            std::string::npos);
  auto missing = config(4, 3);
  missing["layers"][0]["weight"] = "nope";
  EXPECT_NE(loadError(writeModel("missing", missing, weights(4, 3))).find("must be in model.safetensors"),
            std::string::npos);
  std::string broken = writeModel("broken", config(4, 3), weights(4, 3));
  std::ofstream(broken + "/config.json") << "{";
  EXPECT_NE(loadError(broken).find("not valid JSON"), std::string::npos);
}

}  // namespace
}  // namespace kh::runtimes
