#pragma once
// Conversion between the transport-neutral types and inference.GRPCInferenceService messages:
// typed `contents` or `raw_input_contents` / `raw_output_contents`.

#include "absl/status/statusor.h"
#include "kh/protocols/grpc_predict_v2.pb.h"
#include "kh/protocols/tensor.h"

namespace kh::protocols {

/**
 * Reads a ModelInferRequest. Enforces the proto's rules: raw_input_contents has one entry per
 * input or none; raw and typed contents never mixed; the typed field matches the datatype; FP16
 * and BF16 only as raw; element counts match shapes; INT8/INT16/UINT8/UINT16 values in range.
 * @return InvalidArgument with KServe's wording where it has one.
 */
absl::StatusOr<InferenceRequest> requestFromProto(const inference::ModelInferRequest& proto);

/** Reads a ModelInferResponse (client side) under the same rules. */
absl::StatusOr<InferenceResponse> responseFromProto(const inference::ModelInferResponse& proto);

/**
 * Writes a response. With `raw` (or when any output is FP16/BF16, which have no typed field)
 * every output goes to raw_output_contents; otherwise to typed contents.
 */
void responseToProto(const InferenceResponse& response, bool raw,
                     inference::ModelInferResponse* proto);

/** Writes a request (client side); `raw` as for responseToProto. */
void requestToProto(const InferenceRequest& request, bool raw, inference::ModelInferRequest* proto);

void metadataToProto(const ModelMetadata& metadata, inference::ModelMetadataResponse* proto);
absl::StatusOr<ModelMetadata> metadataFromProto(const inference::ModelMetadataResponse& proto);

void parametersToProto(const Parameters& params,
                       google::protobuf::Map<std::string, inference::InferParameter>* proto);
Parameters parametersFromProto(
    const google::protobuf::Map<std::string, inference::InferParameter>& proto);

}  // namespace kh::protocols
