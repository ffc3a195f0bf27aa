// Conformance results as text lines, JUnit XML and JSON.

#include "kh/common/strings.h"
#include "kh/conformance/conformance.h"

namespace kh::conformance {
namespace {

const char* outcomeName(Outcome o) {
  switch (o) {
    case Outcome::kPass: return "PASS";
    case Outcome::kFail: return "FAIL";
    case Outcome::kSkip: return "SKIP";
  }
  return "?";
}

std::string xmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // XML 1.0 forbids most control characters even when escaped.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') {
          out += ' ';
        } else {
          out += c;
        }
    }
  }
  return out;
}

}  // namespace

std::string formatResult(const CaseResult& r) {
  const Case& c = *r.test;
  std::string line = common::strCat(outcomeName(r.outcome), "  ", c.id, "  [", c.tag, " ",
                                    c.level, " ", c.section, " ", c.protocol, "] ", c.title);
  if (r.outcome != Outcome::kPass && !r.detail.empty()) line += common::strCat("\n      ", r.detail);
  return line;
}

std::string junitXml(const Summary& summary, const RunOptions& options) {
  // One <testsuite> per suite file, in first-seen order.
  std::vector<std::string> suites;
  for (const auto& r : summary.results) {
    if (std::find(suites.begin(), suites.end(), r.test->suite) == suites.end()) {
      suites.push_back(r.test->suite);
    }
  }
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  double total_time = 0;
  for (const auto& r : summary.results) total_time += r.seconds;
  out += common::strCat("<testsuites name=\"kserve-harness conformance\" tests=\"",
                        summary.results.size(), "\" failures=\"", summary.failed,
                        "\" skipped=\"", summary.skipped, "\" time=\"", total_time, "\">\n");
  for (const auto& suite : suites) {
    int tests = 0, failures = 0, skipped = 0;
    double time = 0;
    for (const auto& r : summary.results) {
      if (r.test->suite != suite) continue;
      ++tests;
      failures += r.outcome == Outcome::kFail;
      skipped += r.outcome == Outcome::kSkip;
      time += r.seconds;
    }
    out += common::strCat("  <testsuite name=\"", xmlEscape(suite), "\" tests=\"", tests,
                          "\" failures=\"", failures, "\" skipped=\"", skipped, "\" time=\"",
                          time, "\">\n");
    out += common::strCat("    <properties><property name=\"model\" value=\"",
                          xmlEscape(options.model), "\"/><property name=\"target\" value=\"",
                          xmlEscape(common::strCat(options.http_host, ":", options.http_port)),
                          "\"/></properties>\n");
    for (const auto& r : summary.results) {
      if (r.test->suite != suite) continue;
      const Case& c = *r.test;
      out += common::strCat("    <testcase classname=\"", xmlEscape(suite), "\" name=\"",
                            xmlEscape(c.id), "\" time=\"", r.seconds, "\">\n");
      out += common::strCat("      <properties><property name=\"tag\" value=\"", c.tag,
                            "\"/><property name=\"level\" value=\"", c.level,
                            "\"/><property name=\"section\" value=\"", xmlEscape(c.section),
                            "\"/></properties>\n");
      if (r.outcome == Outcome::kFail) {
        out += common::strCat("      <failure message=\"", xmlEscape(r.detail.substr(0, 500)),
                              "\" type=\"", c.level, "\">", xmlEscape(r.detail),
                              "</failure>\n");
      } else if (r.outcome == Outcome::kSkip) {
        out += common::strCat("      <skipped message=\"", xmlEscape(r.detail), "\"/>\n");
      }
      out += "    </testcase>\n";
    }
    out += "  </testsuite>\n";
  }
  out += "</testsuites>\n";
  return out;
}

nlohmann::json resultsJson(const Summary& summary, const RunOptions& options) {
  nlohmann::json cases = nlohmann::json::array();
  for (const auto& r : summary.results) {
    const Case& c = *r.test;
    cases.push_back({{"id", c.id},
                     {"title", c.title},
                     {"suite", c.suite},
                     {"protocol", c.protocol},
                     {"section", c.section},
                     {"tag", c.tag},
                     {"level", c.level},
                     {"result", outcomeName(r.outcome)},
                     {"detail", r.detail},
                     {"seconds", r.seconds}});
  }
  return {{"schema", "kserve-harness/conformance/v1"},
          {"target", {{"http", common::strCat("http://", options.http_host, ":", options.http_port)},
                      {"grpc", options.grpc_target.value_or("")}}},
          {"model", options.model},
          {"summary",
           {{"passed", summary.passed},
            {"failed", summary.failed},
            {"skipped", summary.skipped},
            {"must_failed", summary.must_failed},
            {"conformant", summary.must_failed == 0},
            {"notice", summary.notice}}},
          {"cases", cases}};
}

}  // namespace kh::conformance
