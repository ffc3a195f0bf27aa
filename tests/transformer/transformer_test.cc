// passthrough-transformer as a pod runs it: forwarding to the predictor through the "ingress" (a
// fake one here), without one slow predictor call holding up the other requests.

#include <signal.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "gtest/gtest.h"
#include "kh/http/client.h"
#include "kh/process/subprocess.h"
#include "queueproxy/fake_upstream.h"
#include "support/modelserver_process.h"

namespace kh {
namespace {

using namespace std::chrono_literals;

// A running passthrough-transformer forwarding to `ingress`; SIGTERM and a wait when it goes.
struct Transformer {
  std::unique_ptr<process::Subprocess> child;
  uint16_t port = 0;
  ~Transformer() {
    if (child && child->running()) {
      child->signalGroup(SIGTERM);
      child->wait(10s);
    }
  }
};

absl::StatusOr<std::unique_ptr<Transformer>> startTransformer(const std::string& ingress) {
  process::SpawnOptions opts;
  opts.argv = {testing::binDir() + "/passthrough-transformer", "--predictor_host", "p-predictor.default",
               "--http_port", "0", "--ingress", ingress};
  auto child = process::Subprocess::spawn(opts);
  if (!child.ok()) return child.status();
  auto t = std::make_unique<Transformer>();
  t->child = std::move(*child);
  std::string log;
  auto line = t->child->waitForLine("listening on 127.0.0.1:", 20s, &log);
  if (!line.ok()) return absl::UnavailableError("passthrough-transformer did not start: " + log);
  t->port = static_cast<uint16_t>(std::stoi(line->substr(line->find("127.0.0.1:") + 10)));
  return t;
}

TEST(PassthroughTransformer, ASlowPredictorHoldsOnlyItsOwnRequests) {
  testing::FakeUpstream ingress;  // stands in for the ingress in front of the predictor
  auto transformer = startTransformer("127.0.0.1:" + std::to_string(ingress.port()));
  ASSERT_TRUE(transformer.ok()) << transformer.status();
  const uint16_t port = (*transformer)->port;

  // More requests held at the predictor than the transformer has workers (4): each worker
  // forwards them all and stays free. (A worker that waited for its answer held every
  // connection it had: at most 4 could ever be held.)
  constexpr int kHeld = 16;
  std::vector<std::thread> holders;
  std::atomic<int> held_answered{0};
  absl::Cleanup join_holders = [&] {
    ingress.releaseHolds();
    for (auto& t : holders) t.join();
  };
  for (int i = 0; i < kHeld; ++i) {
    holders.emplace_back([&] {
      http::Client c("127.0.0.1", port, 30s);
      auto r = c.request("POST", "/hold", "");
      if (r.ok() && r->result_int() == 200 && r->body() == "held") ++held_answered;
    });
  }
  ASSERT_TRUE(ingress.waitHeld(kHeld)) << ingress.held() << " of " << kHeld << " held";

  // Meanwhile, other requests are answered: forwarded to the predictor's host, and marked.
  for (int i = 0; i < 8; ++i) {
    http::Client c("127.0.0.1", port, 5s);
    auto r = c.request("POST", "/v1/models/p:predict", "{}");
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->result_int(), 200u) << r->body();
    EXPECT_EQ(r->body(), "POST /v1/models/p:predict {}");
    EXPECT_EQ(std::string((*r)["Kh-Transformer"]), "passthrough");
  }
  EXPECT_EQ(std::string(ingress.lastRequest()[boost::beast::http::field::host]), "p-predictor.default");
  std::move(join_holders).Invoke();
  EXPECT_EQ(held_answered.load(), kHeld);
  // SIGTERM drains and exits 0, its keep-alive connections to the predictor closed on the way.
  (*transformer)->child->signalGroup(SIGTERM);
  auto exit = (*transformer)->child->wait(20s);
  ASSERT_TRUE(exit.has_value()) << "still running 20 s after SIGTERM";
  EXPECT_TRUE(exit->exited && exit->code == 0) << exit->describe();
}

TEST(PassthroughTransformer, AnUnreachablePredictorIsA502WithAJsonError) {
  auto transformer = startTransformer("127.0.0.1:1");
  ASSERT_TRUE(transformer.ok()) << transformer.status();
  const uint16_t port = (*transformer)->port;
  http::Client c("127.0.0.1", port, 10s);
  auto probe = c.request("GET", "/", "");
  ASSERT_TRUE(probe.ok()) << probe.status();
  EXPECT_EQ(probe->result_int(), 200u);
  auto r = c.request("POST", "/v1/models/p:predict", "{}");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->result_int(), 502u);
  EXPECT_NE(r->body().find("\"error\":\"transformer: predictor unreachable: "), std::string::npos) << r->body();
}

}  // namespace
}  // namespace kh
