#include "kh/common/files.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "kh/common/strings.h"

namespace kh::common {

absl::Status writeFileAtomically(const std::filesystem::path& path, std::string_view content,
                                 Durability durability) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return absl::UnavailableError(strCat("cannot write ", tmp.string()));
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n <= 0) {
      ::close(fd);
      return absl::UnavailableError(strCat("cannot write ", tmp.string()));
    }
    done += static_cast<size_t>(n);
  }
  if (durability == Durability::kSynced) ::fsync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError(strCat("cannot rename ", tmp.string(), " to ", path.string()));
  }
  if (durability != Durability::kSynced) return absl::OkStatus();
  auto dir_path = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  int dir = ::open(dir_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::filesystem::path>> filesIn(const std::filesystem::path& dir,
                                                           std::initializer_list<std::string_view> extensions) {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string ext = it->path().extension().string();
    if (std::find(extensions.begin(), extensions.end(), ext) != extensions.end()) files.push_back(it->path());
  }
  if (ec) return absl::NotFoundError(strCat("cannot list ", dir.string(), ": ", ec.message()));
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace kh::common
