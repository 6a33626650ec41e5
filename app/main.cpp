// dself: build a digital self from a person's videos. This file only wires the commands.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "app/commands.h"
#include "core/error.h"
#include "core/log.h"

namespace dself {
namespace {

std::atomic<int> interrupt_signal{0};

void on_interrupt(int signal) { interrupt_signal = signal; }

}  // namespace

StopRequested stop_on_interrupt() {
  struct sigaction action {};
  action.sa_handler = on_interrupt;
  action.sa_flags = SA_RESETHAND;  // the second Ctrl-C is the default: the process ends at once
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  return [] { return interrupt_signal.load() != 0; };
}

}  // namespace dself

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
  dself::add_status_command(app, globals);
  dself::add_report_command(app, globals);
  dself::add_eval_command(app, globals);
  dself::add_chat_command(app, globals);
  dself::add_say_command(app, globals);
  dself::add_train_command(app, globals);
  dself::add_transcribe_command(app, globals);
  dself::add_serve_command(app, globals);
  dself::add_config_command(app, globals);

  // CLI11 reads an unknown command as a missing one ("A subcommand is required"): name it.
  const std::vector<CLI::App*> commands = app.get_subcommands([](CLI::App*) { return true; });
  for (int i = 1; i < argc; ++i) {
    std::string word = argv[i];
    if (word == "--avatar") {
      ++i;  // its value
      continue;
    }
    if (word.starts_with("-")) continue;
    bool known = false;
    for (const CLI::App* command : commands) known = known || command->get_name() == word;
    if (!known) {
      std::string names;
      for (const CLI::App* command : commands) names += (names.empty() ? "" : ", ") + command->get_name();
      std::fprintf(stderr, "error: unknown command '%s': the commands are %s (see dself --help)\n", word.c_str(),
                   names.c_str());
      return 1;
    }
    break;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version come here too, and exit 0; a wrong command line is the user's
    // input, so exit 1 as DESIGN.md §2 says, not CLI11's own codes.
    return app.exit(e) == 0 ? 0 : 1;
  } catch (const dself::Stopped& e) {
    // Nothing half-written is left and the job is marked "interrupted": a re-run resumes.
    std::fprintf(stderr, "\ninterrupted (%s): %s; run the same command again to resume\n",
                 dself::interrupt_signal == SIGTERM ? "SIGTERM" : "Ctrl-C", e.what());
    return 130;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", dself::describe(e).c_str());
    return dself::exit_code(dself::kind_of(e));
  }
  return 0;
}
