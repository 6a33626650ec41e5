// What the benchmarks that run the dself binary share: running it with its peak memory measured.
#pragma once

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace dself::bench {

struct Measured {
  int exit_code = -1;
  double wall_s = 0;
  long max_rss_kib = 0;
  std::string output;
};

// Runs the dself binary (DSELF_BINARY), capturing stdout, with the child's own peak memory from wait4.
inline Measured run_dself(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {DSELF_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  int out[2];
  if (pipe(out) != 0) return {};
  auto start = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    int null = open("/dev/null", O_WRONLY);
    dup2(null, STDERR_FILENO);
    close(out[0]);
    std::vector<char*> c_args;
    for (auto& a : argv) c_args.push_back(a.data());
    c_args.push_back(nullptr);
    execv(c_args[0], c_args.data());
    _exit(127);
  }
  close(out[1]);
  Measured m;
  char buffer[4096];
  ssize_t n;
  while ((n = read(out[0], buffer, sizeof buffer)) > 0) m.output.append(buffer, static_cast<size_t>(n));
  close(out[0]);
  int status = 0;
  rusage usage{};
  wait4(pid, &status, 0, &usage);
  m.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  m.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  m.max_rss_kib = usage.ru_maxrss;
  return m;
}

// True when the run succeeded; otherwise says which bench step failed and how.
inline bool must(const Measured& m, const char* bench, const char* what) {
  if (m.exit_code == 0) return true;
  std::fprintf(stderr, "%s: %s failed (exit %d)\n%s\n", bench, what, m.exit_code, m.output.c_str());
  return false;
}

}  // namespace dself::bench
