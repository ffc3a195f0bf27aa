// The xgboost runtime predicts exactly what libxgboost predicts through a DMatrix, on both of
// its paths (libxgboost in-place prediction and the compiled trees), for every output kind.

#include "xgboost_model.h"

#include <atomic>
#include <cmath>
#include <fstream>
#include <thread>

#include "gtest/gtest.h"
#include "iris_data.h"
#include "kh/runtimes/model.h"
#include "test_util.h"
#include "xgboost/c_api.h"

namespace kh::runtimes {
namespace {

using fixtures::kIris;
using protocols::DataType;
using protocols::Tensor;

#define ASSERT_XGB(call) ASSERT_EQ((call), 0) << #call << ": " << XGBGetLastError()

std::vector<float> irisFeatures() {
  std::vector<float> x;
  for (const auto& row : kIris) x.insert(x.end(), row, row + 4);
  return x;
}

// The 150 iris rows, then rows with missing values, values on and around typical thresholds,
// and extreme values (exercising default directions and the sigmoid's clamp).
std::vector<float> testRows() {
  std::vector<float> x = irisFeatures();
  const float special[] = {NAN, 0.0f, -0.0f, 1e30f, -1e30f, 2.45f, 4.95f, 1.75f, 0.8f};
  for (int i = 0; i < 60; ++i) {
    for (int f = 0; f < 4; ++f) {
      x.push_back(special[static_cast<size_t>((i * 4 + f * 7) % 9)] +
                  (i % 3 == 0 ? 0.0f : 0.01f * static_cast<float>(i)));
    }
  }
  return x;
}

struct Prediction {
  std::vector<float> values;
  std::vector<bst_ulong> shape;
};

// libxgboost's own answer through a DMatrix: independent of the runtime's in-place call.
Prediction dmatrixPredict(const std::filesystem::path& model_file, const std::vector<float>& x,
                          int features) {
  Prediction p;
  BoosterHandle booster;
  EXPECT_EQ(XGBoosterCreate(nullptr, 0, &booster), 0);
  EXPECT_EQ(XGBoosterLoadModel(booster, model_file.c_str()), 0) << XGBGetLastError();
  DMatrixHandle dm;
  bst_ulong rows = x.size() / static_cast<size_t>(features);
  EXPECT_EQ(XGDMatrixCreateFromMat(x.data(), rows, static_cast<bst_ulong>(features), NAN, &dm), 0);
  const char* config =
      R"({"type": 0, "training": false, "iteration_begin": 0, "iteration_end": 0, )"
      R"("strict_shape": false})";
  const bst_ulong* shape = nullptr;
  bst_ulong dim = 0;
  const float* out = nullptr;
  EXPECT_EQ(XGBoosterPredictFromDMatrix(booster, dm, config, &shape, &dim, &out), 0)
      << XGBGetLastError();
  bst_ulong total = 1;
  for (bst_ulong i = 0; i < dim; ++i) {
    p.shape.push_back(shape[i]);
    total *= shape[i];
  }
  p.values.assign(out, out + total);
  XGDMatrixFree(dm);
  XGBoosterFree(booster);
  return p;
}

// Output values as floats, whatever the output datatype.
std::vector<float> asFloats(const Tensor& t) {
  std::vector<float> out;
  for (int64_t i = 0; i < t.heldElements(); ++i) {
    out.push_back(t.datatype == DataType::kInt64
                      ? static_cast<float>(t.at<int64_t>(static_cast<size_t>(i)))
                      : t.at<float>(static_cast<size_t>(i)));
  }
  return out;
}

absl::StatusOr<std::vector<Tensor>> run(const Model& model, const std::vector<float>& x,
                                        int features) {
  int64_t rows = static_cast<int64_t>(x.size()) / features;
  Tensor in = Tensor::fromValues<float>("input-0", DataType::kFp32, {rows, features}, x);
  return model.predict({&in, 1});
}

// Trains a model on the iris features (label column `label_of`) and saves it as `file_name`.
void train(const std::filesystem::path& dir, const std::string& file_name,
           const std::vector<std::pair<std::string, std::string>>& params, int rounds,
           float (*label_of)(const float* row)) {
  std::vector<float> x = irisFeatures(), y;
  for (const auto& row : kIris) y.push_back(label_of(row));
  DMatrixHandle dm;
  ASSERT_XGB(XGDMatrixCreateFromMat(x.data(), 150, 4, NAN, &dm));
  ASSERT_XGB(XGDMatrixSetFloatInfo(dm, "label", y.data(), 150));
  BoosterHandle booster;
  ASSERT_XGB(XGBoosterCreate(&dm, 1, &booster));
  ASSERT_XGB(XGBoosterSetParam(booster, "nthread", "1"));
  ASSERT_XGB(XGBoosterSetParam(booster, "seed", "0"));
  for (const auto& [k, v] : params) ASSERT_XGB(XGBoosterSetParam(booster, k.c_str(), v.c_str()));
  for (int i = 0; i < rounds; ++i) ASSERT_XGB(XGBoosterUpdateOneIter(booster, i, dm));
  ASSERT_XGB(XGBoosterSaveModel(booster, (dir / file_name).c_str()));
  XGBoosterFree(booster);
  XGDMatrixFree(dm);
}

float irisClass(const float* row) { return row[4]; }
float isVirginica(const float* row) { return row[4] == 2 ? 1.0f : 0.0f; }
float petalWidth(const float* row) { return row[3]; }
float petalLengthCount(const float* row) { return std::round(row[2]); }

// Both predictors equal libxgboost's DMatrix prediction: bit for bit when `exact`, else within
// float rounding (for dart, libxgboost's own in-place and DMatrix paths differ in the last bit:
// they apply the tree weights in a different order).
void expectBothPathsMatchLibxgboost(const std::filesystem::path& dir,
                                    const std::filesystem::path& model_file,
                                    const std::string& expected_predictor_prefix,
                                    bool exact = true) {
  auto x = testRows();
  Prediction expected = dmatrixPredict(model_file, x, 4);
  int64_t rows = static_cast<int64_t>(x.size()) / 4;
  for (bool compile : {true, false}) {
    SCOPED_TRACE(dir.filename().string() + (compile ? " compiled" : " libxgboost"));
    auto model = loadXgboostModel("m", dir, {.compile_trees = compile});
    ASSERT_TRUE(model.ok()) << model.status();
    const auto& predictor = (*model)->metadata().properties.at("predictor");
    EXPECT_EQ(predictor.rfind(compile ? expected_predictor_prefix : "libxgboost", 0), 0u)
        << predictor;
    auto out = run(**model, x, 4);
    ASSERT_TRUE(out.ok()) << out.status();
    ASSERT_EQ(out->size(), 1u);
    EXPECT_EQ((*out)[0].shape[0], rows);
    auto got = asFloats((*out)[0]);
    ASSERT_EQ(got.size(), expected.values.size());
    int mismatches = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      float want = expected.values[i];
      bool same = exact ? got[i] == want : std::abs(got[i] - want) <= 1e-6f * std::abs(want);
      if (!same && mismatches++ < 5) {
        ADD_FAILURE() << "value " << i << ": got " << got[i] << ", libxgboost "
                      << expected.values[i];
      }
    }
    EXPECT_EQ(mismatches, 0);
  }
}

TEST(XgboostModel, IrisMetadataAndTheE2eRows) {
  auto model = loadModel("auto", "iris", testing::modelsDir() / "xgboost-iris");
  ASSERT_TRUE(model.ok()) << model.status();
  const auto& meta = (*model)->metadata();
  EXPECT_EQ(meta.name, "iris");
  EXPECT_EQ(meta.platform, "xgboost");
  EXPECT_TRUE(meta.versions.empty());
  ASSERT_EQ(meta.inputs.size(), 1u);
  EXPECT_EQ(meta.inputs[0].name, "input-0");
  EXPECT_EQ(meta.inputs[0].datatype, DataType::kFp32);
  EXPECT_EQ(meta.inputs[0].shape, (protocols::Shape{-1, 4}));
  ASSERT_EQ(meta.outputs.size(), 1u);
  EXPECT_EQ(meta.outputs[0].name, "output-0");
  EXPECT_EQ(meta.outputs[0].datatype, DataType::kInt64);
  EXPECT_EQ(meta.outputs[0].shape, (protocols::Shape{-1}));
  EXPECT_EQ(meta.properties.at("objective"), "multi:softmax");
  EXPECT_EQ(meta.properties.at("predictor").rfind("compiled trees", 0), 0u);
  auto out = run(**model, {6.8f, 2.8f, 4.8f, 1.4f, 6.0f, 3.4f, 4.5f, 1.6f}, 4);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].name, "output-0");
  EXPECT_EQ((*out)[0].datatype, DataType::kInt64);
  EXPECT_EQ((*out)[0].shape, (protocols::Shape{2}));
  EXPECT_EQ((*out)[0].at<int64_t>(0), 1);
  EXPECT_EQ((*out)[0].at<int64_t>(1), 1);
}

TEST(XgboostModel, IrisClassifierOnAll150RowsEqualsLibxgboostAndIsAccurate) {
  auto dir = testing::modelsDir() / "xgboost-iris";
  expectBothPathsMatchLibxgboost(dir, dir / "model.json", "compiled trees");
  auto model = loadModel("xgboost", "iris", dir);
  ASSERT_TRUE(model.ok());
  auto out = run(**model, irisFeatures(), 4);
  ASSERT_TRUE(out.ok());
  // Training accuracy of a 10-round depth-3 booster on iris (as reference-impl/models/README.md
  // says): all rows but three versicolor/virginica borderline ones.
  std::vector<size_t> wrong;
  for (size_t i = 0; i < 150; ++i) {
    if ((*out)[0].at<int64_t>(i) != static_cast<int64_t>(kIris[i][4])) wrong.push_back(i);
  }
  EXPECT_EQ(wrong, (std::vector<size_t>{70, 77, 106}));
}

TEST(XgboostModel, CommittedRegressorEqualsLibxgboost) {
  auto dir = testing::modelsDir() / "xgboost-regressor";
  expectBothPathsMatchLibxgboost(dir, dir / "model.json", "compiled trees");
  auto model = loadModel("xgboost", "r", dir);
  ASSERT_TRUE(model.ok());
  EXPECT_EQ((*model)->metadata().outputs[0].datatype, DataType::kFp32);
  EXPECT_EQ((*model)->metadata().outputs[0].shape, (protocols::Shape{-1}));
  // The README's example.
  auto out = run(**model, {6.8f, 2.8f, 4.8f, 1.0f, 6.0f, 3.4f, 4.5f, 1.0f}, 4);
  ASSERT_TRUE(out.ok());
  EXPECT_NEAR((*out)[0].at<float>(0), 1.3851f, 1e-4);
  EXPECT_NEAR((*out)[0].at<float>(1), 1.2781f, 1e-4);
}

struct Objective {
  const char* name;
  std::vector<std::pair<std::string, std::string>> params;
  float (*label)(const float*);
  DataType datatype;
  protocols::Shape shape;
  const char* predictor;  // expected with compile_trees on
  bool exact = true;
};

TEST(XgboostModel, EveryObjectiveKindEqualsLibxgboost) {
  const Objective objectives[] = {
      {"softprob",
       {{"objective", "multi:softprob"}, {"num_class", "3"}},
       irisClass,
       DataType::kFp32,
       {-1, 3},
       "compiled trees"},
      {"softmax",
       {{"objective", "multi:softmax"}, {"num_class", "3"}},
       irisClass,
       DataType::kInt64,
       {-1},
       "compiled trees"},
      {"squarederror",
       {{"objective", "reg:squarederror"}},
       petalWidth,
       DataType::kFp32,
       {-1},
       "compiled trees"},
      {"logistic",
       {{"objective", "binary:logistic"}},
       isVirginica,
       DataType::kFp32,
       {-1},
       "compiled trees"},
      {"logitraw",
       {{"objective", "binary:logitraw"}},
       isVirginica,
       DataType::kFp32,
       {-1},
       "compiled trees"},
      {"poisson",
       {{"objective", "count:poisson"}},
       petalLengthCount,
       DataType::kFp32,
       {-1},
       "compiled trees"},
      // Not compiled: the runtime must fall back to libxgboost's in-place prediction.
      {"hinge", {{"objective", "binary:hinge"}}, isVirginica, DataType::kFp32, {-1}, "libxgboost"},
      {"dart",
       {{"objective", "multi:softprob"},
        {"num_class", "3"},
        {"booster", "dart"},
        {"rate_drop", "0.1"}},
       irisClass,
       DataType::kFp32,
       {-1, 3},
       "libxgboost",
       /*exact=*/false},
  };
  for (const auto& o : objectives) {
    SCOPED_TRACE(o.name);
    auto dir = testing::freshDir(o.name);
    auto params = o.params;
    params.insert(params.end(), {{"max_depth", "3"}, {"eta", "0.3"}, {"tree_method", "exact"}});
    train(dir, "model.json", params, 8, o.label);
    auto model = loadModel("auto", "m", dir);
    ASSERT_TRUE(model.ok()) << model.status();
    EXPECT_EQ((*model)->metadata().outputs[0].datatype, o.datatype);
    EXPECT_EQ((*model)->metadata().outputs[0].shape, o.shape);
    expectBothPathsMatchLibxgboost(dir, dir / "model.json", o.predictor, o.exact);
  }
}

TEST(XgboostModel, SoftprobRowsAreProbabilities) {
  auto dir = testing::freshDir("softprob");
  train(dir, "model.json", {{"objective", "multi:softprob"}, {"num_class", "3"}}, 5, irisClass);
  auto model = loadModel("xgboost", "p", dir);
  ASSERT_TRUE(model.ok()) << model.status();
  auto out = run(**model, {6.8f, 2.8f, 4.8f, 1.4f, 5.1f, 3.5f, 1.4f, 0.2f}, 4);
  ASSERT_TRUE(out.ok());
  ASSERT_EQ((*out)[0].shape, (protocols::Shape{2, 3}));
  for (size_t r = 0; r < 2; ++r) {
    float sum = 0;
    for (size_t c = 0; c < 3; ++c) sum += (*out)[0].at<float>(r * 3 + c);
    EXPECT_NEAR(sum, 1.0f, 1e-6);
  }
  EXPECT_GT((*out)[0].at<float>(1), 0.5f);  // versicolor
  EXPECT_GT((*out)[0].at<float>(3), 0.5f);  // setosa
}

TEST(XgboostModel, UbjAndLegacyBinaryFilesLoad) {
  for (const char* file : {"model.ubj", "model.bst"}) {
    SCOPED_TRACE(file);
    auto dir = testing::freshDir(file);
    train(dir, file, {{"objective", "multi:softmax"}, {"num_class", "3"}}, 4, irisClass);
    auto model = loadModel("auto", "m", dir);
    ASSERT_TRUE(model.ok()) << model.status();
    EXPECT_EQ((*model)->metadata().outputs[0].datatype, DataType::kInt64);
    expectBothPathsMatchLibxgboost(dir, dir / file, "compiled trees");
  }
}

TEST(XgboostModel, MultiTargetRegressionIsAMatrix) {
  auto dir = testing::freshDir("multi-target");
  std::vector<float> x = irisFeatures(), y;
  for (const auto& row : kIris) y.insert(y.end(), {row[3], row[2]});
  DMatrixHandle dm;
  ASSERT_XGB(XGDMatrixCreateFromMat(x.data(), 150, 4, NAN, &dm));
  std::string labels = R"({"data": [)" + std::to_string(reinterpret_cast<uintptr_t>(y.data())) +
                       R"(, true], "shape": [150, 2], "typestr": "<f4", "version": 3})";
  ASSERT_XGB(XGDMatrixSetInfoFromInterface(dm, "label", labels.c_str()));
  BoosterHandle booster;
  ASSERT_XGB(XGBoosterCreate(&dm, 1, &booster));
  for (auto [k, v] : {std::pair{"nthread", "1"}, {"tree_method", "hist"}, {"max_depth", "3"}}) {
    ASSERT_XGB(XGBoosterSetParam(booster, k, v));
  }
  for (int i = 0; i < 4; ++i) ASSERT_XGB(XGBoosterUpdateOneIter(booster, i, dm));
  ASSERT_XGB(XGBoosterSaveModel(booster, (dir / "model.json").c_str()));
  XGBoosterFree(booster);
  XGDMatrixFree(dm);
  auto model = loadModel("xgboost", "mt", dir);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->metadata().outputs[0].shape, (protocols::Shape{-1, 2}));
  expectBothPathsMatchLibxgboost(dir, dir / "model.json", "libxgboost");
}

TEST(XgboostModel, OtherNumericInputsAreConverted) {
  auto model = loadModel("xgboost", "iris", testing::modelsDir() / "xgboost-iris");
  ASSERT_TRUE(model.ok());
  std::vector<double> x = {6.8, 2.8, 4.8, 1.4};
  Tensor f64 = Tensor::fromValues<double>("input-0", DataType::kFp64, {1, 4}, x);
  auto out = (*model)->predict({&f64, 1});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].at<int64_t>(0), 1);
  std::vector<uint16_t> half;
  for (float v : {5.1f, 3.5f, 1.4f, 0.2f}) half.push_back(protocols::floatToHalf(v));
  Tensor f16 = Tensor::fromValues<uint16_t>("input-0", DataType::kFp16, {1, 4}, half);
  out = (*model)->predict({&f16, 1});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].at<int64_t>(0), 0);
  std::vector<int32_t> ints = {7, 3, 6, 2};
  Tensor i32 = Tensor::fromValues<int32_t>("input-0", DataType::kInt32, {1, 4}, ints);
  out = (*model)->predict({&i32, 1});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ((*out)[0].at<int64_t>(0), 2);
}

TEST(XgboostModel, WrongFeatureCountIsInvalidArgument) {
  auto model = loadModel("xgboost", "iris", testing::modelsDir() / "xgboost-iris");
  ASSERT_TRUE(model.ok());
  auto out = run(**model, {1, 2, 3}, 3);
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(out.status().message()).find("takes [batch, 4] features, got [1,3]"),
            std::string::npos)
      << out.status();
  Tensor flat =
      Tensor::fromValues<float>("input-0", DataType::kFp32, {4}, std::vector<float>{1, 2, 3, 4});
  EXPECT_EQ((*model)->predict({&flat, 1}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*model)->predict({}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(XgboostModel, EmptyBatch) {
  for (bool compile : {true, false}) {
    auto model =
        loadXgboostModel("iris", testing::modelsDir() / "xgboost-iris", {.compile_trees = compile});
    ASSERT_TRUE(model.ok());
    auto out = run(**model, {}, 4);
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ((*out)[0].shape, (protocols::Shape{0}));
    EXPECT_TRUE((*out)[0].raw.empty());
  }
}

TEST(XgboostModel, ConcurrentPredictionsAgreeOnBothPaths) {
  auto x = testRows();
  for (bool compile : {true, false}) {
    SCOPED_TRACE(compile ? "compiled" : "libxgboost");
    auto model =
        loadXgboostModel("iris", testing::modelsDir() / "xgboost-iris", {.compile_trees = compile});
    ASSERT_TRUE(model.ok());
    // Expected answers for batches of 1, 7 and all rows, computed on one thread.
    const int64_t sizes[] = {1, 7, static_cast<int64_t>(x.size() / 4)};
    std::vector<std::string> expected;
    for (int64_t n : sizes) {
      auto out = run(**model, std::vector<float>(x.begin(), x.begin() + n * 4), 4);
      ASSERT_TRUE(out.ok());
      expected.push_back((*out)[0].raw);
    }
    std::atomic<int> mismatches{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 300; ++i) {
          size_t k = static_cast<size_t>(i + t) % 3;
          auto out = run(**model, std::vector<float>(x.begin(), x.begin() + sizes[k] * 4), 4);
          if (!out.ok() || (*out)[0].raw != expected[k]) ++mismatches;
        }
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(mismatches.load(), 0);
  }
}

TEST(XgboostModel, UnloadableFilesAreInvalidArgument) {
  auto dir = testing::freshDir("bad-xgb");
  std::ofstream(dir / "model.json") << "{ this is not a model";
  auto r = loadModel("auto", "m", dir);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(r.status().message()).find("model.json"), std::string::npos) << r.status();
  std::ofstream(dir / "model.json", std::ios::trunc) << "";
  EXPECT_EQ(loadModel("xgboost", "m", dir).status().code(), absl::StatusCode::kInvalidArgument);
  std::ofstream(dir / "model.json", std::ios::trunc) << R"({"learner": {}, "version": [1, 7, 4]})";
  EXPECT_EQ(loadModel("xgboost", "m", dir).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(loadModel("xgboost", "m", testing::freshDir("no-model")).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace kh::runtimes
