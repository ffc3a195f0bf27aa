#pragma once
// String building. Debian's Abseil is built with its own absl::string_view (not an alias of
// std::string_view), so absl::StrCat does not take std::string_view; strCat takes both.

#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "absl/strings/string_view.h"

namespace kh::common {

/** @return an std::string_view over an absl::string_view (e.g. absl::Status::message()). */
inline std::string_view toStd(absl::string_view s) { return {s.data(), s.size()}; }

namespace strings_internal {
inline void append(std::string& out, std::string_view s) { out.append(s); }
inline void append(std::string& out, const char* s) { out.append(s); }
inline void append(std::string& out, const std::string& s) { out.append(s); }
inline void append(std::string& out, absl::string_view s) { out.append(s.data(), s.size()); }
inline void append(std::string& out, char c) { out.push_back(c); }
template <typename T>
  requires std::is_arithmetic_v<T>
void append(std::string& out, T value) {
  if constexpr (std::is_same_v<T, bool>) {
    out.append(value ? "true" : "false");
  } else {
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof buf, value);
    out.append(buf, res.ptr);
  }
}
}  // namespace strings_internal

/** Concatenates strings, string views and numbers (numbers in their shortest form). */
template <typename... Args>
std::string strCat(const Args&... args) {
  std::string out;
  (strings_internal::append(out, args), ...);
  return out;
}

/** Parses a whole string as an integer of type T. */
template <typename T>
std::optional<T> parseInt(std::string_view text) {
  T value{};
  auto res = std::from_chars(text.data(), text.data() + text.size(), value);
  if (res.ec != std::errc() || res.ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace kh::common
