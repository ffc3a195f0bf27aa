#include "kh/kubeapi/kubeconfig.h"

#include "kh/common/yaml_json.h"
#include "nlohmann/json.hpp"

namespace kh::kubeapi {

std::string renderKubeconfig(const KubeconfigOptions& options) {
  using nlohmann::json;
  json user = json::object();
  if (!options.token.empty()) user["token"] = options.token;
  json config = {
      {"apiVersion", "v1"},
      {"kind", "Config"},
      {"clusters",
       json::array({{{"name", options.name}, {"cluster", {{"server", options.server}}}}})},
      {"users", json::array({{{"name", options.name}, {"user", user}}})},
      {"contexts", json::array({{{"name", options.name},
                                 {"context",
                                  {{"cluster", options.name},
                                   {"user", options.name},
                                   {"namespace", options.default_namespace}}}}})},
      {"current-context", options.name},
      {"preferences", json::object()},
  };
  return common::jsonToYaml(config);
}

}  // namespace kh::kubeapi
