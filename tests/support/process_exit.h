#pragma once
// Test support: waiting for a process that is not our child to end (a pidfd becomes readable
// when it does), so tests await the exit instead of polling for it.

#include <poll.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

namespace kh::testing {

/** @return whether process `pid` has ended within `timeout` (true at once if it is gone). */
inline bool awaitProcessExit(pid_t pid, std::chrono::milliseconds timeout) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return errno == ESRCH;
  pollfd p{fd, POLLIN, 0};
  int rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
  ::close(fd);
  return rc == 1;
}

}  // namespace kh::testing
