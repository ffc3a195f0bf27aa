// The dense runtime's config.json against fixed weights (the committed dense-iris shapes, and an
// FP16 copy): the config's layers, names, shapes and datatypes are the fuzzed part. A model that
// loads must predict a batch without error.

#include <cstdint>
#include <string>

#include "dense_model.h"
#include "fuzz_util.h"
#include "safetensors.h"

namespace {
const kh::runtimes::SafeTensorsFile& weights() {
  static const kh::runtimes::SafeTensorsFile file = [] {
    kh::runtimes::SafeTensorsFile f;
    auto floats = [](size_t n, float scale) {
      std::string bytes;
      for (size_t i = 0; i < n; ++i) {
        float v = scale * static_cast<float>(static_cast<int>(i % 7) - 3);
        bytes.append(reinterpret_cast<const char*>(&v), 4);
      }
      return bytes;
    };
    f.tensors["fc1.weight"] = {"F32", {8, 4}, floats(32, 0.1f)};
    f.tensors["fc1.bias"] = {"F32", {8}, floats(8, 0.01f)};
    f.tensors["fc2.weight"] = {"F32", {3, 8}, floats(24, 0.1f)};
    f.tensors["fc2.bias"] = {"F32", {3}, floats(3, 0.01f)};
    std::string half;
    for (int i = 0; i < 12; ++i) half += std::string("\x00\x3c", 2);  // 1.0 in FP16
    f.tensors["h.weight"] = {"F16", {3, 4}, half};
    f.tensors["h.bias"] = {"F16", {3}, half.substr(0, 6)};
    f.tensors["odd"] = {"I64", {2}, std::string(16, '\0')};
    return f;
  }();
  return file;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string config(reinterpret_cast<const char*>(data), size);
  kh::runtimes::LoadOptions cpu;
  cpu.device = "cpu";
  auto model = kh::runtimes::buildDenseModel("fuzz", config, weights(), "config.json", cpu);
  if (!model.ok()) return 0;
  const auto& in = (*model)->metadata().inputs.at(0);
  int64_t width = in.shape.at(1);
  if (width > 4096) return 0;
  std::vector<float> x(static_cast<size_t>(2 * width), 0.5f);
  std::vector<kh::protocols::Tensor> inputs;
  inputs.push_back(kh::protocols::Tensor::fromValues<float>(in.name, kh::protocols::DataType::kFp32, {2, width}, x));
  auto out = (*model)->predict(inputs);
  KH_FUZZ_CHECK(out.ok(), "a dense model that loaded cannot predict FP32 rows of its width");
  return 0;
}
