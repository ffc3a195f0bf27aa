#include "kh/protocols/json_writer.h"

#include <cmath>
#include <iterator>

#include "fmt/format.h"

namespace kh::protocols {

namespace {
// Length of the valid UTF-8 sequence starting at s[i], or 0 when it is not valid.
size_t utf8Length(std::string_view s, size_t i) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  // 0xf5..0xff never start a sequence (they are not 3-byte leads).
  size_t len = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xc2 && c < 0xe0 ? 2 : 0;
  if (len == 0 || i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((b(i + k) & 0xc0) != 0x80) return 0;
  }
  // Overlong three- and four-byte forms, surrogates and values past U+10FFFF.
  if (len == 3 && ((c == 0xe0 && b(i + 1) < 0xa0) || (c == 0xed && b(i + 1) >= 0xa0))) return 0;
  if (len == 4 && ((c == 0xf0 && b(i + 1) < 0x90) || (c == 0xf4 && b(i + 1) >= 0x90))) return 0;
  return len;
}
}  // namespace

void appendJsonString(std::string& out, std::string_view value) {
  out.push_back('"');
  for (size_t i = 0; i < value.size(); ++i) {
    // Runs of characters that need no escaping (names, keys: nearly everything) are copied
    // whole; a push_back per character was a tenth of a V2 response's encoding.
    size_t run = i;
    while (run < value.size()) {
      auto u = static_cast<unsigned char>(value[run]);
      if (u < 0x20 || u >= 0x80 || u == '"' || u == '\\') break;
      ++run;
    }
    if (run > i) {
      out.append(value.data() + i, run - i);
      i = run;
      if (i == value.size()) break;
    }
    char c = value[i];
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x80) {
      // JSON text must be UTF-8: copy valid sequences, replace stray bytes (e.g. echoed from a
      // binary body in an error message) with U+FFFD.
      size_t len = utf8Length(value, i);
      if (len == 0) {
        out += "\\ufffd";
      } else {
        out.append(value.substr(i, len));
        i += len - 1;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (u < 0x20) {
          fmt::format_to(std::back_inserter(out), "\\u{:04x}", static_cast<unsigned>(u));
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

void JsonWriter::separate() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!has_value_.empty()) {
    if (has_value_.back()) out_.push_back(',');
    has_value_.back() = true;
  }
}

void JsonWriter::beginObject() {
  separate();
  out_.push_back('{');
  has_value_.push_back(false);
}

void JsonWriter::endObject() {
  out_.push_back('}');
  has_value_.pop_back();
}

void JsonWriter::beginArray() {
  separate();
  out_.push_back('[');
  has_value_.push_back(false);
}

void JsonWriter::endArray() {
  out_.push_back(']');
  has_value_.pop_back();
}

void JsonWriter::key(std::string_view name) {
  separate();
  appendJsonString(out_, name);
  out_.push_back(':');
  after_key_ = true;
}

void JsonWriter::string(std::string_view value) {
  separate();
  appendJsonString(out_, value);
}

void JsonWriter::number(int64_t value) {
  separate();
  fmt::format_to(std::back_inserter(out_), "{}", value);
}

void JsonWriter::number(uint64_t value) {
  separate();
  fmt::format_to(std::back_inserter(out_), "{}", value);
}

void JsonWriter::number(double value) {
  separate();
  // JSON has no NaN or infinity; null is what Python's json and Triton write for them.
  if (!std::isfinite(value)) {
    out_ += "null";
    return;
  }
  fmt::format_to(std::back_inserter(out_), "{}", value);
}

void JsonWriter::number(float value) {
  separate();
  if (!std::isfinite(value)) {
    out_ += "null";
    return;
  }
  fmt::format_to(std::back_inserter(out_), "{}", value);
}

void JsonWriter::boolean(bool value) {
  separate();
  out_ += value ? "true" : "false";
}

void JsonWriter::null() {
  separate();
  out_ += "null";
}

void JsonWriter::raw(std::string_view json) {
  separate();
  out_ += json;
}

}  // namespace kh::protocols
