#include "kh/loadgen/engine.h"

#include <sys/resource.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <iterator>
#include <mutex>
#include <string_view>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "boost/asio/connect.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "boost/asio/write.hpp"
#include "boost/beast/core/flat_buffer.hpp"
#include "boost/beast/core/string.hpp"
#include "boost/beast/http/read.hpp"
#include "boost/beast/http/basic_parser.hpp"
#include "boost/beast/http/parser.hpp"
#include "boost/beast/http/string_body.hpp"
#include "grpcpp/grpcpp.h"
#include "kh/common/strings.h"
#include "kh/protocols/grpc_predict_v2.grpc.pb.h"

namespace kh::loadgen {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

double cpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

// State shared by the workers of one run; everything here is thread-safe.
struct RunState {
  const LoadOptions* options = nullptr;
  const common::TimeSource* time = nullptr;
  common::MonotonicTime start;
  Clock::time_point start_clock;     // the same instant, for asio timers
  common::SystemTime start_system;   // and on the wall clock, for RunResult::started
  std::atomic<int64_t> issued{0};
  std::atomic<bool> stop{false};
  std::mutex schedule_mu;
  bool schedule_done ABSL_GUARDED_BY(schedule_mu) = false;

  int64_t nowNs() const {
    return std::chrono::duration_cast<Nanos>(time->monotonicTime() - start).count();
  }
  bool open() const { return options->schedule != nullptr; }
  // Takes the next batch of intended offsets (contiguous, so each worker's stays monotone).
  bool fetch(std::vector<int64_t>& out) {
    std::lock_guard lock(schedule_mu);
    out.clear();
    if (schedule_done) return false;
    for (int i = 0; i < 64; ++i) {
      auto t = options->schedule->next();
      if (!t) {
        schedule_done = true;
        break;
      }
      out.push_back(t->count());
    }
    return !out.empty();
  }
  bool mayIssue() {
    if (stop.load(std::memory_order_relaxed)) return false;
    if (options->max_requests > 0 &&
        issued.fetch_add(1, std::memory_order_relaxed) >= options->max_requests) {
      // The request budget is spent: every worker winds down.
      stop.store(true, std::memory_order_relaxed);
      return false;
    }
    return true;
  }
};

// Per-worker measurements; only the worker's own thread writes them.
struct WorkerStats {
  HdrHistogram corrected, service, slip;
  std::vector<HdrHistogram> window_hist;
  std::vector<int64_t> window_completed, window_errors;
  int64_t completed = 0, succeeded = 0, warmup = 0, delayed = 0;
  std::map<std::string, int64_t> errors;
  std::map<int, int64_t> status;
  std::string first_error;
  std::atomic<int64_t> live_completed{0}, live_errors{0};
  // Per-request recording: this worker's records, merged and ordered at the end of the run.
  std::vector<RequestRecord> records;
  // HTTP phases of the measured requests that got a response (HttpPhases).
  bool has_phases = false;
  HttpPhases phases;

  // An HTTP request's instants past `sent`, on the run's clock (ns from its start).
  struct HttpTimes {
    int64_t connect_ns = -1;  // the handshake, for the first request on a connection; else -1
    int64_t written = 0;      // the request written
    int64_t first_byte = 0;   // the response's status line parsed
  };

  // `header` is the recorded response header's value (per-request recording).
  void record(const RunState& run, int64_t intended, int64_t sent, int64_t done, int status_code,
              ErrorKind error, const std::string& message, std::string_view header = {},
              const HttpTimes* http = nullptr) {
    live_completed.fetch_add(1, std::memory_order_relaxed);
    if (error != ErrorKind::kNone) live_errors.fetch_add(1, std::memory_order_relaxed);
    int64_t warmup_ns = run.options->warmup.count();
    if (done < warmup_ns) {
      ++warmup;
      return;
    }
    ++completed;
    if (status_code != 0) ++status[status_code];
    if (error == ErrorKind::kNone) {
      ++succeeded;
    } else {
      ++errors[errorKindName(error)];
      if (first_error.empty()) first_error = message;
    }
    int64_t lat = done - intended;
    corrected.record(lat);
    service.record(done - sent);
    if (http != nullptr) {
      has_phases = true;
      if (http->connect_ns >= 0) phases.connect.record(http->connect_ns);
      phases.send.record(http->written - sent);
      phases.wait.record(http->first_byte - http->written);
      phases.receive.record(done - http->first_byte);
    }
    if (run.options->recording.enabled) {
      records.push_back(RequestRecord{static_cast<double>(intended) / 1e9, lat, done - sent,
                                      http != nullptr ? http->first_byte - intended : -1, status_code,
                                      error, std::string(header)});
    }
    if (run.open()) {
      slip.record(sent - intended);
      if (sent - intended > run.options->late_threshold.count()) ++delayed;
    }
    auto w = static_cast<size_t>((done - warmup_ns) / std::max<int64_t>(1, run.options->window.count()));
    if (w >= window_hist.size()) {
      window_hist.resize(w + 1, HdrHistogram(1, 60'000'000'000, 2));
      window_completed.resize(w + 1, 0);
      window_errors.resize(w + 1, 0);
    }
    window_hist[w].record(lat);
    ++window_completed[w];
    if (error != ErrorKind::kNone) ++window_errors[w];
  }
};

// Open loop: moves each intended send time of the shared schedule into `pending` when it comes
// due, then arms a timer for the next one. Requests wait in `pending` for a free connection or
// call slot; the owner's `dispatch` takes them from there.
class OpenLoopFeeder {
 public:
  OpenLoopFeeder(RunState& run, net::io_context& ioc, std::function<void()> dispatch,
                 std::function<void()> on_over)
      : run_(run), ioc_(ioc), timer_(ioc), dispatch_(std::move(dispatch)), on_over_(std::move(on_over)) {}

  void next() {
    int processed = 0;
    while (true) {
      if (batch_pos_ >= batch_.size()) {
        if (over_ || !run_.fetch(batch_)) {
          over_ = true;
          on_over_();
          return;
        }
        batch_pos_ = 0;
      }
      int64_t due = batch_[batch_pos_];
      if (due > run_.nowNs()) {
        timer_.expires_at(run_.start_clock + Nanos(due));
        timer_.async_wait([this](beast::error_code ec) {
          if (!ec) next();
        });
        return;
      }
      ++batch_pos_;
      if (run_.mayIssue()) pending.push_back(due);
      dispatch_();
      // Yield to I/O now and then when far behind schedule.
      if (++processed >= 64) {
        net::post(ioc_, [this] { next(); });
        return;
      }
    }
  }
  void cancel() { timer_.cancel(); }
  bool over() const { return over_; }

  std::deque<int64_t> pending;

 private:
  RunState& run_;
  net::io_context& ioc_;
  net::steady_timer timer_;
  std::function<void()> dispatch_;
  std::function<void()> on_over_;
  std::vector<int64_t> batch_;
  size_t batch_pos_ = 0;
  bool over_ = false;
};

// ------------------------------------------------------------------ HTTP

class HttpWorker;

// A response parser that keeps only what the engine looks at: the status, keep-alive, the
// body when a check needs it or the status is an error, and the value of one header when
// per-request recording asks for it. Beast's message parser would store every header field.
class LeanResponseParser final : public bhttp::basic_parser<false> {
 public:
  LeanResponseParser(bool keep_body, std::string_view recorded_header, const RunState& run)
      : keep_body_(keep_body), recorded_header_(recorded_header), run_(run) {
    body_limit(256ull << 20);
  }
  int status() const { return status_; }
  /** When the status line was parsed (the run's clock): the response's first byte. */
  int64_t firstByteNs() const { return first_byte_ns_; }
  const std::string& body() const { return body_; }
  const std::string& recordedHeader() const { return header_value_; }

 private:
  void on_request_impl(bhttp::verb, beast::string_view, beast::string_view, int,
                       beast::error_code&) override {}
  void on_response_impl(int code, beast::string_view, int, beast::error_code&) override {
    first_byte_ns_ = run_.nowNs();
    status_ = code;
    keep_body_ = keep_body_ || code < 200 || code >= 300;
  }
  void on_field_impl(bhttp::field, beast::string_view name, beast::string_view value,
                     beast::error_code&) override {
    if (!recorded_header_.empty() &&
        beast::iequals(name, beast::string_view(recorded_header_.data(),
                                                recorded_header_.size()))) {
      header_value_.assign(value.data(), value.size());
    }
  }
  void on_header_impl(beast::error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>& length,
                         beast::error_code&) override {
    if (keep_body_ && length) body_.reserve(static_cast<size_t>(*length));
  }
  std::size_t on_body_impl(beast::string_view data, beast::error_code&) override {
    if (keep_body_) body_.append(data.data(), data.size());
    return data.size();
  }
  void on_chunk_header_impl(std::uint64_t, beast::string_view, beast::error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view data,
                                 beast::error_code&) override {
    if (keep_body_) body_.append(data.data(), data.size());
    return data.size();
  }
  void on_finish_impl(beast::error_code&) override {}

  bool keep_body_;
  std::string_view recorded_header_;
  const RunState& run_;
  int64_t first_byte_ns_ = 0;
  int status_ = 0;
  std::string body_;
  std::string header_value_;
};

struct HttpConn {
  explicit HttpConn(net::io_context& ioc) : socket(ioc), timer(ioc) {}
  tcp::socket socket;
  net::steady_timer timer;
  beast::flat_buffer buffer;
  std::optional<LeanResponseParser> parser;
  bool connected = false;
  bool busy = false;
  bool timed_out = false;
  int64_t intended = 0, sent = 0, written = 0;
  // The last handshake's duration, until the first request on the connection takes it (-1).
  int64_t connect_ns = -1;
};

class HttpWorker {
 public:
  HttpWorker(RunState& run, tcp::endpoint endpoint, const std::string& wire, int connections)
      : run_(run),
        endpoint_(endpoint),
        wire_(wire),
        feeder_(run, ioc_, [this] { dispatch(); }, [this] { maybeFinish(); }),
        hard_stop_(ioc_),
        deadline_(ioc_),
        sweep_(ioc_) {
    for (int i = 0; i < connections; ++i) conns_.push_back(std::make_unique<HttpConn>(ioc_));
  }

  void start() {
    // Past the planned end plus one request timeout nothing more can succeed: whatever is still
    // in flight or waiting for a connection is recorded as an error and the worker stops.
    hard_stop_.expires_at(run_.start_clock + run_.options->duration +
                          run_.options->request_timeout + std::chrono::seconds(1));
    hard_stop_.async_wait([this](beast::error_code ec) {
      if (ec || finished_) return;
      int64_t now = run_.nowNs();
      for (auto& c : conns_) {
        if (c->busy) {
          stats_.record(run_, c->intended, c->sent, now, 0, ErrorKind::kTimeout,
                        "still in flight at the end of the run");
          c->busy = false;
        }
      }
      abandonPending();
      finished_ = true;
      sweep_.cancel();
      ioc_.stop();
    });
    for (auto& c : conns_) connect(*c);
    if (run_.open()) feeder_.next();
    if (!run_.open()) armDeadline();
    sweepTimeouts();
  }

  // Request timeouts: one periodic sweep per worker instead of a timer armed and cancelled per
  // request (each cancellation costs a trip through the scheduler).
  void sweepTimeouts() {
    sweep_.expires_after(std::chrono::milliseconds(50));
    sweep_.async_wait([this](beast::error_code ec) {
      if (ec || finished_) return;
      int64_t now = run_.nowNs();
      for (auto& c : conns_) {
        if (c->busy && !c->timed_out && now - c->sent > run_.options->request_timeout.count()) {
          c->timed_out = true;
          beast::error_code ignored;
          c->socket.cancel(ignored);
        }
      }
      sweepTimeouts();
    });
  }

  void run() { ioc_.run(); }
  WorkerStats& stats() { return stats_; }
  int connectFailures() const { return connect_failures_; }
  int everConnected() const { return ever_connected_; }
  net::io_context& ioc() { return ioc_; }

 private:
  void armDeadline() {
    // Closed loop: stop issuing at the duration; in-flight requests finish.
    deadline_.expires_at(run_.start_clock + run_.options->duration);
    deadline_.async_wait([this](beast::error_code ec) {
      if (ec) return;
      closed_loop_over_ = true;
      maybeFinish();
    });
  }

  void connect(HttpConn& c) {
    c.socket = tcp::socket(ioc_);
    c.buffer.clear();
    const int64_t connect_start = run_.nowNs();
    c.socket.async_connect(endpoint_, [this, &c, connect_start](beast::error_code ec) {
      if (ec) {
        ++connect_failures_;
        if (first_connect_error_.empty()) first_connect_error_ = ec.message();
        // Back off a little before trying again; never spin on a dead target.
        c.timer.expires_after(std::chrono::milliseconds(20));
        c.timer.async_wait([this, &c](beast::error_code e) {
          if (!e && !finished_) connect(c);
        });
        if (ever_connected_ == 0 &&
            run_.nowNs() > std::chrono::duration_cast<Nanos>(run_.options->request_timeout).count()) {
          finished_ = true;
          hard_stop_.cancel();
          ioc_.stop();
        }
        return;
      }
      c.connect_ns = run_.nowNs() - connect_start;
      beast::error_code ignored;
      c.socket.set_option(tcp::no_delay(true), ignored);
      c.connected = true;
      ++ever_connected_;
      onIdle(c);
    });
  }

  void onIdle(HttpConn& c) {
    c.busy = false;
    if (finished_) return;
    if (run_.open()) {
      idle_.push_back(&c);
      dispatch();
      maybeFinish();
      return;
    }
    if (closed_loop_over_ || !run_.mayIssue()) {
      maybeFinish();
      return;
    }
    int64_t now = run_.nowNs();
    send(c, now);
  }

  void send(HttpConn& c, int64_t intended) {
    c.busy = true;
    c.intended = intended;
    c.sent = run_.nowNs();
    c.timed_out = false;
    net::async_write(c.socket, net::buffer(wire_), [this, &c](beast::error_code ec, size_t) {
      if (ec) return fail(c, ErrorKind::kConnect, ec.message());
      c.written = run_.nowNs();
      c.parser.emplace(static_cast<bool>(run_.options->check), run_.options->recording.header, run_);
      bhttp::async_read(c.socket, c.buffer, *c.parser, [this, &c](beast::error_code ec, size_t) {
        if (ec) {
          return fail(c, c.timed_out ? ErrorKind::kTimeout : ErrorKind::kProtocol, ec.message());
        }
        int status = c.parser->status();
        ErrorKind kind = ErrorKind::kNone;
        std::string message;
        if (status < 200 || status >= 300) {
          kind = ErrorKind::kHttpStatus;
          message = common::strCat("HTTP ", status, ": ", c.parser->body().substr(0, 200));
        } else if (run_.options->check && !run_.options->check(status, c.parser->body())) {
          kind = ErrorKind::kCheck;
          message = "response failed the check: " + c.parser->body().substr(0, 200);
        }
        const WorkerStats::HttpTimes times{c.connect_ns, c.written, c.parser->firstByteNs()};
        c.connect_ns = -1;  // charged to this request
        stats_.record(run_, c.intended, c.sent, run_.nowNs(), status, kind, message,
                      c.parser->recordedHeader(), &times);
        bool keep = c.parser->keep_alive();
        c.parser.reset();
        if (!keep) {
          c.connected = false;
          beast::error_code ignored;
          c.socket.close(ignored);
          c.busy = false;
          return connect(c);
        }
        onIdle(c);
      });
    });
  }

  void fail(HttpConn& c, ErrorKind kind, const std::string& message) {
    stats_.record(run_, c.intended, c.sent, run_.nowNs(), 0, kind, message);
    c.connected = false;
    c.busy = false;
    beast::error_code ignored;
    c.socket.close(ignored);
    if (!finished_) connect(c);
  }

  void dispatch() {
    while (!feeder_.pending.empty() && !idle_.empty()) {
      HttpConn* c = idle_.back();
      idle_.pop_back();
      int64_t intended = feeder_.pending.front();
      feeder_.pending.pop_front();
      send(*c, intended);
    }
  }

  void maybeFinish() {
    if (finished_) return;
    bool no_more = run_.open() ? (feeder_.over() && feeder_.pending.empty())
                               : (closed_loop_over_ || run_.stop.load());
    if (!no_more) return;
    for (auto& c : conns_) {
      if (c->busy) return;
    }
    finished_ = true;
    feeder_.cancel();
    hard_stop_.cancel();
    deadline_.cancel();
    sweep_.cancel();
    for (auto& c : conns_) {
      beast::error_code ignored;
      c->timer.cancel();
      c->socket.close(ignored);
    }
  }

  RunState& run_;
  tcp::endpoint endpoint_;
  const std::string& wire_;
  net::io_context ioc_{1};
  OpenLoopFeeder feeder_;
  net::steady_timer hard_stop_;
  net::steady_timer deadline_;
  net::steady_timer sweep_;
  std::vector<std::unique_ptr<HttpConn>> conns_;
  std::vector<HttpConn*> idle_;
  bool closed_loop_over_ = false;
  bool finished_ = false;
  int connect_failures_ = 0;
  int ever_connected_ = 0;
  std::string first_connect_error_;
  WorkerStats stats_;

 public:
  const std::string& firstConnectError() const { return first_connect_error_; }
  // A run whose requests can never be sent (target down) ends at the hard deadline; what was
  // still pending is reported, not lost.
  void abandonPending() {
    int64_t now = run_.nowNs();
    for (int64_t intended : feeder_.pending) {
      stats_.record(run_, intended, now, now, 0, ErrorKind::kConnect,
                    "never sent: no connection to the target");
    }
    feeder_.pending.clear();
  }
};

std::string serializeRequest(const HttpRequestSpec& spec, const std::string& host_header) {
  // A Host among the spec's headers (an ingress routes by it) replaces the target's address.
  bool has_host = false;
  for (const auto& [k, v] : spec.headers) {
    if (k.size() == 4 && (k[0] == 'H' || k[0] == 'h') && (k.substr(1) == "ost" || k.substr(1) == "OST")) has_host = true;
  }
  std::string out = common::strCat(spec.method, " ", spec.path, " HTTP/1.1\r\n");
  if (!has_host) out += common::strCat("Host: ", host_header, "\r\n");
  if (!spec.body.empty() || spec.method == "POST") {
    out += common::strCat("Content-Type: ", spec.content_type, "\r\nContent-Length: ",
                          spec.body.size(), "\r\n");
  }
  for (const auto& [k, v] : spec.headers) out += common::strCat(k, ": ", v, "\r\n");
  out += "\r\n";
  out += spec.body;
  return out;
}

// Folds the workers' measurements into one result.
RunResult merge(std::vector<WorkerStats*> stats, const RunState& run, double elapsed_s,
                double cpu_s) {
  RunResult r;
  r.open_loop = run.open();
  r.schedule = run.open() ? run.options->schedule->describe()
                          : common::strCat("closed loop, concurrency ", run.options->concurrency);
  size_t windows = 0;
  size_t records = 0;
  for (auto* s : stats) records += s->records.size();
  r.records.reserve(records);
  for (auto* s : stats) {
    r.corrected.merge(s->corrected);
    r.service.merge(s->service);
    r.slip.merge(s->slip);
    if (s->has_phases) {
      if (!r.http_phases) r.http_phases.emplace();
      r.http_phases->connect.merge(s->phases.connect);
      r.http_phases->send.merge(s->phases.send);
      r.http_phases->wait.merge(s->phases.wait);
      r.http_phases->receive.merge(s->phases.receive);
    }
    r.completed += s->completed;
    r.succeeded += s->succeeded;
    r.warmup_requests += s->warmup;
    r.delayed += s->delayed;
    for (const auto& [k, v] : s->errors) r.errors[k] += v;
    for (const auto& [k, v] : s->status) r.status_codes[k] += v;
    if (r.first_error.empty()) r.first_error = s->first_error;
    windows = std::max(windows, s->window_hist.size());
    std::move(s->records.begin(), s->records.end(), std::back_inserter(r.records));
  }
  // Each worker recorded in completion order; the result is in intended-time order.
  std::stable_sort(r.records.begin(), r.records.end(),
                   [](const RequestRecord& a, const RequestRecord& b) {
                     return a.intended_s < b.intended_s;
                   });
  r.started = run.start_system;
  double window_s = static_cast<double>(run.options->window.count()) / 1e9;
  double measured_s = std::max(0.0, elapsed_s - static_cast<double>(run.options->warmup.count()) / 1e9);
  for (size_t w = 0; w < windows; ++w) {
    HdrHistogram h(1, 60'000'000'000, 2);
    Window out;
    out.start_s = static_cast<double>(w) * window_s;
    for (auto* s : stats) {
      if (w < s->window_hist.size()) {
        h.merge(s->window_hist[w]);
        out.completed += s->window_completed[w];
        out.errors += s->window_errors[w];
      }
    }
    // The last window may be partial.
    double span = std::min(window_s, std::max(1e-9, measured_s - out.start_s));
    out.throughput = static_cast<double>(out.completed) / (w + 1 == windows ? span : window_s);
    out.p50_ns = h.valueAtPercentile(50);
    out.p90_ns = h.valueAtPercentile(90);
    out.p99_ns = h.valueAtPercentile(99);
    out.max_ns = h.max();
    out.mean_ns = h.mean();
    r.windows.push_back(out);
    r.window_histograms.push_back(std::move(h));
  }
  r.elapsed_s = measured_s;
  r.throughput = measured_s > 0 ? static_cast<double>(r.completed) / measured_s : 0;
  r.generator_cpu_percent = elapsed_s > 0 ? 100.0 * cpu_s / elapsed_s : 0;
  return r;
}

// Runs the progress callback once a second until `done`.
class ProgressTicker {
 public:
  ProgressTicker(const ProgressCallback& cb, std::vector<WorkerStats*> stats, RunState& run)
      : cb_(cb), stats_(std::move(stats)), run_(run) {
    if (cb_) thread_ = std::thread([this] { loop(); });
  }
  ~ProgressTicker() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void loop() {
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::seconds(1), [this] { return done_; })) {
      int64_t completed = 0, errors = 0;
      for (auto* s : stats_) {
        completed += s->live_completed.load(std::memory_order_relaxed);
        errors += s->live_errors.load(std::memory_order_relaxed);
      }
      cb_(static_cast<double>(run_.nowNs()) / 1e9, completed, errors);
    }
  }
  const ProgressCallback& cb_;
  std::vector<WorkerStats*> stats_;
  RunState& run_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace

const char* errorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kNone: return "none";
    case ErrorKind::kConnect: return "connect";
    case ErrorKind::kTimeout: return "timeout";
    case ErrorKind::kHttpStatus: return "status";
    case ErrorKind::kProtocol: return "protocol";
    case ErrorKind::kCheck: return "check";
    case ErrorKind::kCount: break;
  }
  return "?";
}

namespace {

// Splits the connections (or call slots) over the worker threads, runs them to the end of the
// schedule and merges what they measured. Shared by the HTTP and gRPC engines.
template <typename Worker, typename MakeWorker>
RunResult driveWorkers(RunState& run, LoadOptions& options, const common::TimeSource& time,
                       const ProgressCallback& progress, MakeWorker make,
                       std::vector<std::unique_ptr<Worker>>& workers) {
  int total = options.schedule ? std::max(1, options.connections) : std::max(1, options.concurrency);
  int threads = std::min(std::max(1, options.threads), total);
  run.options = &options;
  run.time = &time;
  for (int i = 0; i < threads; ++i) {
    workers.push_back(make(total / threads + (i < total % threads ? 1 : 0)));
  }
  std::vector<WorkerStats*> stats;
  for (auto& w : workers) stats.push_back(&w->stats());
  if (options.recording.enabled && options.recording.expected > 0) {
    // Room for this worker's share (workers take uneven shares of an open-loop schedule), so
    // that recording does not reallocate on the hot path; a huge estimate is not trusted.
    int64_t share = options.recording.expected / threads;
    auto room = static_cast<size_t>(std::min<int64_t>(share + share / 4 + 16, int64_t{1} << 22));
    for (auto* s : stats) s->records.reserve(room);
  }
  double cpu_before = cpuSeconds();
  run.start = time.monotonicTime();
  run.start_clock = Clock::now();
  run.start_system = time.systemTime();
  {
    ProgressTicker ticker(progress, stats, run);
    for (auto& w : workers) w->start();
    std::vector<std::thread> pool;
    for (auto& w : workers) pool.emplace_back([&w] { w->run(); });
    for (auto& t : pool) t.join();
  }
  double elapsed_s = static_cast<double>(run.nowNs()) / 1e9;
  double cpu_s = cpuSeconds() - cpu_before;
  // Whatever never got a connection is reported, not lost.
  for (auto& w : workers) w->abandonPending();
  return merge(stats, run, elapsed_s, cpu_s);
}

}  // namespace

absl::StatusOr<RunResult> runHttpLoad(const std::string& host, uint16_t port,
                                      const HttpRequestSpec& spec, LoadOptions options,
                                      const common::TimeSource& time,
                                      const ProgressCallback& progress) {
  beast::error_code ec;
  auto address = net::ip::make_address(host, ec);
  if (ec) {
    net::io_context resolver_ioc;
    tcp::resolver resolver(resolver_ioc);
    auto results = resolver.resolve(host, std::to_string(port), ec);
    if (ec || results.empty()) {
      return absl::InvalidArgumentError(common::strCat("cannot resolve ", host));
    }
    address = results.begin()->endpoint().address();
  }
  tcp::endpoint endpoint(address, port);
  std::string wire = serializeRequest(spec, common::strCat(host, ":", port));
  RunState run;
  std::vector<std::unique_ptr<HttpWorker>> workers;
  RunResult result = driveWorkers(
      run, options, time, progress,
      [&](int share) { return std::make_unique<HttpWorker>(run, endpoint, wire, share); }, workers);
  int ever = 0;
  for (auto& w : workers) ever += w->everConnected();
  if (ever == 0) {
    return absl::UnavailableError(common::strCat("cannot connect to ", host, ":", port, ": ",
                                                 workers[0]->firstConnectError()));
  }
  result.transport = "http";
  return result;
}

// ------------------------------------------------------------------ gRPC

namespace {

struct GrpcCall {
  grpc::ClientContext context;
  inference::ModelInferResponse response;
  int64_t intended = 0, sent = 0;
};

class GrpcWorker {
 public:
  GrpcWorker(RunState& run, std::vector<std::unique_ptr<inference::GRPCInferenceService::Stub>>& stubs,
             const inference::ModelInferRequest& request, int slots)
      : run_(run),
        stubs_(stubs),
        request_(request),
        slots_(slots),
        feeder_(run, ioc_, [this] { dispatch(); }, [this] { maybeFinish(); }),
        deadline_(ioc_) {}

  void start() {
    work_.emplace(net::make_work_guard(ioc_));
    if (run_.open()) {
      feeder_.next();
    } else {
      deadline_.expires_at(run_.start_clock + run_.options->duration);
      deadline_.async_wait([this](beast::error_code ec) {
        if (ec) return;
        over_ = true;
        maybeFinish();
      });
      for (int i = 0; i < slots_; ++i) {
        if (!run_.mayIssue()) break;
        issue(run_.nowNs());
      }
      maybeFinish();
    }
  }
  void run() { ioc_.run(); }
  WorkerStats& stats() { return stats_; }

  void abandonPending() {
    int64_t now = run_.nowNs();
    for (int64_t intended : feeder_.pending) {
      stats_.record(run_, intended, now, now, 0, ErrorKind::kConnect, "never sent");
    }
    feeder_.pending.clear();
  }

 private:
  void issue(int64_t intended) {
    ++in_flight_;
    auto* call = new GrpcCall;
    call->intended = intended;
    call->sent = run_.nowNs();
    call->context.set_deadline(std::chrono::system_clock::now() + run_.options->request_timeout);
    auto& stub = stubs_[next_stub_++ % stubs_.size()];
    stub->async()->ModelInfer(&call->context, &request_, &call->response,
                              [this, call](grpc::Status status) {
                                int64_t done = run_.nowNs();
                                // Back to this worker's thread to record and go on.
                                net::post(ioc_, [this, call, status, done] {
                                  onDone(call, status, done);
                                });
                              });
  }

  void onDone(GrpcCall* call, const grpc::Status& status, int64_t done) {
    --in_flight_;
    ErrorKind kind = ErrorKind::kNone;
    std::string message;
    if (!status.ok()) {
      kind = status.error_code() == grpc::DEADLINE_EXCEEDED ? ErrorKind::kTimeout
             : status.error_code() == grpc::UNAVAILABLE     ? ErrorKind::kConnect
                                                            : ErrorKind::kHttpStatus;
      message = common::strCat("gRPC ", static_cast<int>(status.error_code()), ": ",
                               status.error_message());
    } else if (run_.options->check && !run_.options->check(0, call->response.SerializeAsString())) {
      kind = ErrorKind::kCheck;
      message = "response failed the check";
    }
    std::string_view header;
    if (!run_.options->recording.header.empty()) {
      // A unary callback call asks for the initial metadata when it starts, so it may be read
      // once the call is done, whatever its status (empty when none came).
      const auto& metadata = call->context.GetServerInitialMetadata();
      auto it = metadata.find(run_.options->recording.header);
      if (it != metadata.end()) header = std::string_view(it->second.data(), it->second.size());
    }
    stats_.record(run_, call->intended, call->sent, done, static_cast<int>(status.error_code()),
                  kind, message, header);
    delete call;
    if (run_.open()) {
      dispatch();
    } else if (!over_ && run_.mayIssue()) {
      issue(run_.nowNs());
    }
    maybeFinish();
  }

  void dispatch() {
    while (!feeder_.pending.empty() && in_flight_ < slots_) {
      int64_t intended = feeder_.pending.front();
      feeder_.pending.pop_front();
      issue(intended);
    }
  }

  void maybeFinish() {
    bool no_more = run_.open() ? (feeder_.over() && feeder_.pending.empty())
                               : (over_ || run_.stop.load(std::memory_order_relaxed));
    if (no_more && in_flight_ == 0) {
      feeder_.cancel();
      deadline_.cancel();
      work_.reset();
      ioc_.stop();
    }
  }

  RunState& run_;
  std::vector<std::unique_ptr<inference::GRPCInferenceService::Stub>>& stubs_;
  const inference::ModelInferRequest& request_;
  int slots_;
  net::io_context ioc_{1};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_;
  OpenLoopFeeder feeder_;
  net::steady_timer deadline_;
  bool over_ = false;
  int in_flight_ = 0;
  size_t next_stub_ = 0;
  WorkerStats stats_;
};

}  // namespace

absl::StatusOr<RunResult> runGrpcLoad(const GrpcRequestSpec& spec, LoadOptions options,
                                      const common::TimeSource& time,
                                      const ProgressCallback& progress) {
  // gRPC metadata keys are lower case.
  for (auto& c : options.recording.header) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  inference::ModelInferRequest request;
  if (!request.ParseFromString(spec.serialized_request)) {
    return absl::InvalidArgumentError("the gRPC request does not parse as ModelInferRequest");
  }
  std::vector<std::unique_ptr<inference::GRPCInferenceService::Stub>> stubs;
  for (int i = 0; i < std::max(1, spec.channels); ++i) {
    grpc::ChannelArguments args;
    // Distinct arguments keep channels from sharing one connection.
    args.SetInt("kh.channel_index", i);
    args.SetMaxReceiveMessageSize(256 << 20);
    if (!spec.authority.empty()) args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, spec.authority);
    auto channel = grpc::CreateCustomChannel(spec.target, grpc::InsecureChannelCredentials(), args);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() + options.request_timeout)) {
      return absl::UnavailableError(common::strCat("cannot connect to gRPC ", spec.target));
    }
    stubs.push_back(inference::GRPCInferenceService::NewStub(channel));
  }
  RunState run;
  std::vector<std::unique_ptr<GrpcWorker>> workers;
  RunResult result = driveWorkers(
      run, options, time, progress,
      [&](int share) { return std::make_unique<GrpcWorker>(run, stubs, request, share); }, workers);
  result.transport = "grpc";
  return result;
}

}  // namespace kh::loadgen
