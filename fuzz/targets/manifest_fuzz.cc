// KServe manifests: YAML (or JSON), one or several documents, then KServe's validation of every
// InferenceService and ServingRuntime that parsed.

#include <cstdint>
#include <string>

#include "kh/controller/resources.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto resources = kh::controller::parseManifests(text, "fuzz.yaml");
  if (!resources.ok()) return 0;
  for (const auto& r : *resources) {
    if (r.inference_service) (void)kh::controller::validateInferenceService(*r.inference_service);
    if (r.serving_runtime) (void)kh::controller::validateServingRuntime(*r.serving_runtime);
  }
  return 0;
}
