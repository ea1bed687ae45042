// What identifies one version of a file, so a watcher re-reads it only when it changed.
#pragma once

#include <sys/stat.h>

#include <filesystem>

namespace easedge::auth {

// A replaced (renamed-over) file changes inode, an edited one mtime or size. A file that cannot be read has
// the empty signature.
struct FileSignature {
  dev_t device = 0;
  ino_t inode = 0;
  off_t size = -1;
  timespec mtime{};
  bool operator==(const FileSignature& o) const {
    return device == o.device && inode == o.inode && size == o.size && mtime.tv_sec == o.mtime.tv_sec &&
           mtime.tv_nsec == o.mtime.tv_nsec;
  }
};

inline FileSignature signature_of(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {st.st_dev, st.st_ino, st.st_size, st.st_mtim};
}

}  // namespace easedge::auth
