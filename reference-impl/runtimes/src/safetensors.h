#pragma once
// The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian
// header length N, N bytes of JSON header {"name": {"dtype", "shape", "data_offsets": [begin,
// end]}, "__metadata__": {"key": "value"}}, then raw little-endian tensor data, offsets relative
// to the first byte after the header. Validation is as strict as the reference implementation:
// the tensors' byte ranges must tile the data exactly (no overlap, no gap, nothing left over).

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace kh::runtimes {

struct SafeTensor {
  std::string dtype;  // "F32", "F16", "BF16", "F64", "I64", ...
  std::vector<int64_t> shape;
  std::string bytes;  // raw little-endian data, shape x dtype size bytes

  /** @return the values as floats: F32, F16, BF16 and F64 only, InvalidArgument otherwise. */
  absl::StatusOr<std::vector<float>> toFloats() const;
};

struct SafeTensorsFile {
  std::map<std::string, SafeTensor> tensors;
  std::map<std::string, std::string> metadata;  // "__metadata__", string values only
};

/** A header length above this is refused before anything is allocated for it. */
inline constexpr uint64_t kMaxSafeTensorsHeaderBytes = 100ull * 1024 * 1024;

/**
 * Parses a whole safetensors buffer. `name` (usually the path) starts every error message.
 * @return InvalidArgument naming the file and what is wrong: truncated header or data, bad
 *   JSON, duplicate names, unknown dtype, bad shape, offsets out of range, overlapping, leaving
 *   gaps or not matching shape x dtype size.
 */
absl::StatusOr<SafeTensorsFile> parseSafeTensors(std::string_view data, std::string_view name);

/** Reads and parses a file. NotFound when it is missing or not a regular file. */
absl::StatusOr<SafeTensorsFile> readSafeTensors(const std::filesystem::path& path);

/**
 * Serializes tensors (sorted by name, contiguous, header padded to 8 bytes) with metadata.
 * @return InvalidArgument when a tensor's dtype is unknown, its byte size does not match its
 *   shape, or its name is empty or "__metadata__".
 */
absl::StatusOr<std::string> serializeSafeTensors(const SafeTensorsFile& file);

/** serializeSafeTensors() to a file; Internal when the file cannot be written. */
absl::Status writeSafeTensors(const std::filesystem::path& path, const SafeTensorsFile& file);

/** @return bytes per element of a safetensors dtype, 0 when unknown. */
size_t safeTensorDtypeSize(std::string_view dtype);

}  // namespace kh::runtimes
