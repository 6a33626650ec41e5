#include "core/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "core/error.h"

extern char** environ;

namespace dself {
namespace {

constexpr size_t stderr_tail_bytes = 4096;

}  // namespace

std::optional<std::filesystem::path> find_executable(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    if (access(name.c_str(), X_OK) == 0) return std::filesystem::path(name);
    return std::nullopt;
  }
  const char* path_env = std::getenv("PATH");
  std::string paths = path_env ? path_env : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= paths.size()) {
    size_t end = paths.find(':', start);
    if (end == std::string::npos) end = paths.size();
    std::filesystem::path candidate = std::filesystem::path(paths.substr(start, end - start)) / name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return std::nullopt;
}

SubprocessResult run_subprocess(const std::vector<std::string>& argv,
                                const std::function<void(const std::string&)>& on_stdout_line,
                                const StopRequested& should_stop) {
  auto program = find_executable(argv.at(0));
  if (!program) {
    throw EnvironmentError(fmt::format("cannot find the program '{}': install it (make setup) or give its path", argv[0]));
  }
  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    throw EnvironmentError(fmt::format("cannot create a pipe to run {}: {}", argv[0], std::strerror(errno)));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);

  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  int spawn_error = posix_spawn(&pid, program->c_str(), &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out_pipe[1]);
  close(err_pipe[1]);
  if (spawn_error != 0) {
    close(out_pipe[0]);
    close(err_pipe[0]);
    throw EnvironmentError(fmt::format("cannot start {}: {}", program->string(), std::strerror(spawn_error)));
  }

  // Whatever ends this function early (a stop, a throwing callback) ends the program too.
  struct Child {
    pid_t pid;
    int fds[2];
    bool reaped = false;
    ~Child() {
      for (int fd : fds) {
        if (fd >= 0) close(fd);
      }
      if (reaped) return;
      kill(pid, SIGTERM);
      int status = 0;
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
  } child{pid, {out_pipe[0], err_pipe[0]}};

  SubprocessResult result;
  std::string line;
  std::array<pollfd, 2> fds{{{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}}};
  int open_count = 2;
  char buffer[4096];
  while (open_count > 0) {
    stop_if_requested(should_stop, argv[0]);
    if (poll(fds.data(), fds.size(), should_stop ? 200 : -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (auto& fd : fds) {
      if (fd.fd < 0 || !(fd.revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(fd.fd, buffer, sizeof buffer);
      if (n <= 0) {
        close(fd.fd);
        for (int& owned : child.fds) owned = owned == fd.fd ? -1 : owned;
        fd.fd = -1;
        --open_count;
        continue;
      }
      if (fd.fd == out_pipe[0]) {
        for (ssize_t i = 0; i < n; ++i) {
          // yt-dlp redraws its progress with '\r'; treat it as a line end too.
          if (buffer[i] == '\n' || buffer[i] == '\r') {
            if (!line.empty() && on_stdout_line) on_stdout_line(line);
            line.clear();
          } else {
            line += buffer[i];
          }
        }
      } else {
        result.stderr_tail.append(buffer, static_cast<size_t>(n));
        if (result.stderr_tail.size() > 2 * stderr_tail_bytes) {
          result.stderr_tail.erase(0, result.stderr_tail.size() - stderr_tail_bytes);
        }
      }
    }
  }
  if (!line.empty() && on_stdout_line) on_stdout_line(line);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  child.reaped = true;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (result.stderr_tail.size() > stderr_tail_bytes) {
    result.stderr_tail.erase(0, result.stderr_tail.size() - stderr_tail_bytes);
  }
  return result;
}

}  // namespace dself
