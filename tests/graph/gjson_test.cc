// The GJSON subset against the examples of GJSON's own documentation (README.md and SYNTAX.md of
// tidwall/gjson) that fall inside it, plus KServe's conditions; the ones outside it are refused
// at compile time with the position of the problem.

#include "kh/graph/gjson.h"

#include <gtest/gtest.h>

namespace kh::graph {
namespace {

using nlohmann::json;

const json& doc() {
  static const json d = json::parse(R"({
    "name": {"first": "Tom", "last": "Anderson"},
    "age": 37,
    "children": ["Sara", "Alex", "Jack"],
    "fav.movie": "Deer Hunter",
    "friends": [
      {"first": "Dale", "last": "Murphy", "age": 44, "nets": ["ig", "fb", "tw"]},
      {"first": "Roger", "last": "Craig", "age": 68, "nets": ["fb", "tw"]},
      {"first": "Jane", "last": "Murphy", "age": 47, "nets": ["ig", "tw"]}
    ]
  })");
  return d;
}

std::optional<json> get(const std::string& path, const json& d = doc()) {
  auto p = GjsonPath::compile(path);
  EXPECT_TRUE(p.ok()) << path << ": " << p.status();
  if (!p.ok()) return std::nullopt;
  return p->get(d);
}

struct Example {
  const char* path;
  const char* expected;  // JSON; nullptr: selects nothing
};

class DocumentationExamples : public ::testing::TestWithParam<Example> {};

TEST_P(DocumentationExamples, SelectWhatGjsonSelects) {
  auto got = get(GetParam().path);
  if (GetParam().expected == nullptr) {
    EXPECT_FALSE(got.has_value()) << GetParam().path << " selected " << got->dump();
  } else {
    ASSERT_TRUE(got.has_value()) << GetParam().path;
    EXPECT_EQ(*got, json::parse(GetParam().expected)) << GetParam().path;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Gjson, DocumentationExamples,
    ::testing::Values(
        // Path structure (SYNTAX.md "Path structure", README "Path Syntax").
        Example{"name.last", R"("Anderson")"}, Example{"age", "37"},
        Example{"children", R"(["Sara","Alex","Jack"])"}, Example{"children.#", "3"},
        Example{"children.1", R"("Alex")"}, Example{"fav\\.movie", R"("Deer Hunter")"},
        Example{"friends.#.first", R"(["Dale","Roger","Jane"])"}, Example{"friends.1.last", R"("Craig")"},
        // Queries (SYNTAX.md "Queries").
        Example{R"(friends.#(last=="Murphy").first)", R"("Dale")"},
        Example{R"(friends.#(last=="Murphy")#.first)", R"(["Dale","Jane"])"},
        Example{"friends.#(age>45)#.last", R"(["Craig","Murphy"])"},
        Example{R"(friends.#(first%"D*").last)", R"("Murphy")"},
        Example{R"(friends.#(first!%"D*").last)", R"("Craig")"},
        Example{R"(friends.#(nets.#(=="fb"))#.first)", R"(["Dale","Roger"])"},
        Example{R"(children.#(!%"*a*"))", R"("Alex")"}, Example{R"(children.#(%"*a*")#)", R"(["Sara","Jack"])"},
        Example{"friends.#(age>=47)#.first", R"(["Roger","Jane"])"},
        Example{"friends.#(age<=44)#.first", R"(["Dale"])"}, Example{"friends.#(age<44)#.first", "[]"},
        Example{R"(friends.#(last!="Murphy").first)", R"("Roger")"},
        Example{R"(friends.#(last=="Nobody").first)", nullptr},
        // Single "=" is the same query (gjson accepts it).
        Example{R"(friends.#(last="Murphy").age)", "44"},
        // Missing paths select nothing.
        Example{"name.middle", nullptr}, Example{"children.3", nullptr}, Example{"age.#", nullptr},
        // Multipaths and @this (SYNTAX.md "Multipaths", "Modifiers").
        Example{"[name.first,age,children.0]", R"(["Tom",37,"Sara"])"}, Example{"@this.name.first", R"("Tom")"},
        Example{"[@this].#.age", "[37]"}));

TEST(Gjson, ThisIsTheWholeDocument) {
  auto got = get("@this");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(*got, doc());
}

TEST(Gjson, KServeConditions) {
  // The forms KServe's docs and e2e tests use.
  json picker = json::parse(R"({"decision_picker":"ERROR","instances":[[6.8,2.8,4.8,1.4]]})");
  EXPECT_TRUE(GjsonPath::compile("[@this].#(decision_picker==ERROR)")->exists(picker));
  EXPECT_FALSE(GjsonPath::compile("[@this].#(decision_picker==SUCCESS)")->exists(picker));
  EXPECT_TRUE(GjsonPath::compile(R"([@this].#(decision_picker=="ERROR"))")->exists(picker));
  json dog = json::parse(R"({"predictions":["dog","cat"]})");
  EXPECT_TRUE(GjsonPath::compile(R"([@this].#(predictions.0=="dog"))")->exists(dog));
  EXPECT_FALSE(GjsonPath::compile(R"([@this].#(predictions.0=="cat"))")->exists(dog));
  json servers = json::parse(R"({"instances":[{"strval":"my-red-server-1"},{"strval":"blue"}]})");
  EXPECT_TRUE(GjsonPath::compile("instances.#(strval%*red-server*)")->exists(servers));
  EXPECT_FALSE(GjsonPath::compile("instances.#(strval%*green-server*)")->exists(servers));
  // A plain path as a condition: exists or not.
  EXPECT_TRUE(GjsonPath::compile("predictions")->exists(dog));
  EXPECT_FALSE(GjsonPath::compile("instances")->exists(dog));
}

TEST(Gjson, NumbersAndBooleansCompareByValue) {
  json d = json::parse(R"({"a":[{"v":1.5,"ok":true,"n":null},{"v":3,"ok":false}]})");
  EXPECT_EQ(*GjsonPath::compile("a.#(v>2).v")->get(d), json(3));
  EXPECT_EQ(*GjsonPath::compile("a.#(v==1.5).ok")->get(d), json(true));
  EXPECT_EQ(*GjsonPath::compile("a.#(ok==false).v")->get(d), json(3));
  EXPECT_EQ(*GjsonPath::compile("a.#(n==null).v")->get(d), json(1.5));
  EXPECT_EQ(*GjsonPath::compile("a.#(v)#.v")->get(d), json::parse("[1.5,3]"));
}

TEST(Gjson, EscapedCharactersInKeys) {
  json d = json::parse(R"({"a.b":{"c*d":1,"e?":2,"#":3}})");
  EXPECT_EQ(*get("a\\.b.c\\*d", d), json(1));
  EXPECT_EQ(*get("a\\.b.e\\?", d), json(2));
  EXPECT_EQ(*get("a\\.b.\\#", d), json(3));
}

TEST(Gjson, WildcardMatch) {
  EXPECT_TRUE(wildcardMatch("Dale", "D*"));
  EXPECT_TRUE(wildcardMatch("Dale", "D?le"));
  EXPECT_TRUE(wildcardMatch("", "*"));
  EXPECT_FALSE(wildcardMatch("Dale", "D?e"));
  EXPECT_TRUE(wildcardMatch("my-red-server-1", "*red-server*"));
  EXPECT_FALSE(wildcardMatch("Roger", "D*"));
}

TEST(Gjson, APathOfMoreThan256SegmentsIsRefusedNotACrash) {
  // The fuzzer's find: thousands of segments overflowed the stack of the recursive parser.
  auto chain = [](int segments) {
    std::string path = "a";
    for (int i = 1; i < segments; ++i) path += ".a";
    return path;
  };
  EXPECT_TRUE(GjsonPath::compile(chain(256)).ok());
  auto p = GjsonPath::compile(chain(20000));
  ASSERT_FALSE(p.ok());
  EXPECT_NE(std::string(p.status().message()).find("a path of more than 256 segments at offset 512"), std::string::npos);
  // Nested queries count too.
  std::string nested;
  for (int i = 0; i < 5000; ++i) nested += "#(";
  nested += "a";
  for (int i = 0; i < 5000; ++i) nested += ")";
  auto q = GjsonPath::compile(nested);
  ASSERT_FALSE(q.ok());
  EXPECT_NE(std::string(q.status().message()).find("more than 256 segments"), std::string::npos) << q.status();
}

struct Refused {
  const char* path;
  const char* message;
};

class OutsideTheSubset : public ::testing::TestWithParam<Refused> {};

TEST_P(OutsideTheSubset, IsRefusedWithThePosition) {
  auto p = GjsonPath::compile(GetParam().path);
  ASSERT_FALSE(p.ok()) << GetParam().path;
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(p.status().message()), GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    Gjson, OutsideTheSubset,
    ::testing::Values(
        // Key wildcards (SYNTAX.md "Wildcards": child*.2, c?ildren.0).
        Refused{"child*.2", "gjson path 'child*.2': key wildcards are not in the subset at offset 5"},
        Refused{"c?ildren.0", "gjson path 'c?ildren.0': key wildcards are not in the subset at offset 1"},
        // Pipes, other modifiers, multipath objects, literals.
        Refused{"friends|0.first", "gjson path 'friends|0.first': unexpected '|' at offset 7"},
        Refused{"children.@reverse", "gjson path 'children.@reverse': the modifier '@reverse' is not in the subset at offset 9"},
        Refused{"{name.first,age}", "gjson path '{name.first,age}': unexpected '{' at offset 0"},
        Refused{"!true", "gjson path '!true': unexpected '!' at offset 0"},
        // Malformed paths.
        Refused{R"(friends.#(last=="Murphy")", R"(gjson path 'friends.#(last=="Murphy"': '#(' without ')' at offset 8)"},
        Refused{"name.", "gjson path 'name.': a path ending in '.' at offset 4"},
        Refused{"name..last", "gjson path 'name..last': an empty key at offset 5"},
        Refused{"", "gjson path '': an empty path at offset 0"},
        Refused{"[@this", "gjson path '[@this': '[' without ']' at offset 0"},
        Refused{R"(a.#(b=="x))", R"(gjson path 'a.#(b=="x)': '#(' without ')' at offset 2)"}));

}  // namespace
}  // namespace kh::graph
