// The binary tensor extension: a JSON header of Inference-Header-Content-Length bytes followed by
// raw tensor data. The first two bytes of the input choose the header length (so the fuzzer can
// place it anywhere, including past the end); the rest is the body.

#include <cstdint>
#include <optional>
#include <string_view>

#include "fuzz_util.h"
#include "kh/protocols/v2_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  size_t json_length = static_cast<size_t>(data[0]) | (static_cast<size_t>(data[1]) << 8);
  std::string_view body(reinterpret_cast<const char*>(data + 2), size - 2);
  auto fast = kh::protocols::decodeV2Request(body, json_length);
  auto general = kh::protocols::decodeV2RequestWithoutFastPath(body, json_length);
  KH_FUZZ_CHECK(fast.ok() == general.ok(), "fast path and general decoder disagree on validity");
  if (fast.ok()) {
    for (const auto& t : fast->inputs) {
      KH_FUZZ_CHECK(kh::protocols::validateTensorData(t).ok(), "an accepted tensor's data does not match its shape");
    }
    std::vector<bool> binary(fast->inputs.size(), true);
    auto encoded = kh::protocols::encodeV2Request(*fast, binary);
    auto again = kh::protocols::decodeV2Request(encoded.body, encoded.json_length);
    KH_FUZZ_CHECK(again.ok(), "a request we encoded does not decode");
  }
  (void)kh::protocols::decodeV2Response(body, json_length);
  return 0;
}
