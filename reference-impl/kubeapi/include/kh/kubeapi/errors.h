#pragma once
// Kubernetes API errors as absl::Status values, and their metav1.Status bodies.
//
// Every error the store and the handler produce is an absl::Status whose canonical code says what
// went wrong to C++ callers, and whose payload (when present) says exactly what a Kubernetes
// client must see: the HTTP code, the metav1 reason and the details (name, group, kind, causes).
// An absl::Status without that payload maps by its code (see apiStatusOf()).

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace kh::kubeapi {

/**
 * One reason an object was rejected, as metav1.StatusCause: `reason` is the cause type
 * ("FieldValueRequired", "FieldValueInvalid", ...), `message` the body of the field error
 * ("Required value"), `field` the path of the offending field ("spec.predictor").
 */
struct FieldCause {
  std::string reason;
  std::string message;
  std::string field;

  /** "field: message" (or just the message when there is no field), as Go's field.Error. */
  std::string describe() const;
};

/** A missing required field: FieldValueRequired, "Required value[: detail]". */
FieldCause requiredField(std::string field, std::string_view detail = {});
/**
 * A field with a bad value: FieldValueInvalid, "Invalid value: <value>: <detail>"; the value is
 * written as JSON (strings quoted, as Go's %#v does for strings).
 */
FieldCause invalidField(std::string field, const nlohmann::json& value, std::string_view detail);
/** A field that may not be set or changed: FieldValueForbidden, "Forbidden: <detail>". */
FieldCause forbiddenField(std::string field, std::string_view detail);

/**
 * The error an admission hook returns to reject an object: InvalidArgument carrying `causes`.
 * The store turns it into the final 422 Invalid, naming the kind and object
 * (`InferenceService.serving.kserve.io "bad1" is invalid: spec.predictor: Required value`),
 * which kubectl prints as `The InferenceService "bad1" is invalid: spec.predictor: Required value`.
 */
absl::Status invalidError(std::vector<FieldCause> causes);

/** The causes carried by an error from invalidError() (or a final Invalid), if any. */
std::optional<std::vector<FieldCause>> invalidCauses(const absl::Status& status);

/** What a Kubernetes client sees of an error. */
struct ApiStatus {
  int code = 500;          // HTTP status
  std::string reason;      // metav1.StatusReason: "NotFound", "Invalid", ...
  nlohmann::json details;  // metav1.StatusDetails, or null for none
};

/**
 * Makes an error with an explicit Kubernetes view. `code` is the canonical code C++ callers see.
 * `details` (an object, or null) becomes metav1.Status.details.
 */
absl::Status apiError(absl::StatusCode code, int http_code, std::string_view reason,
                      std::string_view message, nlohmann::json details = nullptr);

/**
 * The Kubernetes view of `status` (which must not be OK): its payload if it has one, else by
 * canonical code: InvalidArgument 400 BadRequest (422 Invalid with causes), NotFound 404,
 * AlreadyExists 409 AlreadyExists, Aborted 409 Conflict, FailedPrecondition 409 Conflict,
 * Unimplemented 405 MethodNotAllowed, PermissionDenied 403 Forbidden, Unauthenticated 401
 * Unauthorized, OutOfRange 410 Expired, ResourceExhausted 429 TooManyRequests, DeadlineExceeded
 * 504 Timeout, Unavailable 503 ServiceUnavailable, anything else 500 InternalError.
 */
ApiStatus apiStatusOf(const absl::Status& status);

/** The metav1.Status body (status "Failure") of an error. */
nlohmann::json statusBody(const absl::Status& status);

/** A metav1.Status body with status "Success" (the answer to a delete), with `details`. */
nlohmann::json successStatus(nlohmann::json details);

// Constructors of the common errors, each with the message kube-apiserver uses.

/** 404 `<resource> "<name>" not found`; `resource` is "pods" or
 * "inferenceservices.serving.kserve.io". */
absl::Status notFoundError(std::string_view group, std::string_view plural, std::string_view name);
/** 409 AlreadyExists `<resource> "<name>" already exists`. */
absl::Status alreadyExistsError(std::string_view group, std::string_view plural,
                                std::string_view name);
/** 409 Conflict: the object has been modified (a stale resourceVersion). */
absl::Status conflictError(std::string_view group, std::string_view plural, std::string_view name);
/** 422 Invalid naming the kind: `<Kind>[.<group>] "<name>" is invalid: <causes>`. */
absl::Status invalidObjectError(std::string_view group, std::string_view kind,
                                std::string_view name, std::vector<FieldCause> causes);
/** 400 BadRequest with `message`. */
absl::Status badRequestError(std::string_view message);
/** 405 MethodNotAllowed: the server does not allow this method on the requested resource. */
absl::Status methodNotAllowedError();
/** 415 UnsupportedMediaType for a patch type the resource does not take (SMP on a CR). */
absl::Status unsupportedPatchError();
/** 404 for a path the API does not serve: the server could not find the requested resource. */
absl::Status unknownPathError();
/** 410 Expired: too old resource version: <requested> (<oldest kept - 1>). */
absl::Status expiredError(uint64_t requested, uint64_t floor);

}  // namespace kh::kubeapi
