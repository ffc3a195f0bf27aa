#include "kh/protocols/tensor.h"

#include <bit>
#include <cmath>
#include <limits>

#include "kh/common/strings.h"

namespace kh::protocols {

static_assert(std::endian::native == std::endian::little,
              "tensor buffers are little-endian on the wire and in memory");

namespace {
struct TypeInfo {
  DataType type;
  std::string_view name;
  size_t size;
};
constexpr TypeInfo kTypes[] = {
    {DataType::kBool, "BOOL", 1},     {DataType::kUint8, "UINT8", 1},
    {DataType::kUint16, "UINT16", 2}, {DataType::kUint32, "UINT32", 4},
    {DataType::kUint64, "UINT64", 8}, {DataType::kInt8, "INT8", 1},
    {DataType::kInt16, "INT16", 2},   {DataType::kInt32, "INT32", 4},
    {DataType::kInt64, "INT64", 8},   {DataType::kFp16, "FP16", 2},
    {DataType::kBf16, "BF16", 2},     {DataType::kFp32, "FP32", 4},
    {DataType::kFp64, "FP64", 8},     {DataType::kBytes, "BYTES", 0},
};
}  // namespace

std::string_view dataTypeName(DataType type) { return kTypes[static_cast<size_t>(type)].name; }

std::optional<DataType> parseDataType(std::string_view name) {
  for (const auto& info : kTypes) {
    if (info.name == name) return info.type;
  }
  return std::nullopt;
}

size_t dataTypeSize(DataType type) { return kTypes[static_cast<size_t>(type)].size; }

absl::StatusOr<int64_t> elementCount(std::span<const int64_t> shape) {
  int64_t count = 1;
  for (int64_t dim : shape) {
    if (dim < 0) {
      return absl::InvalidArgumentError(
          common::strCat("shape ", shapeToString(shape), " has a negative dimension"));
    }
    if (dim != 0 && count > std::numeric_limits<int64_t>::max() / dim) {
      return absl::InvalidArgumentError(
          common::strCat("shape ", shapeToString(shape), " has too many elements"));
    }
    count *= dim;
  }
  return count;
}

std::string shapeToString(std::span<const int64_t> shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(shape[i]);
  }
  out += ']';
  return out;
}

std::optional<bool> boolParameter(const Parameters& params, std::string_view key) {
  auto it = params.find(key);
  if (it == params.end()) return std::nullopt;
  if (const bool* b = std::get_if<bool>(&it->second)) return *b;
  return std::nullopt;
}

std::optional<int64_t> intParameter(const Parameters& params, std::string_view key) {
  auto it = params.find(key);
  if (it == params.end()) return std::nullopt;
  if (const int64_t* i = std::get_if<int64_t>(&it->second)) return *i;
  if (const uint64_t* u = std::get_if<uint64_t>(&it->second)) {
    if (*u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return static_cast<int64_t>(*u);
    }
  }
  return std::nullopt;
}

absl::Status validateTensorData(const Tensor& tensor) {
  auto count = elementCount(tensor.shape);
  if (!count.ok()) {
    return absl::InvalidArgumentError(
        common::strCat("tensor '", tensor.name, "': ", count.status().message()));
  }
  size_t size = dataTypeSize(tensor.datatype);
  if (size == 0) {
    if (!tensor.raw.empty() || static_cast<int64_t>(tensor.bytes.size()) != *count) {
      return absl::InvalidArgumentError(common::strCat(
          "tensor '", tensor.name, "' has shape ", shapeToString(tensor.shape), " (", *count,
          " elements) but ", tensor.bytes.size(), " elements were given"));
    }
    return absl::OkStatus();
  }
  // Compare element counts, not byte sizes: count * size can wrap around size_t for a huge shape,
  // which would let an empty buffer pass for a tensor of 2^61 FP64 elements.
  if (!tensor.bytes.empty() || tensor.raw.size() % size != 0 ||
      tensor.raw.size() / size != static_cast<uint64_t>(*count)) {
    if (tensor.raw.size() % size == 0) {
      return absl::InvalidArgumentError(common::strCat(
          "tensor '", tensor.name, "' has shape ", shapeToString(tensor.shape), " (", *count,
          " elements) but ", tensor.raw.size() / size, " elements were given"));
    }
    return absl::InvalidArgumentError(common::strCat(
        "tensor '", tensor.name, "' of ", dataTypeName(tensor.datatype), " ",
        shapeToString(tensor.shape), " needs ",
        *count <= std::numeric_limits<int64_t>::max() / static_cast<int64_t>(size)
            ? common::strCat(*count * static_cast<int64_t>(size))
            : common::strCat(*count, " x ", size),
        " bytes but ", tensor.raw.size(), " were given"));
  }
  return absl::OkStatus();
}

absl::Status checkAgainstMetadata(const Tensor& tensor, const TensorMetadata& meta) {
  if (tensor.datatype != meta.datatype) {
    return absl::InvalidArgumentError(common::strCat(
        "input '", tensor.name, "' has datatype ", dataTypeName(tensor.datatype),
        " but the model expects ", dataTypeName(meta.datatype)));
  }
  bool shape_ok = tensor.shape.size() == meta.shape.size();
  for (size_t i = 0; shape_ok && i < meta.shape.size(); ++i) {
    if (meta.shape[i] >= 0 && meta.shape[i] != tensor.shape[i]) shape_ok = false;
  }
  if (!shape_ok) {
    return absl::InvalidArgumentError(common::strCat(
        "input '", tensor.name, "' has shape ", shapeToString(tensor.shape),
        " but the model expects ", shapeToString(meta.shape), " (-1 is any size)"));
  }
  return absl::OkStatus();
}

uint16_t floatToHalf(float value) {
  uint32_t x = std::bit_cast<uint32_t>(value);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) {  // inf or NaN
    return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
  }
  if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow to inf
  if (abs < 0x38800000u) {  // subnormal half or zero
    if (abs < 0x33000000u) return static_cast<uint16_t>(sign);
    uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    int shift = 113 - static_cast<int>(abs >> 23);
    uint32_t half = mant >> (shift + 13);
    uint32_t rem = mant & ((1u << (shift + 13)) - 1);
    uint32_t midpoint = 1u << (shift + 12);
    if (rem > midpoint || (rem == midpoint && (half & 1u))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = ((abs - 0x38000000u) >> 13);
  uint32_t rem = abs & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (half & 1u))) ++half;
  return static_cast<uint16_t>(sign | half);
}

float halfToFloat(uint16_t bits) {
  uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  uint32_t exp = (bits >> 10) & 0x1fu;
  uint32_t mant = bits & 0x3ffu;
  if (exp == 0) {
    float magnitude = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -magnitude : magnitude;
  }
  if (exp == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
  return std::bit_cast<float>(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t floatToBf16(float value) {
  uint32_t x = std::bit_cast<uint32_t>(value);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // NaN
  uint32_t rounding = 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>((x + rounding) >> 16);
}

float bf16ToFloat(uint16_t bits) { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }

absl::StatusOr<std::vector<float>> toFloatVector(const Tensor& t) {
  std::vector<float> out;
  size_t n = static_cast<size_t>(t.heldElements());
  out.resize(n);
  switch (t.datatype) {
#define KH_CONVERT(TYPE, CTYPE) \
  case TYPE:                    \
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(t.at<CTYPE>(i)); \
    break;
    KH_CONVERT(DataType::kBool, uint8_t)
    KH_CONVERT(DataType::kUint8, uint8_t)
    KH_CONVERT(DataType::kUint16, uint16_t)
    KH_CONVERT(DataType::kUint32, uint32_t)
    KH_CONVERT(DataType::kUint64, uint64_t)
    KH_CONVERT(DataType::kInt8, int8_t)
    KH_CONVERT(DataType::kInt16, int16_t)
    KH_CONVERT(DataType::kInt32, int32_t)
    KH_CONVERT(DataType::kInt64, int64_t)
    KH_CONVERT(DataType::kFp64, double)
#undef KH_CONVERT
    case DataType::kFp32:
      std::memcpy(out.data(), t.raw.data(), n * sizeof(float));
      break;
    case DataType::kFp16:
      for (size_t i = 0; i < n; ++i) out[i] = halfToFloat(t.at<uint16_t>(i));
      break;
    case DataType::kBf16:
      for (size_t i = 0; i < n; ++i) out[i] = bf16ToFloat(t.at<uint16_t>(i));
      break;
    case DataType::kBytes:
      return absl::InvalidArgumentError(
          common::strCat("tensor '", t.name, "' is BYTES; a numeric datatype is required"));
  }
  return out;
}

}  // namespace kh::protocols
