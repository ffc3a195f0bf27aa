// V2 JSON decoding: requests and responses, with and without Inference-Header-Content-Length.
// Property: the fast path and the general decoder agree on every body (both refuse, or both
// accept with the same tensors), and nothing crashes.

#include <cstdint>
#include <optional>
#include <string_view>

#include "fuzz_util.h"
#include "kh/protocols/v2_json.h"

namespace {
bool sameTensors(const kh::protocols::InferenceRequest& a, const kh::protocols::InferenceRequest& b) {
  if (a.id != b.id || a.has_id != b.has_id || a.inputs.size() != b.inputs.size()) return false;
  for (size_t i = 0; i < a.inputs.size(); ++i) {
    const auto& x = a.inputs[i];
    const auto& y = b.inputs[i];
    if (x.name != y.name || x.datatype != y.datatype || x.shape != y.shape || x.raw != y.raw ||
        x.bytes != y.bytes) {
      return false;
    }
  }
  return true;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto fast = kh::protocols::decodeV2Request(body, std::nullopt);
  auto general = kh::protocols::decodeV2RequestWithoutFastPath(body, std::nullopt);
  KH_FUZZ_CHECK(fast.ok() == general.ok(), "fast path and general decoder disagree on validity");
  if (fast.ok()) KH_FUZZ_CHECK(sameTensors(*fast, *general), "fast path and general decoder disagree");
  if (fast.ok()) {
    // What was accepted encodes again.
    auto encoded = kh::protocols::encodeV2Request(*fast);
    (void)encoded;
  }
  (void)kh::protocols::decodeV2Response(body, std::nullopt);
  (void)kh::protocols::decodeModelMetadata(body);
  return 0;
}
