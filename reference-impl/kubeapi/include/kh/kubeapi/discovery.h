#pragma once
// Discovery and OpenAPI documents for a set of kinds, and the Accept-header negotiation that
// picks between the aggregated and legacy discovery formats and between Table and plain JSON.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kh/kubeapi/kinds.h"
#include "nlohmann/json.hpp"

namespace kh::kubeapi {

/** One entry of an Accept header: "application/json;g=apidiscovery.k8s.io;v=v2;as=X". */
struct MediaType {
  std::string type;                           // "application/json", lower-case
  std::map<std::string, std::string> params;  // names lower-case, values as sent
};

/** Parses an Accept header into its media types, in the order sent (q-values not applied). */
std::vector<MediaType> parseAccept(std::string_view accept);

/**
 * The aggregated-discovery version the client accepts first: "v2" or "v2beta1" for an entry
 * application/json;g=apidiscovery.k8s.io;v=<v>;as=APIGroupDiscoveryList (parameters compared
 * exactly, never as substrings); nullopt when the client should get the legacy format.
 */
std::optional<std::string> negotiateAggregatedDiscovery(std::string_view accept);

/**
 * The Table version asked for: "v1" or "v1beta1" for application/json;as=Table;g=meta.k8s.io;
 * v=<v>, when it comes before any plain application/json entry; nullopt otherwise.
 */
std::optional<std::string> negotiateTable(std::string_view accept);

/** The Content-Type of aggregated discovery of `version` ("v2" or "v2beta1"). */
std::string aggregatedDiscoveryContentType(std::string_view version);

/**
 * An APIGroupDiscoveryList for the core group (`core` true: the /api document, one item
 * without a name) or for every other group (/apis), in `version` ("v2" or "v2beta1"). A group's
 * versions are listed in the order the kinds first name them, so the first is the preferred.
 */
nlohmann::json aggregatedDiscovery(const std::vector<KindSpec>& kinds, bool core,
                                   std::string_view version);

/** Legacy /api: APIVersions with serverAddressByClientCIDRs pointing at `server_address`. */
nlohmann::json legacyApiVersions(std::string_view server_address);
/** Legacy /apis: APIGroupList. */
nlohmann::json legacyApiGroupList(const std::vector<KindSpec>& kinds);
/** Legacy /apis/<group>: APIGroup, or nullopt when no kind is in the group. */
std::optional<nlohmann::json> legacyApiGroup(const std::vector<KindSpec>& kinds,
                                             std::string_view group);
/** Legacy /api/v1 or /apis/<g>/<v>: APIResourceList, or nullopt for an unknown group-version. */
std::optional<nlohmann::json> apiResourceList(const std::vector<KindSpec>& kinds,
                                              std::string_view group, std::string_view version);

/**
 * GET /openapi/v3: {"paths": {"api/v1": {"serverRelativeURL": ...}, "apis/<g>/<v>": ...}}, one
 * entry per group-version served, each URL carrying a hash of its document.
 */
nlohmann::json openApiRoot(const std::vector<KindSpec>& kinds);
/**
 * GET /openapi/v3/<gv path> ("api/v1" or "apis/<g>/<v>"): a minimal OpenAPI 3 document with,
 * for each kind, a PATCH operation on the object path carrying the
 * x-kubernetes-group-version-kind extension and the fieldValidation query parameter, and no
 * requestBody (so kubectl decides the server validates fields and that apply sends a JSON merge
 * patch). nullopt for a group-version not served.
 */
std::optional<nlohmann::json> openApiGroupVersion(const std::vector<KindSpec>& kinds,
                                                  std::string_view gv_path);

/** GET /version, reporting `git_version` ("v1.32.0": major "1", minor "32"). */
nlohmann::json versionInfo(std::string_view git_version);

}  // namespace kh::kubeapi
