// JsonWriter and appendJsonString: escaping, UTF-8 hygiene, number forms, structure.

#include "kh/protocols/json_writer.h"

#include <bit>
#include <cmath>
#include <functional>
#include <limits>
#include <random>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace kh::protocols {
namespace {

std::string jsonQuoted(std::string_view s) {
  std::string out;
  appendJsonString(out, s);
  return out;
}

TEST(JsonString, QuotesBackslashAndNamedEscapes) {
  EXPECT_EQ(jsonQuoted(R"(a"b\c)"), R"("a\"b\\c")");
  EXPECT_EQ(jsonQuoted("\b\f\n\r\t"), R"("\b\f\n\r\t")");
  EXPECT_EQ(jsonQuoted("/"), R"("/")");  // '/' may stay as is
  EXPECT_EQ(jsonQuoted(""), R"("")");
}

TEST(JsonString, EveryControlCharacterIsEscaped) {
  // JSON forbids raw U+0000..U+001F inside strings; DEL (0x7f) is allowed.
  for (int c = 0; c < 0x20; ++c) {
    std::string in(1, static_cast<char>(c));
    std::string out = jsonQuoted(in);
    for (char o : out) EXPECT_GE(static_cast<unsigned char>(o), 0x20) << "char " << c;
    EXPECT_EQ(nlohmann::json::parse(out).get<std::string>(), in) << "char " << c;
  }
  EXPECT_EQ(jsonQuoted(std::string("\0", 1)), R"("\u0000")");
  EXPECT_EQ(jsonQuoted("\x01\x1f"), R"("\u0001\u001f")");
  EXPECT_EQ(jsonQuoted("\x7f"), "\"\x7f\"");
}

TEST(JsonString, AllAsciiRoundTripsThroughAStrictParser) {
  std::string all;
  for (int c = 0; c < 0x80; ++c) all.push_back(static_cast<char>(c));
  EXPECT_EQ(nlohmann::json::parse(jsonQuoted(all)).get<std::string>(), all);
}

TEST(JsonString, ValidUtf8IsCopiedUnchanged) {
  const std::string s = "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xef\xbf\xbf \xf4\x8f\xbf\xbf";
  EXPECT_EQ(jsonQuoted(s), "\"" + s + "\"");
}

TEST(JsonString, InvalidUtf8BytesBecomeReplacementCharacters) {
  // Each byte that does not start a valid sequence becomes U+FFFD, so the output is always
  // valid JSON text (echoed binary data in error messages must not break the body).
  EXPECT_EQ(jsonQuoted("ok\xff"), R"("ok\ufffd")");
  EXPECT_EQ(jsonQuoted("\x80"), R"("\ufffd")");                       // lone continuation
  EXPECT_EQ(jsonQuoted("\xc0\x80"), R"("\ufffd\ufffd")");             // overlong NUL
  EXPECT_EQ(jsonQuoted("\xe0\x80\x80"), R"("\ufffd\ufffd\ufffd")");   // overlong 3-byte
  EXPECT_EQ(jsonQuoted("\xed\xa0\x80"), R"("\ufffd\ufffd\ufffd")");   // UTF-16 surrogate
  EXPECT_EQ(jsonQuoted("\xf4\x90\x80\x80"), R"("\ufffd\ufffd\ufffd\ufffd")");  // past U+10FFFF
  EXPECT_EQ(jsonQuoted("\xe6\x97"), R"("\ufffd\ufffd")");             // truncated at the end
  // 0xf5..0xff never lead a sequence; 0xf5 0x80 0x80 must not pass as a 3-byte one.
  EXPECT_EQ(jsonQuoted("\xf5\x80\x80"), R"("\ufffd\ufffd\ufffd")");
  EXPECT_EQ(jsonQuoted("\xf8\x88\x80\x80\x80"), R"("\ufffd\ufffd\ufffd\ufffd\ufffd")");
}

TEST(JsonString, RandomBytesAlwaysGiveParsableJson) {
  // nlohmann's parser rejects invalid UTF-8, so parsing is a strict validity check.
  std::mt19937 rng(7);
  for (int i = 0; i < 3000; ++i) {
    std::string s(rng() % 12, '\0');
    for (char& c : s) c = static_cast<char>(rng());
    std::string out = jsonQuoted(s);
    EXPECT_TRUE(nlohmann::json::accept(out)) << out;
  }
}

std::string write(const std::function<void(JsonWriter&)>& fn) {
  std::string out;
  JsonWriter w(out);
  fn(w);
  return out;
}

TEST(JsonWriter, ObjectsArraysAndCommas) {
  std::string out = write([](JsonWriter& w) {
    w.beginObject();
    w.key("a");
    w.beginArray();
    w.number(int64_t{1});
    w.beginArray();
    w.number(int64_t{2});
    w.number(int64_t{3});
    w.endArray();
    w.beginObject();
    w.endObject();
    w.endArray();
    w.key("b");
    w.beginObject();
    w.key("c");
    w.null();
    w.endObject();
    w.key("d");
    w.boolean(true);
    w.key("e");
    w.boolean(false);
    w.key("f");
    w.raw(R"({"pre":"made"})");
    w.key("q\"k");
    w.string("v");
    w.endObject();
  });
  EXPECT_EQ(out, R"({"a":[1,[2,3],{}],"b":{"c":null},"d":true,"e":false,"f":{"pre":"made"},"q\"k":"v"})");
  EXPECT_TRUE(nlohmann::json::accept(out));
}

TEST(JsonWriter, AppendsToExistingText) {
  std::string out = "prefix:";
  JsonWriter w(out);
  w.beginArray();
  w.endArray();
  EXPECT_EQ(out, "prefix:[]");
}

TEST(JsonWriter, IntegerExtremes) {
  std::string out = write([](JsonWriter& w) {
    w.beginArray();
    w.number(std::numeric_limits<int64_t>::min());
    w.number(std::numeric_limits<int64_t>::max());
    w.number(std::numeric_limits<uint64_t>::max());
    w.number(uint64_t{0});
    w.endArray();
  });
  EXPECT_EQ(out, "[-9223372036854775808,9223372036854775807,18446744073709551615,0]");
}

TEST(JsonWriter, NonFiniteNumbersAreNull) {
  // JSON has no NaN or infinity literals; null is what Python's json and Triton use.
  constexpr double kInf = std::numeric_limits<double>::infinity();
  std::string out = write([&](JsonWriter& w) {
    w.beginArray();
    w.number(std::nan(""));
    w.number(kInf);
    w.number(-kInf);
    w.number(std::nanf(""));
    w.number(static_cast<float>(kInf));
    w.number(static_cast<float>(-kInf));
    w.endArray();
  });
  EXPECT_EQ(out, "[null,null,null,null,null,null]");
}

TEST(JsonWriter, FloatsPrintInTheirOwnShortestForm) {
  auto f = [](float v) { return write([&](JsonWriter& w) { w.number(v); }); };
  auto d = [](double v) { return write([&](JsonWriter& w) { w.number(v); }); };
  EXPECT_EQ(f(0.1f), "0.1");  // not 0.10000000149011612 (the float widened to double)
  EXPECT_EQ(f(6.8f), "6.8");
  EXPECT_EQ(f(-1.5f), "-1.5");
  EXPECT_EQ(f(0.125f), "0.125");
  EXPECT_EQ(d(0.1), "0.1");
  EXPECT_EQ(d(0.1f), "0.10000000149011612");  // the same value through the double overload
  EXPECT_EQ(f(1.0f), "1");
  EXPECT_EQ(f(-0.0f), "-0");
}

TEST(JsonWriter, FloatTextParsesBackToTheSameFloat) {
  // Extremes and random bit patterns: the printed text must be valid JSON and name the value.
  std::vector<float> values = {std::numeric_limits<float>::max(),
                               std::numeric_limits<float>::min(),
                               std::numeric_limits<float>::denorm_min(),
                               -std::numeric_limits<float>::max(),
                               1e-7f,
                               3e38f,
                               16777217.0f};
  std::mt19937 rng(3);
  while (values.size() < 3000) {
    float v = std::bit_cast<float>(static_cast<uint32_t>(rng()));
    if (std::isfinite(v)) values.push_back(v);
  }
  for (float v : values) {
    std::string text = write([&](JsonWriter& w) { w.number(v); });
    auto parsed = nlohmann::json::parse(text);
    ASSERT_TRUE(parsed.is_number()) << text;
    EXPECT_EQ(static_cast<float>(parsed.get<double>()), v) << text;
  }
  for (double v : {std::numeric_limits<double>::max(), std::numeric_limits<double>::denorm_min(),
                   -1e-300, 0.30000000000000004}) {
    std::string text = write([&](JsonWriter& w) { w.number(v); });
    EXPECT_EQ(nlohmann::json::parse(text).get<double>(), v) << text;
  }
}

}  // namespace
}  // namespace kh::protocols
