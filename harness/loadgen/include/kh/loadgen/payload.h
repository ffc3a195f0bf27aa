#pragma once
// What a load run sends: one inference request, built from a file or generated from the model's
// V2 metadata (seeded random values of the right shape and datatype), encoded for the chosen
// protocol; and the optional golden-output check of each response.

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "kh/loadgen/engine.h"
#include "kh/protocols/tensor.h"

namespace kh::loadgen {

enum class WireProtocol { kV1, kV2, kV2Binary, kGrpc };

/** "v1", "v2", "v2-binary", "grpc" (also "v2-grpc"). */
absl::StatusOr<WireProtocol> parseWireProtocol(const std::string& name);
const char* wireProtocolName(WireProtocol p);

struct Payload {
  protocols::InferenceRequest request;  // the tensors sent (V1 sends the first input)
  HttpRequestSpec http;
  GrpcRequestSpec grpc;
  std::string source;  // "generated from metadata (batch 1, seed 7)" or the file
};

/**
 * Reads V2 model metadata over REST (GET /v2/models/{m}), or gRPC when `grpc_target` is set.
 * `headers` go with the request; a Host among them is the gRPC :authority (ingress routing).
 */
absl::StatusOr<protocols::ModelMetadata> fetchMetadata(
    const std::string& host, uint16_t port, const std::string& grpc_target, const std::string& model,
    const std::vector<std::pair<std::string, std::string>>& headers = {});

/** Seeded random inputs for every input of `meta`, the first dimension (if variable) = batch. */
protocols::InferenceRequest generateRequest(const protocols::ModelMetadata& meta, int batch,
                                            uint64_t seed);

/**
 * Reads a request file: a V2 inference request ({"inputs": [...]}), a V2 binary-extension body
 * (JSON header followed by tensor blobs), a ModelInferRequest in protobuf text format (.pbtxt),
 * or a V1 body ({"instances": [...]}, sent as is with --protocol v1 only). Any of the first
 * three is re-encoded for the chosen protocol.
 */
absl::StatusOr<Payload> payloadFromFile(const std::string& path, WireProtocol protocol,
                                        const std::string& model);

/** Encodes `request` for `protocol` and `model`. */
Payload encodePayload(protocols::InferenceRequest request, WireProtocol protocol,
                      const std::string& model, std::string source);

/**
 * A check comparing every response's first output with `expected` values within
 * |got - want| <= atol + rtol * |want|. `expected` is read from a V2 response JSON file or a V1
 * {"predictions": ...} file.
 */
absl::StatusOr<ResponseCheck> makeGoldenCheck(const std::string& path, WireProtocol protocol,
                                              double atol, double rtol);

}  // namespace kh::loadgen
