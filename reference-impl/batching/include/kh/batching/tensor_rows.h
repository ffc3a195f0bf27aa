#pragma once
// Joining requests' tensors into one batch along the first dimension, and splitting a batch's
// outputs back into each request's rows. Pure functions; exact (bytes are copied, never
// converted), so a batched request gets bit for bit what it would have got alone.

#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "kh/protocols/tensor.h"

namespace kh::batching {

/**
 * Concatenates the requests' inputs row-wise. Each element of `requests` is one request's
 * inputs, all in the same order; tensor i of every request must have the same name, datatype
 * and dimensions after the first.
 * @return one tensor per input, its first dimension the sum of the requests'; InvalidArgument
 *         when the requests do not line up (the message names the tensor).
 */
absl::StatusOr<std::vector<protocols::Tensor>> concatRows(
    std::span<const std::vector<protocols::Tensor>* const> requests);

/**
 * Splits outputs whose first dimension is the sum of `rows` into one list per request, in order:
 * request k gets rows [rows[0] + ... + rows[k-1], + rows[k]) of every output.
 * @return Internal when an output's first dimension is not that sum (a runtime that does not
 *         keep rows apart cannot be batched).
 */
absl::StatusOr<std::vector<std::vector<protocols::Tensor>>> splitRows(
    std::vector<protocols::Tensor>&& outputs, std::span<const int> rows);

}  // namespace kh::batching
