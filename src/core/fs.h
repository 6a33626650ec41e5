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
