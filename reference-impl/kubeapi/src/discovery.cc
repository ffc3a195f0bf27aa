#include "kh/kubeapi/discovery.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "kh/common/json.h"
#include "kh/common/strings.h"

namespace kh::kubeapi {
namespace {

using common::strCat;
using nlohmann::json;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

json verbsOf(const KindSpec& k) {
  if (!k.client_writable) return {"get", "list", "watch"};
  return {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"};
}

json statusVerbsOf(const KindSpec& k) {
  if (!k.client_writable) return {"get"};
  return {"get", "patch", "update"};
}

json responseKind(const KindSpec& k) {
  return {{"group", k.group}, {"version", k.version}, {"kind", k.kind}};
}

// The group-versions served, in first-mention order, grouped by group in first-mention order.
std::vector<std::pair<std::string, std::vector<std::string>>> groupVersions(
    const std::vector<KindSpec>& kinds) {
  std::vector<std::pair<std::string, std::vector<std::string>>> groups;
  for (const auto& k : kinds) {
    auto it = std::find_if(groups.begin(), groups.end(),
                           [&](const auto& g) { return g.first == k.group; });
    if (it == groups.end()) {
      groups.push_back({k.group, {}});
      it = groups.end() - 1;
    }
    if (std::find(it->second.begin(), it->second.end(), k.version) == it->second.end()) {
      it->second.push_back(k.version);
    }
  }
  return groups;
}

std::string gvOf(std::string_view group, std::string_view version) {
  return group.empty() ? std::string(version) : strCat(group, "/", version);
}

std::string gvPath(std::string_view group, std::string_view version) {
  return group.empty() ? strCat("api/", version) : strCat("apis/", group, "/", version);
}

std::string hashOf(std::string_view text) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llX", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace

std::vector<MediaType> parseAccept(std::string_view accept) {
  std::vector<MediaType> out;
  size_t start = 0;
  while (start <= accept.size()) {
    size_t comma = accept.find(',', start);
    std::string_view entry = accept.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    start = comma == std::string_view::npos ? accept.size() + 1 : comma + 1;
    entry = trim(entry);
    if (entry.empty()) continue;
    MediaType mt;
    size_t semi = entry.find(';');
    mt.type = lower(trim(entry.substr(0, semi)));
    while (semi != std::string_view::npos) {
      size_t next = entry.find(';', semi + 1);
      std::string_view param = trim(entry.substr(
          semi + 1, next == std::string_view::npos ? std::string_view::npos : next - semi - 1));
      size_t eq = param.find('=');
      if (eq != std::string_view::npos) {
        std::string_view value = trim(param.substr(eq + 1));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
          value = value.substr(1, value.size() - 2);
        }
        mt.params[lower(trim(param.substr(0, eq)))] = std::string(value);
      }
      semi = next;
    }
    out.push_back(std::move(mt));
  }
  return out;
}

std::optional<std::string> negotiateAggregatedDiscovery(std::string_view accept) {
  for (const auto& mt : parseAccept(accept)) {
    if (mt.type != "application/json") continue;
    auto g = mt.params.find("g");
    auto v = mt.params.find("v");
    auto as = mt.params.find("as");
    if (g == mt.params.end() && v == mt.params.end() && as == mt.params.end()) return std::nullopt;
    if (g == mt.params.end() || v == mt.params.end() || as == mt.params.end()) continue;
    if (g->second != "apidiscovery.k8s.io" || as->second != "APIGroupDiscoveryList") continue;
    if (v->second == "v2" || v->second == "v2beta1") return v->second;
  }
  return std::nullopt;
}

std::optional<std::string> negotiateTable(std::string_view accept) {
  for (const auto& mt : parseAccept(accept)) {
    if (mt.type != "application/json") continue;
    auto as = mt.params.find("as");
    if (as == mt.params.end()) return std::nullopt;  // plain JSON comes first
    auto g = mt.params.find("g");
    auto v = mt.params.find("v");
    if (as->second != "Table" || g == mt.params.end() || g->second != "meta.k8s.io" ||
        v == mt.params.end()) {
      continue;
    }
    if (v->second == "v1" || v->second == "v1beta1") return v->second;
  }
  return std::nullopt;
}

std::string aggregatedDiscoveryContentType(std::string_view version) {
  return strCat("application/json;g=apidiscovery.k8s.io;v=", version, ";as=APIGroupDiscoveryList");
}

json aggregatedDiscovery(const std::vector<KindSpec>& kinds, bool core, std::string_view version) {
  json items = json::array();
  for (const auto& [group, versions] : groupVersions(kinds)) {
    if (group.empty() != core) continue;
    json item;
    item["metadata"] = {{"creationTimestamp", nullptr}};
    if (!core) item["metadata"]["name"] = group;
    json version_list = json::array();
    for (const auto& v : versions) {
      json resources = json::array();
      for (const auto& k : kinds) {
        if (k.group != group || k.version != v) continue;
        json r = {{"resource", k.plural},
                  {"responseKind", responseKind(k)},
                  {"scope", k.namespaced ? "Namespaced" : "Cluster"},
                  {"singularResource", k.singular},
                  {"verbs", verbsOf(k)}};
        if (!k.short_names.empty()) r["shortNames"] = k.short_names;
        if (k.status_subresource) {
          r["subresources"] = json::array({{{"subresource", "status"},
                                            {"responseKind", responseKind(k)},
                                            {"verbs", statusVerbsOf(k)}}});
        }
        resources.push_back(std::move(r));
      }
      version_list.push_back(
          {{"version", v}, {"resources", std::move(resources)}, {"freshness", "Current"}});
    }
    item["versions"] = std::move(version_list);
    items.push_back(std::move(item));
  }
  return {{"kind", "APIGroupDiscoveryList"},
          {"apiVersion", strCat("apidiscovery.k8s.io/", version)},
          {"metadata", json::object()},
          {"items", std::move(items)}};
}

json legacyApiVersions(std::string_view server_address) {
  return {{"kind", "APIVersions"},
          {"versions", {"v1"}},
          {"serverAddressByClientCIDRs",
           json::array({{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", server_address}}})}};
}

namespace {
json groupJson(const std::string& group, const std::vector<std::string>& versions) {
  json list = json::array();
  for (const auto& v : versions) list.push_back({{"groupVersion", gvOf(group, v)}, {"version", v}});
  return {{"name", group},
          {"versions", list},
          {"preferredVersion",
           {{"groupVersion", gvOf(group, versions.front())}, {"version", versions.front()}}}};
}
}  // namespace

json legacyApiGroupList(const std::vector<KindSpec>& kinds) {
  json groups = json::array();
  for (const auto& [group, versions] : groupVersions(kinds)) {
    if (!group.empty()) groups.push_back(groupJson(group, versions));
  }
  return {{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", std::move(groups)}};
}

std::optional<json> legacyApiGroup(const std::vector<KindSpec>& kinds, std::string_view group) {
  for (const auto& [g, versions] : groupVersions(kinds)) {
    if (g.empty() || g != group) continue;
    json out = groupJson(g, versions);
    out["kind"] = "APIGroup";
    out["apiVersion"] = "v1";
    return out;
  }
  return std::nullopt;
}

std::optional<json> apiResourceList(const std::vector<KindSpec>& kinds, std::string_view group,
                                    std::string_view version) {
  json resources = json::array();
  bool found = false;
  for (const auto& k : kinds) {
    if (k.group != group || k.version != version) continue;
    found = true;
    json r = {{"name", k.plural},
              {"singularName", k.singular},
              {"namespaced", k.namespaced},
              {"kind", k.kind},
              {"verbs", verbsOf(k)}};
    if (!k.short_names.empty()) r["shortNames"] = k.short_names;
    resources.push_back(std::move(r));
    if (k.status_subresource) {
      resources.push_back({{"name", strCat(k.plural, "/status")},
                           {"singularName", ""},
                           {"namespaced", k.namespaced},
                           {"kind", k.kind},
                           {"verbs", statusVerbsOf(k)}});
    }
  }
  if (!found) return std::nullopt;
  return json{{"kind", "APIResourceList"},
              {"apiVersion", "v1"},
              {"groupVersion", gvOf(group, version)},
              {"resources", std::move(resources)}};
}

json openApiRoot(const std::vector<KindSpec>& kinds) {
  json paths = json::object();
  for (const auto& [group, versions] : groupVersions(kinds)) {
    for (const auto& v : versions) {
      std::string path = gvPath(group, v);
      auto doc = openApiGroupVersion(kinds, path);
      paths[path] = {{"serverRelativeURL",
                      strCat("/openapi/v3/", path, "?hash=", hashOf(doc ? common::jsonText(*doc) : ""))}};
    }
  }
  return {{"paths", std::move(paths)}};
}

std::optional<json> openApiGroupVersion(const std::vector<KindSpec>& kinds,
                                        std::string_view gv_path) {
  json paths = json::object();
  bool found = false;
  for (const auto& k : kinds) {
    if (gvPath(k.group, k.version) != gv_path) continue;
    found = true;
    std::string base = strCat("/", gv_path, "/");
    std::string item = k.namespaced ? strCat(base, "namespaces/{namespace}/", k.plural, "/{name}")
                                    : strCat(base, k.plural, "/{name}");
    paths[item] = {{"patch",
                    {{"x-kubernetes-group-version-kind", responseKind(k)},
                     {"parameters", json::array({{{"name", "fieldValidation"},
                                                  {"in", "query"},
                                                  {"schema", {{"type", "string"}}}}})},
                     {"responses", {{"200", {{"description", "OK"}}}}}}}};
  }
  if (!found) return std::nullopt;
  return json{{"openapi", "3.0.0"},
              {"info", {{"title", "refstack"}, {"version", "v1"}}},
              {"components", {{"schemas", json::object()}}},
              {"paths", std::move(paths)}};
}

json versionInfo(std::string_view git_version) {
  std::string_view v = git_version;
  if (!v.empty() && v.front() == 'v') v.remove_prefix(1);
  std::string major(v.substr(0, v.find('.')));
  std::string_view rest = v.find('.') == std::string_view::npos ? "" : v.substr(v.find('.') + 1);
  std::string minor(rest.substr(0, rest.find('.')));
  return {{"major", major},
          {"minor", minor},
          {"gitVersion", git_version},
          {"gitCommit", "0000000000000000000000000000000000000000"},
          {"gitTreeState", "clean"},
          {"buildDate", "2024-12-11T00:00:00Z"},
          {"goVersion", "go1.23.3"},
          {"compiler", "gc"},
          {"platform", "linux/amd64"}};
}

}  // namespace kh::kubeapi
