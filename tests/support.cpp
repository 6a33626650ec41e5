#include "support.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
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

OpenAiStub::OpenAiStub(std::filesystem::path record_dir) : record_dir_(std::move(record_dir)) {
  int out[2];
  if (pipe(out) != 0) throw std::runtime_error("pipe failed");
  std::string script = (std::filesystem::path(DSELF_TESTS_DIR) / "openai_stub_server.py").string();
  pid_ = fork();
  if (pid_ == 0) {
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    close(out[1]);
    execlp("python3", "python3", script.c_str(), record_dir_.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(out[1]);
  FILE* f = fdopen(out[0], "r");
  char line[64] = {0};
  if (!std::fgets(line, sizeof line, f)) {
    std::fclose(f);
    throw std::runtime_error("the OpenAI stub server did not start");
  }
  port_ = std::atoi(line);
  std::fclose(f);
}

OpenAiStub::~OpenAiStub() {
  kill(pid_, SIGTERM);
  waitpid(pid_, nullptr, 0);
}

std::string OpenAiStub::url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }

std::string OpenAiStub::request_json() const {
  std::ifstream in(record_dir_ / "request.json", std::ios::binary);
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
