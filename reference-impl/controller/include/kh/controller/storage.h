#pragma once
// storageUri resolution for the reference stack (what KServe's storage initializer does on a
// cluster): file:// and bare paths, pvc://NAME/PATH under a configured directory, and http://
// downloads cached once. Paths never escape their configured roots.

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kh/common/time_source.h"

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
  /** A download that takes longer fails (connect, TLS, request and body together). */
  std::chrono::milliseconds download_timeout{60'000};
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

/** Whether resolving `uri` downloads (http://, https://) rather than looking at local files. */
bool isDownload(const std::string& uri);

/** Where a storageUri stands (see StorageResolver). */
struct StorageResolution {
  enum class State { kPending, kReady, kFailed };
  State state = State::kPending;
  std::filesystem::path path;  // kReady: the local model directory
  absl::Status error;          // kFailed: why, as resolveStorageUri says it
};

/**
 * Resolves storageUris without blocking the caller, so a slow download stalls nothing (KServe's
 * storage initializer runs in the pod, not in the controller): local URIs are resolved at once,
 * downloads on threads of their own, after which `on_done(uri)` is called and resolve() gives the
 * result. A download is made once per URI; a failed one is reported once, then tried again when
 * asked for `retry_after` after it failed. Thread-safe.
 */
class StorageResolver {
 public:
  /**
   * @param on_done called from a download thread when a download ends (either way); it must not
   *     block. It is not called after the resolver is destroyed.
   * @param time times the retry window; it must outlive the resolver.
   */
  StorageResolver(StorageConfig config, std::function<void(const std::string& uri)> on_done,
                  const common::TimeSource& time, std::chrono::milliseconds retry_after = std::chrono::seconds(10));
  /** Downloads still running finish on their own; their results are dropped. */
  ~StorageResolver();
  StorageResolver(const StorageResolver&) = delete;
  StorageResolver& operator=(const StorageResolver&) = delete;

  /** The URI's state now; starts its download when it is needed and not running. */
  StorageResolution resolve(const std::string& uri);

 private:
  struct Shared;
  std::shared_ptr<Shared> shared_;
};

}  // namespace kh::controller
