#include "kh/ingress/snapshot.h"

#include "kh/common/strings.h"

namespace kh::ingress {

const activator::Endpoint* pickEndpoint(const RevisionTarget& target, std::atomic<size_t>& round_robin) {
  const activator::EndpointList& eps = *target.endpoints;
  if (eps.empty()) return nullptr;
  if (target.activator && target.activator->inPath()) return target.activator->choose(eps);
  return &eps[round_robin.fetch_add(1, std::memory_order_relaxed) % eps.size()];
}

Destination pickDestination(const RoutingSnapshot& snapshot, std::string_view host, std::string_view path,
                            activator::RandomSource& random, std::atomic<size_t>& round_robin) {
  Destination d;
  const Route* route = snapshot.table.lookup(host);
  if (route == nullptr) {
    d.error_status = 404;
    d.error = common::strCat("no InferenceService serves host '", host, "'");
    return d;
  }
  // :explain on the service's own host goes to the explainer when it has one; a component host
  // (the explainer's call to the predictor) is taken as named.
  if (route->component != "explainer" && path.find(":explain") != std::string_view::npos) {
    std::string service_host = common::strCat(route->isvc, "-", route->namespace_name, ".");
    std::string local_host = common::strCat(route->isvc, ".", route->namespace_name, ".svc.");
    bool top_level = host.substr(0, service_host.size()) == service_host ||
                     host.substr(0, local_host.size()) == local_host;
    if (top_level) {
      std::string explainer_host = common::strCat(route->isvc, "-explainer-", route->namespace_name, ".");
      for (const auto& h : snapshot.table.hosts()) {
        if (h.rfind(explainer_host, 0) == 0) {
          if (const Route* r = snapshot.table.lookup(h)) route = r;
          break;
        }
      }
    }
  }
  d.route = route;
  const WeightedRevision* w = RouteTable::pick(*route, random.uniform() * 100);
  if (w == nullptr) {
    d.error_status = 503;
    d.error = common::strCat("no ready revision for host '", host, "'");
    return d;
  }
  d.revision = w->revision;
  auto it = snapshot.revisions.find(w->revision);
  if (it != snapshot.revisions.end()) d.target = &it->second;
  d.endpoint = d.target ? pickEndpoint(*d.target, round_robin) : nullptr;
  if (d.endpoint == nullptr) {
    d.error_status = 503;
    d.error = common::strCat("revision ", w->revision, " has no ready pod");
  }
  return d;
}

}  // namespace kh::ingress
