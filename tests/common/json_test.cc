// JSON text in and out for values from outside the process: no throw on bytes that are not UTF-8,
// no stack overflow on deep nesting.
#include "kh/common/json.h"

#include <gtest/gtest.h>

#include <string>

namespace kh::common {
namespace {

using nlohmann::json;

std::string nested(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

TEST(JsonText, BytesThatAreNotUtf8BecomeTheReplacementCharacter) {
  json value = {{"host", "a\xff" "b"}};
  // Why jsonText exists: nlohmann's own dump() throws here (type_error.316).
  EXPECT_THROW((void)value.dump(), json::type_error);
  EXPECT_EQ(jsonText(value), "{\"host\":\"a\xEF\xBF\xBD" "b\"}");
  EXPECT_EQ(jsonText(json{{"a", 1}}, 1), "{\n \"a\": 1\n}");
}

TEST(ParseJson, NestingIsLimited) {
  EXPECT_TRUE(parseJson(nested(kMaxJsonDepth)).ok());
  auto deep = parseJson(nested(kMaxJsonDepth + 1));
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(deep.status().message(), "JSON nested deeper than 1000 levels");
  // A million levels: refused before nlohmann builds anything that recursion could overflow on.
  EXPECT_FALSE(parseJson(nested(1000000)).ok());
  EXPECT_FALSE(parseJson(std::string(1000000, '{')).ok());
}

TEST(ParseJson, BracketsInStringsDoNotCount) {
  std::string brackets(5000, '[');
  auto in_string = parseJson("[\"" + brackets + "\", \"\\\"" + brackets + "\"]");
  ASSERT_TRUE(in_string.ok()) << in_string.status();
  EXPECT_EQ((*in_string)[0].get<std::string>().size(), 5000u);
  EXPECT_EQ((*in_string)[1].get<std::string>(), "\"" + brackets);
  // Three levels: the object and two arrays; the braces in the string do not close any.
  EXPECT_TRUE(jsonNestingWithin("{\"a\": \"}}}}\", \"b\": [[1]]}", 3));
  EXPECT_FALSE(jsonNestingWithin("{\"a\": \"}}}}\", \"b\": [[1]]}", 2));
}

TEST(ParseJson, ErrorsAreValuesWithNlohmannsMessage) {
  auto syntax = parseJson("{\"a\": }");
  ASSERT_FALSE(syntax.ok());
  EXPECT_NE(syntax.status().message().find("parse error"), std::string::npos) << syntax.status();
  EXPECT_FALSE(parseJson("1e400").ok());  // out_of_range, not a parse_error
  EXPECT_FALSE(parseJson("\"\xff\"").ok());  // the parser checks UTF-8 in its input
  EXPECT_FALSE(parseJson("").ok());
  auto ok = parseJson(" {\"a\": [1, 2.5, \"x\", null, true]} ");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ((*ok)["a"][1], 2.5);
}

}  // namespace
}  // namespace kh::common
