#pragma once
// V2 / Open Inference Protocol REST bodies: JSON with nested or flat tensor data, and the binary
// tensor data extension (a JSON header followed by raw tensor blobs, the header's length given by
// the Inference-Header-Content-Length HTTP header).

#include <optional>
#include <vector>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "kh/protocols/tensor.h"

namespace kh::protocols {

inline constexpr std::string_view kInferenceHeaderContentLength =
    "Inference-Header-Content-Length";
inline constexpr std::string_view kBinaryDataSize = "binary_data_size";
inline constexpr std::string_view kBinaryData = "binary_data";
inline constexpr std::string_view kBinaryDataOutput = "binary_data_output";

/** A body ready to send; json_length is set when binary blobs follow the JSON. */
struct EncodedBody {
  std::string body;
  std::optional<size_t> json_length;
};

/**
 * Decodes an inference request body.
 * @param body the whole HTTP body.
 * @param json_length the Inference-Header-Content-Length value when the header was sent.
 * @return InvalidArgument with a message that names the field or input at fault: bad JSON,
 *   missing or mistyped fields, unknown datatype, element count not matching the shape, values
 *   out of the datatype's range, FP16/BF16 sent as JSON, binary sizes not adding up.
 */
absl::StatusOr<InferenceRequest> decodeV2Request(std::string_view body,
                                                 std::optional<size_t> json_length);

/**
 * decodeV2Request() without its fast path for plain FP32/FP64 JSON requests: the general
 * decoder, which every body the fast path declines goes to. Both give the same result for every
 * body; this one is for the tests that hold them to it.
 */
absl::StatusOr<InferenceRequest> decodeV2RequestWithoutFastPath(std::string_view body,
                                                                std::optional<size_t> json_length);

/** Decodes an inference response body (the client side); same rules as requests. */
absl::StatusOr<InferenceResponse> decodeV2Response(std::string_view body,
                                                   std::optional<size_t> json_length);

/**
 * Encodes a response. Outputs whose entry in `binary_outputs` is true are sent as binary blobs
 * (with "binary_data_size"); the rest as flat JSON data. An empty span means all JSON.
 */
EncodedBody encodeV2Response(const InferenceResponse& response,
                             const std::vector<bool>& binary_outputs = {});

/** Encodes a request (the client side); `binary_inputs` as for encodeV2Response. */
EncodedBody encodeV2Request(const InferenceRequest& request,
                            const std::vector<bool>& binary_inputs = {});

/** {"error": "<message>"} */
std::string encodeV2Error(std::string_view message);

/** The $metadata_model_response JSON. */
std::string encodeModelMetadata(const ModelMetadata& metadata);
absl::StatusOr<ModelMetadata> decodeModelMetadata(std::string_view json);

/**
 * Decides which outputs of a response go binary: an output's own "binary_data" parameter in the
 * request wins, else the request's "binary_data_output" parameter.
 */
std::vector<bool> binaryOutputChoice(const InferenceRequest& request,
                                     const InferenceResponse& response);

}  // namespace kh::protocols
