// The modelserver executable with dynamic batching: under concurrency 64 over V1, V2 REST and
// V2 gRPC every request gets exactly its own rows (checked against the runtime run in-process,
// bit for bit) and its own id, the batch metrics show batches of more than one request, a full
// queue is refused with 503 / UNAVAILABLE, and the conformance suite still passes.

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "kh/common/strings.h"
#include "kh/conformance/conformance.h"
#include "kh/http/client.h"
#include "kh/protocols/grpc_predict_v2.grpc.pb.h"
#include "kh/runtimes/model.h"
#include "nlohmann/json.hpp"
#include "support/modelserver_process.h"

namespace kh::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// Rows unique to (thread, request), so a row handed to the wrong request is caught.
std::vector<float> rowsFor(int thread, int k, int rows) {
  std::vector<float> v;
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < 4; ++c) v.push_back(0.01f * static_cast<float>(thread) + 0.1f * static_cast<float>(k) + 0.5f * static_cast<float>(r) + static_cast<float>(c));
  }
  return v;
}

// The metric's value (the first sample whose line starts with `series`), or -1.
double metric(const std::string& text, const std::string& series) {
  size_t at = 0;
  while ((at = text.find(series, at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') {
      size_t space = text.find(' ', at + series.size());
      return std::stod(text.substr(space + 1, text.find('\n', space) - space - 1));
    }
    at += series.size();
  }
  return -1;
}

TEST(ModelServerBatching, Concurrency64OverEveryProtocolGetsItsOwnRowsInBatches) {
  // A 3 ms model (per batch) makes requests pile up behind each batch, as a busy GPU would.
  auto server = startModelServer("dense", modelDir("dense-iris"),
                                 {"--max_batch_size", "32", "--max_queue_delay_microseconds",
                                  "1000", "--infer_delay_ms", "3", "--workers", "2"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto reference = runtimes::loadModel("dense", "dense", modelDir("dense-iris"));
  ASSERT_TRUE(reference.ok()) << reference.status();

  constexpr int kThreads = 64, kRequests = 8;
  std::atomic<int> good{0};
  std::vector<std::string> failures(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      http::Client client("127.0.0.1", server->http_port);
      auto channel = grpc::CreateChannel(server->grpcTarget(), grpc::InsecureChannelCredentials());
      auto stub = inference::GRPCInferenceService::NewStub(channel);
      for (int k = 0; k < kRequests; ++k) {
        int rows = (t + k) % 3 + 1;
        std::vector<float> in = rowsFor(t, k, rows);
        auto want = (*reference)->predict(std::vector<protocols::Tensor>{
            protocols::Tensor::fromValues<float>("input-0", protocols::DataType::kFp32,
                                                 {rows, 4}, in)});
        if (!want.ok()) {
          failures[static_cast<size_t>(t)] = std::string(want.status().message());
          return;
        }
        std::vector<float> expected;
        for (int64_t i = 0; i < (*want)[0].heldElements(); ++i) {
          expected.push_back((*want)[0].at<float>(static_cast<size_t>(i)));
        }
        std::vector<float> got;
        std::string id = common::strCat("t", t, "-", k);
        std::string got_id;
        std::string where = common::strCat("thread ", t, " request ", k);
        if (t % 3 == 0) {  // V1
          json body = {{"instances", json::array()}};
          for (int r = 0; r < rows; ++r) {
            body["instances"].push_back(std::vector<float>(in.begin() + r * 4, in.begin() + r * 4 + 4));
          }
          auto res = client.request("POST", "/v1/models/dense:predict", body.dump());
          if (!res.ok() || res->result_int() != 200) {
            failures[static_cast<size_t>(t)] = where + ": " + (res.ok() ? res->body() : std::string(res.status().message()));
            return;
          }
          json out = json::parse(res->body());
          for (const auto& row : out["predictions"]) {
            for (const auto& v : row) got.push_back(v.get<float>());
          }
          got_id = id;  // V1 has no id
        } else if (t % 3 == 1) {  // V2 REST
          json body = {{"id", id},
                       {"inputs", {{{"name", "input-0"}, {"datatype", "FP32"},
                                    {"shape", {rows, 4}}, {"data", in}}}}};
          auto res = client.request("POST", "/v2/models/dense/infer", body.dump());
          if (!res.ok() || res->result_int() != 200) {
            failures[static_cast<size_t>(t)] = where + ": " + (res.ok() ? res->body() : std::string(res.status().message()));
            return;
          }
          json out = json::parse(res->body());
          got_id = out["id"].get<std::string>();
          for (const auto& v : out["outputs"][0]["data"]) got.push_back(v.get<float>());
        } else {  // V2 gRPC, raw contents
          inference::ModelInferRequest req;
          req.set_model_name("dense");
          req.set_id(id);
          auto* input = req.add_inputs();
          input->set_name("input-0");
          input->set_datatype("FP32");
          input->add_shape(rows);
          input->add_shape(4);
          req.add_raw_input_contents(std::string(reinterpret_cast<const char*>(in.data()), in.size() * sizeof(float)));
          inference::ModelInferResponse resp;
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() + 20s);
          grpc::Status st = stub->ModelInfer(&ctx, req, &resp);
          if (!st.ok()) {
            failures[static_cast<size_t>(t)] = where + ": gRPC " + st.error_message();
            return;
          }
          got_id = resp.id();
          const std::string& raw = resp.raw_output_contents(0);
          got.resize(raw.size() / sizeof(float));
          std::memcpy(got.data(), raw.data(), raw.size());
        }
        if (got_id != id || got != expected) {
          failures[static_cast<size_t>(t)] = common::strCat(where, ": got id '", got_id, "' and ", got.size(),
                                                            " values; they differ from the unbatched model's");
          return;
        }
        good.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  for (const auto& f : failures) EXPECT_EQ(f, "");
  EXPECT_EQ(good.load(), kThreads * kRequests);

  http::Client client("127.0.0.1", server->http_port);
  auto metrics = client.request("GET", "/metrics");
  ASSERT_TRUE(metrics.ok());
  const std::string& text = metrics->body();
  double batches = metric(text, "kh_modelserver_batch_requests_count");
  double requests = metric(text, "kh_modelserver_batch_requests_sum");
  double single = metric(text, "kh_modelserver_batch_requests_bucket{le=\"1\"}");
  EXPECT_EQ(requests, kThreads * kRequests) << text;
  EXPECT_GT(batches, 0) << text;
  EXPECT_LT(single, batches) << "some batches joined more than one request\n" << text;
  EXPECT_LT(batches, requests / 2) << "on average more than 2 requests per batch\n" << text;
  EXPECT_TRUE(server->child->running());
}

TEST(ModelServerBatching, AFullQueueIs503OverHttpAndUnavailableOverGrpc) {
  // One request computes for 2 s; the queue holds one more. Of four sent meanwhile, exactly one
  // is queued and three are refused at once, whatever order they arrive in.
  auto server = startModelServer("dense", modelDir("dense-iris"),
                                 {"--max_batch_size", "1", "--max_queue_size", "1",
                                  "--infer_delay_ms", "2000", "--workers", "2"});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string body =
      R"({"inputs":[{"name":"input-0","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}]})";
  std::mutex mu;
  std::condition_variable answered;
  std::vector<int> codes;
  std::vector<std::string> bodies;
  std::vector<std::thread> senders;
  auto send = [&] {
    senders.emplace_back([&] {
      http::Client c("127.0.0.1", server->http_port);
      auto r = c.request("POST", "/v2/models/dense/infer", body);
      std::lock_guard lock(mu);
      codes.push_back(r.ok() ? static_cast<int>(r->result_int()) : -1);
      bodies.push_back(r.ok() ? r->body() : std::string(r.status().message()));
      answered.notify_all();
    });
  };
  http::Client client("127.0.0.1", server->http_port);
  send();
  // The first request is computing once its queue time has been recorded.
  bool started = false;
  for (int i = 0; i < 5000 && !started; ++i) {
    auto m = client.request("GET", "/metrics");
    started = m.ok() && metric(m->body(), "kh_modelserver_batch_queue_duration_seconds_count") >= 1;
    if (!started) std::this_thread::sleep_for(1ms);  // polling an observable event, bounded
  }
  ASSERT_TRUE(started);
  for (int i = 0; i < 4; ++i) send();
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(answered.wait_for(lock, 10s, [&] { return codes.size() >= 3; }))
        << "three of the four are refused at once";
    for (size_t i = 0; i < codes.size(); ++i) {
      EXPECT_EQ(codes[i], 503) << bodies[i];
      EXPECT_NE(bodies[i].find("batch queue is full"), std::string::npos) << bodies[i];
    }
  }
  // The queue is still full: gRPC is refused with UNAVAILABLE.
  auto stub = inference::GRPCInferenceService::NewStub(
      grpc::CreateChannel(server->grpcTarget(), grpc::InsecureChannelCredentials()));
  inference::ModelInferRequest req;
  req.set_model_name("dense");
  auto* input = req.add_inputs();
  input->set_name("input-0");
  input->set_datatype("FP32");
  input->add_shape(1);
  input->add_shape(4);
  for (float f : {1.f, 2.f, 3.f, 4.f}) input->mutable_contents()->add_fp32_contents(f);
  inference::ModelInferResponse resp;
  grpc::ClientContext ctx;
  grpc::Status st = stub->ModelInfer(&ctx, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  EXPECT_NE(st.error_message().find("batch queue is full"), std::string::npos) << st.error_message();

  for (auto& t : senders) t.join();
  ASSERT_EQ(codes.size(), 5u);
  EXPECT_EQ(std::count(codes.begin(), codes.end(), 200), 2)
      << "the computing and the queued request are both answered";
  auto m = client.request("GET", "/metrics");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(metric(m->body(), "kh_modelserver_batch_queue_refused_total"), 4) << m->body();
}

TEST(ModelServerBatching, TheConformanceSuitePassesWithBatchingOn) {
  // Every protocol behaviour (errors, ids, binary outputs, requested outputs) is the same when
  // requests go through the batcher.
  auto server = startModelServer("dense", modelDir("dense-iris"),
                                 {"--max_batch_size", "64", "--max_queue_delay_microseconds", "200"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto cases = conformance::loadCases(sourceDir() + "/protocols/conformance");
  ASSERT_TRUE(cases.ok()) << cases.status();
  conformance::RunOptions options;
  options.http_host = "127.0.0.1";
  options.http_port = server->http_port;
  options.grpc_target = server->grpcTarget();
  options.model = "dense";
  auto summary = conformance::runCases(*cases, options, {});
  ASSERT_TRUE(summary.ok()) << summary.status();
  for (const auto& r : summary->results) {
    if (r.outcome == conformance::Outcome::kFail) ADD_FAILURE() << conformance::formatResult(r);
  }
  EXPECT_EQ(summary->must_failed, 0);
  EXPECT_TRUE(server->child->running());
}

TEST(ModelServerBatching, ABadBatchingSettingStopsTheServerWithAClearMessage) {
  auto server = startModelServer("dense", modelDir("dense-iris"),
                                 {"--max_batch_size", "8", "--preferred_batch_size", "16"},
                                 /*wait_ready=*/false);
  EXPECT_FALSE(server.ok());
  if (!server.ok()) {
    EXPECT_NE(std::string(server.status().message()).find("preferred_batch_size"), std::string::npos)
        << server.status();
  }
}

}  // namespace
}  // namespace kh::testing
