#pragma once
// A small append-only JSON writer for the hot response paths: it formats straight into one string
// (floats in their shortest round-trip form) instead of building a DOM first.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kh::protocols {

class JsonWriter {
 public:
  explicit JsonWriter(std::string& out) : out_(out) {}

  void beginObject();
  void endObject();
  void beginArray();
  void endArray();
  /** Writes an object key; the next value call writes its value. */
  void key(std::string_view name);
  void string(std::string_view value);
  void number(int64_t value);
  void number(uint64_t value);
  void number(double value);
  /** Floats print in their own shortest form ("0.1", not "0.10000000149011612"). */
  void number(float value);
  void boolean(bool value);
  void null();
  /** Inserts already-encoded JSON as one value. */
  void raw(std::string_view json);

 private:
  void separate();

  std::string& out_;
  // One entry per open container: whether a value was already written in it.
  std::vector<bool> has_value_;
  bool after_key_ = false;
};

/** Appends `value` as a quoted, escaped JSON string. */
void appendJsonString(std::string& out, std::string_view value);

}  // namespace kh::protocols
