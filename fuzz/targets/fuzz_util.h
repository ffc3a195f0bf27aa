#pragma once
// Shared by the fuzz targets: a failed property is a crash (libFuzzer and the standalone driver
// both report it with the input), never a silent pass.

#include <cstdio>
#include <cstdlib>
#include <string_view>

#define KH_FUZZ_CHECK(cond, what)                                       \
  do {                                                                  \
    if (!(cond)) {                                                      \
      std::fprintf(stderr, "fuzz property failed: %s (%s)\n", what, #cond); \
      std::abort();                                                     \
    }                                                                   \
  } while (0)
