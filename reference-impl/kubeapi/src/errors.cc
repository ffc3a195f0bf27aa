#include "kh/kubeapi/errors.h"

#include "absl/strings/cord.h"
#include "kh/common/json.h"
#include "kh/common/strings.h"

namespace kh::kubeapi {
namespace {

using common::strCat;
using common::toStd;

constexpr std::string_view kPayloadUrl = "type.kh/kubeapi.ApiStatus";

std::string resourceName(std::string_view group, std::string_view plural) {
  return group.empty() ? std::string(plural) : strCat(plural, ".", group);
}

nlohmann::json causesJson(const std::vector<FieldCause>& causes) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& c : causes) {
    nlohmann::json j = {{"reason", c.reason}, {"message", c.message}};
    if (!c.field.empty()) j["field"] = c.field;
    out.push_back(std::move(j));
  }
  return out;
}

std::optional<nlohmann::json> payloadOf(const absl::Status& status) {
  auto payload = status.GetPayload(absl::string_view(kPayloadUrl.data(), kPayloadUrl.size()));
  if (!payload) return std::nullopt;
  auto parsed = nlohmann::json::parse(std::string(*payload), nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) return std::nullopt;
  return parsed;
}

}  // namespace

std::string FieldCause::describe() const {
  return field.empty() ? message : strCat(field, ": ", message);
}

FieldCause requiredField(std::string field, std::string_view detail) {
  std::string message = detail.empty() ? "Required value" : strCat("Required value: ", detail);
  return {"FieldValueRequired", std::move(message), std::move(field)};
}

FieldCause invalidField(std::string field, const nlohmann::json& value, std::string_view detail) {
  std::string message = strCat("Invalid value: ", common::jsonText(value));
  if (!detail.empty()) message += strCat(": ", detail);
  return {"FieldValueInvalid", std::move(message), std::move(field)};
}

FieldCause forbiddenField(std::string field, std::string_view detail) {
  return {"FieldValueForbidden", strCat("Forbidden: ", detail), std::move(field)};
}

absl::Status invalidError(std::vector<FieldCause> causes) {
  std::string message;
  for (size_t i = 0; i < causes.size(); ++i) {
    if (i > 0) message += ", ";
    message += causes[i].describe();
  }
  if (causes.size() > 1) message = strCat("[", message, "]");
  return apiError(absl::StatusCode::kInvalidArgument, 422, "Invalid", message,
                  {{"causes", causesJson(causes)}});
}

std::optional<std::vector<FieldCause>> invalidCauses(const absl::Status& status) {
  auto payload = payloadOf(status);
  if (!payload || !(*payload)["details"].is_object()) return std::nullopt;
  const auto& causes = (*payload)["details"]["causes"];
  if (!causes.is_array()) return std::nullopt;
  std::vector<FieldCause> out;
  for (const auto& c : causes) {
    out.push_back({c.value("reason", ""), c.value("message", ""), c.value("field", "")});
  }
  return out;
}

absl::Status apiError(absl::StatusCode code, int http_code, std::string_view reason,
                      std::string_view message, nlohmann::json details) {
  absl::Status status(code, absl::string_view(message.data(), message.size()));
  nlohmann::json payload = {{"code", http_code}, {"reason", reason}, {"details", details}};
  std::string text = common::jsonText(payload);
  status.SetPayload(absl::string_view(kPayloadUrl.data(), kPayloadUrl.size()), absl::Cord(text));
  return status;
}

ApiStatus apiStatusOf(const absl::Status& status) {
  if (auto payload = payloadOf(status)) {
    ApiStatus out;
    out.code = payload->value("code", 500);
    out.reason = payload->value("reason", "InternalError");
    out.details = (*payload)["details"];
    return out;
  }
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument: return {400, "BadRequest", nullptr};
    case absl::StatusCode::kNotFound: return {404, "NotFound", nullptr};
    case absl::StatusCode::kAlreadyExists: return {409, "AlreadyExists", nullptr};
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kFailedPrecondition: return {409, "Conflict", nullptr};
    case absl::StatusCode::kUnimplemented: return {405, "MethodNotAllowed", nullptr};
    case absl::StatusCode::kPermissionDenied: return {403, "Forbidden", nullptr};
    case absl::StatusCode::kUnauthenticated: return {401, "Unauthorized", nullptr};
    case absl::StatusCode::kOutOfRange: return {410, "Expired", nullptr};
    case absl::StatusCode::kResourceExhausted: return {429, "TooManyRequests", nullptr};
    case absl::StatusCode::kDeadlineExceeded: return {504, "Timeout", nullptr};
    case absl::StatusCode::kUnavailable: return {503, "ServiceUnavailable", nullptr};
    default: return {500, "InternalError", nullptr};
  }
}

nlohmann::json statusBody(const absl::Status& status) {
  ApiStatus api = apiStatusOf(status);
  nlohmann::json body = {{"kind", "Status"},
                         {"apiVersion", "v1"},
                         {"metadata", nlohmann::json::object()},
                         {"status", "Failure"},
                         {"message", toStd(status.message())},
                         {"reason", api.reason},
                         {"code", api.code}};
  if (api.details.is_object() && !api.details.empty()) body["details"] = api.details;
  return body;
}

nlohmann::json successStatus(nlohmann::json details) {
  nlohmann::json body = {{"kind", "Status"},
                         {"apiVersion", "v1"},
                         {"metadata", nlohmann::json::object()},
                         {"status", "Success"}};
  if (details.is_object()) body["details"] = std::move(details);
  return body;
}

absl::Status notFoundError(std::string_view group, std::string_view plural, std::string_view name) {
  return apiError(absl::StatusCode::kNotFound, 404, "NotFound",
                  strCat(resourceName(group, plural), " \"", name, "\" not found"),
                  {{"name", name}, {"group", group}, {"kind", plural}});
}

absl::Status alreadyExistsError(std::string_view group, std::string_view plural,
                                std::string_view name) {
  return apiError(absl::StatusCode::kAlreadyExists, 409, "AlreadyExists",
                  strCat(resourceName(group, plural), " \"", name, "\" already exists"),
                  {{"name", name}, {"group", group}, {"kind", plural}});
}

absl::Status conflictError(std::string_view group, std::string_view plural, std::string_view name) {
  return apiError(
      absl::StatusCode::kAborted, 409, "Conflict",
      strCat("Operation cannot be fulfilled on ", resourceName(group, plural), " \"", name,
             "\": the object has been modified; please apply your changes to the "
             "latest version and try again"),
      {{"name", name}, {"group", group}, {"kind", plural}});
}

absl::Status invalidObjectError(std::string_view group, std::string_view kind,
                                std::string_view name, std::vector<FieldCause> causes) {
  std::string list;
  for (size_t i = 0; i < causes.size(); ++i) {
    if (i > 0) list += ", ";
    list += causes[i].describe();
  }
  if (causes.size() > 1) list = strCat("[", list, "]");
  std::string qualified = group.empty() ? std::string(kind) : strCat(kind, ".", group);
  return apiError(
      absl::StatusCode::kInvalidArgument, 422, "Invalid",
      strCat(qualified, " \"", name, "\" is invalid: ", list),
      {{"name", name}, {"group", group}, {"kind", kind}, {"causes", causesJson(causes)}});
}

absl::Status badRequestError(std::string_view message) {
  return apiError(absl::StatusCode::kInvalidArgument, 400, "BadRequest", message);
}

absl::Status methodNotAllowedError() {
  return apiError(absl::StatusCode::kUnimplemented, 405, "MethodNotAllowed",
                  "the server does not allow this method on the requested resource");
}

absl::Status unsupportedPatchError() {
  return apiError(absl::StatusCode::kInvalidArgument, 415, "UnsupportedMediaType",
                  "the body of the request was in an unknown format - accepted media types "
                  "include: application/json-patch+json, application/merge-patch+json, "
                  "application/apply-patch+yaml");
}

absl::Status unknownPathError() {
  return apiError(absl::StatusCode::kNotFound, 404, "NotFound",
                  "the server could not find the requested resource");
}

absl::Status expiredError(uint64_t requested, uint64_t floor) {
  return apiError(absl::StatusCode::kOutOfRange, 410, "Expired",
                  strCat("too old resource version: ", requested, " (", floor, ")"));
}

}  // namespace kh::kubeapi
