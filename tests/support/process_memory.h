#pragma once
// Test support: this process's peak resident memory (VmHWM), to show that memory does not
// follow a body's size.

#include <cstdint>
#include <fstream>
#include <string>

namespace kh::testing {

/** Peak resident memory since the last resetPeakRss(), in bytes; -1 when unknown. */
inline int64_t peakRss() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return -1;
}

/** Starts a new peak (Linux: writing 5 to clear_refs resets VmHWM). */
inline void resetPeakRss() { std::ofstream("/proc/self/clear_refs") << "5"; }

}  // namespace kh::testing
