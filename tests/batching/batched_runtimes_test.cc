// Batched outputs equal unbatched outputs bit for bit, on every committed model: requests of
// 1 to 7 rows (seeded random features) are run one by one, then joined into one batch the way
// the batcher joins them, and each request's rows are compared byte for byte.

#include <gtest/gtest.h>

#include <cstdlib>
#include <random>

#include "kh/batching/tensor_rows.h"
#include "kh/runtimes/model.h"

namespace kh::batching {
namespace {

using protocols::DataType;
using protocols::Tensor;

std::filesystem::path modelsDir() {
  const char* env = std::getenv("KH_SOURCE_DIR");
  std::filesystem::path root = env != nullptr && *env != '\0' ? env : KH_TEST_SOURCE_DIR;
  return root / "reference-impl" / "models";
}

class BatchedRuntimesTest : public ::testing::TestWithParam<const char*> {};

TEST_P(BatchedRuntimesTest, BatchedEqualsUnbatchedBitForBit) {
  auto model = runtimes::loadModel("auto", "m", modelsDir() / GetParam());
  ASSERT_TRUE(model.ok()) << model.status();
  const auto& in_meta = (*model)->metadata().inputs.at(0);
  ASSERT_EQ(in_meta.shape.size(), 2u);
  const int64_t width = in_meta.shape[1];
  std::mt19937 rng(20261207);
  std::uniform_real_distribution<float> value(-2.0f, 8.0f);
  std::uniform_int_distribution<int> rows_of(1, 7);

  std::vector<std::vector<Tensor>> requests;
  std::vector<int> rows;
  for (int r = 0; r < 40; ++r) {
    int n = rows_of(rng);
    std::vector<float> features(static_cast<size_t>(n * width));
    for (auto& f : features) f = value(rng);
    Tensor t;
    if (in_meta.datatype == DataType::kFp16) {
      std::vector<uint16_t> half;
      for (float f : features) half.push_back(protocols::floatToHalf(f));
      t = Tensor::fromValues<uint16_t>(in_meta.name, DataType::kFp16, {n, width}, half);
    } else {
      ASSERT_EQ(in_meta.datatype, DataType::kFp32);
      t = Tensor::fromValues<float>(in_meta.name, DataType::kFp32, {n, width}, features);
    }
    requests.push_back({});
    requests.back().push_back(std::move(t));
    rows.push_back(n);
  }
  std::vector<std::vector<Tensor>> alone;
  for (const auto& request : requests) {
    auto out = (*model)->predict(request);
    ASSERT_TRUE(out.ok()) << out.status();
    alone.push_back(std::move(*out));
  }
  std::vector<const std::vector<Tensor>*> parts;
  for (const auto& request : requests) parts.push_back(&request);
  auto joined = concatRows(parts);
  ASSERT_TRUE(joined.ok()) << joined.status();
  auto batched = (*model)->predict(*joined);
  ASSERT_TRUE(batched.ok()) << batched.status();
  auto split = splitRows(std::move(*batched), rows);
  ASSERT_TRUE(split.ok()) << split.status();
  for (size_t k = 0; k < requests.size(); ++k) {
    ASSERT_EQ((*split)[k].size(), alone[k].size());
    for (size_t o = 0; o < alone[k].size(); ++o) {
      EXPECT_EQ((*split)[k][o].shape, alone[k][o].shape);
      EXPECT_EQ((*split)[k][o].raw, alone[k][o].raw)
          << GetParam() << ": request " << k << " output " << alone[k][o].name
          << " differs when batched";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(CommittedModels, BatchedRuntimesTest,
                         ::testing::Values("dense-iris", "dense-fp16", "xgboost-iris",
                                           "xgboost-regressor"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (auto& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace kh::batching
