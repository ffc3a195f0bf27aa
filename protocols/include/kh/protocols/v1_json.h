#pragma once
// V1 (TF-Serving-style) REST bodies: {"instances": [...]} or {"inputs": [...]} in, and
// {"predictions": [...]} out.

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "kh/protocols/tensor.h"

namespace kh::protocols {

/**
 * Decodes a V1 predict body into one tensor for the model's input `input`: each instance is a row;
 * the tensor's shape is [instances, ...] from the (rectangular) nesting, its datatype the input's.
 * @return InvalidArgument: "Unrecognized request format: ..." for bad JSON, 'Expected "instances"
 *   to be a list', ragged rows, or elements that do not fit the datatype.
 */
absl::StatusOr<Tensor> decodeV1Request(std::string_view body, const TensorMetadata& input);

/** {"predictions": [...]} nested by the tensor's shape (one entry per row of the batch). */
std::string encodeV1Predictions(const Tensor& output);

}  // namespace kh::protocols
