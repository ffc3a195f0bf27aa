// The HTTP server's asynchronous path: requests answered later, from another thread, without
// holding the worker; a dropped responder still answers.

#include "kh/http/server.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "gtest/gtest.h"
#include "kh/http/client.h"

namespace kh::http {
namespace {

using namespace std::chrono_literals;

class Parking final : public Handler {
 public:
  void handle(Request&, Response&) override {}
  bool isAsync() const override { return true; }
  void handleAsync(Request&& request, Responder responder) override {
    std::lock_guard lock(mu_);
    if (request.target() == "/drop") return;  // the responder is dropped here
    parked_.emplace_back(std::string(request.target()), std::move(responder));
    cv_.notify_all();
  }
  // Waits until `n` requests are parked (each on the single worker), then answers them all.
  bool answerWhenParked(size_t n) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, 10s, [&] { return parked_.size() >= n; })) return false;
    for (auto& [target, responder] : parked_) {
      Response res;
      res.result(200);
      res.body() = "answer " + target;
      responder.send(std::move(res));
    }
    parked_.clear();
    return true;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::string, Responder>> parked_;
};

TEST(AsyncHandler, ManyRequestsWaitOnOneWorkerAndAreAnsweredFromAnotherThread) {
  Parking handler;
  ServerOptions options;
  options.workers = 1;
  auto server = HttpServer::create(options, handler);
  ASSERT_TRUE(server.ok());
  (*server)->start();
  std::vector<std::thread> clients;
  std::vector<std::string> bodies(3);
  for (int i = 0; i < 3; ++i) {
    clients.emplace_back([&, i] {
      Client c("127.0.0.1", (*server)->port());
      auto r = c.request("GET", "/r" + std::to_string(i));
      if (r.ok()) bodies[static_cast<size_t>(i)] = r->body();
    });
  }
  EXPECT_TRUE(handler.answerWhenParked(3));
  for (auto& t : clients) t.join();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(bodies[static_cast<size_t>(i)], "answer /r" + std::to_string(i));
  (*server)->drain(1s);
}

TEST(AsyncHandler, DroppedResponderAnswers500) {
  Parking handler;
  auto server = HttpServer::create({}, handler);
  ASSERT_TRUE(server.ok());
  (*server)->start();
  Client c("127.0.0.1", (*server)->port());
  auto r = c.request("GET", "/drop");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->result_int(), 500u);
  EXPECT_NE(r->body().find("dropped"), std::string::npos);
  // The connection keeps working afterwards.
  std::thread answer([&] { handler.answerWhenParked(1); });
  auto again = c.request("GET", "/next");
  answer.join();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->body(), "answer /next");
  (*server)->drain(1s);
}

// Streams chunks from another thread once the head is out, then finishes.
class Streaming final : public Handler {
 public:
  void handle(Request&, Response&) override {}
  bool isAsync() const override { return true; }
  void handleAsync(Request&& request, Responder responder) override {
    Response head;
    head.result(200);
    head.set(boost::beast::http::field::content_type, "application/x-ndjson");
    auto writer = responder.stream(std::move(head), 1024);
    std::lock_guard lock(mu_);
    writer_ = writer;
    cv_.notify_all();
  }
  std::shared_ptr<StreamWriter> waitForWriter() {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 10s, [&] { return writer_ != nullptr; });
    return writer_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<StreamWriter> writer_;
};

// Writes a chunk on the worker, inside handleAsync, then one from another thread before
// handleAsync returns: the order of the write() calls is the order on the wire (a post from the
// running worker waits in a thread-private queue that another thread's post would overtake).
class MixedThreadStreaming final : public Handler {
 public:
  void handle(Request&, Response&) override {}
  bool isAsync() const override { return true; }
  void handleAsync(Request&& request, Responder responder) override {
    Response head;
    head.result(200);
    auto writer = responder.stream(std::move(head), 1024);
    writer->write("1\n");
    std::thread other([&] {
      writer->write("2\n");
      writer->finish();
    });
    other.join();
  }
};

TEST(HttpServer, APortAnotherServerHoldsIsRefusedNotShared) {
  Parking handler;
  auto first = HttpServer::create({}, handler);
  ASSERT_TRUE(first.ok());
  ServerOptions same;
  same.port = (*first)->port();
  same.workers = 2;
  auto second = HttpServer::create(same, handler);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(std::string(second.status().message()).find("cannot listen on"), std::string::npos);
}

TEST(StreamedResponse, ChunksArriveInOrderAndFinishEndsTheBody) {
  Streaming handler;
  auto server = HttpServer::create({}, handler);
  ASSERT_TRUE(server.ok());
  (*server)->start();
  std::thread producer([&] {
    auto writer = handler.waitForWriter();
    ASSERT_NE(writer, nullptr);
    EXPECT_TRUE(writer->write("{\"n\":1}\n"));
    EXPECT_TRUE(writer->write("{\"n\":2}\n"));
    writer->finish();
  });
  Client c("127.0.0.1", (*server)->port());
  auto r = c.request("GET", "/watch");
  producer.join();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->result_int(), 200u);
  EXPECT_EQ(r->body(), "{\"n\":1}\n{\"n\":2}\n");
  EXPECT_EQ((*r)[boost::beast::http::field::transfer_encoding], "chunked");
  (*server)->drain(1s);
}

TEST(StreamedResponse, WritesFromTheWorkerAndAnotherThreadKeepTheirOrder) {
  MixedThreadStreaming handler;
  auto server = HttpServer::create({}, handler);
  ASSERT_TRUE(server.ok());
  (*server)->start();
  Client c("127.0.0.1", (*server)->port());
  auto r = c.request("GET", "/watch");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body(), "1\n2\n");
  (*server)->drain(1s);
}

TEST(StreamedResponse, AReaderThatDoesNotKeepUpIsCutOff) {
  Streaming handler;
  auto server = HttpServer::create({}, handler);
  ASSERT_TRUE(server.ok());
  (*server)->start();
  std::thread client([&] {
    Client c("127.0.0.1", (*server)->port(), 5s);
    (void)c.request("GET", "/watch");  // ends when the server cuts the stream
  });
  auto writer = handler.waitForWriter();
  ASSERT_NE(writer, nullptr);
  // 1 KiB may wait unsent; a burst far beyond that, written faster than any socket drains
  // before the first write completes, must be refused rather than buffered.
  bool refused = false;
  for (int i = 0; i < 100000 && !refused; ++i) refused = !writer->write(std::string(512, 'x'));
  EXPECT_TRUE(refused);
  EXPECT_TRUE(writer->closed());
  client.join();
  (*server)->drain(1s);
}

TEST(StreamedResponse, DrainClosesOpenStreams) {
  Streaming handler;
  auto server = HttpServer::create({}, handler);
  ASSERT_TRUE(server.ok());
  (*server)->start();
  std::thread client([&] {
    Client c("127.0.0.1", (*server)->port(), 5s);
    (void)c.request("GET", "/watch");
  });
  auto writer = handler.waitForWriter();
  ASSERT_NE(writer, nullptr);
  ASSERT_TRUE(writer->write("x\n"));
  auto start = std::chrono::steady_clock::now();
  (*server)->drain(5s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);  // did not wait out the grace
  EXPECT_TRUE(writer->closed());
  client.join();
}

}  // namespace
}  // namespace kh::http
