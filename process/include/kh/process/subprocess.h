#pragma once
// Child processes: started directly (no shell), in their own process group so a whole "pod" can
// be signalled at once, with stdout+stderr either captured through a pipe (read line by line with
// a deadline) or appended to a log file. A child may be tied to this process's life (it is
// SIGKILLed by the kernel when this process ends, however it ends).

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace kh::process {

struct SpawnOptions {
  /** argv[0] is the program; a name without '/' is looked up on PATH. */
  std::vector<std::string> argv;
  /** Added to (or replacing in) the environment the child starts with. */
  std::map<std::string, std::string> env;
  /**
   * The child starts with this process's whole environment (then `env`), unless this is set:
   * then only the named variables of it are passed on (a user's container gets a documented
   * environment, not whatever the stack was started with).
   */
  std::optional<std::vector<std::string>> inherit_only;
  /** Capture stdout and stderr through a pipe for readLine(); otherwise see log_file. */
  bool capture_output = true;
  /** When not capturing: append output here (empty = inherit the parent's). */
  std::string log_file;
  std::string working_dir;
  /**
   * The kernel SIGKILLs the child when this process ends, even by SIGKILL or a crash
   * (PR_SET_PDEATHSIG). Linux ties that signal to the thread that started the child, so such
   * children are all started by one thread made for it that lives as long as the process. Only
   * the child itself is covered, not processes it starts (the process-group kill in ~Subprocess
   * and the pods' pid files cover those while this process lives or when it starts again).
   */
  bool die_with_parent = false;
};

/** How a child ended. */
struct ExitStatus {
  bool exited = false;    // exited normally with `code`
  int code = 0;
  bool signaled = false;  // killed by `signal`
  int signal = 0;
  std::string describe() const;
};

class Subprocess {
 public:
  /** @return Unavailable when the program cannot be started (the message says why). */
  static absl::StatusOr<std::unique_ptr<Subprocess>> spawn(const SpawnOptions& options);
  /** Kills the whole process group with SIGKILL if it is still running, and reaps it. */
  ~Subprocess();

  pid_t pid() const { return pid_; }

  /**
   * Reads the next line of captured output, waiting at most `timeout`.
   * @return DeadlineExceeded on timeout, OutOfRange at end of output (the child closed it).
   */
  absl::StatusOr<std::string> readLine(std::chrono::milliseconds timeout);

  /**
   * Reads lines until one contains `needle`; every line read is appended to `seen` if given.
   * @return the matching line.
   */
  absl::StatusOr<std::string> waitForLine(const std::string& needle,
                                          std::chrono::milliseconds timeout,
                                          std::string* seen = nullptr);

  /** Sends `sig` to the child's process group. */
  void signalGroup(int sig);

  /** @return the exit status once the child has ended within `timeout`, else nullopt. */
  std::optional<ExitStatus> wait(std::chrono::milliseconds timeout);

  /** @return whether the child is still running (does not block). */
  bool running();

 private:
  Subprocess(pid_t pid, int out_fd) : pid_(pid), out_fd_(out_fd) {}
  pid_t pid_;
  int out_fd_;
  std::string pending_;  // bytes read but not yet returned as lines
  std::optional<ExitStatus> status_;
};

}  // namespace kh::process
