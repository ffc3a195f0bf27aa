// Joining requests row-wise and splitting outputs back: exact, in order, and refusing tensors
// that do not line up.

#include "kh/batching/tensor_rows.h"

#include <gtest/gtest.h>

namespace kh::batching {
namespace {

using protocols::DataType;
using protocols::Tensor;

Tensor floats(std::string name, int64_t rows, int64_t cols, float first) {
  std::vector<float> v(static_cast<size_t>(rows * cols));
  for (size_t i = 0; i < v.size(); ++i) v[i] = first + static_cast<float>(i);
  return Tensor::fromValues<float>(std::move(name), DataType::kFp32, {rows, cols}, v);
}

TEST(TensorRowsTest, JoinsThenSplitsBackExactly) {
  std::vector<Tensor> a = {floats("x", 1, 3, 0), floats("y", 1, 2, 100)};
  std::vector<Tensor> b = {floats("x", 2, 3, 10), floats("y", 2, 2, 200)};
  std::vector<Tensor> c = {floats("x", 3, 3, 20), floats("y", 3, 2, 300)};
  std::vector<const std::vector<Tensor>*> parts = {&a, &b, &c};
  auto joined = concatRows(parts);
  ASSERT_TRUE(joined.ok()) << joined.status();
  ASSERT_EQ(joined->size(), 2u);
  EXPECT_EQ((*joined)[0].shape, (protocols::Shape{6, 3}));
  EXPECT_EQ((*joined)[1].shape, (protocols::Shape{6, 2}));
  EXPECT_EQ((*joined)[0].raw, a[0].raw + b[0].raw + c[0].raw);

  std::vector<int> rows = {1, 2, 3};
  auto split = splitRows(std::move(*joined), rows);
  ASSERT_TRUE(split.ok()) << split.status();
  ASSERT_EQ(split->size(), 3u);
  for (const auto& [got, want] : {std::pair{&(*split)[0], &a}, std::pair{&(*split)[1], &b},
                                  std::pair{&(*split)[2], &c}}) {
    ASSERT_EQ(got->size(), 2u);
    for (size_t i = 0; i < 2; ++i) {
      EXPECT_EQ((*got)[i].name, (*want)[i].name);
      EXPECT_EQ((*got)[i].shape, (*want)[i].shape);
      EXPECT_EQ((*got)[i].raw, (*want)[i].raw) << "bytes differ for " << (*want)[i].name;
    }
  }
}

TEST(TensorRowsTest, SplitsStringTensors) {
  Tensor t;
  t.name = "s";
  t.datatype = DataType::kBytes;
  t.shape = {3, 1};
  t.bytes = {"a", "bb", "ccc"};
  std::vector<Tensor> outputs = {t};
  std::vector<int> rows = {2, 1};
  auto split = splitRows(std::move(outputs), rows);
  ASSERT_TRUE(split.ok()) << split.status();
  EXPECT_EQ((*split)[0][0].bytes, (std::vector<std::string>{"a", "bb"}));
  EXPECT_EQ((*split)[1][0].bytes, (std::vector<std::string>{"ccc"}));
  EXPECT_EQ((*split)[1][0].shape, (protocols::Shape{1, 1}));
}

TEST(TensorRowsTest, RefusesTensorsThatDoNotLineUp) {
  std::vector<Tensor> a = {floats("x", 1, 3, 0)};
  std::vector<Tensor> wider = {floats("x", 1, 4, 0)};
  std::vector<Tensor> renamed = {floats("z", 1, 3, 0)};
  for (const auto* other : {&wider, &renamed}) {
    std::vector<const std::vector<Tensor>*> parts = {&a, other};
    auto joined = concatRows(parts);
    ASSERT_FALSE(joined.ok());
    EXPECT_EQ(joined.status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(TensorRowsTest, AnOutputWithTheWrongRowCountIsAnInternalError) {
  std::vector<Tensor> outputs = {floats("y", 4, 2, 0)};
  std::vector<int> rows = {2, 3};
  auto split = splitRows(std::move(outputs), rows);
  ASSERT_FALSE(split.ok());
  EXPECT_EQ(split.status().code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace kh::batching
