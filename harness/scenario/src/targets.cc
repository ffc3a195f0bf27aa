// The embedded, endpoint and kube targets.

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

#include "kh/common/net.h"
#include "kh/common/strings.h"
#include "kh/common/yaml_json.h"
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
std::map<std::string, PodCount> podCountsOf(const json& list) {
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
    std::filesystem::path root = options_.temp_root.empty() ? std::filesystem::temp_directory_path() : options_.temp_root;
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
    applyServerlessConfig(config, settings, options_.bin_dir);
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
    return podCountsOf(stack_->listObjects("Pod", ns, "serving.kserve.io/inferenceservice=" + name));
  }
  std::vector<events::Event> pollEvents() override {
    if (!stack_) return {};
    auto events = stack_->events(seq_);
    if (!events.empty()) seq_ = events.back().seq;
    return events;
  }
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
        capability == "pod-signals") {
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

class KubeTarget final : public Target {
 public:
  KubeTarget(KubeOptions options, const common::TimeSource& time) : options_(std::move(options)), time_(time) {}
  std::string kind() const override { return "kube"; }
  std::string describe() const override {
    return common::strCat("kube context ", options_.context.empty() ? "(current)" : options_.context, ", ingress ",
                          options_.ingress, note_.empty() ? "" : " (", note_, note_.empty() ? "" : ")");
  }
  std::string lacks(const std::string& capability) const override {
    if (capability == "coldstart-events") {
      return "the kube target has no cold-start breakdown (the refstack-only \"coldstart\" event)";
    }
    if (capability == "cuda") return cuda_lacks_;
    if (capability == "pod-signals") {
      return "the kube target does not signal pods' processes (the fault scenarios run on the embedded stack)";
    }
    return "";
  }
  absl::Status begin(const TargetSettings& settings) override {
    note_.clear();
    auto r = kubectl({"version", "--client=true", "-o", "json"}, "");
    if (!r.ok()) return r.status();
    cuda_lacks_ = lacksGpuNode();
    if (options_.apply_autoscaler_config) {
      // Knative's settings live in this ConfigMap; applying the whole of it resets what the
      // previous scenario set.
      json data = json::object();
      for (const auto& [k, v] : settings.autoscaler) data[k] = v;
      json ns = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", "knative-serving"}}}};
      json cm = {{"apiVersion", "v1"},
                 {"kind", "ConfigMap"},
                 {"metadata", {{"name", "config-autoscaler"}, {"namespace", "knative-serving"}}},
                 {"data", data}};
      std::string manifest = common::strCat(common::jsonToYaml(ns), "---\n", common::jsonToYaml(cm));
      auto applied = kubectl({"apply", "-f", "-"}, manifest);
      if (!applied.ok()) return applied.status();
    } else if (!settings.autoscaler.empty()) {
      // The cluster's config-autoscaler is not ours to change unless asked; the scenario's
      // expectations use the overrides, so the report says that they were not applied.
      note_ = "config-autoscaler overrides are not applied to a cluster (--apply-autoscaler-config does)";
    }
    return absl::OkStatus();
  }
  void end() override {}

  absl::Status apply(const std::string& yaml, const std::string& source) override {
    auto r = kubectl({"apply", "-f", "-"}, yaml);
    if (!r.ok()) return absl::Status(r.status().code(), common::strCat(source, ": ", common::toStd(r.status().message())));
    return absl::OkStatus();
  }
  absl::Status remove(const std::string& ns, const std::string& name) override {
    return kubectl({"delete", "inferenceservice", name, "-n", ns, "--ignore-not-found"}, "").status();
  }
  absl::Status patch(const std::string& ns, const std::string& name, const json& merge_patch) override {
    return kubectl({"patch", "inferenceservice", name, "-n", ns, "--type=merge", "-p", merge_patch.dump()}, "")
        .status();
  }
  absl::StatusOr<json> get(const std::string& ns, const std::string& name) override {
    namespaces_.insert(ns);
    return kubectlJson({"get", "inferenceservice", name, "-n", ns, "-o", "json"});
  }
  absl::StatusOr<json> getGraph(const std::string& ns, const std::string& name) override {
    namespaces_.insert(ns);
    return kubectlJson({"get", "inferencegraph", name, "-n", ns, "-o", "json"});
  }
  absl::StatusOr<std::map<std::string, PodCount>> pods(const std::string& ns, const std::string& name) override {
    namespaces_.insert(ns);
    auto list = kubectlJson({"get", "pods", "-n", ns, "-l", "serving.kserve.io/inferenceservice=" + name, "-o", "json"});
    if (!list.ok()) return list.status();
    return podCountsOf(*list);
  }
  std::vector<events::Event> pollEvents() override {
    std::vector<events::Event> out;
    double now = std::chrono::duration<double>(time_.systemTime().time_since_epoch()).count();
    for (const auto& ns : namespaces_) {
      auto list = kubectlJson({"get", "podautoscalers.autoscaling.internal.knative.dev", "-n", ns, "-o", "json"});
      if (!list.ok()) continue;
      for (const auto& pa : list->value("items", json::array())) {
        std::string rev = pa["metadata"].value("name", "");
        const json labels = pa["metadata"].value("labels", json::object());
        std::string isvc = labels.value("serving.kserve.io/inferenceservice", "");
        const json status = pa.value("status", json::object());
        int desired = status.value("desiredScale", -1);
        int actual = status.value("actualScale", -1);
        const json extra_status = status.value("refstack", json::object());
        std::string key = common::strCat(desired, "/", actual, "/", extra_status.value("panic", false), "/",
                                         extra_status.value("activatorInPath", false));
        auto it = last_scale_.find(rev);
        if (it != last_scale_.end() && it->second == key) continue;
        last_scale_[rev] = key;
        bool active = false;
        for (const auto& c : status.value("conditions", json::array())) {
          if (c.value("type", "") == "Active") active = c.value("status", "") == "True";
        }
        events::ScaleDecided scale;
        // refstack's PodAutoscalers also say what Knative keeps in its decider and SKS.
        const json extra = status.value("refstack", json::object());
        scale.panic = extra.value("panic", false);
        scale.activator_in_path = extra.value("activatorInPath", false);
        scale.isvc = ns + "/" + isvc;
        scale.revision = rev;
        scale.desired = desired;
        scale.actual = actual;
        scale.active = active;
        scale.reason = "PodAutoscaler status";
        out.push_back({++seq_, now, std::move(scale)});
      }
    }
    return out;
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
  absl::StatusOr<std::string> kubectl(std::vector<std::string> args, const std::string& input) {
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
    auto r = runCommand(argv, input);
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
  std::set<std::string> namespaces_;
  std::map<std::string, std::string> last_scale_;  // revision -> what its last event showed
  int64_t seq_ = 0;
  std::string note_;
};

}  // namespace

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
