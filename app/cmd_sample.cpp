#include "app/commands.h"

namespace dself {

void add_sample_command(CLI::App&, const GlobalOptions&) {}

}  // namespace dself
