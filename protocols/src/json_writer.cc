#include "kh/protocols/json_writer.h"

#include <cmath>
#include <iterator>

#include "fmt/format.h"

namespace kh::protocols {

void appendJsonString(std::string& out, std::string_view value) {
  out.push_back('"');
  for (char c : value) {
    auto u = static_cast<unsigned char>(c);
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
