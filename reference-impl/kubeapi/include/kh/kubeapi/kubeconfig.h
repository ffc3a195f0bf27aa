#pragma once
// A kubeconfig for the API: what kubectl (via KUBECONFIG or --kubeconfig) and the Python client's
// config.load_kube_config() need to reach it.

#include <string>

namespace kh::kubeapi {

struct KubeconfigOptions {
  /** The API's URL, e.g. "http://127.0.0.1:8090". */
  std::string server;
  /** The bearer token the API requires; empty for none (the user entry is then `{}`). */
  std::string token;
  /** The context's default namespace. */
  std::string default_namespace = "default";
  /** The name of the cluster, user and context entries (and the current-context). */
  std::string name = "refstack";
};

/**
 * Renders the kubeconfig as YAML: one cluster (server), one user (token), one context
 * (namespace), selected as current-context. Write it with mode 0600 when it carries a token.
 */
std::string renderKubeconfig(const KubeconfigOptions& options);

}  // namespace kh::kubeapi
