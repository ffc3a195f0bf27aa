#pragma once
// storageUri resolution for the reference stack (what KServe's storage initializer does on a
// cluster): file:// and bare paths, pvc://NAME/PATH under a configured directory, and http://
// downloads cached once. Paths never escape their configured roots.

#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace kh::controller {

struct StorageConfig {
  /** Relative paths and file:// URIs resolve against this directory. */
  std::filesystem::path base_dir = ".";
  /** When not empty, local paths must lie under one of these (after resolving symlinks). */
  std::vector<std::filesystem::path> allowed_local_roots;
  /** pvc://NAME/PATH maps to pvc_root/NAME/PATH. */
  std::filesystem::path pvc_root;
  /** Downloads are kept here, one directory per URI. */
  std::filesystem::path cache_dir;
  /**
   * https:// servers are verified against the system's CA store and, when set, this PEM file
   * (a private CA). Verification cannot be turned off.
   */
  std::filesystem::path ca_file;
};

/**
 * Resolves `uri` to a local model directory (or file for single-file downloads, whose directory
 * is returned).
 * @return NotFound for missing paths, PermissionDenied for paths escaping their root,
 *   Unimplemented for schemes the reference stack cannot fetch (gs://, s3://, https://, ...),
 *   Unavailable for failed downloads. Messages name the URI.
 */
absl::StatusOr<std::filesystem::path> resolveStorageUri(const std::string& uri,
                                                        const StorageConfig& config);

}  // namespace kh::controller
