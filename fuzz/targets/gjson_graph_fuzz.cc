// InferenceGraph: the GJSON subset (a path compiled and run on a document) and the graph spec
// (parse, KServe's validation, condition compilation). The input is "path\ndocument" for GJSON
// and the whole input as a graph spec.

#include <cstdint>
#include <string_view>

#include "kh/graph/gjson.h"
#include "kh/graph/spec.h"
#include "nlohmann/json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t nl = input.find('\n');
  std::string_view path = input.substr(0, nl);
  auto compiled = kh::graph::GjsonPath::compile(path);
  nlohmann::json doc = nlohmann::json::parse(nl == std::string_view::npos ? std::string_view{} : input.substr(nl + 1),
                                             nullptr, false);
  if (compiled.ok() && !doc.is_discarded()) (void)compiled->get(doc);
  (void)kh::graph::wildcardMatch(path, input.substr(nl == std::string_view::npos ? size : nl + 1));
  nlohmann::json spec = nlohmann::json::parse(input, nullptr, false);
  if (!spec.is_discarded()) (void)kh::graph::loadGraph("fuzz", spec);
  return 0;
}
