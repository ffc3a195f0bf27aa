#pragma once
// Writing a file so that readers see the old content or the new, never half of it.

#include <filesystem>
#include <initializer_list>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace kh::common {

/** Whether the write must survive a crash of the machine (fsync), or only be seen whole. */
enum class Durability { kSynced, kVisibleOnly };

/**
 * Writes `content` to `path` through a temporary file in the same directory and renames it over
 * `path`; with kSynced it fsyncs the file before and the directory after the rename (state that
 * must survive a crash; kVisibleOnly for files read by other processes right away, where an
 * fsync would only add latency). @return Unavailable naming the step that failed.
 */
absl::Status writeFileAtomically(const std::filesystem::path& path, std::string_view content,
                                 Durability durability = Durability::kSynced);

/**
 * The files directly in `dir` whose extension is one of `extensions` (".yaml"), sorted by path.
 * Every step takes an error code, so a directory that cannot be opened or read is an error here,
 * never an exception. @return NotFound "cannot list DIR: reason".
 */
absl::StatusOr<std::vector<std::filesystem::path>> filesIn(const std::filesystem::path& dir,
                                                           std::initializer_list<std::string_view> extensions);

}  // namespace kh::common
