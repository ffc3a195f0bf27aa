// kh::grpcproxy::ProxyCall between a real gRPC client and a real upstream server on loopback:
// the unary fast path, bidi and server streaming relayed message by message, an upstream that
// fails while the client still streams, and a client that cancels mid-stream.

#include "kh/grpcproxy/proxy_call.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace kh::grpcproxy {
namespace {

using namespace std::chrono_literals;

grpc::ByteBuffer bytes(const std::string& s) {
  grpc::Slice slice(s);
  return grpc::ByteBuffer(&slice, 1);
}

std::string text(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  (void)buffer.Dump(&slices);
  std::string out;
  for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

// The upstream: /test.Echo/Bidi echoes each message until the client half-closes;
// /test.Echo/ServerStream answers one message with three; /test.Echo/FailEarly fails after the
// first message; /test.Echo/Forever reads until cancelled; the V2 ModelInfer echoes once with the
// x-proxied metadata appended.
class EchoService : public grpc::CallbackGenericService {
 public:
  std::atomic<int> cancelled{0};

  /** Waits until exactly `n` upstream calls are open. */
  bool waitActive(int n, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return active_ == n; });
  }

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    return new Reactor(*this, ctx);
  }

 private:
  void changeActive(int delta) {
    std::lock_guard lock(mu_);
    active_ += delta;
    cv_.notify_all();
  }
  std::mutex mu_;
  std::condition_variable cv_;
  int active_ = 0;

  class Reactor : public grpc::ServerGenericBidiReactor {
   public:
    Reactor(EchoService& service, grpc::GenericCallbackServerContext* ctx) : service_(service), ctx_(ctx) {
      service_.changeActive(+1);
      StartRead(&in_);
    }
    void OnReadDone(bool ok) override {
      const std::string& m = ctx_->method();
      if (!ok) return Finish(grpc::Status::OK);  // half-closed (or cancelled)
      if (m == "/inference.GRPCInferenceService/ModelInfer") {
        auto it = ctx_->client_metadata().find("x-proxied");
        std::string tag = it == ctx_->client_metadata().end() ? "" : std::string(it->second.data(), it->second.size());
        out_ = bytes(text(in_) + "|" + tag);
        return StartWriteAndFinish(&out_, grpc::WriteOptions(), grpc::Status::OK);
      }
      if (m == "/test.Echo/FailEarly") return Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "no"));
      if (m == "/test.Echo/Forever") return StartRead(&in_);
      if (m == "/test.Echo/ServerStream") {
        remaining_ = 3;
        out_ = bytes(text(in_));
        return StartWrite(&out_);
      }
      out_ = bytes(text(in_));
      StartWrite(&out_);  // Bidi: the next read follows the write
    }
    void OnWriteDone(bool ok) override {
      if (!ok) return Finish(grpc::Status(grpc::StatusCode::UNKNOWN, "write failed"));
      if (ctx_->method() == "/test.Echo/ServerStream") {
        if (--remaining_ > 0) return StartWrite(&out_);
        return Finish(grpc::Status::OK);
      }
      StartRead(&in_);
    }
    void OnCancel() override { ++service_.cancelled; }
    void OnDone() override {
      service_.changeActive(-1);
      delete this;
    }

   private:
    EchoService& service_;
    grpc::GenericCallbackServerContext* ctx_;
    grpc::ByteBuffer in_, out_;
    int remaining_ = 0;
  };
};

// The proxy under test: every call to the upstream, with one extra metadata key.
class ForwardingService : public grpc::CallbackGenericService {
 public:
  explicit ForwardingService(uint16_t upstream) : upstream_(upstream) {}
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override {
    return new Call(*this, ctx);
  }

 private:
  class Call : public ProxyCall {
   public:
    Call(ForwardingService& s, grpc::GenericCallbackServerContext* ctx) : ProxyCall(ctx), service_(s) {}
    void onRequest() override {
      forward(service_.channels_.get("127.0.0.1", service_.upstream_), std::chrono::system_clock::now() + 30s,
              {{"x-proxied", "yes"}});
    }

   private:
    ForwardingService& service_;
  };
  uint16_t upstream_;
  ChannelCache channels_;
};

std::unique_ptr<grpc::Server> serve(grpc::CallbackGenericService& service, int* port) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), port);
  builder.RegisterCallbackGenericService(&service);
  return builder.BuildAndStart();
}

// A client stream: writes `messages` (then half-closes unless `keep_open`), collects replies.
class ClientStream : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  ClientStream(grpc::GenericStub& stub, const std::string& method, std::vector<std::string> messages,
               bool keep_open = false)
      : messages_(std::move(messages)), keep_open_(keep_open) {
    ctx.set_deadline(std::chrono::system_clock::now() + 20s);
    stub.PrepareBidiStreamingCall(&ctx, method, grpc::StubOptions(), this);
    AddHold();  // the writes start outside reactions
    StartRead(&in_);
    writeNext();
    StartCall();
  }
  void OnWriteDone(bool ok) override {
    if (!ok) return RemoveHold();
    writeNext();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    {
      std::lock_guard lock(mu);
      replies.push_back(text(in_));
    }
    cv.notify_all();
    StartRead(&in_);
  }
  void OnDone(const grpc::Status& s) override {
    std::lock_guard lock(mu);
    status = s;
    done = true;
    cv.notify_all();
  }
  bool waitDone(std::chrono::milliseconds timeout = 15s) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, timeout, [&] { return done; });
  }
  bool waitReplies(size_t n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, 15s, [&] { return replies.size() >= n || done; }) && replies.size() >= n;
  }

  grpc::ClientContext ctx;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> replies;
  grpc::Status status;
  bool done = false;

 private:
  void writeNext() {
    if (next_ < messages_.size()) {
      out_ = bytes(messages_[next_++]);
      return StartWrite(&out_);
    }
    if (!keep_open_) StartWritesDone();
    RemoveHold();
  }
  std::vector<std::string> messages_;
  bool keep_open_;
  size_t next_ = 0;
  grpc::ByteBuffer in_, out_;
};

class ProxyCallTest : public ::testing::Test {
 protected:
  void SetUp() override {
    upstream_server_ = serve(echo_, &upstream_port_);
    ASSERT_TRUE(upstream_server_ && upstream_port_ != 0);
    forwarding_ = std::make_unique<ForwardingService>(static_cast<uint16_t>(upstream_port_));
    proxy_server_ = serve(*forwarding_, &proxy_port_);
    ASSERT_TRUE(proxy_server_ && proxy_port_ != 0);
    stub_ = std::make_unique<grpc::GenericStub>(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(proxy_port_), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    proxy_server_->Shutdown(std::chrono::system_clock::now() + 5s);
    upstream_server_->Shutdown(std::chrono::system_clock::now() + 5s);
  }
  bool waitUpstreamIdle() { return echo_.waitActive(0); }

  EchoService echo_;
  int upstream_port_ = 0, proxy_port_ = 0;
  std::unique_ptr<ForwardingService> forwarding_;
  std::unique_ptr<grpc::Server> upstream_server_, proxy_server_;
  std::unique_ptr<grpc::GenericStub> stub_;
};

TEST(ProxyMethods, OnlyKServesV2MethodsTakeTheUnaryPath) {
  EXPECT_TRUE(isKnownUnaryMethod("/inference.GRPCInferenceService/ModelInfer"));
  EXPECT_TRUE(isKnownUnaryMethod("/inference.GRPCInferenceService/ServerLive"));
  EXPECT_FALSE(isKnownUnaryMethod("/inference.GRPCInferenceService/ModelStreamInfer"));  // Triton's stream
  EXPECT_FALSE(isKnownUnaryMethod("/test.Echo/Bidi"));
}

TEST_F(ProxyCallTest, UnaryV2MethodIsRelayedWithTheExtraMetadata) {
  grpc::ClientContext ctx;
  grpc::ByteBuffer request = bytes("hello"), response;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  stub_->UnaryCall(&ctx, "/inference.GRPCInferenceService/ModelInfer", grpc::StubOptions(), &request, &response,
                   [&](grpc::Status s) {
                     std::lock_guard lock(mu);
                     status = std::move(s);
                     done = true;
                     cv.notify_all();
                   });
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return done; }));
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(text(response), "hello|yes");
}

TEST_F(ProxyCallTest, BidiStreamIsRelayedMessageByMessageInOrder) {
  std::vector<std::string> messages;
  for (int i = 0; i < 200; ++i) messages.push_back("m" + std::to_string(i) + std::string(static_cast<size_t>(i * 50), 'x'));
  ClientStream stream(*stub_, "/test.Echo/Bidi", messages);
  ASSERT_TRUE(stream.waitDone()) << "the stream hung";
  EXPECT_TRUE(stream.status.ok()) << stream.status.error_message();
  EXPECT_EQ(stream.replies, messages);
  EXPECT_TRUE(waitUpstreamIdle());
}

TEST_F(ProxyCallTest, ServerStreamingRepliesAllArrive) {
  ClientStream stream(*stub_, "/test.Echo/ServerStream", {"one"});
  ASSERT_TRUE(stream.waitDone());
  EXPECT_TRUE(stream.status.ok()) << stream.status.error_message();
  EXPECT_EQ(stream.replies, (std::vector<std::string>{"one", "one", "one"}));
}

TEST_F(ProxyCallTest, AnUpstreamThatFailsWhileTheClientStillStreamsEndsTheCallWithItsStatus) {
  ClientStream stream(*stub_, "/test.Echo/FailEarly", {"a", "b", "c"}, /*keep_open=*/true);
  ASSERT_TRUE(stream.waitDone()) << "the call hung after the upstream failed";
  EXPECT_EQ(stream.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(stream.status.error_message(), "no");
  EXPECT_TRUE(waitUpstreamIdle());
}

TEST_F(ProxyCallTest, AClientThatCancelsMidStreamCancelsTheUpstreamToo) {
  ClientStream stream(*stub_, "/test.Echo/Forever", {"a"}, /*keep_open=*/true);
  ASSERT_TRUE(echo_.waitActive(1)) << "the upstream call never started";
  stream.ctx.TryCancel();
  ASSERT_TRUE(stream.waitDone());
  EXPECT_EQ(stream.status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(waitUpstreamIdle()) << "the upstream call outlived the client's";
  EXPECT_EQ(echo_.cancelled.load(), 1);
}

}  // namespace
}  // namespace kh::grpcproxy
