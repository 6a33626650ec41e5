// Errors: who can fix a failure, and a message that says what failed, where, and what to do.
#pragma once

#include <exception>
#include <stdexcept>
#include <string>

namespace dself {

// Who can fix the failure; decides the exit code (DESIGN.md §2).
enum class ErrorKind {
  user_input,   // exit 1: a bad file, URL, flag or text the user gave
  environment,  // exit 2: a missing dependency, an unwritable disk, a tool that failed
  internal,     // exit 3: a bug in dself
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

// The user's input was wrong; the message names the input and says what to do.
struct InputError : Error {
  explicit InputError(const std::string& message) : Error(ErrorKind::user_input, message) {}
};

// A dependency or the environment failed; the message says how to fix it.
struct EnvironmentError : Error {
  explicit EnvironmentError(const std::string& message) : Error(ErrorKind::environment, message) {}
};

// Process exit code for a failure of this kind: 1, 2 or 3.
int exit_code(ErrorKind kind);

// The kind of an exception chain: the outermost dself::Error decides; anything else is internal.
ErrorKind kind_of(const std::exception& e);

// "outer: inner: innermost" for exceptions wrapped with std::throw_with_nested.
std::string describe(const std::exception& e);

}  // namespace dself
