// The subcommands of the mmemu command line. Each registers itself on the app; when it is
// the one given, its callback runs and stores the process exit status in `status`.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace mmemu::cli {

// mmemu script FILE|- [--arch A] [--format text|json] [--out FILE] [--phys-mem SIZE]
//                     [--check] [--recovery R]
void add_script_command(CLI::App& app, int& status);

// mmemu run [options] PROGRAM [ARGS...]  (tools/cmd_run.cpp)
void add_run_command(CLI::App& app, int& status);

// mmemu sweep [options] PROGRAM [ARGS...] | SCRIPT.mms, mmemu sweep --merge FILE...
// (tools/cmd_sweep.cpp). argv0: how mmemu was called, for the repro command lines.
void add_sweep_command(CLI::App& app, int& status, std::string argv0);
// mmemu diff [--format text|json|html] [--out FILE] A[:N] B[:N]  (tools/cmd_diff.cpp)
void add_diff_command(CLI::App& app, int& status);

}  // namespace mmemu::cli
