#include "app/commands.h"

namespace dself {

void add_ingest_command(CLI::App&, const GlobalOptions&) {}

}  // namespace dself
