#include "kh/batching/tensor_rows.h"

#include <algorithm>

#include "kh/common/strings.h"

namespace kh::batching {
namespace {

using protocols::Tensor;

// Elements in one row: the product of the dimensions after the first.
int64_t rowElements(const Tensor& t) {
  int64_t n = 1;
  for (size_t i = 1; i < t.shape.size(); ++i) n *= t.shape[i];
  return n;
}

}  // namespace

absl::StatusOr<std::vector<Tensor>> concatRows(
    std::span<const std::vector<Tensor>* const> requests) {
  if (requests.empty()) return std::vector<Tensor>{};
  const std::vector<Tensor>& first = *requests.front();
  std::vector<Tensor> joined;
  joined.reserve(first.size());
  for (size_t i = 0; i < first.size(); ++i) {
    const Tensor& model = first[i];
    if (model.shape.empty()) {
      return absl::InvalidArgumentError(
          common::strCat("input '", model.name, "' has no batch dimension to join on"));
    }
    Tensor out;
    out.name = model.name;
    out.datatype = model.datatype;
    out.shape = model.shape;
    out.shape[0] = 0;
    size_t bytes = 0;
    for (const auto* request : requests) {
      if (request->size() != first.size()) {
        return absl::InvalidArgumentError("requests in a batch must have the same inputs");
      }
      const Tensor& t = (*request)[i];
      if (t.name != model.name || t.datatype != model.datatype ||
          t.shape.size() != model.shape.size() ||
          !std::equal(t.shape.begin() + 1, t.shape.end(), model.shape.begin() + 1)) {
        return absl::InvalidArgumentError(common::strCat(
            "input '", t.name, "' ", protocols::shapeToString(t.shape),
            " cannot join a batch of ", protocols::shapeToString(model.shape)));
      }
      out.shape[0] += t.shape[0];
      bytes += t.raw.size();
    }
    if (protocols::dataTypeSize(model.datatype) == 0) {
      for (const auto* request : requests) {
        const auto& strings = (*request)[i].bytes;
        out.bytes.insert(out.bytes.end(), strings.begin(), strings.end());
      }
    } else {
      out.raw.reserve(bytes);
      for (const auto* request : requests) out.raw += (*request)[i].raw;
    }
    joined.push_back(std::move(out));
  }
  return joined;
}

absl::StatusOr<std::vector<std::vector<Tensor>>> splitRows(std::vector<Tensor>&& outputs,
                                                           std::span<const int> rows) {
  int64_t total = 0;
  for (int r : rows) total += r;
  std::vector<std::vector<Tensor>> parts(rows.size());
  if (rows.size() == 1) {
    for (const Tensor& t : outputs) {
      if (t.shape.empty() || t.shape[0] != total) {
        return absl::InternalError(common::strCat("output '", t.name, "' has shape ",
                                                  protocols::shapeToString(t.shape), ", not ",
                                                  total, " rows"));
      }
    }
    parts[0] = std::move(outputs);
    return parts;
  }
  for (auto& part : parts) part.reserve(outputs.size());
  for (Tensor& t : outputs) {
    if (t.shape.empty() || t.shape[0] != total) {
      return absl::InternalError(common::strCat("output '", t.name, "' has shape ",
                                                protocols::shapeToString(t.shape), ", not the ",
                                                total, " rows of its batch"));
    }
    const int64_t per_row = rowElements(t);
    const size_t element = protocols::dataTypeSize(t.datatype);
    if (t.heldElements() != total * per_row) {
      return absl::InternalError(common::strCat("output '", t.name, "' holds ", t.heldElements(),
                                                " values; its shape ",
                                                protocols::shapeToString(t.shape), " needs ",
                                                total * per_row));
    }
    int64_t row = 0;
    for (size_t k = 0; k < rows.size(); ++k) {
      Tensor piece;
      piece.name = t.name;
      piece.datatype = t.datatype;
      piece.shape = t.shape;
      piece.shape[0] = rows[k];
      piece.parameters = t.parameters;
      const int64_t begin = row * per_row, count = static_cast<int64_t>(rows[k]) * per_row;
      if (element == 0) {
        piece.bytes.assign(t.bytes.begin() + begin, t.bytes.begin() + begin + count);
      } else {
        piece.raw.assign(t.raw, static_cast<size_t>(begin) * element,
                         static_cast<size_t>(count) * element);
      }
      parts[k].push_back(std::move(piece));
      row += rows[k];
    }
  }
  return parts;
}

}  // namespace kh::batching
