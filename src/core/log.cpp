#include "core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include "core/progress.h"

namespace dself {

void init_logging(Verbosity verbosity) {
  auto logger = spdlog::stderr_color_mt("dself");
  logger->set_pattern("%^%l%$: %v");
  switch (verbosity) {
    case Verbosity::quiet:
      logger->set_level(spdlog::level::warn);
      break;
    case Verbosity::normal:
      logger->set_level(spdlog::level::info);
      break;
    case Verbosity::verbose:
      logger->set_level(spdlog::level::debug);
      logger->set_pattern("[%H:%M:%S.%e] %^%l%$: %v");
      break;
  }
  spdlog::set_default_logger(logger);
  set_progress_display(verbosity != Verbosity::quiet);
}

}  // namespace dself
