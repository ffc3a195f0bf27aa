// A main() for the fuzz targets without libFuzzer (the regular gcc build, CI's smoke): runs every
// file of the corpus directories given, then mutates them with a seeded generator for a time or a
// number of executions. A crash (signal) writes the input that caused it to crash-<target>-<hash>
// in the working directory and prints its path, so CI's output names the reproducer; rerun it
// with `<target> crash-file`. The real fuzzing is libFuzzer's (KH_FUZZ=ON, bench/fuzz.sh).
//
// Usage: <target> [--seconds S] [--runs N] [--seed K] [--max-len B] CORPUS_DIR_OR_FILE...

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace {

// The input being run, for the crash handler (which may only use async-signal-safe calls).
const std::string* g_current = nullptr;
char g_target[64] = "target";

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

void onCrash(int sig) {
  if (g_current != nullptr) {
    char path[128];
    static const char kHex[] = "0123456789abcdef";
    uint64_t h = fnv1a(*g_current);
    char hex[17];
    for (int i = 15; i >= 0; --i, h >>= 4) hex[i] = kHex[h & 15];
    hex[16] = 0;
    std::snprintf(path, sizeof path, "crash-%s-%s", g_target, hex);
    FILE* f = std::fopen(path, "wb");
    if (f != nullptr) {
      std::fwrite(g_current->data(), 1, g_current->size(), f);
      std::fclose(f);
    }
    std::fprintf(stderr, "\n==%d== %s: signal %d on an input of %zu bytes; reproducer: %s\n",
                 getpid(), g_target, sig, g_current->size(), path);
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

std::string readFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void run(const std::string& input) {
  g_current = &input;
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
  g_current = nullptr;
}

// One of libFuzzer's simpler mutations: flip, set, insert, erase, duplicate or splice bytes.
std::string mutate(const std::string& base, const std::vector<std::string>& corpus, std::mt19937_64& rng,
                   size_t max_len) {
  std::string s = base;
  int rounds = 1 + static_cast<int>(rng() % 4);
  for (int r = 0; r < rounds; ++r) {
    size_t at = s.empty() ? 0 : rng() % s.size();
    switch (rng() % 7) {
      case 0: if (!s.empty()) s[at] = static_cast<char>(s[at] ^ (1u << (rng() % 8))); break;
      case 1: if (!s.empty()) s[at] = static_cast<char>(rng()); break;
      case 2: s.insert(s.begin() + static_cast<long>(at), static_cast<char>(rng())); break;
      case 3: if (!s.empty()) s.erase(at, 1 + rng() % std::min<size_t>(8, s.size() - at)); break;
      case 4: if (!s.empty()) s.insert(at, s.substr(at, 1 + rng() % std::min<size_t>(16, s.size() - at))); break;
      case 5: {
        const std::string& other = corpus[rng() % corpus.size()];
        if (!other.empty()) {
          size_t from = rng() % other.size();
          s.insert(at, other.substr(from, 1 + rng() % std::min<size_t>(32, other.size() - from)));
        }
        break;
      }
      default: {
        // Interesting values in place of a digit run: boundaries a parser must survive.
        static const char* kTokens[] = {"-1", "0", "4294967296", "18446744073709551616", "1e309", "-0",
                                        "null", "\"\"", "[]", "{}", "\\u0000", "NaN"};
        const char* t = kTokens[rng() % (sizeof kTokens / sizeof *kTokens)];
        s.insert(at, t);
        break;
      }
    }
  }
  if (s.size() > max_len) s.resize(max_len);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  std::snprintf(g_target, sizeof g_target, "%s", std::filesystem::path(argv[0]).filename().c_str());
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  double seconds = 0;
  long long runs = 0;
  uint64_t seed = 1;
  size_t max_len = 1 << 16;
  std::vector<std::string> corpus;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--seconds") seconds = std::atof(next().c_str());
    else if (a == "--runs") runs = std::atoll(next().c_str());
    else if (a == "--seed") seed = std::strtoull(next().c_str(), nullptr, 10);
    else if (a == "--max-len") max_len = std::strtoull(next().c_str(), nullptr, 10);
    else if (std::filesystem::is_directory(a)) {
      for (const auto& e : std::filesystem::directory_iterator(a)) {
        if (e.is_regular_file()) corpus.push_back(readFile(e.path()));
      }
    } else if (std::filesystem::is_regular_file(a)) {
      corpus.push_back(readFile(a));
    } else {
      std::fprintf(stderr, "%s: no such file or directory: %s\n", g_target, a.c_str());
      return 2;
    }
  }
  for (int sig : {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL}) signal(sig, onCrash);
  for (const auto& input : corpus) run(input);
  long long executed = static_cast<long long>(corpus.size());
  if (corpus.empty()) corpus.push_back("");
  std::mt19937_64 rng(seed);
  auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  while ((runs > 0 && executed < runs) || (seconds > 0 && elapsed() < seconds)) {
    std::string input = mutate(corpus[rng() % corpus.size()], corpus, rng, max_len);
    run(input);
    ++executed;
    if (rng() % 64 == 0 && corpus.size() < 4096) corpus.push_back(std::move(input));  // breadth
  }
  std::printf("%s: %lld executions in %.1f s (seed %llu), no crash\n", g_target, executed, elapsed(),
              static_cast<unsigned long long>(seed));
  return 0;
}
