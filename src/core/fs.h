// Files written so that an interrupted run never leaves a half-written artefact under its
// final name: write to a temporary name beside it, then rename.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace dself {

// Writes bytes to path atomically (temporary file + rename). Throws EnvironmentError.
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);

// Reads a whole (small) file. Throws InputError naming the file when it cannot be read.
std::string read_file(const std::filesystem::path& path);

// Puts the directory `staged` (complete) in the place of `final_dir`, atomically where the file
// system can exchange two names (Linux renameat2 RENAME_EXCHANGE): a reader, or a kill, sees the
// old directory or the new one, whole. Elsewhere the old one is moved aside first (a kill between
// the two renames leaves `final_dir` absent, never half-written). The old one is then removed.
// Throws EnvironmentError.
void replace_directory(const std::filesystem::path& staged, const std::filesystem::path& final_dir);

// A temporary path beside `final_path` that is renamed onto it by commit(), and removed if
// the object dies uncommitted (an exception, an interrupted run).
class StagedPath {
 public:
  explicit StagedPath(std::filesystem::path final_path);
  ~StagedPath();
  StagedPath(const StagedPath&) = delete;
  StagedPath& operator=(const StagedPath&) = delete;

  const std::filesystem::path& temporary() const { return temporary_; }
  const std::filesystem::path& final_path() const { return final_; }
  void commit();

 private:
  std::filesystem::path final_;
  std::filesystem::path temporary_;
  bool committed_ = false;
};

}  // namespace dself
