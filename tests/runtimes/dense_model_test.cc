// The dense runtime equals a naive reference MLP; config errors are precise.

#include "dense_model.h"

#include <atomic>
#include <cmath>
#include <fstream>
#include <thread>

#include "gtest/gtest.h"
#include "kh/runtimes/model.h"
#include "nlohmann/json.hpp"
#include "safetensors.h"
#include "test_util.h"

namespace kh::runtimes {
namespace {

using nlohmann::json;
using protocols::DataType;
using protocols::Tensor;

// Computes the network of a model directory with plain loops and double accumulation.
std::vector<float> naive(const std::filesystem::path& dir, const std::vector<float>& x, int rows) {
  auto file = readSafeTensors(dir / "model.safetensors");
  EXPECT_TRUE(file.ok()) << file.status();
  json config = json::parse(std::ifstream(dir / "config.json"));
  std::vector<float> cur = x;
  int width = static_cast<int>(config["inputs"][0]["shape"][1]);
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
    std::string act = layer.value("activation", "none");
    for (int r = 0; r < rows; ++r) {
      float* row = next.data() + r * out;
      for (int o = 0; o < out; ++o) {
        if (act == "relu") row[o] = std::max(0.0f, row[o]);
        if (act == "sigmoid") row[o] = static_cast<float>(1.0 / (1.0 + std::exp(-row[o])));
        if (act == "tanh") row[o] = static_cast<float>(std::tanh(static_cast<double>(row[o])));
      }
      if (act == "softmax") {
        double mx = *std::max_element(row, row + out), sum = 0;
        for (int o = 0; o < out; ++o) sum += std::exp(row[o] - mx);
        for (int o = 0; o < out; ++o) row[o] = static_cast<float>(std::exp(row[o] - mx) / sum);
      }
    }
    cur = next;
    width = out;
  }
  return cur;
}

std::vector<float> inputs(int rows, int width = 4) {
  std::vector<float> x;
  for (int i = 0; i < rows * width; ++i) {
    x.push_back(std::sin(0.37f * static_cast<float>(i)) * 4.0f + 3.0f);
  }
  return x;
}

absl::StatusOr<std::vector<Tensor>> run(const Model& model, const std::vector<float>& x,
                                        int width) {
  int64_t rows = static_cast<int64_t>(x.size()) / width;
  Tensor in = Tensor::fromValues<float>("input-0", DataType::kFp32, {rows, width}, x);
  return model.predict({&in, 1});
}

void expectMatchesNaive(const Model& model, const std::filesystem::path& dir, int width,
                        int out_width, double tolerance) {
  for (int rows : {1, 2, 7, 64}) {
    SCOPED_TRACE(dir.filename().string() + " batch " + std::to_string(rows));
    auto x = inputs(rows, width);
    auto out = run(model, x, width);
    ASSERT_TRUE(out.ok()) << out.status();
    ASSERT_EQ(out->size(), 1u);
    EXPECT_EQ((*out)[0].datatype, DataType::kFp32);
    EXPECT_EQ((*out)[0].shape, (protocols::Shape{rows, out_width}));
    auto expected = naive(dir, x, rows);
    ASSERT_EQ(static_cast<size_t>((*out)[0].heldElements()), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
      EXPECT_NEAR((*out)[0].at<float>(i), expected[i],
                  tolerance * std::max(1.0, std::abs(static_cast<double>(expected[i]))))
          << "element " << i;
    }
  }
}

TEST(DenseModel, CommittedModelsEqualNaiveReferenceForSeveralBatchSizes) {
  for (const char* name : {"dense-iris", "dense-fp16"}) {
    auto dir = testing::modelsDir() / name;
    auto model = loadModel("auto", "dense", dir);
    ASSERT_TRUE(model.ok()) << model.status();
    const auto& meta = (*model)->metadata();
    EXPECT_EQ(meta.name, "dense");
    EXPECT_EQ(meta.platform, "kh_dense");
    EXPECT_EQ(meta.inputs[0].name, "input-0");
    EXPECT_EQ(meta.inputs[0].shape, (protocols::Shape{-1, 4}));
    EXPECT_EQ(meta.outputs[0].name, "output-0");
    EXPECT_EQ(meta.outputs[0].shape, (protocols::Shape{-1, 3}));
    EXPECT_EQ(meta.properties.at("backend"), "cpu-openblas");
    // The FP16 model's weights are converted to FP32 at load: the same arithmetic follows.
    expectMatchesNaive(**model, dir, 4, 3, 1e-5);
  }
}

TEST(DenseModel, Fp16WeightsStayWithinFp16ToleranceOfFp32) {
  auto f32 = loadModel("dense", "a", testing::modelsDir() / "dense-iris");
  auto f16 = loadModel("dense", "b", testing::modelsDir() / "dense-fp16");
  ASSERT_TRUE(f32.ok() && f16.ok());
  auto x = inputs(64);
  auto a = run(**f32, x, 4);
  auto b = run(**f16, x, 4);
  ASSERT_TRUE(a.ok() && b.ok());
  // Weights below 1 rounded to 11 significant bits (relative error 2^-11 ~ 4.9e-4), inputs up to
  // 7, two layers: the probabilities move by a few thousandths at most.
  for (size_t i = 0; i < 64 * 3; ++i) {
    EXPECT_NEAR((*a)[0].at<float>(i), (*b)[0].at<float>(i), 5e-3) << i;
  }
}

TEST(DenseModel, IrisRowsGiveTheDocumentedProbabilities) {
  // reference-impl/models/README.md's example.
  const float expected[] = {0.00356f, 0.24008f, 0.75636f, 0.00294f, 0.21559f, 0.78147f};
  for (const char* name : {"dense-iris", "dense-fp16"}) {
    auto model = loadModel("dense", "d", testing::modelsDir() / name);
    ASSERT_TRUE(model.ok());
    auto out = run(**model, {6.8f, 2.8f, 4.8f, 1.4f, 6.0f, 3.4f, 4.5f, 1.6f}, 4);
    ASSERT_TRUE(out.ok());
    for (size_t r = 0; r < 2; ++r) {
      float sum = 0;
      for (size_t c = 0; c < 3; ++c) {
        sum += (*out)[0].at<float>(r * 3 + c);
        EXPECT_NEAR((*out)[0].at<float>(r * 3 + c), expected[r * 3 + c], 1e-4) << name;
      }
      EXPECT_NEAR(sum, 1.0f, 1e-6);
    }
  }
}

// Writes a model directory from pieces, to build or break one thing at a time.
std::filesystem::path writeModel(const std::string& name, const json& config,
                                 const SafeTensorsFile& weights) {
  auto dir = testing::freshDir(name);
  std::ofstream(dir / "config.json") << config.dump();
  EXPECT_TRUE(writeSafeTensors(dir / "model.safetensors", weights).ok());
  return dir;
}

std::string encode(const std::vector<float>& values, const std::string& dtype) {
  std::string bytes;
  for (float v : values) {
    if (dtype == "F32") {
      bytes.append(reinterpret_cast<const char*>(&v), 4);
    } else {
      uint16_t h = dtype == "F16" ? protocols::floatToHalf(v) : protocols::floatToBf16(v);
      bytes.append(reinterpret_cast<const char*>(&h), 2);
    }
  }
  return bytes;
}

// A network of the given widths and activations with pseudo-random weights in [-1, 1].
std::filesystem::path randomNetwork(const std::string& name, const std::vector<int>& widths,
                                    const std::vector<std::string>& activations,
                                    const std::string& dtype) {
  SafeTensorsFile f;
  json layers = json::array();
  uint32_t state = 12345;
  auto next = [&] {
    state = state * 1664525u + 1013904223u;
    return static_cast<float>(state >> 8) / static_cast<float>(1 << 24) * 2.0f - 1.0f;
  };
  for (size_t l = 0; l + 1 < widths.size(); ++l) {
    std::vector<float> w, b;
    for (int i = 0; i < widths[l] * widths[l + 1]; ++i) w.push_back(next());
    for (int i = 0; i < widths[l + 1]; ++i) b.push_back(next());
    std::string p = "layers." + std::to_string(l);
    f.tensors[p + ".weight"] = {dtype, {widths[l + 1], widths[l]}, encode(w, dtype)};
    f.tensors[p + ".bias"] = {dtype, {widths[l + 1]}, encode(b, dtype)};
    json spec = {{"weight", p + ".weight"}, {"bias", p + ".bias"}};
    if (activations[l] != "default") spec["activation"] = activations[l];
    layers.push_back(spec);
  }
  json config = {
      {"inputs", {{{"name", "x"}, {"datatype", "FP32"}, {"shape", {-1, widths.front()}}}}},
      {"outputs", {{{"name", "y"}, {"datatype", "FP32"}, {"shape", {-1, widths.back()}}}}},
      {"layers", layers}};
  return writeModel(name, config, f);
}

TEST(DenseModel, EveryActivationAndOddWidthsEqualNaiveReference) {
  const std::vector<int> widths = {5, 17, 1, 9, 6, 3};
  const std::vector<std::string> activations = {"tanh", "sigmoid", "none", "default", "softmax"};
  for (const char* dtype : {"F32", "F16", "BF16"}) {
    auto dir = randomNetwork(std::string("net-") + dtype, widths, activations, dtype);
    auto model = loadModel("auto", "net", dir);
    ASSERT_TRUE(model.ok()) << model.status();
    EXPECT_EQ((*model)->metadata().outputs[0].name, "y");
    expectMatchesNaive(**model, dir, 5, 3, 1e-5);
  }
  auto dir = randomNetwork("net-relu-last", {3, 4, 2}, {"relu", "none"}, "F32");
  auto model = loadModel("dense", "net", dir);
  ASSERT_TRUE(model.ok()) << model.status();
  expectMatchesNaive(**model, dir, 3, 2, 1e-5);
}

TEST(DenseModel, OtherInputDatatypesAndEmptyBatches) {
  auto model = loadModel("dense", "d", testing::modelsDir() / "dense-iris");
  ASSERT_TRUE(model.ok());
  std::vector<double> x64 = {6.8, 2.8, 4.8, 1.4};
  Tensor f64 = Tensor::fromValues<double>("input-0", DataType::kFp64, {1, 4}, x64);
  auto a = (*model)->predict({&f64, 1});
  auto b = run(**model, {6.8f, 2.8f, 4.8f, 1.4f}, 4);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ((*a)[0].raw, (*b)[0].raw);
  auto empty = run(**model, {}, 4);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ((*empty)[0].shape, (protocols::Shape{0, 3}));
  auto wrong = run(**model, {1, 2, 3}, 3);
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(wrong.status().message()).find("takes [batch, 4], got [1,3]"),
            std::string::npos)
      << wrong.status();
  EXPECT_EQ((*model)->predict({}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(DenseModel, ConcurrentPredictionsAgree) {
  auto dir = randomNetwork("concurrent", {4, 32, 16, 3}, {"relu", "tanh", "softmax"}, "F32");
  auto model = loadModel("dense", "c", dir);
  ASSERT_TRUE(model.ok()) << model.status();
  const int sizes[] = {1, 7, 64};
  std::vector<std::string> expected;
  for (int n : sizes) {
    auto out = run(**model, inputs(n), 4);
    ASSERT_TRUE(out.ok());
    expected.push_back((*out)[0].raw);
  }
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        size_t k = static_cast<size_t>(i + t) % 3;
        auto out = run(**model, inputs(sizes[k]), 4);
        if (!out.ok() || (*out)[0].raw != expected[k]) ++mismatches;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

SafeTensorsFile weights(int in, int out, const std::string& dtype = "F32") {
  SafeTensorsFile f;
  size_t size = safeTensorDtypeSize(dtype);
  f.tensors["w"] = {dtype, {out, in}, std::string(static_cast<size_t>(in * out) * size, '\0')};
  f.tensors["b"] = {dtype, {out}, std::string(static_cast<size_t>(out) * size, '\0')};
  return f;
}

json config(int in, int out, const std::string& activation = "none") {
  return {{"inputs", {{{"name", "x"}, {"datatype", "FP32"}, {"shape", {-1, in}}}}},
          {"outputs", {{{"name", "y"}, {"datatype", "FP32"}, {"shape", {-1, out}}}}},
          {"layers", {{{"weight", "w"}, {"bias", "b"}, {"activation", activation}}}}};
}

// The load error's message (which must name config.json when `names_config`), or "OK".
std::string loadError(const std::filesystem::path& dir, bool names_config = true) {
  auto r = loadModel("dense", "m", dir);
  if (r.ok()) return "OK";
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  std::string message(r.status().message());
  if (names_config) {
    EXPECT_EQ(message.rfind((dir / "config.json").string(), 0), 0u) << message;
  }
  return message;
}

#define EXPECT_LOAD_ERROR(dir, fragment)                               \
  do {                                                                 \
    std::string message_ = loadError(dir);                             \
    EXPECT_NE(message_.find(fragment), std::string::npos) << message_; \
  } while (false)

TEST(DenseModel, DimensionErrorsNameTheProblem) {
  EXPECT_EQ(loadError(writeModel("ok", config(4, 3), weights(4, 3))), "OK");
  EXPECT_LOAD_ERROR(writeModel("dims", config(5, 3), weights(4, 3)),
                    "layer 0: weight [3,4] takes 4 features but receives 5 (the input's width)");
  EXPECT_LOAD_ERROR(writeModel("outw", config(4, 2), weights(4, 3)),
                    "the last layer gives 3 values per row but the output declares 2");
  // Two layers whose widths do not chain.
  auto chain = config(4, 3);
  chain["layers"].push_back({{"weight", "w"}, {"bias", "b"}});
  EXPECT_LOAD_ERROR(writeModel("chain", chain, weights(4, 3)),
                    "layer 1: weight [3,4] takes 4 features but receives 3 (the previous "
                    "layer's out)");
  auto bias = weights(4, 3);
  bias.tensors["b"] = {"F32", {2}, std::string(8, '\0')};
  EXPECT_LOAD_ERROR(writeModel("bias", config(4, 3), bias), "bias 'b' must be [3]");
  auto rank = weights(4, 3);
  rank.tensors["w"] = {"F32", {12}, std::string(48, '\0')};
  EXPECT_LOAD_ERROR(writeModel("rank", config(4, 3), rank), "must be [out, in]");
  auto zero = weights(4, 3);
  zero.tensors["w"] = {"F32", {0, 4}, ""};
  zero.tensors["b"] = {"F32", {0}, ""};
  EXPECT_LOAD_ERROR(writeModel("zero", config(4, 0), zero), "width > 0");
  EXPECT_LOAD_ERROR(writeModel("zero2", config(4, 3), zero), "with out, in > 0");
}

TEST(DenseModel, ConfigErrorsNameTheProblem) {
  EXPECT_LOAD_ERROR(writeModel("act", config(4, 3, "gelu6"), weights(4, 3)),
                    "layer 0: unknown activation 'gelu6' (none, relu, sigmoid, tanh, softmax)");
  auto missing = config(4, 3);
  missing["layers"][0]["weight"] = "nope";
  EXPECT_LOAD_ERROR(writeModel("missing", missing, weights(4, 3)),
                    "layer 0: tensor 'nope' must be in model.safetensors");
  auto ints = weights(4, 3, "I32");
  EXPECT_LOAD_ERROR(writeModel("ints", config(4, 3), ints), "is not F32, F16, BF16 or F64");
  auto out_type = config(4, 3);
  out_type["outputs"][0]["datatype"] = "INT64";
  EXPECT_LOAD_ERROR(writeModel("out-type", out_type, weights(4, 3)), "declare datatype FP32");
  auto in_type = config(4, 3);
  in_type["inputs"][0]["datatype"] = "BYTES";
  EXPECT_LOAD_ERROR(writeModel("in-type", in_type, weights(4, 3)), "not a numeric V2 datatype");
  auto fp16_in = config(4, 3);
  fp16_in["inputs"][0]["datatype"] = "FP16";
  EXPECT_EQ(loadError(writeModel("fp16-in", fp16_in, weights(4, 3))), "OK");
  auto two_inputs = config(4, 3);
  two_inputs["inputs"].push_back(two_inputs["inputs"][0]);
  EXPECT_LOAD_ERROR(writeModel("two-inputs", two_inputs, weights(4, 3)), "exactly one tensor");
  auto rank3 = config(4, 3);
  rank3["inputs"][0]["shape"] = {-1, 2, 2};
  EXPECT_LOAD_ERROR(writeModel("rank3", rank3, weights(4, 3)), "[batch, width]");
  // Wrong JSON types anywhere must give an error, never an exception.
  for (const auto& [name, text] : std::vector<std::pair<std::string, std::string>>{
           {"array", "[1, 2]"},
           {"layers-string", R"({"inputs": [{"name": "x", "shape": [-1, 4]}],
               "outputs": [{"name": "y", "shape": [-1, 3]}], "layers": "w"})"},
           {"layer-number", R"({"inputs": [{"name": "x", "shape": [-1, 4]}],
               "outputs": [{"name": "y", "shape": [-1, 3]}], "layers": [7]})"},
           {"weight-number", R"({"inputs": [{"name": "x", "shape": [-1, 4]}],
               "outputs": [{"name": "y", "shape": [-1, 3]}], "layers": [{"weight": 1,
               "bias": "b"}]})"},
           {"activation-number", R"({"inputs": [{"name": "x", "shape": [-1, 4]}],
               "outputs": [{"name": "y", "shape": [-1, 3]}], "layers": [{"weight": "w",
               "bias": "b", "activation": 3}]})"},
           {"shape-strings", R"({"inputs": [{"name": "x", "shape": ["-1", "4"]}],
               "outputs": [{"name": "y", "shape": [-1, 3]}], "layers": []})"},
           {"name-number", R"({"inputs": [{"name": 5, "shape": [-1, 4]}]})"},
           {"datatype-number", R"({"inputs": [{"name": "x", "datatype": 1, "shape": [-1, 4]}],
               "outputs": [{"name": "y", "shape": [-1, 3]}], "layers": []})"},
           {"no-layers", R"({"inputs": [{"name": "x", "shape": [-1, 4]}],
               "outputs": [{"name": "y", "shape": [-1, 3]}], "layers": []})"},
           {"truncated", "{"}}) {
    SCOPED_TRACE(name);
    auto dir = writeModel(name, config(4, 3), weights(4, 3));
    std::ofstream(dir / "config.json", std::ios::trunc) << text;
    EXPECT_NE(loadError(dir), "OK");
  }
}

TEST(DenseModel, MissingFiles) {
  auto dir = writeModel("no-weights", config(4, 3), weights(4, 3));
  std::filesystem::remove(dir / "model.safetensors");
  EXPECT_EQ(loadModel("dense", "m", dir).status().code(), absl::StatusCode::kNotFound);
  std::filesystem::remove(dir / "config.json");
  EXPECT_EQ(loadModel("dense", "m", dir).status().code(), absl::StatusCode::kNotFound);
  // A corrupt weights file: InvalidArgument naming the file.
  dir = writeModel("bad-weights", config(4, 3), weights(4, 3));
  std::ofstream(dir / "model.safetensors", std::ios::trunc) << "garbage!garbage!";
  auto r = loadModel("dense", "m", dir);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(r.status().message()).find("model.safetensors"), std::string::npos);
}

}  // namespace
}  // namespace kh::runtimes
