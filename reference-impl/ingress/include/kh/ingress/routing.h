#pragma once
// The ingress routing table: which revision a request goes to, from its Host (or :authority).
// Hosts are the ones KServe publishes in status: {isvc}-{ns}.{domain} (transformer if any, else
// predictor), {isvc}-{component}-{ns}.{domain}, tag hosts {tag}-{isvc}-{component}-{ns}.{domain},
// and the cluster-local {isvc}.{ns}.svc.cluster.local. Tables are immutable snapshots: workers
// read a std::shared_ptr<const RouteTable> and the controller publishes a new one.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kh::ingress {

struct WeightedRevision {
  std::string revision;
  int64_t percent = 0;
};

/** Where requests for one host go. */
struct Route {
  std::string isvc;
  std::string namespace_name;
  std::string component;  // predictor, transformer, explainer
  std::vector<WeightedRevision> split;  // percents add up to 100 (or 0 when nothing is ready)
};

/** One component's traffic as the controller computed it. */
struct ComponentTraffic {
  std::string component;
  std::vector<WeightedRevision> split;
  std::map<std::string, std::string> tags;  // tag -> revision
};

struct ServiceRoutes {
  std::string isvc;
  std::string namespace_name;
  std::vector<ComponentTraffic> components;
};

class RouteTable {
 public:
  explicit RouteTable(std::string domain = "example.com") : domain_(std::move(domain)) {}

  /** Adds every host of one InferenceService. */
  void add(const ServiceRoutes& service);

  /** @return the route for a Host header value (port and case ignored), or nullptr. */
  const Route* lookup(std::string_view host) const;

  /**
   * Picks a revision by weight: `draw` is uniform in [0, 100) (injected so tests and the
   * binomial checks are deterministic). @return nullptr when no revision has traffic.
   */
  static const WeightedRevision* pick(const Route& route, double draw);

  std::vector<std::string> hosts() const;

 private:
  std::string domain_;
  std::map<std::string, Route, std::less<>> routes_;
};

using RouteTablePtr = std::shared_ptr<const RouteTable>;

}  // namespace kh::ingress
