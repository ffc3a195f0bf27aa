#pragma once
// KServe resources as the reference stack reads them from the same YAML a cluster takes:
// InferenceService (serving.kserve.io/v1beta1), ServingRuntime and ClusterServingRuntime
// (v1alpha1). Parsing keeps the original document; validation follows KServe's webhook rules
// and messages.


#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace kh::controller {

struct ObjectMeta {
  std::string name;
  std::string namespace_name = "default";
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
};

struct ModelFormat {
  std::string name;
  std::optional<std::string> version;
};

struct Container {
  std::string name;
  std::string image;
  std::vector<std::string> command;
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> env;
};

/** ComponentExtensionSpec: what every component (predictor, transformer, explainer) carries. */
struct ComponentExtension {
  std::optional<int64_t> min_replicas;  // default 1
  int64_t max_replicas = 0;             // 0 = no limit
  std::optional<int64_t> scale_target;
  std::optional<std::string> scale_metric;  // cpu, memory, concurrency, rps
  std::optional<int64_t> container_concurrency;
  std::optional<int64_t> timeout_seconds;
  std::optional<int64_t> canary_traffic_percent;
};

struct ComponentSpec {
  ComponentExtension extension;
  // The model (predictor), after the legacy framework fields are folded into it.
  std::optional<ModelFormat> model_format;
  std::optional<std::string> runtime;
  std::optional<std::string> runtime_version;
  std::optional<std::string> protocol_version;  // v1, v2, grpc-v1, grpc-v2
  std::optional<std::string> storage_uri;
  /** Custom containers (custom predictor, transformer, explainer). */
  std::vector<Container> containers;
  /** Implementations named in the spec (model, xgboost, containers, ...), for the one-of rule. */
  std::vector<std::string> implementations;
};

struct InferenceService {
  ObjectMeta metadata;
  ComponentSpec predictor;
  std::optional<ComponentSpec> transformer;
  std::optional<ComponentSpec> explainer;
  nlohmann::json document;  // as applied
};

struct SupportedModelFormat {
  std::string name;
  std::optional<std::string> version;
  bool auto_select = false;
  std::optional<int64_t> priority;
};

struct ServingRuntime {
  ObjectMeta metadata;
  bool cluster_scoped = false;
  std::vector<SupportedModelFormat> supported_model_formats;
  std::vector<std::string> protocol_versions;
  bool disabled = false;
  bool multi_model = false;
  bool has_worker_spec = false;
  std::vector<Container> containers;
  int64_t created_order = 0;  // newer is larger (stands in for creationTimestamp)
  nlohmann::json document;
};

/** One parsed document of a manifest. */
struct Resource {
  std::string kind;  // InferenceService, ServingRuntime, ClusterServingRuntime
  std::optional<InferenceService> inference_service;
  std::optional<ServingRuntime> serving_runtime;
};

/**
 * Parses YAML or JSON, one or several documents ("---"). Unknown kinds and malformed fields are
 * InvalidArgument naming the document, field and (for YAML errors) line and column.
 */
absl::StatusOr<std::vector<Resource>> parseManifests(const std::string& text,
                                                     const std::string& source = "manifest");

/**
 * Parses one document (a JSON object, e.g. an object of the Kubernetes API). `where` names it
 * in error messages.
 */
absl::StatusOr<Resource> parseResource(const nlohmann::json& document, const std::string& where);

/** KServe's webhook validation of an InferenceService; the message is KServe's where it has one. */
absl::Status validateInferenceService(const InferenceService& isvc);

/** Validation of a (Cluster)ServingRuntime. */
absl::Status validateServingRuntime(const ServingRuntime& runtime);

/** The name rule shared by all resources: [a-z]([-a-z0-9]*[a-z0-9])?, at most 63 characters. */
bool isValidName(const std::string& name);

}  // namespace kh::controller
