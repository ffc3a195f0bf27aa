// Host routing, tag hosts, and the weighted split checked with an exact binomial test.

#include "kh/ingress/routing.h"

#include <cmath>
#include <random>

#include "gtest/gtest.h"

namespace kh::ingress {
namespace {

ServiceRoutes canary() {
  ComponentTraffic predictor{"predictor",
                             {{"iris-predictor-00002", 20}, {"iris-predictor-00001", 80}},
                             {{"latest", "iris-predictor-00002"}, {"prev", "iris-predictor-00001"}}};
  return {"iris", "demo", {predictor}};
}

TEST(Routing, HostsAsKServePublishesThem) {
  RouteTable t;
  t.add(canary());
  for (const char* host : {"iris-demo.example.com", "IRIS-demo.example.com:8080",
                           "iris-predictor-demo.example.com", "iris.demo.svc.cluster.local"}) {
    const Route* r = t.lookup(host);
    ASSERT_NE(r, nullptr) << host;
    EXPECT_EQ(r->split.size(), 2u) << host;
  }
  const Route* latest = t.lookup("latest-iris-predictor-demo.example.com");
  ASSERT_NE(latest, nullptr);
  EXPECT_EQ(RouteTable::pick(*latest, 99.9)->revision, "iris-predictor-00002");
  const Route* prev = t.lookup("prev-iris-predictor-demo.example.com");
  EXPECT_EQ(RouteTable::pick(*prev, 0)->revision, "iris-predictor-00001");
  EXPECT_EQ(t.lookup("unknown-demo.example.com"), nullptr);
}

TEST(Routing, TransformerTakesTheTopLevelHost) {
  RouteTable t;
  t.add({"t", "ns", {{"predictor", {{"t-predictor-00001", 100}}, {}},
                     {"transformer", {{"t-transformer-00001", 100}}, {}}}});
  EXPECT_EQ(t.lookup("t-ns.example.com")->component, "transformer");
  EXPECT_EQ(t.lookup("t-predictor-ns.example.com")->component, "predictor");
}

TEST(Routing, NoReadyRevisionMeansNoPick) {
  Route empty{"x", "ns", "predictor", {{"x-predictor-00001", 0}}};
  EXPECT_EQ(RouteTable::pick(empty, 10), nullptr);
}

// P[X >= k] for X ~ Binomial(n, p), summed in log space.
double upperTail(int64_t k, int64_t n, double p) {
  double total = 0;
  for (int64_t x = k; x <= n; ++x) {
    total += std::exp(std::lgamma(n + 1.0) - std::lgamma(x + 1.0) - std::lgamma(n - x + 1.0) +
                      x * std::log(p) + (n - x) * std::log1p(-p));
  }
  return total;
}

TEST(Routing, EightyTwentySplitPassesAnExactBinomialTest) {
  RouteTable t;
  t.add(canary());
  const Route* r = t.lookup("iris-demo.example.com");
  std::mt19937_64 rng(2026);
  std::uniform_real_distribution<double> draw(0, 100);
  const int64_t n = 5000;
  int64_t to_new = 0;
  for (int64_t i = 0; i < n; ++i) to_new += RouteTable::pick(*r, draw(rng))->revision == "iris-predictor-00002";
  // Two-sided exact test of p = 0.2 at 99.9% confidence.
  double p_value = 2 * std::min(upperTail(to_new, n, 0.2), 1 - upperTail(to_new + 1, n, 0.2));
  EXPECT_GT(p_value, 0.001) << to_new << " of " << n;
  // And a 50/50 claim is rejected by the same test.
  double wrong = 2 * std::min(upperTail(to_new, n, 0.5), 1 - upperTail(to_new + 1, n, 0.5));
  EXPECT_LT(wrong, 0.001);
}

}  // namespace
}  // namespace kh::ingress
