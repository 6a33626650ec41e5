#include "core/fs.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "core/error.h"

namespace dself {

StagedPath::StagedPath(std::filesystem::path final_path) : final_(std::move(final_path)) {
  // Keep the extension last so that tools that guess a format from the name still can.
  temporary_ = final_;
  temporary_.replace_filename(fmt::format(".{}.partial-{}{}", final_.stem().string(), getpid(),
                                          final_.extension().string()));
}

StagedPath::~StagedPath() {
  if (!committed_) {
    std::error_code ec;
    std::filesystem::remove(temporary_, ec);
  }
}

void StagedPath::commit() {
  std::error_code ec;
  std::filesystem::rename(temporary_, final_, ec);
  if (ec) {
    throw EnvironmentError(fmt::format("cannot move {} to {}: {}", temporary_.string(), final_.string(), ec.message()));
  }
  committed_ = true;
}

void write_file_atomic(const std::filesystem::path& path, std::string_view bytes) {
  StagedPath staged(path);
  {
    std::ofstream out(staged.temporary(), std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
      throw EnvironmentError(fmt::format("cannot write {}: check the directory exists, is writable and the disk has room",
                                         path.string()));
    }
  }
  staged.commit();
}

void replace_directory(const std::filesystem::path& staged, const std::filesystem::path& final_dir) {
  namespace fs = std::filesystem;
  auto fail = [&](const std::string& why) {
    throw EnvironmentError(fmt::format("cannot move {} to {}: {}", staged.string(), final_dir.string(), why));
  };
  std::error_code ec;
  if (!fs::exists(final_dir, ec)) {
    fs::rename(staged, final_dir, ec);
    if (ec) fail(ec.message());
    return;
  }
  // ref: rename(2), RENAME_EXCHANGE (Linux 3.15; ext4, xfs, btrfs, tmpfs, overlayfs).
  if (renameat2(AT_FDCWD, staged.c_str(), AT_FDCWD, final_dir.c_str(), RENAME_EXCHANGE) == 0) {
    fs::remove_all(staged, ec);
    return;
  }
  if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP) fail(std::strerror(errno));
  const fs::path old = final_dir.parent_path() / ("." + final_dir.filename().string() + ".old");
  fs::remove_all(old, ec);
  fs::rename(final_dir, old, ec);
  if (ec) fail(ec.message());
  fs::rename(staged, final_dir, ec);
  if (ec) fail(ec.message());
  fs::remove_all(old, ec);
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("cannot read {}: check that it exists and is readable", path.string()));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace dself
