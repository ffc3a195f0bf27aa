#include "kh/pods/pod_manager.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <set>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <mutex>
#include <thread>

#include "kh/common/strings.h"
#include "kh/http/client.h"
#include "kh/process/subprocess.h"

namespace kh::pods {
namespace {

using Clock = std::chrono::steady_clock;

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

void writePidFile(const std::string& path, int pid) {
  if (path.empty()) return;
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  std::ofstream out(path, std::ios::trunc);
  out << pid << " " << processStartTime(pid) << "\n";
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
    Clock::time_point next_probe;
    Clock::time_point restart_at;
    std::chrono::milliseconds backoff{0};
  };

  Impl(const common::TimeSource& t, std::function<void(const PodEvent&)> cb)
      : time(t), on_event(std::move(cb)) {}

  const common::TimeSource& time;
  std::function<void(const PodEvent&)> on_event;
  mutable std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, std::unique_ptr<Pod>> pods;
  // Ports handed to pods that still exist: the kernel may offer a released port again before
  // the pod that got it has bound it, so two pods could otherwise share one.
  std::set<uint16_t> reserved_ports;

  absl::StatusOr<uint16_t> reservePort() {
    for (int attempt = 0; attempt < 64; ++attempt) {
      auto port = freePort();
      if (!port.ok()) return port.status();
      if (reserved_ports.insert(*port).second) return *port;
    }
    return absl::UnavailableError("no free loopback port that no other pod holds");
  }
  bool stopping = false;
  std::thread supervisor;

  void emit(const Pod& pod, const std::string& message) {
    if (on_event) {
      on_event({time.systemTime(), pod.status.name, pod.status.phase, pod.status.restarts, message,
                pod.status.port, pod.status.grpc_port});
    }
  }

  absl::Status launch(Pod& pod) {
    process::SpawnOptions opts;
    for (const auto& a : pod.spec.argv) {
      opts.argv.push_back(substitute(substitute(a, "{{.Port}}", pod.status.port), "{{.GrpcPort}}",
                                     pod.status.grpc_port));
    }
    opts.env = pod.spec.env;
    opts.env["PORT"] = std::to_string(pod.status.port);
    if (pod.status.grpc_port != 0) opts.env["GRPC_PORT"] = std::to_string(pod.status.grpc_port);
    opts.capture_output = false;
    opts.log_file = pod.spec.log_file;
    auto child = process::Subprocess::spawn(opts);
    if (!child.ok()) return child.status();
    pod.child = std::move(*child);
    pod.status.pid = pod.child->pid();
    writePidFile(pod.spec.pid_file, pod.status.pid);
    pod.status.phase = PodPhase::kStarting;
    pod.next_probe = Clock::now();
    return absl::OkStatus();
  }

  // One pass over every pod: reap exits, probe readiness, restart after back-off.
  void tick() {
    std::vector<Pod*> to_probe;
    {
      std::lock_guard lock(mu);
      auto now = Clock::now();
      for (auto& [name, pod] : pods) {
        Pod& p = *pod;
        if (p.status.phase == PodPhase::kStopping || p.status.phase == PodPhase::kStopped) continue;
        if (p.status.phase == PodPhase::kBackOff) {
          if (now >= p.restart_at) {
            auto st = launch(p);
            emit(p, st.ok() ? common::strCat("restarted (restart ", p.status.restarts, ")")
                            : common::strCat("restart failed: ", common::toStd(st.message())));
            if (!st.ok()) p.restart_at = now + p.backoff;
          }
          continue;
        }
        if (p.child && !p.child->running()) {
          auto exit = p.child->wait(std::chrono::milliseconds(0));
          p.status.last_exit = exit ? exit->describe() : "exited";
          p.child.reset();
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
          p.next_probe = now + p.spec.probe_period;
          to_probe.push_back(&p);
        }
      }
    }
    for (Pod* p : to_probe) {
      // Probing happens outside the lock: a slow pod must not stall the others' bookkeeping.
      http::Client client("127.0.0.1", p->status.port, std::chrono::milliseconds(500));
      auto res = client.request("GET", p->spec.readiness_path);
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
      for (const auto& [n, p] : pods) wait = std::min(wait, p->spec.probe_period);
      cv.wait_for(lock, wait, [&] { return stopping; });
    }
  }
};

int killOrphanedPods(const std::string& dir) {
  int killed = 0;
  std::error_code ec;
  for (const auto& f : std::filesystem::directory_iterator(dir, ec)) {
    if (f.path().extension() != ".pid") continue;
    std::ifstream in(f.path());
    int pid = 0;
    std::string start;
    in >> pid >> start;
    if (pid > 1 && !start.empty() && processStartTime(pid) == start) {
      if (::kill(-pid, SIGKILL) == 0) ++killed;
    }
    std::filesystem::remove(f.path(), ec);
  }
  return killed;
}

PodManager::PodManager(const common::TimeSource& time,
                       std::function<void(const PodEvent&)> on_event)
    : impl_(std::make_unique<Impl>(time, std::move(on_event))) {
  impl_->supervisor = std::thread([this] { impl_->run(); });
}

PodManager::~PodManager() {
  std::vector<std::string> names;
  for (const auto& p : list()) names.push_back(p.name);
  for (const auto& n : names) (void)stop(n);
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
  for (const auto& a : spec.argv) {
    if (a.find("{{.GrpcPort}}") == std::string::npos) continue;
    auto grpc_port = impl_->reservePort();
    if (!grpc_port.ok()) {
      impl_->reserved_ports.erase(*port);
      return grpc_port.status();
    }
    pod->status.grpc_port = *grpc_port;
    break;
  }
  pod->spec = std::move(spec);
  if (auto st = impl_->launch(*pod); !st.ok()) {
    impl_->reserved_ports.erase(pod->status.port);
    impl_->reserved_ports.erase(pod->status.grpc_port);
    return st;
  }
  impl_->emit(*pod, common::strCat("started pid ", pod->status.pid, " on port ", pod->status.port));
  PodStatus status = pod->status;
  impl_->pods[status.name] = std::move(pod);
  impl_->cv.notify_all();
  return status;
}

absl::Status PodManager::stop(const std::string& name) {
  std::unique_ptr<process::Subprocess> child;
  std::chrono::milliseconds grace;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->pods.find(name);
    if (it == impl_->pods.end()) return absl::NotFoundError(common::strCat("no pod ", name));
    auto& p = *it->second;
    p.status.phase = PodPhase::kStopping;
    impl_->emit(p, "stopping");
    child = std::move(p.child);
    grace = p.spec.grace_period;
  }
  std::string how = "not running";
  if (child) {
    child->signalGroup(SIGTERM);
    auto exit = child->wait(grace);
    if (!exit) {
      child->signalGroup(SIGKILL);
      exit = child->wait(std::chrono::seconds(10));
      how = "killed after the grace period";
    } else {
      how = exit->describe();
    }
  }
  std::lock_guard lock(impl_->mu);
  auto it = impl_->pods.find(name);
  if (it != impl_->pods.end()) {
    it->second->status.phase = PodPhase::kStopped;
    it->second->status.pid = 0;
    removePidFile(it->second->spec.pid_file);
    impl_->reserved_ports.erase(it->second->status.port);
    impl_->reserved_ports.erase(it->second->status.grpc_port);
    impl_->emit(*it->second, common::strCat("stopped (", how, ")"));
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
