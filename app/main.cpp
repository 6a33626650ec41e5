// dself: build a digital self from a person's videos. This file only wires the commands.
#include <cstdio>
#include <exception>

#include "app/commands.h"
#include "core/error.h"
#include "core/log.h"

int main(int argc, char** argv) {
  dself::GlobalOptions globals;
  CLI::App app{"dself: a digital self built from a person's own videos"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "dself 0.1.0");
  app.add_option("--avatar", globals.avatar, "The avatar's workspace directory")
      ->envname("DSELF_AVATAR")
      ->capture_default_str();
  bool verbose = false;
  bool quiet = false;
  app.add_flag("-v,--verbose", verbose, "Log details");
  app.add_flag("-q,--quiet", quiet, "Log only warnings and errors; no progress bars");
  app.parse_complete_callback([&] {
    globals.verbosity = quiet ? dself::Verbosity::quiet : verbose ? dself::Verbosity::verbose : dself::Verbosity::normal;
    dself::init_logging(globals.verbosity);
  });

  dself::add_sample_command(app, globals);
  dself::add_ingest_command(app, globals);
  dself::add_prepare_command(app, globals);
  dself::add_train_command(app, globals);
  dself::add_status_command(app, globals);
  dself::add_report_command(app, globals);
  dself::add_eval_command(app, globals);
  dself::add_chat_command(app, globals);
  dself::add_say_command(app, globals);
  dself::add_serve_command(app, globals);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version come here too, and exit 0; a wrong command line is the user's
    // input, so exit 1 as DESIGN.md §2 says, not CLI11's own codes.
    return app.exit(e) == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", dself::describe(e).c_str());
    return dself::exit_code(dself::kind_of(e));
  }
  return 0;
}
