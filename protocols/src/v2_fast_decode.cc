#include "v2_fast_decode.h"

#include <charconv>
#include <cstdint>
#include <cstring>

namespace kh::protocols::internal {
namespace {

// A recursive-descent reader over the text. Every method returns false to give up (the body is
// then the general decoder's): on bad JSON, on valid JSON outside the fast path's subset, and on
// values the general decoder might treat differently.
class Reader {
 public:
  explicit Reader(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  bool request(InferenceRequest& out) {
    if (!consume('{')) return false;
    bool seen_id = false, seen_inputs = false;
    if (peek() == '}') return false;  // no "inputs": the general decoder's error
    do {
      std::string_view key;
      if (!plainString(key) || !consume(':')) return false;
      if (key == "id") {
        if (seen_id) return false;
        seen_id = true;
        skipSpace();
        if (literal("null")) continue;
        std::string_view id;
        if (!plainString(id)) return false;
        out.id.assign(id);
        out.has_id = true;
      } else if (key == "inputs") {
        if (seen_inputs) return false;
        seen_inputs = true;
        if (!inputs(out)) return false;
      } else {
        return false;  // parameters, outputs, anything else
      }
    } while (consume(','));
    if (!consume('}') || !seen_inputs) return false;
    skipSpace();
    return p_ == end_;
  }

 private:
  bool inputs(InferenceRequest& out) {
    if (!consume('[')) return false;
    if (consume(']')) return true;
    do {
      Tensor t;
      if (!tensor(t)) return false;
      out.inputs.push_back(std::move(t));
    } while (consume(','));
    return consume(']');
  }

  bool tensor(Tensor& t) {
    if (!consume('{')) return false;
    bool name = false, datatype = false, shape = false, data = false;
    // The data may come before the datatype: its numbers are kept as doubles until the end.
    std::vector<double> values;
    values.reserve(64);  // one allocation for the usual few rows
    do {
      std::string_view key;
      if (!plainString(key) || !consume(':')) return false;
      if (key == "name" && !name) {
        std::string_view v;
        if (!plainString(v)) return false;
        t.name.assign(v);
        name = true;
      } else if (key == "datatype" && !datatype) {
        std::string_view v;
        if (!plainString(v)) return false;
        if (v == "FP32") {
          t.datatype = DataType::kFp32;
        } else if (v == "FP64") {
          t.datatype = DataType::kFp64;
        } else {
          return false;
        }
        datatype = true;
      } else if (key == "shape" && !shape) {
        if (!shapeList(t.shape)) return false;
        shape = true;
      } else if (key == "data" && !data) {
        if (!numbers(values, 0)) return false;
        data = true;
      } else {
        return false;  // parameters, a repeated key, anything else
      }
    } while (consume(','));
    if (!consume('}') || !name || !datatype || !shape || !data) return false;
    auto count = elementCount(t.shape);
    if (!count.ok() || *count != static_cast<int64_t>(values.size())) return false;
    if (t.datatype == DataType::kFp32) {
      t.raw.resize(values.size() * sizeof(float));
      char* dst = t.raw.data();
      for (double d : values) {
        float f = static_cast<float>(d);
        std::memcpy(dst, &f, sizeof f);
        dst += sizeof f;
      }
    } else {
      t.raw.assign(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(double));
    }
    return validateTensorData(t).ok();
  }

  bool shapeList(Shape& shape) {
    if (!consume('[')) return false;
    if (consume(']')) return true;
    do {
      skipSpace();
      const char* start = p_;
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
      size_t digits = static_cast<size_t>(p_ - start);
      // Plain non-negative integers of up to 18 digits (no sign, no leading zero, no fraction).
      if (digits == 0 || digits > 18 || (digits > 1 && *start == '0')) return false;
      if (p_ < end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E')) return false;
      int64_t value = 0;
      std::from_chars(start, p_, value);
      shape.push_back(value);
    } while (consume(','));
    return consume(']');
  }

  // Nested lists of numbers, flattened row-major, as the general decoder flattens them.
  bool numbers(std::vector<double>& out, int depth) {
    if (depth > 64) return false;
    if (!consume('[')) return false;
    if (consume(']')) return true;
    do {
      skipSpace();
      if (p_ < end_ && *p_ == '[') {
        if (!numbers(out, depth + 1)) return false;
      } else {
        double d;
        if (!number(d)) return false;
        out.push_back(d);
      }
    } while (consume(','));
    return consume(']');
  }

  // A JSON number, read as the general decoder (nlohmann::json) reads it: an integer token as an
  // exact integer converted to double (so "-0" is +0), anything else correctly rounded.
  bool number(double& out) {
    const char* start = p_;
    if (p_ < end_ && *p_ == '-') ++p_;
    const char* int_start = p_;
    while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    size_t int_digits = static_cast<size_t>(p_ - int_start);
    if (int_digits == 0 || (int_digits > 1 && *int_start == '0')) return false;
    bool integer = true;
    if (p_ < end_ && *p_ == '.') {
      integer = false;
      const char* frac = ++p_;
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
      if (p_ == frac) return false;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      integer = false;
      ++p_;
      if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      const char* exp = p_;
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
      if (p_ == exp) return false;
    }
    if (integer) {
      // Up to 18 digits fit an int64 exactly; longer ones the general decoder may keep as an
      // unsigned integer or a double, so they are its to read.
      if (int_digits > 18) return false;
      int64_t value = 0;
      std::from_chars(start, p_, value);
      out = static_cast<double>(value);
      return true;
    }
    auto [ptr, ec] = std::from_chars(start, p_, out);
    // Out of range (overflow, and underflow to zero or a denormal): the general decoder's call.
    return ec == std::errc() && ptr == p_;
  }

  // A string of printable ASCII without escapes (anything else: the general decoder's).
  bool plainString(std::string_view& out) {
    skipSpace();
    if (p_ == end_ || *p_ != '"') return false;
    const char* start = ++p_;
    while (p_ < end_ && *p_ != '"') {
      auto c = static_cast<unsigned char>(*p_);
      if (c < 0x20 || c >= 0x7f || c == '\\') return false;
      ++p_;
    }
    if (p_ == end_) return false;
    out = std::string_view(start, static_cast<size_t>(p_ - start));
    ++p_;
    return true;
  }

  bool literal(std::string_view word) {
    if (static_cast<size_t>(end_ - p_) < word.size() || std::memcmp(p_, word.data(), word.size()) != 0) {
      return false;
    }
    p_ += word.size();
    return true;
  }

  void skipSpace() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }

  char peek() {
    skipSpace();
    return p_ < end_ ? *p_ : '\0';
  }

  bool consume(char c) {
    skipSpace();
    if (p_ == end_ || *p_ != c) return false;
    ++p_;
    return true;
  }

  const char* p_;
  const char* end_;
};

}  // namespace

std::optional<InferenceRequest> decodeV2RequestFast(std::string_view json_text) {
  InferenceRequest request;
  if (!Reader(json_text).request(request)) return std::nullopt;
  return request;
}

}  // namespace kh::protocols::internal
