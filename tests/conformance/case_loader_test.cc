// Suite files: validation with file:line:column, datatype matrices, the shipped suites load.

#include <fstream>
#include <set>
#include <sstream>

#include "gtest/gtest.h"
#include "kh/common/strings.h"
#include "kh/conformance/conformance.h"

namespace kh::conformance {
namespace {

std::string message(const absl::Status& s) { return std::string(common::toStd(s.message())); }

TEST(CaseLoader, ShippedSuitesLoadWithEnoughBadInputCases) {
  auto cases = loadCases(KH_TEST_SOURCE_DIR "/protocols/conformance");
  ASSERT_TRUE(cases.ok()) << cases.status();
  int bad = 0, v1 = 0, v2 = 0, grpc = 0;
  for (const auto& c : *cases) {
    if (c.id.find("-BAD-") != std::string::npos) ++bad;
    v1 += c.protocol == "v1";
    v2 += c.protocol == "v2";
    grpc += c.protocol == "grpc";
    EXPECT_TRUE(c.tag == "SPEC" || c.tag == "REF") << c.id;
  }
  EXPECT_GE(bad, 40);
  EXPECT_GT(v1, 10);
  EXPECT_GT(v2, 40);
  EXPECT_GT(grpc, 20);
}

TEST(CaseLoader, GraphCasesNameTheShippedGraphs) {
  auto cases = loadCases(KH_TEST_SOURCE_DIR "/protocols/conformance");
  ASSERT_TRUE(cases.ok()) << cases.status();
  // Every graph a case names is defined in protocols/conformance/graphs/.
  std::string manifests;
  for (const char* file : {"sequence.yaml", "switch.yaml", "splitter.yaml", "ensemble.yaml"}) {
    std::ifstream in(std::string(KH_TEST_SOURCE_DIR "/protocols/conformance/graphs/") + file);
    std::stringstream text;
    text << in.rdbuf();
    manifests += text.str();
  }
  int graph_cases = 0;
  std::set<std::string> graphs;
  for (const auto& c : *cases) {
    if (c.protocol != "graph") continue;
    ++graph_cases;
    graphs.insert(c.graph);
    EXPECT_NE(manifests.find("  name: " + c.graph + "\n"), std::string::npos) << c.id << " names " << c.graph;
  }
  EXPECT_GE(graph_cases, 15);
  EXPECT_GE(graphs.size(), 13u);
}

TEST(CaseLoader, AGraphCaseNeedsItsGraph) {
  auto r = parseSuite("protocol: graph\ncases:\n  - id: G\n    section: '5'\n    tag: REF\n    level: MUST\n"
                      "    request: {method: POST, path: /}\n    expect: {status: 200}\n",
                      "g.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(message(r.status()).find("g.yaml:3:"), std::string::npos) << r.status();
  EXPECT_NE(message(r.status()).find("graph case 'G' needs a scalar 'graph'"), std::string::npos) << r.status();
}

TEST(CaseLoader, YamlSyntaxErrorNamesLineAndColumn) {
  auto r = parseSuite("protocol: v2\ncases:\n  - id: A\n    title: a: b: c\n", "bad.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(message(r.status()).find("bad.yaml:4:"), std::string::npos) << r.status();
}

TEST(CaseLoader, MissingFieldsAreReportedWithPosition) {
  auto r = parseSuite(
      "protocol: v2\ncases:\n  - id: A\n    section: '2'\n    tag: SPEC\n    level: MUST\n"
      "    request: {method: GET, path: /}\n",
      "f.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(message(r.status()).find("f.yaml:3:"), std::string::npos) << r.status();
  EXPECT_NE(message(r.status()).find("expect"), std::string::npos);

  r = parseSuite("protocol: v9\ncases: []\n", "p.yaml");
  EXPECT_NE(message(r.status()).find("v1, v2, grpc or graph"), std::string::npos);

  r = parseSuite(
      "protocol: v2\ncases:\n  - {id: A, section: '2', tag: MAYBE, level: MUST, "
      "request: {}, expect: {}}\n",
      "t.yaml");
  EXPECT_NE(message(r.status()).find("SPEC or REF"), std::string::npos);
}

TEST(CaseLoader, DuplicateIdsAreRejected) {
  auto r = parseSuite(
      "protocol: v2\ncases:\n"
      "  - {id: A, section: '2', tag: SPEC, level: MUST, request: {}, expect: {}}\n"
      "  - {id: A, section: '2', tag: SPEC, level: MUST, request: {}, expect: {}}\n",
      "d.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(message(r.status()).find("duplicate"), std::string::npos);
}

TEST(CaseLoader, DatatypeMatrixExpandsToEveryDatatype) {
  auto r = parseSuite(
      "protocol: v2\ncases:\n"
      "  - id: M\n    foreach_datatype: true\n    section: '2.2'\n    tag: SPEC\n"
      "    level: SHOULD\n    request: {json: {datatype: '${dt}'}}\n    expect: {status: 400}\n",
      "m.yaml");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 14u);
  EXPECT_EQ((*r)[0].id, "M-BOOL");
  EXPECT_EQ((*r)[13].id, "M-BYTES");
  EXPECT_EQ((*r)[11].spec["request"]["json"]["datatype"], "FP32");
}

TEST(CaseLoader, ScalarsAreTypedUnlessQuoted) {
  auto r = parseSuite(
      "protocol: v2\ncases:\n"
      "  - {id: A, section: '2', tag: SPEC, level: MUST, request: {json: {a: 1, b: '1', c: true, "
      "d: 'true', e: 1.5, f: null}}, expect: {}}\n",
      "s.yaml");
  ASSERT_TRUE(r.ok()) << r.status();
  const auto& j = (*r)[0].spec["request"]["json"];
  EXPECT_TRUE(j["a"].is_number_integer());
  EXPECT_TRUE(j["b"].is_string());
  EXPECT_TRUE(j["c"].is_boolean());
  EXPECT_TRUE(j["d"].is_string());
  EXPECT_TRUE(j["e"].is_number_float());
  EXPECT_TRUE(j["f"].is_null());
}

}  // namespace
}  // namespace kh::conformance
