// harness: conformance, load and scenario tool for KServe-style model serving.

#include <cstdio>

#include "CLI/CLI.hpp"
#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{
      "harness: protocol conformance and benchmarks for KServe-style model serving.\n"
      "Run `harness <command> --help` for a command's options."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "kserve-harness 0.1.0");
  kh::cli::Command conform = kh::cli::addConformCommand(app);
  kh::cli::Command load = kh::cli::addLoadCommand(app);
  kh::cli::Command compare = kh::cli::addCompareCommand(app);
  kh::cli::Command report = kh::cli::addReportCommand(app);
  kh::cli::Command run = kh::cli::addRunCommand(app);
  kh::cli::Command simulate = kh::cli::addSimulateCommand(app);
  CLI11_PARSE(app, argc, argv);
  if (app.got_subcommand("conform")) return conform();
  if (app.got_subcommand("load")) return load();
  if (app.got_subcommand("compare")) return compare();
  if (app.got_subcommand("report")) return report();
  if (app.got_subcommand("run")) return run();
  if (app.got_subcommand("simulate")) return simulate();
  return 2;
}
