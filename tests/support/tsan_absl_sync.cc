// absl::Mutex as ThreadSanitizer sees it, in the tsan preset's test executables only (see
// tests/tsan.supp and cmake/KhHelpers.cmake). Debian's Abseil is not built with
// -fsanitize=thread, so TSan cannot see an absl::Mutex order anything: every access one guards
// (kh::kubeapi's store, the queue-proxy's breaker and stats, gRPC's own locking) looks like a
// race. Here the executable defines Mutex's and CondVar's out-of-line entry points itself, which
// takes precedence over the shared library's for every caller (ours and gRPC's); each calls
// Abseil's own (dlsym(RTLD_NEXT)) and tells TSan the happens-before edge: release just before the
// lock is given up, acquire just after it is taken. Edges only: a missed or repeated one cannot
// confuse TSan's lock bookkeeping, it can only miss or add ordering.

#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/synchronization/mutex.h"

#define KH_TSAN_STR2(x) #x
#define KH_TSAN_STR(x) KH_TSAN_STR2(x)

namespace {

// Abseil's own definition of `rest` ("5Mutex4LockEv"), mangled in its inline namespace.
template <typename F>
F abseils(const char* rest) {
  const std::string ns = KH_TSAN_STR(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  const std::string name = "_ZN4absl" + std::to_string(ns.size()) + ns + rest;
  void* f = dlsym(RTLD_NEXT, name.c_str());
  if (f == nullptr) {
    std::fprintf(stderr, "tsan_absl_sync: Abseil has no %s\n", name.c_str());
    std::abort();
  }
  return reinterpret_cast<F>(f);
}

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

void Mutex::Lock() {
  static const auto f = abseils<void (*)(Mutex*)>("5Mutex4LockEv");
  f(this);
  __tsan_acquire(this);
}

void Mutex::ReaderLock() {
  static const auto f = abseils<void (*)(Mutex*)>("5Mutex10ReaderLockEv");
  f(this);
  __tsan_acquire(this);
}

bool Mutex::TryLock() {
  static const auto f = abseils<bool (*)(Mutex*)>("5Mutex7TryLockEv");
  bool locked = f(this);
  if (locked) __tsan_acquire(this);
  return locked;
}

bool Mutex::ReaderTryLock() {
  static const auto f = abseils<bool (*)(Mutex*)>("5Mutex13ReaderTryLockEv");
  bool locked = f(this);
  if (locked) __tsan_acquire(this);
  return locked;
}

void Mutex::Unlock() {
  static const auto f = abseils<void (*)(Mutex*)>("5Mutex6UnlockEv");
  __tsan_release(this);
  f(this);
}

void Mutex::ReaderUnlock() {
  static const auto f = abseils<void (*)(Mutex*)>("5Mutex12ReaderUnlockEv");
  __tsan_release(this);
  f(this);
}

void Mutex::LockWhen(const Condition& cond) {
  static const auto f = abseils<void (*)(Mutex*, const Condition&)>("5Mutex8LockWhenERKNS0_9ConditionE");
  f(this, cond);
  __tsan_acquire(this);
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  static const auto f = abseils<void (*)(Mutex*, const Condition&)>("5Mutex14ReaderLockWhenERKNS0_9ConditionE");
  f(this, cond);
  __tsan_acquire(this);
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  static const auto f = abseils<bool (*)(Mutex*, const Condition&, Duration)>(
      "5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  bool met = f(this, cond, timeout);
  __tsan_acquire(this);  // held either way
  return met;
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, Duration timeout) {
  static const auto f = abseils<bool (*)(Mutex*, const Condition&, Duration)>(
      "5Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  bool met = f(this, cond, timeout);
  __tsan_acquire(this);
  return met;
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  static const auto f = abseils<bool (*)(Mutex*, const Condition&, Time)>(
      "5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  bool met = f(this, cond, deadline);
  __tsan_acquire(this);
  return met;
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, Time deadline) {
  static const auto f = abseils<bool (*)(Mutex*, const Condition&, Time)>(
      "5Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  bool met = f(this, cond, deadline);
  __tsan_acquire(this);
  return met;
}

// Waiting gives the lock up and takes it back.
void Mutex::Await(const Condition& cond) {
  static const auto f = abseils<void (*)(Mutex*, const Condition&)>("5Mutex5AwaitERKNS0_9ConditionE");
  __tsan_release(this);
  f(this, cond);
  __tsan_acquire(this);
}

bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  static const auto f = abseils<bool (*)(Mutex*, const Condition&, Duration)>(
      "5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  __tsan_release(this);
  bool met = f(this, cond, timeout);
  __tsan_acquire(this);
  return met;
}

bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  static const auto f = abseils<bool (*)(Mutex*, const Condition&, Time)>(
      "5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  __tsan_release(this);
  bool met = f(this, cond, deadline);
  __tsan_acquire(this);
  return met;
}

void CondVar::Wait(Mutex* mu) {
  static const auto f = abseils<void (*)(CondVar*, Mutex*)>("7CondVar4WaitEPNS0_5MutexE");
  __tsan_release(mu);
  f(this, mu);
  __tsan_acquire(mu);
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  static const auto f = abseils<bool (*)(CondVar*, Mutex*, Duration)>(
      "7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  __tsan_release(mu);
  bool timed_out = f(this, mu, timeout);
  __tsan_acquire(mu);
  return timed_out;
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  static const auto f = abseils<bool (*)(CondVar*, Mutex*, Time)>(
      "7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  __tsan_release(mu);
  bool timed_out = f(this, mu, deadline);
  __tsan_acquire(mu);
  return timed_out;
}

ABSL_NAMESPACE_END
}  // namespace absl
