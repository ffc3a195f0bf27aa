#pragma once
// What the API knows about each kind it serves: a plain value (KindSpec), the same for every kind,
// as kube-apiserver's generic registry takes one store and thin per-kind data. The catalog of the
// kinds refstack serves (KServe, Knative, core) is at the end.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "kh/common/time_source.h"
#include "kh/kubeapi/errors.h"
#include "nlohmann/json.hpp"

namespace kh::kubeapi {

/**
 * One column of the server-side Table (metav1.TableColumnDefinition) and how its cells are made.
 * A cell comes from `cell` when set (the core printers compute theirs), else from `json_path`
 * (the first match, converted by `type` as apiextensions does: "date" becomes a HumanDuration
 * age, "integer" an integer, a value of the wrong type a null cell).
 */
struct PrinterColumn {
  std::string name;
  /** "string", "integer", "number", "boolean" or "date". */
  std::string type = "string";
  /** "name" for the object's name column, else usually empty. */
  std::string format;
  std::string description;
  /** A JSONPath of the subset JsonPath supports, e.g. ".status.url". */
  std::string json_path;
  /** 0: always shown; 1: only with `kubectl get -o wide`. */
  int32_t priority = 0;
  /**
   * Computes the cell from the object and the current time (may return null for a blank cell).
   * Must be thread-safe and pure; it runs while tables and watch events are rendered.
   */
  std::function<nlohmann::json(const nlohmann::json& object, common::SystemTime now)> cell;
};

/**
 * Decides whether a client's create, update or patch may be stored. `object` is the object as it
 * would be stored (defaults and system fields filled in), `old` the stored one (null on create).
 * Return OK to admit, or an error to reject: invalidError({requiredField("spec.predictor")})
 * gives kubectl's `The InferenceService "x" is invalid: spec.predictor: Required value`; another
 * InvalidArgument is reported as Invalid with its message as the single cause; an error of any
 * other code is returned to the client as it is (e.g. apiError(..., 400, "BadRequest", ...) for a
 * validating webhook's denial). Runs under the store's
 * lock: it must be quick, must not block and must not call the store.
 */
using AdmissionHook =
    std::function<absl::Status(const nlohmann::json& object, const nlohmann::json* old)>;

/** Fills in defaults on a new object (client and internal creates), before admission. */
using Defaulter = std::function<void(nlohmann::json& object)>;

/**
 * A kind served by the API. Core kinds (group "") behave as the built-in types: an update needs no
 * resourceVersion and a strategic-merge patch is taken as a merge patch; custom resources
 * (non-empty group) require the resourceVersion on PUT and refuse strategic merge with 415.
 */
struct KindSpec {
  /** API group; "" for the core group. */
  std::string group;
  std::string version;
  /** The kind, e.g. "InferenceService". */
  std::string kind;
  /** The resource (lower-case plural), e.g. "inferenceservices". */
  std::string plural;
  /** e.g. "inferenceservice". */
  std::string singular;
  std::vector<std::string> short_names;
  bool namespaced = true;
  /**
   * Whether API clients may create, update, patch and delete objects of this kind. False for
   * kinds only the stack writes (Pods, Revisions, PodAutoscalers, Events): clients get 405 and
   * the stack writes through ObjectStore's internal calls.
   */
  bool client_writable = true;
  /** Whether the kind has a /status subresource (status written apart from the spec). */
  bool status_subresource = true;
  /** Whether ObjectStore::snapshot() includes objects of this kind. */
  bool persisted = true;
  /** The Table columns, the name column included; empty means Name and Age. */
  std::vector<PrinterColumn> columns;
  /** Field selectors beyond metadata.name and metadata.namespace, e.g. "involvedObject.name". */
  std::vector<std::string> field_selectors;
  /** Optional admission of client writes (not of internal writes or of /status). */
  AdmissionHook admission;
  /** Optional defaulting of new objects. */
  Defaulter defaulter;

  /** "v1" for core, else "<group>/<version>". */
  std::string apiVersion() const;
  /** The group-qualified resource, "pods" or "inferenceservices.serving.kserve.io". */
  std::string resource() const;
  /** The group-qualified kind, "Pod" or "InferenceService.serving.kserve.io". */
  std::string qualifiedKind() const;
  bool isCore() const { return group.empty(); }
};

/** The Name column (format "name", .metadata.name), first in every default table. */
PrinterColumn nameColumn();
/** The Age column (type date, .metadata.creationTimestamp). */
PrinterColumn ageColumn();
/** A custom resource's table: the Name column followed by `additional` (its CRD's columns). */
std::vector<PrinterColumn> customResourceColumns(std::vector<PrinterColumn> additional);

/**
 * The kinds refstack serves, in discovery order (the first version of a group is its preferred
 * one), with the printer columns of kube-api.md §3:
 * - serving.kserve.io/v1beta1 inferenceservices (isvc), /status, KServe's CRD columns;
 * - serving.kserve.io/v1alpha1 servingruntimes, clusterservingruntimes (cluster-scoped),
 *   inferencegraphs (ig);
 * - serving.knative.dev/v1 revisions (rev) and autoscaling.internal.knative.dev/v1alpha1
 *   podautoscalers (kpa, pa): read-only, Knative's CRD columns;
 * - core v1 pods (read-only), events (read-only, involvedObject.* field selectors), namespaces
 *   (cluster-scoped, client-creatable; status.phase Active by default), configmaps.
 * Client-writable kinds are persisted; the read-only ones (which the stack recreates) are not.
 * No admission hooks are set: refstack adds KServe's validation with findKind().
 */
std::vector<KindSpec> refstackKinds();

/**
 * Finds a kind by its Kind ("InferenceService"), resource ("inferenceservices") or qualified
 * resource ("inferenceservices.serving.kserve.io"). @return null when none matches.
 */
KindSpec* findKind(std::vector<KindSpec>& kinds, std::string_view ref);
const KindSpec* findKind(const std::vector<KindSpec>& kinds, std::string_view ref);

}  // namespace kh::kubeapi
