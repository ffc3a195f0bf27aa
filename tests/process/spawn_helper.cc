// A parent for the die-with-parent test: starts `sleep 60` tied to its own life, prints the
// child's pid, then waits to be killed.
#include <unistd.h>

#include <cstdio>

#include "kh/process/subprocess.h"

int main() {
  kh::process::SpawnOptions options;
  options.argv = {"sleep", "60"};
  options.capture_output = false;
  options.die_with_parent = true;
  auto child = kh::process::Subprocess::spawn(options);
  if (!child.ok()) {
    std::fprintf(stderr, "spawn failed\n");
    return 1;
  }
  std::printf("child %d\n", static_cast<int>((*child)->pid()));
  std::fflush(stdout);
  pause();
  return 0;
}
