#include "core/error.h"

namespace dself {

int exit_code(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::user_input:
      return 1;
    case ErrorKind::environment:
      return 2;
    case ErrorKind::internal:
      return 3;
  }
  return 3;
}

ErrorKind kind_of(const std::exception& e) {
  if (auto* error = dynamic_cast<const Error*>(&e)) return error->kind();
  try {
    std::rethrow_if_nested(e);
  } catch (const std::exception& inner) {
    return kind_of(inner);
  } catch (...) {
  }
  return ErrorKind::internal;
}

std::string describe(const std::exception& e) {
  std::string text = e.what();
  try {
    std::rethrow_if_nested(e);
  } catch (const std::exception& inner) {
    text += ": " + describe(inner);
  } catch (...) {
    text += ": unknown error";
  }
  return text;
}

}  // namespace dself
