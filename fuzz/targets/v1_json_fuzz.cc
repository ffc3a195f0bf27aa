// V1 {"instances": ...} decoding against inputs of several datatypes and shapes.

#include <cstdint>
#include <string_view>

#include "kh/protocols/v1_json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  static const kh::protocols::TensorMetadata kInputs[] = {
      {"input-0", kh::protocols::DataType::kFp32, {-1, 4}},
      {"text", kh::protocols::DataType::kBytes, {-1}},
      {"ids", kh::protocols::DataType::kInt64, {-1, 2, -1}},
      {"flags", kh::protocols::DataType::kBool, {-1, 3}},
      {"half", kh::protocols::DataType::kFp16, {-1, 2}},
  };
  for (const auto& meta : kInputs) {
    auto t = kh::protocols::decodeV1Request(body, meta);
    if (t.ok()) (void)kh::protocols::validateTensorData(*t);
  }
  return 0;
}
