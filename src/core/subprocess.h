// Running a helper program (yt-dlp, python) without a shell, reading its output as it comes.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/progress.h"

namespace dself {

struct SubprocessResult {
  int exit_code = -1;      // the program's exit status; 128+N when killed by signal N
  std::string stderr_tail; // the last few KiB of its stderr, for error messages
};

// Runs argv[0] (looked up in PATH) with the given arguments; calls on_stdout_line for every
// line of its stdout. Throws EnvironmentError when the program cannot be started. should_stop
// is asked at least every 0.2 s: when it says so, the program is terminated (SIGTERM, then
// waited for) and Stopped is thrown; so is anything on_stdout_line throws, after the same.
SubprocessResult run_subprocess(const std::vector<std::string>& argv,
                                const std::function<void(const std::string&)>& on_stdout_line,
                                const StopRequested& should_stop = {});

// The full path of an executable named (or given as a path), or nothing when absent.
std::optional<std::filesystem::path> find_executable(const std::string& name);

}  // namespace dself
