#include "app/commands.h"

namespace dself {

void add_status_command(CLI::App&, const GlobalOptions&) {}

}  // namespace dself
