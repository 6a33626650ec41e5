// Shared helpers for dself's tests: temporary directories and running the real binary.
#pragma once

#include <filesystem>
#include <functional>
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

// The built dself binary running in the background (its stdout and stderr into `log`), for
// tests that signal it or run two at once. Killed (SIGKILL) if still running when destroyed.
class Background {
 public:
  Background(const std::vector<std::string>& args, std::filesystem::path log);
  ~Background();
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;

  void signal(int signal_number) const;
  // Waits for it to end: its exit code, or 128+N when a signal N ended it.
  int wait();
  std::string output() const;  // what it has written so far

 private:
  int pid_ = -1;
  int exit_code_ = -1;
  std::filesystem::path log_;
};

// tests/openai_stub_server.py on a free loopback port: a stand-in for a real OpenAI-compatible
// server (no model; it streams a fixed reply, its model name picks the behaviour), so the openai
// engine is tested without the internet. Stopped when the object dies.
class OpenAiStub {
 public:
  explicit OpenAiStub(std::filesystem::path record_dir);
  ~OpenAiStub();
  OpenAiStub(const OpenAiStub&) = delete;
  OpenAiStub& operator=(const OpenAiStub&) = delete;

  std::string url() const;  // http://127.0.0.1:PORT/v1
  std::string request_json() const;  // the last request, as the stub recorded it
  const std::filesystem::path& record_dir() const { return record_dir_; }

 private:
  std::filesystem::path record_dir_;
  int pid_ = -1;
  int port_ = 0;
};

// Polls `condition` every 20 ms until it holds or `timeout_s` passes; whether it held.
bool wait_until(const std::function<bool()>& condition, double timeout_s = 60);

// The sample person made once per test run by the CTest fixture (2 videos, 0.5 minutes).
std::filesystem::path sample_dir();

// The hard sample person made once per test run (hard_sample_person fixture: --hard, one
// video of about 50 s, seed 5).
std::filesystem::path hard_sample_dir();

// That sample person ingested and prepared (the prepared_avatar fixture); read-only: copy it
// (copy_avatar) before writing into it.
std::filesystem::path prepared_avatar_dir();

// A person with enough speech to train a voice on (the voice_avatar fixture: one 2.8-minute video,
// flite slt), ingested and prepared; read-only as well.
std::filesystem::path voice_avatar_dir();

// A copy of a prepared avatar (by default the small one) in `dir`/avatar, to write into.
std::filesystem::path copy_avatar(const std::filesystem::path& dir,
                                  const std::filesystem::path& from = prepared_avatar_dir());

}  // namespace dself::test
