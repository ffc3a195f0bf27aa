#pragma once
// Just enough of Kubernetes' protobuf encoding to read what kubectl's typed clients send for the
// core kinds this API lets clients write: `kubectl create namespace` POSTs a Namespace as
// application/vnd.kubernetes.protobuf (the other kubectl writes send JSON).

#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace kh::kubeapi::internal {

/**
 * Decodes a "k8s\0"-prefixed runtime.Unknown envelope into JSON: apiVersion and kind from its
 * TypeMeta, and from the object the ObjectMeta (name, generateName, namespace, labels,
 * annotations, finalizers) plus, for a Namespace, spec.finalizers. Other fields are dropped.
 * @return BadRequest when the bytes are not such an envelope.
 */
absl::StatusOr<nlohmann::json> decodeProtobufObject(std::string_view bytes);

}  // namespace kh::kubeapi::internal
