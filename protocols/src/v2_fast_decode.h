#pragma once
// A fast path for the common V2 inference request: a JSON body with "id" and "inputs" only, each
// input with "name", "shape", "datatype" FP32 or FP64 and "data" (nested lists of numbers), no
// escapes in strings. One pass over the text, no JSON tree: the general decoder built a
// nlohmann tree first, half of a model server's instructions per request.
//
// Anything else, valid or not, returns nullopt and the general decoder takes the body, so the
// fast path never decides an error and never changes a result: for every body it accepts it
// yields what the general decoder yields (tests/protocols/v2_fast_decode_test.cc holds it to that).

#include <optional>
#include <string_view>

#include "kh/protocols/tensor.h"

namespace kh::protocols::internal {

std::optional<InferenceRequest> decodeV2RequestFast(std::string_view json_text);

}  // namespace kh::protocols::internal
