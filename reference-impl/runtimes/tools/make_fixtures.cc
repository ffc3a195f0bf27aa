// make_fixtures OUT_DIR: writes the demo models under OUT_DIR, reproducibly (same bytes every
// run): an XGBoost iris classifier and regressor trained through the C API on Fisher's iris data,
// and dense MLPs with weights from a fixed formula in FP32 and FP16.

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../src/safetensors.h"
#include "iris_data.h"
#include "kh/common/json.h"
#include "kh/protocols/tensor.h"
#include "nlohmann/json.hpp"
#include "xgboost/c_api.h"

namespace {

using kh::runtimes::fixtures::kIris;

#define CHECK_XGB(call)                                                  \
  do {                                                                   \
    if ((call) != 0) {                                                   \
      std::fprintf(stderr, "%s failed: %s\n", #call, XGBGetLastError()); \
      std::exit(1);                                                      \
    }                                                                    \
  } while (false)

// Trains a booster on the iris features with the given label column and parameters.
void trainXgboost(const std::filesystem::path& out, bool classifier, int rounds) {
  std::vector<float> features, labels;
  for (const auto& row : kIris) {
    if (classifier) {
      features.insert(features.end(), row, row + 4);
      labels.push_back(row[4]);
    } else {
      // Regressor: predict petal width from the other three measurements plus the class.
      features.insert(features.end(), {row[0], row[1], row[2], row[4]});
      labels.push_back(row[3]);
    }
  }
  DMatrixHandle dmatrix;
  CHECK_XGB(XGDMatrixCreateFromMat(features.data(), 150, 4, NAN, &dmatrix));
  CHECK_XGB(XGDMatrixSetFloatInfo(dmatrix, "label", labels.data(), 150));
  BoosterHandle booster;
  CHECK_XGB(XGBoosterCreate(&dmatrix, 1, &booster));
  const char* params[][2] = {{"objective", classifier ? "multi:softmax" : "reg:squarederror"},
                             {"num_class", classifier ? "3" : "1"},
                             {"max_depth", "3"},
                             {"eta", "0.3"},
                             {"seed", "0"},
                             {"nthread", "1"},
                             {"tree_method", "exact"}};
  for (auto& p : params) {
    if (!classifier && std::string(p[0]) == "num_class") continue;
    CHECK_XGB(XGBoosterSetParam(booster, p[0], p[1]));
  }
  for (int i = 0; i < rounds; ++i) CHECK_XGB(XGBoosterUpdateOneIter(booster, i, dmatrix));
  std::filesystem::create_directories(out);
  CHECK_XGB(XGBoosterSaveModel(booster, (out / "model.json").c_str()));
  XGBoosterFree(booster);
  XGDMatrixFree(dmatrix);
}

// Deterministic weights in [-0.5, 0.5] from a fixed formula. Not trained: the dense fixtures
// exercise the runtime's arithmetic and the protocol, they do not classify iris.
float weightAt(int layer, int row, int col) {
  return 0.5f * std::sin(1.3f * static_cast<float>(row + 1) + 0.7f * static_cast<float>(col + 1) +
                         static_cast<float>(layer));
}

void writeDense(const std::filesystem::path& out, const std::string& dtype) {
  const int sizes[] = {4, 8, 3};
  kh::runtimes::SafeTensorsFile file;
  file.metadata["format"] = "pt";
  file.metadata["generator"] = "kserve-harness make_fixtures";
  nlohmann::json layers = nlohmann::json::array();
  for (int l = 0; l < 2; ++l) {
    int in = sizes[l], outw = sizes[l + 1];
    std::vector<float> w, b;
    for (int r = 0; r < outw; ++r) {
      for (int c = 0; c < in; ++c) w.push_back(weightAt(l, r, c));
      b.push_back(0.1f * static_cast<float>(r) - 0.2f);
    }
    auto encode = [&](const std::vector<float>& values) {
      std::string bytes;
      for (float v : values) {
        if (dtype == "F16") {
          uint16_t h = kh::protocols::floatToHalf(v);
          bytes.append(reinterpret_cast<const char*>(&h), 2);
        } else {
          bytes.append(reinterpret_cast<const char*>(&v), 4);
        }
      }
      return bytes;
    };
    std::string prefix = "fc" + std::to_string(l + 1);
    file.tensors[prefix + ".weight"] = {dtype, {outw, in}, encode(w)};
    file.tensors[prefix + ".bias"] = {dtype, {outw}, encode(b)};
    layers.push_back({{"weight", prefix + ".weight"},
                      {"bias", prefix + ".bias"},
                      {"activation", l == 0 ? "relu" : "softmax"}});
  }
  std::filesystem::create_directories(out);
  if (auto st = kh::runtimes::writeSafeTensors(out / "model.safetensors", file); !st.ok()) {
    std::fprintf(stderr, "%s\n", std::string(st.message()).c_str());
    std::exit(1);
  }
  nlohmann::json config = {
      {"inputs", {{{"name", "input-0"}, {"datatype", "FP32"}, {"shape", {-1, 4}}}}},
      {"outputs", {{{"name", "output-0"}, {"datatype", "FP32"}, {"shape", {-1, 3}}}}},
      {"layers", layers}};
  std::ofstream config_file(out / "config.json");
  config_file << kh::common::jsonText(config, 2) << "\n";
  if (!config_file.flush()) {
    std::fprintf(stderr, "cannot write %s\n", (out / "config.json").c_str());
    std::exit(1);
  }
}

// A large MLP for benchmarks (not committed: 4 x 4096 is 200 MiB in FP32): `layers` layers,
// the first layers - 1 of width x width with relu, the last width -> 10 with softmax. Weights
// are the same formula scaled by 1/sqrt(in), so activations stay O(1) (and within FP16).
void writeLargeDense(const std::filesystem::path& out, const std::string& dtype, int layers_n,
                     int width) {
  kh::runtimes::SafeTensorsFile file;
  file.metadata["format"] = "pt";
  file.metadata["generator"] = "kserve-harness make_fixtures --large";
  nlohmann::json layers = nlohmann::json::array();
  for (int l = 0; l < layers_n; ++l) {
    const bool last = l + 1 == layers_n;
    const int in = width, outw = last ? 10 : width;
    const float scale = 2.0f / std::sqrt(static_cast<float>(in));
    std::string w_bytes, b_bytes;
    auto put = [&](std::string& bytes, float v) {
      if (dtype == "F16") {
        uint16_t h = kh::protocols::floatToHalf(v);
        bytes.append(reinterpret_cast<const char*>(&h), 2);
      } else {
        bytes.append(reinterpret_cast<const char*>(&v), 4);
      }
    };
    w_bytes.reserve(static_cast<size_t>(in) * outw * (dtype == "F16" ? 2 : 4));
    for (int r = 0; r < outw; ++r) {
      for (int c = 0; c < in; ++c) put(w_bytes, scale * weightAt(l, r, c));
      put(b_bytes, 0.01f * static_cast<float>(r % 7) - 0.03f);
    }
    std::string prefix = "fc" + std::to_string(l + 1);
    file.tensors[prefix + ".weight"] = {dtype, {outw, in}, std::move(w_bytes)};
    file.tensors[prefix + ".bias"] = {dtype, {outw}, std::move(b_bytes)};
    layers.push_back({{"weight", prefix + ".weight"},
                      {"bias", prefix + ".bias"},
                      {"activation", last ? "softmax" : "relu"}});
  }
  std::filesystem::create_directories(out);
  if (auto st = kh::runtimes::writeSafeTensors(out / "model.safetensors", file); !st.ok()) {
    std::fprintf(stderr, "%s\n", std::string(st.message()).c_str());
    std::exit(1);
  }
  nlohmann::json config = {
      {"inputs", {{{"name", "input-0"}, {"datatype", "FP32"}, {"shape", {-1, width}}}}},
      {"outputs", {{{"name", "output-0"}, {"datatype", "FP32"}, {"shape", {-1, 10}}}}},
      {"layers", layers}};
  std::ofstream config_file(out / "config.json");
  config_file << kh::common::jsonText(config, 2) << "\n";
  if (!config_file.flush()) {
    std::fprintf(stderr, "cannot write %s\n", (out / "config.json").c_str());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::string(argv[1]) == "--large") {
    std::filesystem::path out = argv[2];
    int layers = argc > 3 ? std::atoi(argv[3]) : 4;
    int width = argc > 4 ? std::atoi(argv[4]) : 4096;
    if (layers < 1 || layers > 64 || width < 16 || width > 65536) {
      std::fprintf(stderr, "make_fixtures --large: LAYERS in [1, 64], WIDTH in [16, 65536]\n");
      return 2;
    }
    for (const char* dtype : {"F32", "F16"}) {
      std::string name = "dense-mlp-" + std::to_string(layers) + "x" + std::to_string(width) +
                         (std::string(dtype) == "F16" ? "-fp16" : "-fp32");
      writeLargeDense(out / name, dtype, layers, width);
      std::printf("wrote %s\n", (out / name).c_str());
    }
    return 0;
  }
  if (argc != 2) {
    std::fprintf(stderr,
                 "usage: make_fixtures OUT_DIR                        (the committed demo models)\n"
                 "       make_fixtures --large OUT_DIR [LAYERS WIDTH]  (benchmark MLPs, FP32 and "
                 "FP16; default 4 x 4096)\n");
    return 2;
  }
  std::filesystem::path out = argv[1];
  trainXgboost(out / "xgboost-iris", /*classifier=*/true, 10);
  trainXgboost(out / "xgboost-regressor", /*classifier=*/false, 5);
  writeDense(out / "dense-iris", "F32");
  writeDense(out / "dense-fp16", "F16");
  std::printf("wrote xgboost-iris, xgboost-regressor, dense-iris, dense-fp16 under %s\n",
              out.c_str());
  return 0;
}
