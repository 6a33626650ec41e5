#include "support.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <random>
#include <thread>

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

Background::Background(const std::vector<std::string>& args, std::filesystem::path log) : log_(std::move(log)) {
  std::vector<std::string> argv = {DSELF_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> c_args;
  for (auto& a : argv) c_args.push_back(a.data());
  c_args.push_back(nullptr);
  pid_ = fork();
  if (pid_ == 0) {
    int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, STDOUT_FILENO);
    dup2(fd, STDERR_FILENO);
    execv(c_args[0], c_args.data());
    _exit(127);
  }
}

Background::~Background() {
  if (exit_code_ >= 0 || pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
}

void Background::signal(int signal_number) const { kill(pid_, signal_number); }

int Background::wait() {
  if (exit_code_ >= 0 || pid_ <= 0) return exit_code_;
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return exit_code_;
}

std::string Background::output() const {
  std::ifstream in(log_, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

bool wait_until(const std::function<bool()>& condition, double timeout_s) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

std::filesystem::path sample_dir() { return DSELF_SAMPLE_DIR; }

std::filesystem::path hard_sample_dir() { return DSELF_HARD_SAMPLE_DIR; }

std::filesystem::path prepared_avatar_dir() { return DSELF_PREPARED_AVATAR_DIR; }

std::filesystem::path voice_avatar_dir() { return DSELF_VOICE_AVATAR_DIR; }

std::filesystem::path copy_avatar(const std::filesystem::path& dir, const std::filesystem::path& from) {
  std::filesystem::path copy = dir / "avatar";
  std::filesystem::copy(from, copy, std::filesystem::copy_options::recursive);
  return copy;
}

}  // namespace dself::test
