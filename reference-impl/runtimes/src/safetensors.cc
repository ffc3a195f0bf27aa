#include "safetensors.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>

#include "kh/common/json.h"
#include "kh/common/strings.h"
#include "kh/protocols/tensor.h"
#include "nlohmann/json.hpp"

namespace kh::runtimes {
namespace {

using nlohmann::json;

constexpr std::string_view kMetadataKey = "__metadata__";

absl::Status invalid(std::string_view name, std::string_view what) {
  return absl::InvalidArgumentError(common::strCat(name, ": ", what));
}

struct Range {
  uint64_t begin;
  uint64_t end;
  std::string tensor;
  bool operator<(const Range& o) const { return begin != o.begin ? begin < o.begin : end < o.end; }
};

// Parses the JSON header, refusing duplicate top-level keys: nlohmann keeps the last one
// silently, which would let two tensors claim one name.
absl::StatusOr<json> parseHeader(std::string_view header, std::string_view name) {
  std::set<std::string> keys;
  std::string duplicate;
  json::parser_callback_t callback = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 && duplicate.empty() &&
        !keys.insert(parsed.get<std::string>()).second) {
      duplicate = parsed.get<std::string>();
    }
    return true;
  };
  json root;
  try {
    root = json::parse(header.begin(), header.end(), callback);
  } catch (const json::exception& e) {
    return invalid(name, common::strCat("header is not valid JSON: ", e.what()));
  }
  if (!root.is_object()) return invalid(name, "header must be a JSON object");
  if (!duplicate.empty()) {
    return invalid(name, common::strCat("header names '", duplicate, "' twice"));
  }
  return root;
}

absl::Status parseMetadata(const json& value, std::string_view name, SafeTensorsFile& file) {
  if (!value.is_object()) return invalid(name, "__metadata__ must be an object");
  for (const auto& [key, item] : value.items()) {
    if (!item.is_string()) {
      return invalid(name, common::strCat("__metadata__ value '", key, "' is not a string"));
    }
    file.metadata[key] = item.get<std::string>();
  }
  return absl::OkStatus();
}

// Validates one header entry and copies its bytes out of `payload`.
absl::StatusOr<SafeTensor> parseEntry(const std::string& key, const json& value,
                                      std::string_view payload, std::string_view name,
                                      std::vector<Range>& ranges) {
  std::string where = common::strCat("tensor '", key, "'");
  if (!value.is_object() || !value.contains("dtype") || !value["dtype"].is_string() ||
      !value.contains("shape") || !value["shape"].is_array() || !value.contains("data_offsets") ||
      !value["data_offsets"].is_array() || value["data_offsets"].size() != 2) {
    return invalid(name,
                   common::strCat(where, " needs dtype, shape and data_offsets [begin, end]"));
  }
  SafeTensor t;
  t.dtype = value["dtype"].get<std::string>();
  uint64_t elem = safeTensorDtypeSize(t.dtype);
  if (elem == 0) return invalid(name, common::strCat(where, " has unknown dtype '", t.dtype, "'"));
  // Elements times element size, overflow-checked: a hostile shape must not wrap around.
  uint64_t bytes = elem;
  for (const auto& d : value["shape"]) {
    if (!d.is_number_unsigned() ||
        d.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return invalid(name, common::strCat(where, " shape must hold non-negative integers, got ",
                                          common::jsonText(value["shape"])));
    }
    uint64_t dim = d.get<uint64_t>();
    if (dim != 0 && bytes > std::numeric_limits<uint64_t>::max() / dim) {
      return invalid(name, common::strCat(where, " shape ", common::jsonText(value["shape"]), " overflows"));
    }
    bytes *= dim;
    t.shape.push_back(static_cast<int64_t>(dim));
  }
  const auto& offsets = value["data_offsets"];
  if (!offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned()) {
    return invalid(name, common::strCat(where, " data_offsets must be non-negative integers, got ",
                                        common::jsonText(offsets)));
  }
  uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
  if (begin > end || end > payload.size()) {
    return invalid(name, common::strCat(where, " data_offsets [", begin, ", ", end,
                                        "] fall outside the ", payload.size(), " bytes of data"));
  }
  if (end - begin != bytes) {
    return invalid(name, common::strCat(where, " holds ", end - begin, " bytes but ", t.dtype, " ",
                                        protocols::shapeToString(t.shape), " needs ", bytes));
  }
  ranges.push_back({begin, end, key});
  t.bytes.assign(payload.substr(begin, end - begin));
  return t;
}

// The byte ranges must tile [0, payload_size) exactly, as the reference implementation demands.
absl::Status checkTiling(std::vector<Range>& ranges, uint64_t payload_size, std::string_view name) {
  std::sort(ranges.begin(), ranges.end());
  uint64_t expected = 0;
  const Range* previous = nullptr;
  for (const Range& r : ranges) {
    if (r.begin < expected) {
      return invalid(name,
                     common::strCat("tensor data ranges overlap: '", previous->tensor, "' ends at ",
                                    expected, " but '", r.tensor, "' starts at ", r.begin));
    }
    if (r.begin > expected) {
      return invalid(name, common::strCat("gap in tensor data: bytes ", expected, " to ", r.begin,
                                          " belong to no tensor"));
    }
    expected = r.end;
    previous = &r;
  }
  if (expected != payload_size) {
    return invalid(name, common::strCat("the tensors cover ", expected, " of the ", payload_size,
                                        " data bytes"));
  }
  return absl::OkStatus();
}

}  // namespace

size_t safeTensorDtypeSize(std::string_view dtype) {
  static const std::map<std::string, size_t, std::less<>> kSizes = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E4M3", 1}, {"F8_E5M2", 1},
      {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
      {"U32", 4},  {"F32", 4}, {"F64", 8}, {"I64", 8},     {"U64", 8}};
  auto it = kSizes.find(dtype);
  return it == kSizes.end() ? 0 : it->second;
}

absl::StatusOr<std::vector<float>> SafeTensor::toFloats() const {
  size_t size = safeTensorDtypeSize(dtype);
  if (dtype != "F32" && dtype != "F16" && dtype != "BF16" && dtype != "F64") {
    return absl::InvalidArgumentError(
        common::strCat("tensor dtype ", dtype, " is not F32, F16, BF16 or F64"));
  }
  size_t n = bytes.size() / size;
  std::vector<float> out(n);
  const char* p = bytes.data();
  if (n == 0) {
    // Nothing to convert (and memcpy must not see the empty vector's null pointer).
  } else if (dtype == "F32") {
    std::memcpy(out.data(), p, n * 4);
  } else if (dtype == "F64") {
    for (size_t i = 0; i < n; ++i) {
      double d;
      std::memcpy(&d, p + i * 8, 8);
      out[i] = static_cast<float>(d);
    }
  } else {
    bool half = dtype == "F16";
    for (size_t i = 0; i < n; ++i) {
      uint16_t bits;
      std::memcpy(&bits, p + i * 2, 2);
      out[i] = half ? protocols::halfToFloat(bits) : protocols::bf16ToFloat(bits);
    }
  }
  return out;
}

absl::StatusOr<SafeTensorsFile> parseSafeTensors(std::string_view data, std::string_view name) {
  if (data.size() < 8) {
    return invalid(name, common::strCat("only ", data.size(),
                                        " bytes, shorter than the 8-byte header length"));
  }
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) {
    header_len = (header_len << 8) | static_cast<unsigned char>(data[static_cast<size_t>(i)]);
  }
  if (header_len > kMaxSafeTensorsHeaderBytes) {
    return invalid(name,
                   common::strCat("header length ", header_len, " is implausibly large (limit ",
                                  kMaxSafeTensorsHeaderBytes, ")"));
  }
  if (header_len > data.size() - 8) {
    return invalid(name, common::strCat("header length ", header_len, " runs past the end of the ",
                                        data.size(), "-byte file"));
  }
  std::string_view header = data.substr(8, header_len);
  std::string_view payload = data.substr(8 + header_len);
  auto root = parseHeader(header, name);
  if (!root.ok()) return root.status();
  SafeTensorsFile file;
  std::vector<Range> ranges;
  for (const auto& [key, value] : root->items()) {
    if (key == kMetadataKey) {
      if (auto st = parseMetadata(value, name, file); !st.ok()) return st;
      continue;
    }
    auto tensor = parseEntry(key, value, payload, name, ranges);
    if (!tensor.ok()) return tensor.status();
    file.tensors.emplace(key, std::move(*tensor));
  }
  if (auto st = checkTiling(ranges, payload.size(), name); !st.ok()) return st;
  return file;
}

absl::StatusOr<SafeTensorsFile> readSafeTensors(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return absl::NotFoundError(common::strCat(path.string(), ": no such file"));
  }
  std::ifstream in(path, std::ios::binary);
  std::string data;
  if (in) {
    in.seekg(0, std::ios::end);
    data.resize(static_cast<size_t>(std::max<std::streamoff>(0, in.tellg())));
    in.seekg(0, std::ios::beg);
    in.read(data.data(), static_cast<std::streamsize>(data.size()));
  }
  if (!in) return absl::InternalError(common::strCat(path.string(), ": cannot read the file"));
  return parseSafeTensors(data, path.string());
}

absl::StatusOr<std::string> serializeSafeTensors(const SafeTensorsFile& file) {
  json header = json::object();
  std::string payload;
  for (const auto& [name, t] : file.tensors) {
    if (name.empty() || name == kMetadataKey) {
      return absl::InvalidArgumentError(common::strCat("invalid tensor name '", name, "'"));
    }
    uint64_t bytes = safeTensorDtypeSize(t.dtype);
    if (bytes == 0) {
      return absl::InvalidArgumentError(
          common::strCat("tensor '", name, "' has unknown dtype '", t.dtype, "'"));
    }
    for (int64_t d : t.shape) {
      if (d < 0) {
        return absl::InvalidArgumentError(
            common::strCat("tensor '", name, "' has shape ", protocols::shapeToString(t.shape)));
      }
      bytes *= static_cast<uint64_t>(d);
    }
    if (bytes != t.bytes.size()) {
      return absl::InvalidArgumentError(
          common::strCat("tensor '", name, "' holds ", t.bytes.size(), " bytes but ", t.dtype, " ",
                         protocols::shapeToString(t.shape), " needs ", bytes));
    }
    header[name] = {{"dtype", t.dtype},
                    {"shape", t.shape},
                    {"data_offsets", {payload.size(), payload.size() + t.bytes.size()}}};
    payload += t.bytes;
  }
  if (!file.metadata.empty()) header[std::string(kMetadataKey)] = file.metadata;
  std::string text = common::jsonText(header);
  // The reference writer pads the header with spaces so the data starts 8-byte aligned.
  while (text.size() % 8 != 0) text.push_back(' ');
  std::string out(8, '\0');
  for (size_t i = 0; i < 8; ++i) out[i] = static_cast<char>((text.size() >> (8 * i)) & 0xff);
  out += text;
  out += payload;
  return out;
}

absl::Status writeSafeTensors(const std::filesystem::path& path, const SafeTensorsFile& file) {
  auto bytes = serializeSafeTensors(file);
  if (!bytes.ok()) {
    return absl::InvalidArgumentError(
        common::strCat(path.string(), ": ", common::toStd(bytes.status().message())));
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
  out.close();
  if (!out) return absl::InternalError(common::strCat("cannot write ", path.string()));
  return absl::OkStatus();
}

}  // namespace kh::runtimes
