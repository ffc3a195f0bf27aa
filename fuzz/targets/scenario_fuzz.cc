// Scenario files: the parser checks every key and value of arbitrary YAML.

#include <cstdint>
#include <string>

#include "kh/scenario/scenario.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  (void)kh::scenario::parseScenario(text, "fuzz.yaml", "/nonexistent");
  return 0;
}
