// The safetensors parser: a whole file's bytes. What parses must serialize again and parse to
// the same tensors.

#include <cstdint>
#include <string_view>

#include "fuzz_util.h"
#include "safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto file = kh::runtimes::parseSafeTensors(bytes, "fuzz.safetensors");
  if (!file.ok()) return 0;
  for (const auto& [name, t] : file->tensors) (void)t.toFloats();
  auto again = kh::runtimes::serializeSafeTensors(*file);
  if (again.ok()) {
    auto reparsed = kh::runtimes::parseSafeTensors(*again, "again");
    KH_FUZZ_CHECK(reparsed.ok(), "a file we serialized does not parse");
    KH_FUZZ_CHECK(reparsed->tensors.size() == file->tensors.size(), "tensors lost in a round trip");
  }
  return 0;
}
