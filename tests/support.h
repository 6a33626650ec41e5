// Shared helpers for dself's tests: temporary directories and running the real binary.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace dself::test {

// A fresh directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs the built dself binary with these arguments (no shell), capturing its output.
CommandResult run_dself(const std::vector<std::string>& args);

// Runs any program with these arguments (no shell), capturing its output.
CommandResult run_program(const std::vector<std::string>& argv);

// The sample person made once per test run by the CTest fixture (2 videos, 0.5 minutes).
std::filesystem::path sample_dir();

// That sample person ingested and prepared (the prepared_avatar fixture); read-only: copy it
// (copy_avatar) before writing into it.
std::filesystem::path prepared_avatar_dir();

// A copy of the prepared avatar in `dir`/avatar, to write into.
std::filesystem::path copy_avatar(const std::filesystem::path& dir);

}  // namespace dself::test
