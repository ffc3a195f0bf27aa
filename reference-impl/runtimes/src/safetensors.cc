#include "safetensors.h"

#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "kh/common/strings.h"
#include "kh/protocols/tensor.h"
#include "nlohmann/json.hpp"

namespace kh::runtimes {
namespace {

using nlohmann::json;

// A header longer than this is refused before anything is allocated for it.
constexpr uint64_t kMaxHeaderBytes = 100 * 1024 * 1024;

absl::Status invalid(const std::string& name, std::string_view what) {
  return absl::InvalidArgumentError(common::strCat(name, ": ", what));
}

}  // namespace

size_t safeTensorDtypeSize(const std::string& dtype) {
  static const std::map<std::string, size_t> kSizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"I16", 2},
      {"U16", 2},  {"F16", 2}, {"BF16", 2}, {"I32", 4},    {"U32", 4},     {"F32", 4},
      {"F64", 8},  {"I64", 8}, {"U64", 8}};
  auto it = kSizes.find(dtype);
  return it == kSizes.end() ? 0 : it->second;
}

absl::StatusOr<std::vector<float>> SafeTensor::toFloats() const {
  size_t size = safeTensorDtypeSize(dtype);
  size_t n = size ? bytes.size() / size : 0;
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) {
    const char* p = bytes.data() + i * size;
    if (dtype == "F32") {
      std::memcpy(&out[i], p, 4);
    } else if (dtype == "F16" || dtype == "BF16") {
      uint16_t bits;
      std::memcpy(&bits, p, 2);
      out[i] = dtype == "F16" ? protocols::halfToFloat(bits) : protocols::bf16ToFloat(bits);
    } else if (dtype == "F64") {
      double d;
      std::memcpy(&d, p, 8);
      out[i] = static_cast<float>(d);
    } else {
      return absl::InvalidArgumentError(
          common::strCat("tensor dtype ", dtype, " is not a floating-point type"));
    }
  }
  return out;
}

absl::StatusOr<SafeTensorsFile> parseSafeTensors(std::string_view data, const std::string& name) {
  if (data.size() < 8) return invalid(name, "shorter than the 8-byte header length");
  uint64_t header_len;
  std::memcpy(&header_len, data.data(), 8);
  if (header_len > kMaxHeaderBytes) {
    return invalid(name, common::strCat("header length ", header_len, " is implausibly large"));
  }
  if (header_len > data.size() - 8) {
    return invalid(name, common::strCat("header length ", header_len, " runs past the end of the ",
                                        data.size(), "-byte file"));
  }
  std::string_view header = data.substr(8, header_len);
  std::string_view payload = data.substr(8 + header_len);
  json root;
  try {
    root = json::parse(header.begin(), header.end());
  } catch (const json::exception& e) {
    return invalid(name, common::strCat("header is not valid JSON: ", e.what()));
  }
  if (!root.is_object()) return invalid(name, "header must be a JSON object");
  SafeTensorsFile file;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& [key, value] : root.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) return invalid(name, "__metadata__ must be an object");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) return invalid(name, "__metadata__ values must be strings");
        file.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    std::string where = common::strCat("tensor '", key, "'");
    if (!value.is_object() || !value.contains("dtype") || !value["dtype"].is_string() ||
        !value.contains("shape") || !value["shape"].is_array() ||
        !value.contains("data_offsets") || !value["data_offsets"].is_array() ||
        value["data_offsets"].size() != 2) {
      return invalid(name, common::strCat(where, " needs dtype, shape and data_offsets [begin, end]"));
    }
    SafeTensor t;
    t.dtype = value["dtype"].get<std::string>();
    size_t elem = safeTensorDtypeSize(t.dtype);
    if (elem == 0) return invalid(name, common::strCat(where, " has unknown dtype '", t.dtype, "'"));
    uint64_t count = 1;
    for (const auto& d : value["shape"]) {
      if (!d.is_number_unsigned()) {
        return invalid(name, common::strCat(where, " shape must hold non-negative integers"));
      }
      uint64_t dim = d.get<uint64_t>();
      if (dim != 0 && count > std::numeric_limits<uint64_t>::max() / dim) {
        return invalid(name, common::strCat(where, " shape overflows"));
      }
      count *= dim;
      t.shape.push_back(static_cast<int64_t>(dim));
    }
    const auto& offsets = value["data_offsets"];
    if (!offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned()) {
      return invalid(name, common::strCat(where, " data_offsets must be non-negative integers"));
    }
    uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
    if (begin > end || end > payload.size()) {
      return invalid(name, common::strCat(where, " data_offsets [", begin, ", ", end,
                                          "] fall outside the ", payload.size(),
                                          " bytes of data"));
    }
    if (count > std::numeric_limits<uint64_t>::max() / elem || end - begin != count * elem) {
      return invalid(name, common::strCat(where, " holds ", end - begin, " bytes but ", t.dtype,
                                          " x ", count, " elements needs ", count * elem));
    }
    ranges.emplace_back(begin, end);
    t.bytes.assign(payload.substr(begin, end - begin));
    file.tensors.emplace(key, std::move(t));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second) {
      return invalid(name, "tensor data ranges overlap");
    }
  }
  return file;
}

absl::StatusOr<SafeTensorsFile> readSafeTensors(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(common::strCat("cannot open ", path.string()));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return parseSafeTensors(buffer.str(), path.string());
}

std::string serializeSafeTensors(const SafeTensorsFile& file) {
  json header = json::object();
  std::string payload;
  for (const auto& [name, t] : file.tensors) {
    header[name] = {{"dtype", t.dtype},
                    {"shape", t.shape},
                    {"data_offsets", {payload.size(), payload.size() + t.bytes.size()}}};
    payload += t.bytes;
  }
  if (!file.metadata.empty()) header["__metadata__"] = file.metadata;
  std::string text = header.dump();
  // The format pads the header with spaces to an 8-byte boundary.
  while (text.size() % 8 != 0) text.push_back(' ');
  uint64_t len = text.size();
  std::string out(reinterpret_cast<const char*>(&len), 8);
  out += text;
  out += payload;
  return out;
}

absl::Status writeSafeTensors(const std::filesystem::path& path, const SafeTensorsFile& file) {
  std::ofstream out(path, std::ios::binary);
  std::string bytes = serializeSafeTensors(file);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) return absl::InternalError(common::strCat("cannot write ", path.string()));
  return absl::OkStatus();
}

}  // namespace kh::runtimes
