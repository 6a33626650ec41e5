#include "support.h"

#include <unistd.h>

#include <cstdlib>
#include <random>

#include "core/subprocess.h"

namespace dself::test {

TempDir::TempDir() {
  std::random_device random;
  path_ = std::filesystem::temp_directory_path() / ("dself-test-" + std::to_string(getpid()) + "-" +
                                                     std::to_string(random()));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

CommandResult run_program(const std::vector<std::string>& argv) {
  // Merge stderr into stdout through the shell-free runner: run via /bin/sh would need quoting.
  CommandResult result;
  std::vector<std::string> wrapped = {"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1"};
  wrapped.insert(wrapped.end(), argv.begin(), argv.end());
  auto run = run_subprocess(wrapped, [&](const std::string& line) { result.output += line + "\n"; });
  result.exit_code = run.exit_code;
  return result;
}

CommandResult run_dself(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {DSELF_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_program(argv);
}

std::filesystem::path sample_dir() { return DSELF_SAMPLE_DIR; }

std::filesystem::path prepared_avatar_dir() { return DSELF_PREPARED_AVATAR_DIR; }

std::filesystem::path copy_avatar(const std::filesystem::path& dir) {
  std::filesystem::path copy = dir / "avatar";
  std::filesystem::copy(prepared_avatar_dir(), copy, std::filesystem::copy_options::recursive);
  return copy;
}

}  // namespace dself::test
