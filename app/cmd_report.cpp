// dself report: an HTML page on what prepare made.
#include <cstdio>

#include "app/commands.h"
#include "prepare/prepare.h"

namespace dself {

void add_report_command(CLI::App& app, const GlobalOptions& globals) {
  auto* command = app.add_subcommand(
      "report", "Write <avatar>/report.html: speech and faces per source, with plots, reference frames and mouth crops");
  command->callback([&globals] {
    prepare::PrepareOptions options;
    options.avatar = globals.avatar;
    options.should_stop = stop_on_interrupt();
    std::filesystem::path page = prepare::write_report(options);
    std::printf("wrote %s\n", page.string().c_str());
  });
}

}  // namespace dself
