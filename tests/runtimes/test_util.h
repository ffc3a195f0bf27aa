#pragma once
// Shared helpers of the runtimes tests.

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "gtest/gtest.h"

namespace kh::runtimes::testing {

/** reference-impl/models/ of the source tree: $KH_SOURCE_DIR (set by CTest) or the build's. */
inline std::filesystem::path modelsDir() {
  const char* env = std::getenv("KH_SOURCE_DIR");
  std::filesystem::path root = env != nullptr && *env != '\0' ? env : KH_TEST_SOURCE_DIR;
  return root / "reference-impl" / "models";
}

/**
 * A fresh, empty directory under the test temp dir, unique to this process and test (CTest runs
 * tests as separate processes, possibly in parallel).
 */
inline std::filesystem::path freshDir(const std::string& name) {
  const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string unique = std::to_string(::getpid()) + "-" +
                       (test != nullptr ? std::string(test->test_suite_name()) + "." + test->name()
                                        : std::string("global"));
  std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / "kh-runtimes" / unique / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace kh::runtimes::testing
