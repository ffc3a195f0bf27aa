#pragma once
// The safetensors format: an 8-byte little-endian header length N, N bytes of JSON header
// {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then raw
// little-endian tensor data (offsets relative to the end of the header).

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace kh::runtimes {

struct SafeTensor {
  std::string dtype;  // "F32", "F16", "BF16", "F64", "I64", ...
  std::vector<int64_t> shape;
  std::string bytes;  // raw little-endian data

  /** The values as floats (F32, F16, BF16, F64 only). */
  absl::StatusOr<std::vector<float>> toFloats() const;
};

struct SafeTensorsFile {
  std::map<std::string, SafeTensor> tensors;
  std::map<std::string, std::string> metadata;
};

/**
 * Parses a whole safetensors buffer. `name` is used in messages.
 * @return InvalidArgument naming the file and what is wrong: truncated header or data, bad
 *   JSON, unknown dtype, offsets out of range, overlapping or not matching shape x dtype.
 */
absl::StatusOr<SafeTensorsFile> parseSafeTensors(std::string_view data, const std::string& name);

/** Reads and parses a file (NotFound when it is missing). */
absl::StatusOr<SafeTensorsFile> readSafeTensors(const std::filesystem::path& path);

/** Serializes tensors (sorted by name, contiguous) with optional metadata. */
std::string serializeSafeTensors(const SafeTensorsFile& file);
absl::Status writeSafeTensors(const std::filesystem::path& path, const SafeTensorsFile& file);

/** Bytes per element of a safetensors dtype, 0 when unknown. */
size_t safeTensorDtypeSize(const std::string& dtype);

}  // namespace kh::runtimes
