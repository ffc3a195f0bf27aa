#pragma once
// Transport-neutral types of the V2 / Open Inference Protocol: datatypes, tensors, parameters,
// requests, responses and model metadata. The JSON and protobuf codecs convert to and from these.

#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/status/statusor.h"

namespace kh::protocols {

/** Every datatype of the V2 protocol (OIP table plus BF16). */
enum class DataType : uint8_t {
  kBool,
  kUint8,
  kUint16,
  kUint32,
  kUint64,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kFp16,
  kBf16,
  kFp32,
  kFp64,
  kBytes,
};

inline constexpr DataType kAllDataTypes[] = {
    DataType::kBool,  DataType::kUint8, DataType::kUint16, DataType::kUint32, DataType::kUint64,
    DataType::kInt8,  DataType::kInt16, DataType::kInt32,  DataType::kInt64,  DataType::kFp16,
    DataType::kBf16,  DataType::kFp32,  DataType::kFp64,   DataType::kBytes};

/** @return the protocol's name for `type`, e.g. "FP32". */
std::string_view dataTypeName(DataType type);

/** @return the datatype named exactly `name` (case-sensitive, as the protocol requires). */
std::optional<DataType> parseDataType(std::string_view name);

/** @return bytes per element, or 0 for BYTES (variable length). */
size_t dataTypeSize(DataType type);

using Shape = std::vector<int64_t>;

/**
 * @return the number of elements of a concrete shape (an empty shape is a scalar: 1 element).
 * InvalidArgument when a dimension is negative or the product overflows.
 */
absl::StatusOr<int64_t> elementCount(std::span<const int64_t> shape);

/** "[2,4]" */
std::string shapeToString(std::span<const int64_t> shape);

/** A parameter value; the protobuf InferParameter oneof and JSON scalars map onto it. */
using ParameterValue = std::variant<bool, int64_t, uint64_t, double, std::string>;
using Parameters = std::map<std::string, ParameterValue, std::less<>>;

/** @return the parameter as a bool when it is one (JSON true/false or bool_param). */
std::optional<bool> boolParameter(const Parameters& params, std::string_view key);
/** @return the parameter as an integer when it is an integral number. */
std::optional<int64_t> intParameter(const Parameters& params, std::string_view key);

/**
 * A named tensor. Fixed-size datatypes keep their elements in `raw` (little-endian, row-major,
 * no padding: the binary extension's layout); BYTES keeps one string per element in `bytes`.
 */
struct Tensor {
  std::string name;
  DataType datatype = DataType::kFp32;
  Shape shape;
  Parameters parameters;
  std::string raw;
  std::vector<std::string> bytes;

  /** Elements held (raw size / element size, or bytes.size()). */
  int64_t heldElements() const {
    size_t size = dataTypeSize(datatype);
    return size == 0 ? static_cast<int64_t>(bytes.size()) : static_cast<int64_t>(raw.size() / size);
  }

  /** Reads element `i` of a fixed-size tensor as T (T must match the datatype's width). */
  template <typename T>
  T at(size_t i) const {
    T value;
    std::memcpy(&value, raw.data() + i * sizeof(T), sizeof(T));
    return value;
  }

  /** Makes a fixed-size tensor from host values (the host is little-endian). */
  template <typename T>
  static Tensor fromValues(std::string name, DataType type, Shape shape, std::span<const T> values) {
    Tensor t;
    t.name = std::move(name);
    t.datatype = type;
    t.shape = std::move(shape);
    t.raw.assign(reinterpret_cast<const char*>(values.data()), values.size_bytes());
    return t;
  }
};

/**
 * Checks that the data held matches shape and datatype (element count for every type, byte size
 * for fixed-size ones). Messages name the tensor.
 */
absl::Status validateTensorData(const Tensor& tensor);

struct RequestedOutput {
  std::string name;
  Parameters parameters;
};

struct InferenceRequest {
  std::string model_name;
  std::string model_version;
  std::string id;
  bool has_id = false;
  Parameters parameters;
  std::vector<Tensor> inputs;
  std::vector<RequestedOutput> outputs;
};

struct InferenceResponse {
  std::string model_name;
  std::string model_version;
  std::string id;
  Parameters parameters;
  std::vector<Tensor> outputs;
};

struct TensorMetadata {
  std::string name;
  DataType datatype = DataType::kFp32;
  Shape shape;  // -1 marks a variable dimension
};

struct ModelMetadata {
  std::string name;
  std::vector<std::string> versions;
  std::string platform;
  std::vector<TensorMetadata> inputs;
  std::vector<TensorMetadata> outputs;
  std::map<std::string, std::string> properties;
};

/**
 * Checks a tensor against its metadata: datatype equal, rank equal, each fixed dimension equal.
 * @return InvalidArgument naming the tensor, expected and actual.
 */
absl::Status checkAgainstMetadata(const Tensor& tensor, const TensorMetadata& meta);

// Half-precision helpers (IEEE binary16 and bfloat16), round-to-nearest-even.
uint16_t floatToHalf(float value);
float halfToFloat(uint16_t bits);
uint16_t floatToBf16(float value);
float bf16ToFloat(uint16_t bits);

/**
 * Converts any numeric tensor to FP32 values (runtimes compute in FP32).
 * @return InvalidArgument for BYTES.
 */
absl::StatusOr<std::vector<float>> toFloatVector(const Tensor& tensor);

}  // namespace kh::protocols
