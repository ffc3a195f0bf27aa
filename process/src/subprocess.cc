#include "kh/process/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "kh/common/strings.h"

extern char** environ;

namespace kh::process {

std::string ExitStatus::describe() const {
  if (exited) return common::strCat("exit code ", code);
  if (signaled) return common::strCat("killed by signal ", signal, " (", strsignal(signal), ")");
  return "still running";
}

namespace {

// The one thread that starts children tied to this process's life: PR_SET_PDEATHSIG fires when
// the thread that forked the child ends, so that thread must live as long as the process. It is
// never destroyed (a static object would be torn down while the thread still waits on it).
class SpawnThread {
 public:
  static SpawnThread& get() {
    static SpawnThread* instance = new SpawnThread;
    return *instance;
  }

  // Runs `job` on the spawn thread and waits for it.
  template <typename T>
  T run(std::function<T()> job) {
    std::packaged_task<T()> task(std::move(job));
    auto result = task.get_future();
    {
      std::lock_guard lock(mu_);
      jobs_.push_back([&task] { task(); });
    }
    cv_.notify_one();
    return result.get();
  }

 private:
  SpawnThread() {
    std::thread([this] { loop(); }).detach();
  }

  void loop() {
    while (true) {
      std::function<void()> job;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return !jobs_.empty(); });
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_ ABSL_GUARDED_BY(mu_);
};

// PATH lookup as posix_spawnp does it, before the child is made (the child may only call the
// kernel). @return the program's path, or empty when not found.
std::string findProgram(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t colon = dirs.find(':', start);
    std::string dir = dirs.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return {};
}

// Starts a child with vfork, as glibc's posix_spawn does with clone(CLONE_VM | CLONE_VFORK), so
// that it can also ask for PR_SET_PDEATHSIG. Everything is prepared before the vfork; the child
// only makes system calls and reports a failure through `child_errno` (it shares our memory).
// @return the pid, or -errno.
pid_t vforkExec(const std::string& program, char* const argv[], char* const envp[], int stdout_fd,
                const std::string& log_file, const std::string& working_dir) {
  sigset_t all, old;
  sigfillset(&all);
  // No handler of ours may run in the child before exec: block everything around the vfork.
  pthread_sigmask(SIG_SETMASK, &all, &old);
  const pid_t parent = ::getpid();
  volatile int child_errno = 0;
  const char* prog = program.c_str();
  const char* log = log_file.empty() ? nullptr : log_file.c_str();
  const char* dir = working_dir.empty() ? nullptr : working_dir.c_str();
  pid_t pid = ::vfork();
  if (pid == 0) {
    // Dies with its parent; if the parent is already gone, stop here.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent) {
      child_errno = errno ? errno : ESRCH;
      ::_exit(127);
    }
    ::setpgid(0, 0);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) {
      if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
    }
    int in = ::open("/dev/null", O_RDONLY);
    if (in >= 0 && in != 0) {
      ::dup2(in, 0);
      ::close(in);
    }
    if (stdout_fd >= 0) {
      ::dup2(stdout_fd, 1);
      ::dup2(stdout_fd, 2);
    } else if (log != nullptr) {
      int out = ::open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (out < 0) {
        child_errno = errno;
        ::_exit(127);
      }
      ::dup2(out, 1);
      ::dup2(out, 2);
    }
    // stdin/stdout/stderr only: an inherited listening socket would keep a port of ours open.
    if (::syscall(SYS_close_range, 3U, ~0U, 0U) != 0) {
      for (int fd = 3; fd < 65536; ++fd) ::close(fd);
    }
    if (dir != nullptr && ::chdir(dir) != 0) {
      child_errno = errno;
      ::_exit(127);
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(prog, argv, envp);
    child_errno = errno;
    ::_exit(127);
  }
  int spawn_errno = pid < 0 ? errno : child_errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) return -spawn_errno;
  if (spawn_errno != 0) {
    int st = 0;
    ::waitpid(pid, &st, 0);
    return -spawn_errno;
  }
  return pid;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::spawn(const SpawnOptions& options) {
  if (options.argv.empty()) return absl::InvalidArgumentError("spawn: empty argv");
  std::map<std::string, std::string> env_map;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq == std::string::npos) continue;
    std::string name = kv.substr(0, eq);
    if (options.inherit_only &&
        std::find(options.inherit_only->begin(), options.inherit_only->end(), name) == options.inherit_only->end()) {
      continue;
    }
    env_map[std::move(name)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : options.env) env_map[k] = v;
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env_map) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, argv;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = options.argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);

  if (options.die_with_parent) {
    std::string program = findProgram(options.argv[0]);
    if (program.empty()) {
      return absl::UnavailableError(
          common::strCat("cannot start '", options.argv[0], "': ", std::strerror(ENOENT)));
    }
    int pipe_fds[2] = {-1, -1};
    if (options.capture_output && pipe2(pipe_fds, O_CLOEXEC) != 0) {
      return absl::UnavailableError(common::strCat("pipe: ", std::strerror(errno)));
    }
    pid_t pid = SpawnThread::get().run<pid_t>([&] {
      return vforkExec(program, argv.data(), envp.data(), pipe_fds[1], options.log_file, options.working_dir);
    });
    if (pipe_fds[1] >= 0) close(pipe_fds[1]);
    if (pid < 0) {
      if (pipe_fds[0] >= 0) close(pipe_fds[0]);
      return absl::UnavailableError(
          common::strCat("cannot start '", options.argv[0], "': ", std::strerror(-pid)));
    }
    return std::unique_ptr<Subprocess>(new Subprocess(pid, pipe_fds[0]));
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  int pipe_fds[2] = {-1, -1};
  if (options.capture_output) {
    if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
      return absl::UnavailableError(common::strCat("pipe: ", std::strerror(errno)));
    }
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 2);
  } else if (!options.log_file.empty()) {
    posix_spawn_file_actions_addopen(&actions, 1, options.log_file.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
  }
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  // The child gets stdin/stdout/stderr only: an inherited listening socket would keep a port of
  // ours open in a process that never serves it (and outlive us if we are killed).
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  if (!options.working_dir.empty()) {
    posix_spawn_file_actions_addchdir_np(&actions, options.working_dir.c_str());
  }
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Own process group (so the group can be signalled) and default signal dispositions/masks,
  // since the parent may block SIGTERM for sigwait.
  sigset_t empty, all;
  sigemptyset(&empty);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (pipe_fds[1] >= 0) close(pipe_fds[1]);
  if (rc != 0) {
    if (pipe_fds[0] >= 0) close(pipe_fds[0]);
    return absl::UnavailableError(
        common::strCat("cannot start '", options.argv[0], "': ", std::strerror(rc)));
  }
  return std::unique_ptr<Subprocess>(new Subprocess(pid, pipe_fds[0]));
}

Subprocess::~Subprocess() {
  if (!status_) {
    ::kill(-pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
  }
  if (out_fd_ >= 0) close(out_fd_);
}

absl::StatusOr<std::string> Subprocess::readLine(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto nl = pending_.find('\n');
    if (nl != std::string::npos) {
      std::string line = pending_.substr(0, nl);
      pending_.erase(0, nl + 1);
      return line;
    }
    if (out_fd_ < 0) return absl::OutOfRangeError("no captured output");
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return absl::DeadlineExceededError("no line before the deadline");
    pollfd p{out_fd_, POLLIN, 0};
    int rc = ::poll(&p, 1, static_cast<int>(left.count()));
    if (rc < 0 && errno == EINTR) continue;
    if (rc == 0) return absl::DeadlineExceededError("no line before the deadline");
    char buf[4096];
    ssize_t n = ::read(out_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (!pending_.empty()) {
        std::string line = std::move(pending_);
        pending_.clear();
        return line;
      }
      return absl::OutOfRangeError("the child closed its output");
    }
    pending_.append(buf, static_cast<size_t>(n));
  }
}

absl::StatusOr<std::string> Subprocess::waitForLine(const std::string& needle,
                                                    std::chrono::milliseconds timeout,
                                                    std::string* seen) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    auto line = readLine(std::max(left, std::chrono::milliseconds(0)));
    if (!line.ok()) return line.status();
    if (seen) *seen += *line + "\n";
    if (line->find(needle) != std::string::npos) return line;
  }
}

void Subprocess::signalGroup(int sig) {
  if (!status_) ::kill(-pid_, sig);
}

bool Subprocess::running() { return !wait(std::chrono::milliseconds(0)).has_value(); }

std::optional<ExitStatus> Subprocess::wait(std::chrono::milliseconds timeout) {
  if (status_) return status_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  // waitpid has no timeout; poll it with a short back-off (the child is ours, nothing to await).
  auto pause = std::chrono::milliseconds(1);
  while (true) {
    int st = 0;
    pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      ExitStatus s;
      if (WIFEXITED(st)) {
        s.exited = true;
        s.code = WEXITSTATUS(st);
      } else if (WIFSIGNALED(st)) {
        s.signaled = true;
        s.signal = WTERMSIG(st);
      }
      status_ = s;
      return status_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(20));
  }
}

}  // namespace kh::process
