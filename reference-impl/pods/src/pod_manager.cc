#include "kh/pods/pod_manager.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <set>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <mutex>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "kh/common/files.h"
#include "kh/common/strings.h"
#include "kh/http/client.h"
#include "kh/process/subprocess.h"

namespace kh::pods {
namespace {


// A free loopback port: bound, read back and released for the pod to take.
absl::StatusOr<uint16_t> freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::UnavailableError("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return absl::UnavailableError("cannot find a free port");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string substitute(std::string s, const std::string& key, uint16_t port) {
  for (size_t pos; (pos = s.find(key)) != std::string::npos;) s.replace(pos, key.size(), std::to_string(port));
  return s;
}

// Field 22 of /proc/PID/stat: the start time in clock ticks, which tells a recycled pid apart.
std::string processStartTime(int pid) {
  std::ifstream in(common::strCat("/proc/", pid, "/stat"));
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close_paren = stat.rfind(')');
  if (close_paren == std::string::npos) return {};
  std::istringstream fields(stat.substr(close_paren + 2));
  std::string field;
  for (int i = 3; i <= 22 && (fields >> field); ++i) {
    if (i == 22) return field;
  }
  return {};
}

// One line "pid start-time" per process of the pod.
void writePidFile(const std::string& path, std::initializer_list<int> pids) {
  if (path.empty()) return;
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  std::ofstream out(path, std::ios::trunc);
  for (int pid : pids) {
    if (pid > 0) out << pid << " " << processStartTime(pid) << "\n";
  }
}

void removePidFile(const std::string& path) {
  if (path.empty()) return;
  std::error_code ec;
  std::filesystem::remove(path, ec);
}

}  // namespace

const char* podPhaseName(PodPhase phase) {
  switch (phase) {
    case PodPhase::kStarting: return "Starting";
    case PodPhase::kReady: return "Ready";
    case PodPhase::kBackOff: return "BackOff";
    case PodPhase::kStopping: return "Stopping";
    case PodPhase::kStopped: return "Stopped";
  }
  return "?";
}

struct PodManager::Impl {
  struct Pod {
    PodSpec spec;
    PodStatus status;
    std::unique_ptr<process::Subprocess> child;
    std::unique_ptr<process::Subprocess> proxy;
    // On the injected clock: the supervisor waits in real time (at most 50 ms at once) and
    // reads it again, so back-off and probe periods follow a simulated clock too.
    common::MonotonicTime next_probe;
    common::MonotonicTime restart_at;
    std::chrono::milliseconds backoff{0};
  };

  Impl(const common::TimeSource& t, std::function<void(const PodEvent&)> cb)
      : time(t), on_event(std::move(cb)) {}

  const common::TimeSource& time;
  std::function<void(const PodEvent&)> on_event;
  mutable std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, std::unique_ptr<Pod>> pods ABSL_GUARDED_BY(mu);
  // Ports handed to pods that still exist: the kernel may offer a released port again before
  // the pod that got it has bound it, so two pods could otherwise share one.
  std::set<uint16_t> reserved_ports ABSL_GUARDED_BY(mu);

  absl::StatusOr<uint16_t> reservePort() {
    for (int attempt = 0; attempt < 64; ++attempt) {
      auto port = freePort();
      if (!port.ok()) return port.status();
      if (reserved_ports.insert(*port).second) return *port;
    }
    return absl::UnavailableError("no free loopback port that no other pod holds");
  }
  bool stopping = false;
  // A pod was added: the supervisor re-plans its wait (a new pod is probed at once, not after
  // the rest of a 50 ms idle wait: that delay was cold-start time).
  bool pods_changed = false;
  std::thread supervisor;

  void emit(const Pod& pod, const std::string& message) {
    if (on_event) {
      on_event({time.systemTime(), pod.status.name, pod.status.phase, pod.status.restarts, message,
                pod.status.port, pod.status.grpc_port, pod.status.admin_port});
    }
  }

  std::string expand(const std::string& a, uint16_t port, uint16_t grpc_port, const Pod& pod) const {
    return substitute(
        substitute(substitute(substitute(substitute(a, "{{.Port}}", port), "{{.GrpcPort}}", grpc_port),
                              "{{.UserGrpcPort}}", pod.status.user_grpc_port),
                   "{{.UserPort}}", pod.status.user_port),
        "{{.AdminPort}}", pod.status.admin_port);
  }

  absl::Status launch(Pod& pod) {
    process::SpawnOptions opts;
    for (const auto& a : pod.spec.argv) {
      opts.argv.push_back(expand(a, pod.status.user_port, pod.status.user_grpc_port, pod));
    }
    opts.inherit_only.emplace(std::begin(kInheritedEnvironment), std::end(kInheritedEnvironment));
    opts.env = pod.spec.env;
    opts.env["PORT"] = std::to_string(pod.status.user_port);
    if (pod.status.user_grpc_port != 0) opts.env["GRPC_PORT"] = std::to_string(pod.status.user_grpc_port);
    opts.capture_output = false;
    opts.log_file = pod.spec.log_file;
    // A pod never outlives the stack that started it, however the stack ends.
    opts.die_with_parent = true;
    auto child = process::Subprocess::spawn(opts);
    if (!child.ok()) return child.status();
    pod.child = std::move(*child);
    pod.status.pid = pod.child->pid();
    if (!pod.spec.proxy_argv.empty()) {
      process::SpawnOptions proxy;
      for (const auto& a : pod.spec.proxy_argv) {
        proxy.argv.push_back(expand(a, pod.status.port, pod.status.grpc_port, pod));
      }
      proxy.capture_output = false;
      proxy.log_file = pod.spec.log_file;
      proxy.die_with_parent = true;
      auto started = process::Subprocess::spawn(proxy);
      if (!started.ok()) {
        pod.child->signalGroup(SIGKILL);
        pod.child->wait(std::chrono::seconds(5));
        pod.child.reset();
        return started.status();
      }
      pod.proxy = std::move(*started);
      pod.status.proxy_pid = pod.proxy->pid();
    }
    writePidFile(pod.spec.pid_file, {pod.status.pid, pod.status.proxy_pid});
    pod.status.phase = PodPhase::kStarting;
    pod.next_probe = time.monotonicTime();
    return absl::OkStatus();
  }

  // One pass over every pod: reap exits, probe readiness, restart after back-off.
  void tick() {
    std::vector<Pod*> to_probe;
    {
      std::lock_guard lock(mu);
      auto now = time.monotonicTime();
      for (auto& [name, pod] : pods) {
        Pod& p = *pod;
        if (p.status.phase == PodPhase::kStopping || p.status.phase == PodPhase::kStopped) continue;
        if (p.status.phase == PodPhase::kBackOff) {
          if (now >= p.restart_at) {
            auto st = launch(p);
            emit(p, st.ok() ? common::strCat("restarted (restart ", p.status.restarts, "), pid ", p.status.pid)
                            : common::strCat("restart failed: ", common::toStd(st.message())));
            if (!st.ok()) p.restart_at = now + p.backoff;
          }
          continue;
        }
        bool main_gone = p.child && !p.child->running();
        bool proxy_gone = p.proxy && !p.proxy->running();
        if (main_gone || proxy_gone) {
          auto& gone = main_gone ? p.child : p.proxy;
          auto exit = gone->wait(std::chrono::milliseconds(0));
          p.status.last_exit = common::strCat(main_gone ? "" : "proxy ", exit ? exit->describe() : "exited");
          // A pod is all its processes: the survivor goes too, and the pod restarts whole.
          for (auto* other : {&p.child, &p.proxy}) {
            if (*other && (*other)->running()) {
              (*other)->signalGroup(SIGKILL);
              (*other)->wait(std::chrono::seconds(5));
            }
            other->reset();
          }
          p.status.proxy_pid = 0;
          p.status.restarts += 1;
          p.backoff = p.backoff.count() == 0 ? p.spec.initial_backoff
                                             : std::min(p.backoff * 2, p.spec.max_backoff);
          p.restart_at = now + p.backoff;
          p.status.phase = PodPhase::kBackOff;
          p.status.pid = 0;
          removePidFile(p.spec.pid_file);
          emit(p, common::strCat("crashed (", p.status.last_exit, "); restarting in ", p.backoff.count(), " ms"));
          continue;
        }
        if (now >= p.next_probe) {
          p.next_probe = now + (p.status.phase == PodPhase::kReady ? p.spec.ready_probe_period : p.spec.probe_period);
          to_probe.push_back(&p);
        }
      }
    }
    for (Pod* p : to_probe) {
      // Probing happens outside the lock: a slow pod must not stall the others' bookkeeping.
      bool proxied = !p->spec.proxy_argv.empty();
      http::Client client("127.0.0.1", proxied ? p->status.admin_port : p->status.port,
                          std::chrono::milliseconds(500));
      auto res = client.request("GET", proxied ? p->spec.proxy_readiness_path : p->spec.readiness_path);
      bool ready = res.ok() && res->result_int() == 200;
      std::lock_guard lock(mu);
      if (p->status.phase == PodPhase::kStarting && ready) {
        p->status.phase = PodPhase::kReady;
        p->backoff = std::chrono::milliseconds(0);
        emit(*p, common::strCat("ready on port ", p->status.port));
      } else if (p->status.phase == PodPhase::kReady && !ready) {
        p->status.phase = PodPhase::kStarting;
        emit(*p, "readiness probe failed");
      }
    }
  }

  void run() {
    std::unique_lock lock(mu);
    while (!stopping) {
      lock.unlock();
      tick();
      lock.lock();
      // The probe period of the fastest pod bounds the wait.
      auto wait = std::chrono::milliseconds(50);
      for (const auto& [n, p] : pods) {
        if (p->status.phase == PodPhase::kStarting) wait = std::min(wait, p->spec.probe_period);
      }
      cv.wait_for(lock, wait, [&] { return stopping || pods_changed; });
      pods_changed = false;
    }
  }
};

int killOrphanedPods(const std::string& dir) {
  int killed = 0;
  // A directory that cannot be listed holds no pid files we could act on: nothing to kill.
  const auto pid_files = common::filesIn(dir, {".pid"}).value_or(std::vector<std::filesystem::path>{});
  for (const auto& pid_file : pid_files) {
    std::ifstream in(pid_file);
    int pid = 0;
    std::string start;
    bool any = false;
    while (in >> pid >> start) {
      if (pid > 1 && !start.empty() && processStartTime(pid) == start && ::kill(-pid, SIGKILL) == 0) any = true;
    }
    killed += any ? 1 : 0;
    std::error_code ec;
    std::filesystem::remove(pid_file, ec);
  }
  return killed;
}

PodManager::PodManager(const common::TimeSource& time,
                       std::function<void(const PodEvent&)> on_event)
    : impl_(std::make_unique<Impl>(time, std::move(on_event))) {
  impl_->supervisor = std::thread([this] { impl_->run(); });
}

PodManager::~PodManager() {
  // Every pod drains at once, as the kubelet terminates a node's pods: one after another, the
  // stop would take the sum of their drain times.
  std::vector<std::thread> stopping;
  for (const auto& p : list()) {
    stopping.emplace_back([this, name = p.name] { (void)stop(name); });
  }
  for (auto& t : stopping) t.join();
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->supervisor.join();
}

absl::StatusOr<PodStatus> PodManager::start(PodSpec spec) {
  std::lock_guard lock(impl_->mu);
  if (impl_->pods.count(spec.name)) {
    return absl::InvalidArgumentError(common::strCat("pod ", spec.name, " already exists"));
  }
  auto port = impl_->reservePort();
  if (!port.ok()) return port.status();
  auto pod = std::make_unique<Impl::Pod>();
  pod->status.name = spec.name;
  pod->status.port = *port;
  pod->status.user_port = *port;
  if (!spec.proxy_argv.empty()) {
    auto user = impl_->reservePort();
    auto admin = impl_->reservePort();
    if (!user.ok() || !admin.ok()) {
      impl_->reserved_ports.erase(*port);
      if (user.ok()) impl_->reserved_ports.erase(*user);
      if (admin.ok()) impl_->reserved_ports.erase(*admin);
      return absl::UnavailableError("no free loopback ports for the pod's proxy");
    }
    pod->status.user_port = *user;
    pod->status.admin_port = *admin;
  }
  auto release_ports = [&] {
    for (uint16_t p : {pod->status.port, pod->status.grpc_port, pod->status.user_grpc_port, pod->status.user_port,
                       pod->status.admin_port}) {
      if (p != 0) impl_->reserved_ports.erase(p);
    }
  };
  auto uses = [](const std::vector<std::string>& argv, const char* key) {
    return std::any_of(argv.begin(), argv.end(), [&](const std::string& a) { return a.find(key) != std::string::npos; });
  };
  if (uses(spec.argv, "{{.GrpcPort}}")) {
    auto grpc_port = impl_->reservePort();
    if (!grpc_port.ok()) {
      release_ports();
      return grpc_port.status();
    }
    pod->status.grpc_port = *grpc_port;
    pod->status.user_grpc_port = *grpc_port;
    // A proxy that takes gRPC too listens on the pod's gRPC port, the container on its own.
    if (!spec.proxy_argv.empty() && uses(spec.proxy_argv, "{{.UserGrpcPort}}")) {
      auto user_grpc = impl_->reservePort();
      if (!user_grpc.ok()) {
        release_ports();
        return user_grpc.status();
      }
      pod->status.user_grpc_port = *user_grpc;
    }
  }
  pod->spec = std::move(spec);
  if (auto st = impl_->launch(*pod); !st.ok()) {
    release_ports();
    return st;
  }
  impl_->emit(*pod, common::strCat("started pid ", pod->status.pid, " on port ", pod->status.port));
  PodStatus status = pod->status;
  impl_->pods[status.name] = std::move(pod);
  impl_->pods_changed = true;
  impl_->cv.notify_all();
  return status;
}

absl::Status PodManager::stop(const std::string& name) {
  std::unique_ptr<process::Subprocess> child, proxy;
  std::chrono::milliseconds grace;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->pods.find(name);
    if (it == impl_->pods.end()) return absl::NotFoundError(common::strCat("no pod ", name));
    auto& p = *it->second;
    p.status.phase = PodPhase::kStopping;
    impl_->emit(p, "stopping");
    child = std::move(p.child);
    proxy = std::move(p.proxy);
    grace = p.spec.grace_period;
  }
  // The proxy first: it fails its probes, drains what is in flight, then the main container
  // gets its SIGTERM (Knative's preStop /wait-for-drain ordering).
  auto end = [&](std::unique_ptr<process::Subprocess>& c, std::string& how) {
    if (!c) return;
    c->signalGroup(SIGTERM);
    auto exit = c->wait(grace);
    if (!exit) {
      c->signalGroup(SIGKILL);
      exit = c->wait(std::chrono::seconds(10));
      how = "killed after the grace period";
    } else {
      how = exit->describe();
    }
  };
  std::string proxy_how, how = "not running";
  end(proxy, proxy_how);
  end(child, how);
  std::lock_guard lock(impl_->mu);
  auto it = impl_->pods.find(name);
  if (it != impl_->pods.end()) {
    it->second->status.phase = PodPhase::kStopped;
    it->second->status.pid = 0;
    it->second->status.proxy_pid = 0;
    removePidFile(it->second->spec.pid_file);
    for (uint16_t p : {it->second->status.port, it->second->status.grpc_port, it->second->status.user_grpc_port,
                       it->second->status.user_port, it->second->status.admin_port}) {
      impl_->reserved_ports.erase(p);
    }
    impl_->emit(*it->second, common::strCat("stopped (", how, proxy_how.empty() ? "" : "; proxy ", proxy_how, ")"));
    impl_->pods.erase(it);
  }
  return absl::OkStatus();
}

absl::StatusOr<PodStatus> PodManager::status(const std::string& name) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->pods.find(name);
  if (it == impl_->pods.end()) return absl::NotFoundError(common::strCat("no pod ", name));
  return it->second->status;
}

std::vector<PodStatus> PodManager::list() const {
  std::lock_guard lock(impl_->mu);
  std::vector<PodStatus> out;
  for (const auto& [n, p] : impl_->pods) out.push_back(p->status);
  return out;
}

}  // namespace kh::pods
