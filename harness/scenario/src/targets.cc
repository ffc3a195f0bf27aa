// The embedded, endpoint and kube targets.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "kh/common/json.h"
#include "kh/common/net.h"
#include "kh/common/strings.h"
#include "kh/common/yaml_json.h"
#include "kh/process/subprocess.h"
#include "kh/refstack/refstack.h"
#include "kh/scenario/target.h"

extern char** environ;

namespace kh::scenario {

using nlohmann::json;

bool isReady(const json& isvc) {
  const json conditions = isvc.value("status", json::object()).value("conditions", json::array());
  for (const auto& c : conditions) {
    if (c.value("type", "") == "Ready") return c.value("status", "") == "True";
  }
  return false;
}

std::string urlHost(const std::string& url) {
  std::string host = url;
  if (auto p = host.find("://"); p != std::string::npos) host = host.substr(p + 3);
  if (auto p = host.find('/'); p != std::string::npos) host = host.substr(0, p);
  return host;
}

namespace {

// The Host for `host` ("", a tag, or a full name) of an InferenceService, from its status.
absl::StatusOr<std::string> hostFor(const json& isvc, const std::string& ns, const std::string& name,
                                    const std::string& host) {
  if (host.find('.') != std::string::npos) return host;
  const json status = isvc.value("status", json::object());
  std::string service = urlHost(status.value("url", ""));
  if (service.empty()) {
    return absl::FailedPreconditionError(common::strCat("InferenceService ", ns, "/", name, " has no status.url yet"));
  }
  if (host.empty()) return service;
  // Tag hosts: the traffic entry's url when written, else Knative's pattern.
  for (const auto& t : status.value("components", json::object()).value("predictor", json::object()).value("traffic", json::array())) {
    if (t.value("tag", "") == host && t.contains("url")) return urlHost(t["url"]);
  }
  std::string prefix = common::strCat(name, "-", ns, ".");
  std::string domain = service.rfind(prefix, 0) == 0 ? service.substr(prefix.size()) : service;
  return common::strCat(host, "-", name, "-predictor-", ns, ".", domain);
}

absl::StatusOr<std::string> graphHost(const json& graph, const std::string& ns, const std::string& name) {
  std::string host = urlHost(graph.value("status", json::object()).value("url", ""));
  if (host.empty()) {
    return absl::FailedPreconditionError(common::strCat("InferenceGraph ", ns, "/", name, " has no status.url yet"));
  }
  return host;
}

// Pods by revision from a Pod list (kubectl get pods -o json, or refstack's Kubernetes API): the
// revision label Knative sets, Ready from the Ready condition, terminating pods not ready.
// A terminating pod counts towards `total` only when `count_terminating`: on a cluster it left
// its revision when Knative scaled it down (it is out of the endpoints, and drains for up to the
// revision's timeout), so "zero pods" is when no pod is left that is not terminating; refstack's
// Stopping pods end within its short grace period.
std::map<std::string, PodCount> podCountsOf(const json& list, bool count_terminating) {
  std::map<std::string, PodCount> out;
  for (const auto& pod : list.value("items", json::array())) {
    const json labels = pod.value("metadata", json::object()).value("labels", json::object());
    std::string rev = labels.value("serving.knative.dev/revision", labels.value("app", "unknown"));
    auto& c = out[rev];
    c.total += 1;
    bool ready = false;
    for (const auto& cond : pod.value("status", json::object()).value("conditions", json::array())) {
      if (cond.value("type", "") == "Ready") ready = cond.value("status", "") == "True";
    }
    bool terminating = pod["metadata"].contains("deletionTimestamp");
    if (ready && !terminating) c.ready += 1;
    if (terminating && !count_terminating) c.total -= 1;
  }
  return out;
}

// Sets the serverless fields of a refstack Config when this build has them (the serverless
// data plane adds Config::autoscaler, queue_proxy and autoscaler_tick). A template so that the
// members are looked up only when they exist.
template <typename C>
bool applyServerlessConfig(C& config, const TargetSettings& settings, const std::filesystem::path& bin_dir) {
  if constexpr (requires { config.autoscaler; config.queue_proxy; config.autoscaler_tick; }) {
    config.autoscaler = settings.autoscaler;
    config.queue_proxy = {(bin_dir / "queue-proxy").string()};
    if (settings.autoscaler_tick_s > 0) {
      config.autoscaler_tick = std::chrono::milliseconds(static_cast<int64_t>(settings.autoscaler_tick_s * 1000));
    }
    return true;
  } else {
    return false;
  }
}

// Why the embedded stack's pods cannot compute on a GPU here, or "" when NVIDIA's device nodes
// exist (a device that is present but unusable then fails the pod's load with CUDA's message).
std::string lacksCudaDevice() {
  std::error_code ec;
  if (std::filesystem::exists("/dev/nvidiactl", ec) || std::filesystem::exists("/dev/nvidia0", ec)) return "";
  return "no NVIDIA GPU on this machine (/dev/nvidiactl and /dev/nvidia0 are absent); the dense "
         "runtime's --device cuda needs one";
}

// ------------------------------------------------------------------ embedded

class EmbeddedTarget final : public Target {
 public:
  EmbeddedTarget(EmbeddedOptions options, const common::TimeSource& time)
      : options_(std::move(options)), time_(time) {}
  ~EmbeddedTarget() override { end(); }

  std::string kind() const override { return "embedded"; }
  std::string describe() const override {
    if (!stack_) return "embedded refstack";
    return common::strCat("embedded refstack (ingress 127.0.0.1:", stack_->ingressPort(), ", gRPC :",
                          stack_->grpcIngressPort(), ", admin :", stack_->adminPort(), ")");
  }

  std::string lacks(const std::string& capability) const override {
    if (capability == "serverless" && !embeddedHasServerless()) {
      return "this build's refstack has no serverless data plane yet (no Config::autoscaler: no scale "
             "or coldstart events, no scale to zero)";
    }
    if (capability == "cuda") return lacksCudaDevice();
    return "";
  }

  // Pods announce their model container's pid in their events ("started pid N", "restarted
  // (restart K), pid N"); a pod that stopped has none.
  absl::StatusOr<int> signalPods(const std::string& ns, const std::string& isvc, int signal) override {
    if (!stack_) return absl::FailedPreconditionError("the stack is not running");
    std::map<std::string, int> pids;
    const std::string prefix = isvc + "-predictor-";
    for (const auto& e : stack_->events(0)) {
      const auto* p = e.as<events::PodPhaseChanged>();
      if (p == nullptr || p->revision.rfind(prefix, 0) != 0) continue;
      auto at = p->message.rfind("pid ");
      if (p->phase == "Stopped" || p->phase == "Stopping") {
        pids.erase(p->pod);
      } else if (at != std::string::npos && (p->message.rfind("started pid ", 0) == 0 ||
                                              p->message.rfind("restarted ", 0) == 0)) {
        if (auto pid = common::parseInt<int>(p->message.substr(at + 4, p->message.find(' ', at + 4) - at - 4))) {
          pids[p->pod] = *pid;
        }
      }
    }
    (void)ns;
    if (pids.empty()) return absl::NotFoundError(common::strCat("InferenceService ", isvc, " has no running pod"));
    int signalled = 0;
    for (const auto& [pod, pid] : pids) {
      if (::kill(pid, signal) == 0) ++signalled;
    }
    return signalled;
  }

  absl::Status begin(const TargetSettings& settings) override {
    end();
    std::filesystem::path root = options_.temp_root;
    if (root.empty()) {
      std::error_code ec;  // temp_directory_path() throws when TMPDIR names no directory
      root = std::filesystem::temp_directory_path(ec);
      if (ec) return absl::FailedPreconditionError(common::strCat("no temporary directory (TMPDIR): ", ec.message()));
    }
    std::string tmpl = (root / "kh-scenario-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) {
      return absl::InternalError(common::strCat("cannot make a state directory under ", root.string()));
    }
    state_dir_ = tmpl;
    refstack::Config config;
    config.state_dir = state_dir_;
    config.admin_port = 0;
    config.ingress_port = 0;
    config.grpc_ingress_port = 0;
    config.images = refstack::builtinImages(options_.bin_dir);
    config.runtimes_dir = options_.runtimes_dir;
    config.base_dir = settings.base_dir;
    config.pod_grace_period = std::chrono::seconds(3);
    if (settings.stack.activator_queue_limit) {
      config.activator_queue_limit = static_cast<size_t>(*settings.stack.activator_queue_limit);
    }
    applyServerlessConfig(config, settings, options_.bin_dir);
    effective_ = {settings.autoscaler, settings.autoscaler_tick_s > 0 ? settings.autoscaler_tick_s : 2.0,
                  "the scenario's autoscaler settings, as refstack was started with them"};
    auto stack = refstack::Refstack::start(config, time_);
    if (!stack.ok()) return stack.status();
    stack_ = std::move(*stack);
    seq_ = 0;
    return absl::OkStatus();
  }

  void end() override {
    if (!stack_) return;
    stack_.reset();  // stops the pods
    if (!options_.keep_logs_in.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(options_.keep_logs_in, ec);
      std::filesystem::copy(state_dir_ / "logs", options_.keep_logs_in,
                            std::filesystem::copy_options::recursive | std::filesystem::copy_options::overwrite_existing, ec);
    }
    std::error_code ec;
    std::filesystem::remove_all(state_dir_, ec);
  }

  absl::Status apply(const std::string& yaml, const std::string& source) override {
    if (!stack_) return absl::FailedPreconditionError("the embedded stack is not running");
    return stack_->apply(yaml, source).status();
  }
  absl::Status remove(const std::string& ns, const std::string& name) override {
    if (!stack_) return absl::FailedPreconditionError("the embedded stack is not running");
    return stack_->remove("InferenceService", ns, name);
  }
  absl::Status patch(const std::string& ns, const std::string& name, const json& merge_patch) override {
    if (!stack_) return absl::FailedPreconditionError("the embedded stack is not running");
    return stack_->patch("InferenceService", ns, name, merge_patch);
  }
  absl::StatusOr<json> get(const std::string& ns, const std::string& name) override {
    if (!stack_) return absl::FailedPreconditionError("the embedded stack is not running");
    return stack_->get(ns, name);
  }
  absl::StatusOr<json> getGraph(const std::string& ns, const std::string& name) override {
    if (!stack_) return absl::FailedPreconditionError("the embedded stack is not running");
    return stack_->getObject("InferenceGraph", ns, name);
  }
  absl::StatusOr<std::map<std::string, PodCount>> pods(const std::string& ns, const std::string& name) override {
    if (!stack_) return absl::FailedPreconditionError("the embedded stack is not running");
    // The Pod objects, read exactly as the kube target reads a cluster's.
    return podCountsOf(stack_->listObjects("Pod", ns, "serving.kserve.io/inferenceservice=" + name), /*count_terminating=*/true);
  }
  std::vector<events::Event> pollEvents() override {
    if (!stack_) return {};
    auto events = stack_->events(seq_);
    if (!events.empty()) seq_ = events.back().seq;
    return events;
  }
  absl::StatusOr<EffectiveAutoscaler> effectiveAutoscaler() override { return effective_; }
  absl::StatusOr<Endpoint> endpoint(const std::string& ns, const std::string& isvc, const std::string& host) override {
    auto obj = get(ns, isvc);
    if (!obj.ok()) return obj.status();
    auto h = hostFor(*obj, ns, isvc, host);
    if (!h.ok()) return h.status();
    return Endpoint{"127.0.0.1", stack_->ingressPort(), stack_->grpcIngressPort(), *h};
  }
  absl::StatusOr<Endpoint> graphEndpoint(const std::string& ns, const std::string& graph) override {
    auto obj = getGraph(ns, graph);
    if (!obj.ok()) return obj.status();
    auto h = graphHost(*obj, ns, graph);
    if (!h.ok()) return h.status();
    return Endpoint{"127.0.0.1", stack_->ingressPort(), 0, *h};
  }

 private:
  EmbeddedOptions options_;
  const common::TimeSource& time_;
  std::filesystem::path state_dir_;
  std::unique_ptr<refstack::Refstack> stack_;
  int64_t seq_ = 0;
  EffectiveAutoscaler effective_;
};

// ------------------------------------------------------------------ endpoint

class EndpointTarget final : public Target {
 public:
  EndpointTarget(common::HostPort http, std::string url, std::optional<common::HostPort> grpc)
      : http_(std::move(http)), url_(std::move(url)), grpc_(std::move(grpc)) {}
  std::string kind() const override { return "endpoint"; }
  std::string describe() const override {
    return common::strCat("endpoint ", url_, grpc_ ? common::strCat(" (gRPC ", grpc_->host, ":", grpc_->port, ")") : std::string());
  }
  std::string lacks(const std::string& capability) const override {
    if (capability == "control-plane" || capability == "serverless" || capability == "events" ||
        capability == "pod-signals" || capability == "stack-settings") {
      return "the endpoint target is a bare model server URL: no control plane to apply manifests, "
             "watch pods or read scale events";
    }
    return "";
  }
  absl::Status begin(const TargetSettings&) override { return absl::OkStatus(); }
  void end() override {}
  absl::Status apply(const std::string&, const std::string&) override { return unsupported(); }
  absl::Status remove(const std::string&, const std::string&) override { return unsupported(); }
  absl::Status patch(const std::string&, const std::string&, const json&) override { return unsupported(); }
  absl::StatusOr<json> get(const std::string&, const std::string&) override { return unsupported(); }
  absl::StatusOr<json> getGraph(const std::string&, const std::string&) override { return unsupported(); }
  /** The URL is the graph's router (or an ingress that routes it by the URL's host). */
  absl::StatusOr<Endpoint> graphEndpoint(const std::string&, const std::string&) override {
    return Endpoint{http_.host, http_.port, 0, ""};
  }
  absl::StatusOr<std::map<std::string, PodCount>> pods(const std::string&, const std::string&) override {
    return unsupported();
  }
  std::vector<events::Event> pollEvents() override { return {}; }
  absl::StatusOr<EffectiveAutoscaler> effectiveAutoscaler() override { return unsupported(); }
  absl::StatusOr<Endpoint> endpoint(const std::string&, const std::string&, const std::string& host) override {
    Endpoint e{http_.host, http_.port, grpc_ ? grpc_->port : uint16_t(0), ""};
    if (grpc_ && grpc_->host != http_.host) {
      return absl::InvalidArgumentError("the endpoint target wants HTTP and gRPC on the same host");
    }
    if (!host.empty()) e.authority = host.find('.') != std::string::npos ? host : "";
    return e;
  }

 private:
  static absl::Status unsupported() {
    return absl::UnimplementedError("the endpoint target has no control plane");
  }
  common::HostPort http_;
  std::string url_;
  std::optional<common::HostPort> grpc_;
};

// ------------------------------------------------------------------ kube

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs argv (no shell) with `input` on stdin; stdout through a pipe, stderr through a file.
absl::StatusOr<CommandResult> runCommand(const std::vector<std::string>& argv, const std::string& input) {
  char in_path[] = "/tmp/kh-kubectl-in-XXXXXX";
  char err_path[] = "/tmp/kh-kubectl-err-XXXXXX";
  int in_fd = mkstemp(in_path);
  int err_fd = mkstemp(err_path);
  if (in_fd < 0 || err_fd < 0) return absl::InternalError("cannot make temporary files");
  (void)!write(in_fd, input.data(), input.size());
  lseek(in_fd, 0, SEEK_SET);
  int out_pipe[2];
  if (pipe(out_pipe) != 0) return absl::InternalError("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_fd, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
  posix_spawn_file_actions_addclose(&actions, out_pipe[0]);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out_pipe[1]);
  close(in_fd);
  unlink(in_path);
  CommandResult result;
  if (rc != 0) {
    close(out_pipe[0]);
    close(err_fd);
    unlink(err_path);
    return absl::UnavailableError(common::strCat("cannot run ", argv[0], ": ", strerror(rc)));
  }
  char buf[65536];
  ssize_t n;
  while ((n = read(out_pipe[0], buf, sizeof buf)) > 0) result.out.append(buf, static_cast<size_t>(n));
  close(out_pipe[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  lseek(err_fd, 0, SEEK_SET);
  while ((n = read(err_fd, buf, sizeof buf)) > 0) result.err.append(buf, static_cast<size_t>(n));
  close(err_fd);
  unlink(err_path);
  return result;
}

// One `kubectl get RESOURCE -w -o json --output-watch-events` and the thread that reads it: each
// object it prints is stamped with our clock when its last line arrives and handed to `sink`.
// kubectl ends a watch when the server closes it (and on errors); it is started again, and its
// fresh list arrives as ADDED events, which the consumers take as updates.
class KubeWatch {
 public:
  using Sink = std::function<void(WatchArrival)>;
  KubeWatch(std::vector<std::string> argv, const common::TimeSource& time, Sink sink)
      : argv_(std::move(argv)), time_(time), sink_(std::move(sink)), thread_([this] { loop(); }) {}
  ~KubeWatch() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  /** The last line kubectl printed that was not an object (its errors share the pipe). */
  std::string lastError() const {
    std::lock_guard lock(mu_);
    return last_error_;
  }

 private:
  bool stopping() {
    std::lock_guard lock(mu_);
    return stop_;
  }
  void loop() {
    auto pause = std::chrono::seconds(1);
    while (!stopping()) {
      process::SpawnOptions o;
      o.argv = argv_;
      o.die_with_parent = true;
      const auto started = std::chrono::steady_clock::now();
      auto child = process::Subprocess::spawn(o);
      if (child.ok()) {
        read(**child);
      } else {
        setError(std::string(child.status().message()));
      }
      // Started again after a pause that a stop cuts short, longer each time kubectl gives up
      // at once (a cluster without the resource is not asked every second for the whole run).
      bool quick = std::chrono::steady_clock::now() - started < std::chrono::seconds(10);
      pause = quick ? std::min(pause * 2, std::chrono::seconds(30)) : std::chrono::seconds(1);
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, pause, [this] { return stop_; });
    }
  }
  void read(process::Subprocess& child) {
    JsonStreamSplitter splitter;
    while (!stopping()) {
      auto line = child.readLine(std::chrono::milliseconds(200));
      if (!line.ok()) {
        if (absl::IsDeadlineExceeded(line.status())) continue;
        return;  // kubectl ended
      }
      if (splitter.pending() == 0 && !line->empty() && line->front() != '{' && line->find_first_not_of(" \t") != std::string::npos) {
        setError(*line);
      }
      double arrival = std::chrono::duration<double>(time_.systemTime().time_since_epoch()).count();
      for (auto& doc : splitter.feed(*line)) {  // a line break is only whitespace between tokens
        json event = json::parse(doc, nullptr, false);
        if (event.is_discarded() || !event.is_object()) continue;
        std::string type = event.value("type", "");
        if (type != "ADDED" && type != "MODIFIED" && type != "DELETED") continue;  // BOOKMARK, ERROR
        sink_({arrival, std::move(type), std::move(event["object"])});
      }
    }
  }
  void setError(std::string e) {
    std::lock_guard lock(mu_);
    last_error_ = std::move(e);
  }

  const std::vector<std::string> argv_;
  const common::TimeSource& time_;
  const Sink sink_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;  // last: it starts once the rest is built
};

class KubeTarget final : public Target {
 public:
  KubeTarget(KubeOptions options, const common::TimeSource& time) : options_(std::move(options)), time_(time) {}
  ~KubeTarget() override { watches_.clear(); }  // before the inbox they write to
  std::string kind() const override { return "kube"; }
  std::string describe() const override {
    std::string watch_errors;
    for (const auto& [ns, ws] : watches_) {
      for (const auto& w : ws) {
        if (std::string e = w->lastError(); !e.empty()) watch_errors += common::strCat("; watch in ", ns, ": ", e);
      }
    }
    return common::strCat("kube context ", options_.context.empty() ? "(current)" : options_.context, ", ingress ",
                          options_.ingress, note_.empty() ? "" : " (", note_, note_.empty() ? "" : ")", watch_errors);
  }
  std::string lacks(const std::string& capability) const override {
    if (capability == "simulation") {
      return "the simulator's agreement needs the autoscaler's own stable averages per tick, which refstack's "
             "PodAutoscalers publish and Knative's do not";
    }
    if (capability == "cuda") return cuda_lacks_;
    if (capability == "pod-signals") {
      return "the kube target does not signal pods' processes (the fault scenarios run on the embedded stack)";
    }
    if (capability == "stack-settings") {
      return "the scenario sets the stack's own settings (stack:), which a cluster fixes at install time";
    }
    return "";
  }
  absl::Status begin(const TargetSettings& settings) override {
    note_.clear();
    // The watches ran on between scenarios: their news keeps the pods' state current, but its
    // events and the previous scenario's requests belong to that scenario.
    (void)pollEvents();
    cold_starts_.forgetRequests();
    auto r = kubectl({"version", "--client=true", "-o", "json"}, "");
    if (!r.ok()) return r.status();
    cuda_lacks_ = lacksGpuNode();
    if (options_.apply_autoscaler_config) {
      auto st = applyAutoscaler(settings.autoscaler);
      if (!st.ok()) return st;
    } else if (!settings.autoscaler.empty()) {
      // The cluster's config-autoscaler is not ours to change unless asked; timing bounds come
      // from what is in effect there (effectiveAutoscaler), and the report says so.
      note_ = "the scenario's autoscaler settings were not applied (--apply-autoscaler-config does); bounds use the cluster's";
    }
    return absl::OkStatus();
  }
  void end() override {}

  absl::Status apply(const std::string& yaml, const std::string& source) override {
    // Parsed once: the demo models' storageUri rewritten, and the namespaces to watch. A text
    // that does not parse goes as it is, and the cluster says what is wrong with it.
    std::string manifest = yaml;
    if (auto docs = common::parseYamlDocuments(yaml, source); docs.ok()) {
      auto changed = rewriteModelStore(*docs, options_.model_store);
      if (!changed.ok()) {
        return absl::Status(changed.status().code(), common::strCat(source, ": ", changed.status().message()));
      }
      if (*changed) {
        manifest.clear();
        for (const auto& d : *docs) manifest += common::strCat(manifest.empty() ? "" : "---\n", common::jsonToYaml(d));
      }
      for (const auto& d : *docs) {
        if (d.is_object() && d.value("kind", "") == "InferenceService") {
          watch(d.value("metadata", json::object()).value("namespace", "default"));
        }
      }
    }
    auto r = kubectl({"apply", "-f", "-"}, manifest);
    if (!r.ok()) return absl::Status(r.status().code(), common::strCat(source, ": ", common::toStd(r.status().message())));
    return absl::OkStatus();
  }
  absl::Status remove(const std::string& ns, const std::string& name) override {
    return kubectl({"delete", "inferenceservice", name, "-n", ns, "--ignore-not-found"}, "").status();
  }
  absl::Status patch(const std::string& ns, const std::string& name, const json& merge_patch) override {
    return kubectl({"patch", "inferenceservice", name, "-n", ns, "--type=merge", "-p", common::jsonText(merge_patch)}, "")
        .status();
  }
  absl::StatusOr<json> get(const std::string& ns, const std::string& name) override {
    watch(ns);
    return kubectlJson({"get", "inferenceservice", name, "-n", ns, "-o", "json"});
  }
  absl::StatusOr<json> getGraph(const std::string& ns, const std::string& name) override {
    watch(ns);
    return kubectlJson({"get", "inferencegraph", name, "-n", ns, "-o", "json"});
  }
  absl::StatusOr<std::map<std::string, PodCount>> pods(const std::string& ns, const std::string& name) override {
    watch(ns);
    auto list = kubectlJson({"get", "pods", "-n", ns, "-l", "serving.kserve.io/inferenceservice=" + name, "-o", "json"});
    if (!list.ok()) return list.status();
    return podCountsOf(*list, /*count_terminating=*/false);
  }

  // ScaleDecided from each PodAutoscaler change and ColdStart from the requests that met no
  // Ready pod, both from the watches' arrivals.
  std::vector<events::Event> pollEvents() override {
    std::vector<std::pair<bool, WatchArrival>> arrivals;
    {
      std::lock_guard lock(inbox_mu_);
      arrivals.swap(inbox_);
    }
    std::vector<events::Event> out;
    for (auto& [is_pod, a] : arrivals) {
      if (is_pod) {
        cold_starts_.addPod(a);
        continue;
      }
      cold_starts_.addPodAutoscaler(a);
      if (a.type == "DELETED") continue;
      if (auto scale = scaleOf(a.object)) out.push_back({++seq_, a.arrival, std::move(*scale)});
    }
    for (auto& e : cold_starts_.take()) {
      e.seq = ++seq_;
      out.push_back(std::move(e));
    }
    return out;
  }
  void requestsSent(const std::string& ns, const std::string& isvc, const std::vector<SentRequest>& requests) override {
    cold_starts_.addRequests(ns, isvc, requests);
  }
  absl::StatusOr<EffectiveAutoscaler> effectiveAutoscaler() override {
    auto cm = kubectlJson({"get", "configmap", "config-autoscaler", "-n", "knative-serving", "-o", "json"});
    if (!cm.ok()) return cm.status();
    EffectiveAutoscaler e;
    const json data = cm->value("data", json::object());  // items() of a temporary would outlive it
    for (const auto& [k, v] : data.items()) {
      if (k != "_example" && v.is_string()) e.config[k] = v.get<std::string>();
    }
    e.tick_s = 2.0;  // Knative's autoscaler decides every 2 s (pkg/autoscaler/scaling/multiscaler.go tickInterval)
    e.source = "knative-serving/config-autoscaler on the cluster, Knative's 2 s tick";
    return e;
  }
  std::string lacksGrpc(const std::string& ns, const std::string& isvc) override {
    // A revision whose container declares ports, none named h2c, is served over HTTP/1 only.
    auto revs = kubectlJson({"get", "revisions.serving.knative.dev", "-n", ns, "-l",
                             "serving.kserve.io/inferenceservice=" + isvc, "-o", "json"});
    if (!revs.ok()) return "";
    bool declared = false;
    for (const auto& rev : revs->value("items", json::array())) {
      for (const auto& c : rev.value("spec", json::object()).value("containers", json::array())) {
        for (const auto& port : c.value("ports", json::array())) {
          declared = true;
          if (port.value("name", "") == "h2c") return "";
        }
      }
    }
    if (!declared) return "";
    return common::strCat("Knative routes one port per revision, and ", isvc,
                          "'s runtime names none h2c, so its revisions speak HTTP/1 only; gRPC needs a runtime whose "
                          "port is named h2c (kind-cluster registers kh-xgboost-grpc and kh-dense-grpc)");
  }
  absl::StatusOr<Endpoint> endpoint(const std::string& ns, const std::string& isvc, const std::string& host) override {
    auto ingress = common::parseHostPort(options_.ingress);
    if (!ingress.ok()) return ingress.status();
    auto obj = get(ns, isvc);
    if (!obj.ok()) return obj.status();
    auto h = hostFor(*obj, ns, isvc, host);
    if (!h.ok()) return h.status();
    return Endpoint{ingress->host, ingress->port, options_.grpc_port ? options_.grpc_port : ingress->port, *h};
  }
  absl::StatusOr<Endpoint> graphEndpoint(const std::string& ns, const std::string& graph) override {
    auto ingress = common::parseHostPort(options_.ingress);
    if (!ingress.ok()) return ingress.status();
    auto obj = getGraph(ns, graph);
    if (!obj.ok()) return obj.status();
    auto h = graphHost(*obj, ns, graph);
    if (!h.ok()) return h.status();
    return Endpoint{ingress->host, ingress->port, 0, *h};
  }

 private:
  std::vector<std::string> kubectlArgv(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {options_.kubectl};
    if (!options_.kubeconfig.empty()) {
      argv.push_back("--kubeconfig");
      argv.push_back(options_.kubeconfig);
    }
    if (!options_.context.empty()) {
      argv.push_back("--context");
      argv.push_back(options_.context);
    }
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  absl::StatusOr<std::string> kubectl(std::vector<std::string> args, const std::string& input) {
    auto r = runCommand(kubectlArgv(args), input);
    if (!r.ok()) return r.status();
    if (r->exit_code != 0) {
      std::string err = r->err.empty() ? r->out : r->err;
      while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
      std::string cmd;
      for (const auto& a : args) cmd += " " + a;
      if (err.find("NotFound") != std::string::npos || err.find("not found") != std::string::npos) {
        return absl::NotFoundError(common::strCat("kubectl", cmd, ": ", err));
      }
      return absl::UnavailableError(common::strCat("kubectl", cmd, " exited ", r->exit_code, ": ", err));
    }
    return r->out;
  }

  // Starts watching the Pods of InferenceServices and the PodAutoscalers of `ns` once.
  void watch(const std::string& ns) {
    if (watches_.count(ns)) return;
    const double since = std::chrono::duration<double>(time_.systemTime().time_since_epoch()).count();
    auto sink = [this](bool is_pod) {
      return [this, is_pod](WatchArrival a) {
        std::lock_guard lock(inbox_mu_);
        inbox_.emplace_back(is_pod, std::move(a));
      };
    };
    auto& w = watches_[ns];
    w.push_back(std::make_unique<KubeWatch>(
        kubectlArgv({"get", "pods", "-n", ns, "-l", "serving.kserve.io/inferenceservice", "-w", "-o", "json",
                     "--output-watch-events"}),
        time_, sink(true)));
    w.push_back(std::make_unique<KubeWatch>(
        kubectlArgv({"get", "podautoscalers.autoscaling.internal.knative.dev", "-n", ns, "-w", "-o", "json",
                     "--output-watch-events"}),
        time_, sink(false)));
    cold_starts_.watching(ns, since);
  }

  // A ScaleDecided when the PodAutoscaler's scale (or refstack's extras) changed.
  std::optional<events::ScaleDecided> scaleOf(const json& pa) {
    const json md = pa.value("metadata", json::object());
    std::string rev = md.value("name", "");
    std::string ns = md.value("namespace", "");
    const json labels = md.value("labels", json::object());
    const json status = pa.value("status", json::object());
    int desired = status.value("desiredScale", -1);
    int actual = status.value("actualScale", -1);
    // refstack's PodAutoscalers also say what Knative keeps in its decider and SKS.
    const json extra = status.value("refstack", json::object());
    std::string key = common::strCat(desired, "/", actual, "/", extra.value("panic", false), "/",
                                     extra.value("activatorInPath", false));
    auto& last = last_scale_[ns + "/" + rev];
    if (last == key) return std::nullopt;
    last = key;
    events::ScaleDecided scale;
    for (const auto& c : status.value("conditions", json::array())) {
      if (c.value("type", "") == "Active") scale.active = c.value("status", "") == "True";
    }
    scale.panic = extra.value("panic", false);
    scale.activator_in_path = extra.value("activatorInPath", false);
    scale.isvc = ns + "/" + labels.value("serving.kserve.io/inferenceservice", "");
    scale.revision = rev;
    scale.desired = desired;
    scale.actual = actual;
    scale.reason = "PodAutoscaler status";
    return scale;
  }

  // Writes the scenario's settings where the cluster takes them: the Knative Operator owns
  // config-autoscaler when a KnativeServing exists (it puts back any edit of the ConfigMap), so
  // they go into KnativeServing.spec.config.autoscaler, over what was there before the first
  // scenario; otherwise into the ConfigMap, whole (which resets what the previous scenario set).
  absl::Status applyAutoscaler(const std::map<std::string, std::string>& wanted) {
    auto serving = kubectlJson({"get", "knativeservings.operator.knative.dev", "-n", "knative-serving", "-o", "json"});
    const json items = serving.ok() ? serving->value("items", json::array()) : json::array();
    if (items.empty()) {
      json data = json::object();
      for (const auto& [k, v] : wanted) data[k] = v;
      json ns = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "knative-serving"}}}};
      json cm = {{"apiVersion", "v1"},
                 {"kind", "ConfigMap"},
                 {"metadata", {{"name", "config-autoscaler"}, {"namespace", "knative-serving"}}},
                 {"data", data}};
      return kubectl({"apply", "-f", "-"}, common::strCat(common::jsonToYaml(ns), "---\n", common::jsonToYaml(cm))).status();
    }
    const std::string name = items[0]["metadata"].value("name", "knative-serving");
    const json current = items[0].value("spec", json::object()).value("config", json::object()).value("autoscaler", json::object());
    if (!operator_original_) operator_original_ = current;
    json desired = *operator_original_;
    for (const auto& [k, v] : wanted) desired[k] = v;
    json patch = desired;
    for (const auto& [k, v] : current.items()) {
      if (!desired.contains(k)) patch[k] = nullptr;  // a merge patch's way to delete
    }
    auto patched = kubectl({"patch", "knativeservings.operator.knative.dev", name, "-n", "knative-serving", "--type=merge",
                            "-p", common::jsonText(json{{"spec", {{"config", {{"autoscaler", patch}}}}}})},
                           "");
    if (!patched.ok()) return patched.status();
    // The operator copies them into the ConfigMap; the scenario starts once they are there.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    std::string differs;
    while (true) {
      auto effective = effectiveAutoscaler();
      differs.clear();
      for (const auto& [k, v] : desired.items()) {
        std::string have = effective.ok() && effective->config.count(k) ? effective->config[k] : "(unset)";
        if (!v.is_string() || have != v.get<std::string>()) {
          differs = common::strCat(k, " is ", have, ", not ", common::jsonText(v));
          break;
        }
      }
      if (differs.empty()) return absl::OkStatus();
      if (std::chrono::steady_clock::now() > deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(500));  // polling the cluster, not synchronising threads
    }
    return absl::DeadlineExceededError(common::strCat(
        "the Knative Operator did not copy KnativeServing ", name, "'s spec.config.autoscaler into knative-serving/config-autoscaler "
        "within 60 s (", differs, "); see kubectl -n knative-operator logs deploy/knative-operator"));
  }

  // A GPU pod can be scheduled when some node advertises allocatable nvidia.com/gpu (the NVIDIA
  // device plugin's resource); else why not.
  std::string lacksGpuNode() {
    auto nodes = kubectlJson({"get", "nodes", "-o", "json"});
    if (!nodes.ok()) return common::strCat("cannot list the cluster's nodes: ", nodes.status().message());
    for (const auto& node : nodes->value("items", json::array())) {
      const json alloc = node.value("status", json::object()).value("allocatable", json::object());
      if (alloc.contains("nvidia.com/gpu") && alloc["nvidia.com/gpu"].is_string() &&
          alloc["nvidia.com/gpu"].get<std::string>() != "0") {
        return "";
      }
    }
    return "no node of the cluster has allocatable nvidia.com/gpu (NVIDIA's device plugin)";
  }

  absl::StatusOr<json> kubectlJson(std::vector<std::string> args) {
    auto out = kubectl(std::move(args), "");
    if (!out.ok()) return out.status();
    json doc = json::parse(*out, nullptr, false);
    if (doc.is_discarded()) return absl::DataLossError("kubectl printed something that is not JSON");
    return doc;
  }

  KubeOptions options_;
  const common::TimeSource& time_;
  std::string cuda_lacks_;
  std::map<std::string, std::string> last_scale_;  // namespace/revision -> what its last event showed
  int64_t seq_ = 0;
  std::string note_;
  std::optional<json> operator_original_;  // KnativeServing's spec.config.autoscaler before we wrote it
  KubeColdStarts cold_starts_;
  std::mutex inbox_mu_;
  std::vector<std::pair<bool, WatchArrival>> inbox_ ABSL_GUARDED_BY(inbox_mu_);  // (is a Pod, arrival)
  std::map<std::string, std::vector<std::unique_ptr<KubeWatch>>> watches_;  // by namespace; last
};

}  // namespace

std::string defaultKubeIngress() {
  const char* env = std::getenv("KSERVE_INGRESS_HOST_PORT");
  return env != nullptr && *env != '\0' ? env : "127.0.0.1:8080";
}

absl::StatusOr<bool> rewriteModelStore(std::vector<json>& docs, const std::string& store) {
  static constexpr std::string_view kModels = "reference-impl/models/";
  bool changed = false;
  absl::Status refused;
  // The model directory of a file:// URI into our demo models ("" when it is not one).
  auto demoModel = [&](const std::string& uri) -> std::string {
    if (uri.rfind("file://", 0) != 0) return "";
    auto at = uri.find(kModels);
    if (at == std::string::npos || (at != 7 && uri[at - 1] != '/')) return "";
    return uri.substr(at + kModels.size());
  };
  auto rewrite = [&](json& value) {
    if (!value.is_string()) return;
    std::string dir = demoModel(value.get<std::string>());
    if (dir.empty()) return;
    if (store.empty()) {
      if (refused.ok()) {
        refused = absl::FailedPreconditionError(common::strCat(
            "storageUri ", value.get<std::string>(), " is a file of this machine, which a cluster cannot read: pass "
            "--model-store with where the cluster keeps reference-impl/models (kind-cluster/up.sh fills pvc://kh-models)"));
      }
      return;
    }
    std::string base = store;
    while (!base.empty() && base.back() == '/') base.pop_back();
    value = common::strCat(base, "/", dir);
    changed = true;
  };
  // storageUri at any depth (predictor.model, predictor.<framework>, transformer, explainer), and
  // a custom container's STORAGE_URI, which KServe's storage initializer reads.
  std::function<void(json&)> walk = [&](json& node) {
    if (node.is_object()) {
      for (auto& [k, v] : node.items()) {
        if (k == "storageUri") rewrite(v);
        if (k == "env" && v.is_array()) {
          for (auto& e : v) {
            if (e.is_object() && e.value("name", "") == "STORAGE_URI" && e.contains("value")) rewrite(e["value"]);
          }
        }
        walk(v);
      }
    } else if (node.is_array()) {
      for (auto& v : node) walk(v);
    }
  };
  for (auto& d : docs) {
    if (d.is_object() && d.value("kind", "") == "InferenceService") walk(d);
  }
  if (!refused.ok()) return refused;
  return changed;
}

bool embeddedHasServerless() {
  refstack::Config config;
  return applyServerlessConfig(config, TargetSettings{}, {});
}

std::unique_ptr<Target> makeEmbeddedTarget(EmbeddedOptions options, const common::TimeSource& time) {
  return std::make_unique<EmbeddedTarget>(std::move(options), time);
}

absl::StatusOr<std::unique_ptr<Target>> makeEndpointTarget(const std::string& url, const std::string& grpc) {
  auto http = common::parseHostPort(url);
  if (!http.ok()) return http.status();
  std::optional<common::HostPort> g;
  if (!grpc.empty()) {
    auto parsed = common::parseHostPort(grpc);
    if (!parsed.ok()) return parsed.status();
    g = *parsed;
  }
  return std::unique_ptr<Target>(std::make_unique<EndpointTarget>(*http, url, g));
}

std::unique_ptr<Target> makeKubeTarget(KubeOptions options, const common::TimeSource& time) {
  return std::make_unique<KubeTarget>(std::move(options), time);
}

}  // namespace kh::scenario
