#include "kh/ingress/routing.h"

#include <algorithm>
#include <cctype>

#include "fmt/format.h"

namespace kh::ingress {

void RouteTable::add(const ServiceRoutes& s) {
  const ComponentTraffic* top = nullptr;
  for (const auto& c : s.components) {
    if (c.component == "transformer") top = &c;
  }
  for (const auto& c : s.components) {
    // A graph's router is the whole of its service (KServe runs it as the graph's Knative Service).
    if (!top && (c.component == "predictor" || c.component == "graph")) top = &c;
  }
  for (const auto& c : s.components) {
    Route r{s.isvc, s.namespace_name, c.component, c.split};
    routes_[fmt::format("{}-{}-{}.{}", s.isvc, c.component, s.namespace_name, domain_)] = r;
    for (const auto& [tag, revision] : c.tags) {
      Route tagged{s.isvc, s.namespace_name, c.component, {{revision, 100}}};
      routes_[fmt::format("{}-{}-{}-{}.{}", tag, s.isvc, c.component, s.namespace_name, domain_)] = tagged;
    }
  }
  if (top) {
    Route r{s.isvc, s.namespace_name, top->component, top->split};
    routes_[fmt::format("{}-{}.{}", s.isvc, s.namespace_name, domain_)] = r;
    routes_[fmt::format("{}.{}.svc.cluster.local", s.isvc, s.namespace_name)] = r;
  }
}

const Route* RouteTable::lookup(std::string_view host) const {
  if (auto colon = host.rfind(':'); colon != std::string_view::npos && host.find(']') == std::string_view::npos) {
    host = host.substr(0, colon);
  }
  std::string key(host);
  std::transform(key.begin(), key.end(), key.begin(), [](unsigned char c) { return std::tolower(c); });
  auto it = routes_.find(key);
  return it == routes_.end() ? nullptr : &it->second;
}

const WeightedRevision* RouteTable::pick(const Route& route, double draw) {
  // The first revision whose cumulative weight exceeds the draw, as Knative's split does.
  double cumulative = 0;
  for (const auto& w : route.split) {
    cumulative += static_cast<double>(w.percent);
    if (w.percent > 0 && draw < cumulative) return &w;
  }
  return nullptr;
}

std::vector<std::string> RouteTable::hosts() const {
  std::vector<std::string> out;
  for (const auto& [h, r] : routes_) out.push_back(h);
  return out;
}

}  // namespace kh::ingress
