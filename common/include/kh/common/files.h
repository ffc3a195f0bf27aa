#pragma once
// Writing a file so that readers see the old content or the new, never half of it.

#include <filesystem>
#include <string_view>

#include "absl/status/status.h"

namespace kh::common {

/**
 * Writes `content` to `path` through a temporary file in the same directory, fsyncs it, renames
 * it over `path` and fsyncs the directory. @return Unavailable naming the step that failed.
 */
absl::Status writeFileAtomically(const std::filesystem::path& path, std::string_view content);

}  // namespace kh::common
