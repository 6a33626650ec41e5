// Logging: spdlog to stderr, at a level chosen by --quiet / --verbose.
#pragma once

#include <spdlog/spdlog.h>

namespace dself {

enum class Verbosity { quiet, normal, verbose };

// Sets up the default logger on stderr; quiet also hides progress bars.
void init_logging(Verbosity verbosity);

}  // namespace dself
