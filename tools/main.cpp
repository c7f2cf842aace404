// mmemu: the command line. Each subcommand lives in its own tools/cmd_*.cpp.
#include <CLI/CLI.hpp>

#include "tools/commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"mmemu: a user-mode MMU emulator with real page tables"};
  app.require_subcommand(1);
  // A usage error is one line naming what is wrong (CLI11 adds a second, about --help).
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return "mmemu: " + std::string(e.what()) + "\n";
  });
  int status = 0;
  mmemu::cli::add_script_command(app, status);
  mmemu::cli::add_run_command(app, status);
  mmemu::cli::add_sweep_command(app, status, argc > 0 ? argv[0] : "mmemu");
  mmemu::cli::add_diff_command(app, status);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Help and version exit 0; every usage error exits 2.
    return app.exit(e) == 0 ? 0 : 2;
  }
  return status;
}
