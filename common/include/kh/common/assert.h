#pragma once
// Three assertion levels (after Envoy): KH_ASSERT is debug-only, KH_RELEASE_ASSERT is always
// fatal, KH_BUG logs in release builds and aborts in debug builds. Never assert on untrusted input.

#include <cstdio>
#include <cstdlib>

#define KH_RELEASE_ASSERT(cond, msg)                                                  \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      std::fprintf(stderr, "%s:%d: assertion failed: %s: %s\n", __FILE__, __LINE__, #cond, \
                   msg);                                                              \
      std::abort();                                                                   \
    }                                                                                 \
  } while (false)

#ifdef NDEBUG
#define KH_ASSERT(cond, msg) \
  do {                       \
  } while (false)
#define KH_BUG(msg) std::fprintf(stderr, "%s:%d: bug: %s\n", __FILE__, __LINE__, msg)
#else
#define KH_ASSERT(cond, msg) KH_RELEASE_ASSERT(cond, msg)
#define KH_BUG(msg) KH_RELEASE_ASSERT(false, msg)
#endif
