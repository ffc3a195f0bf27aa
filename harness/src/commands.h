#pragma once
// Subcommands of the `harness` CLI. Each registers its options on the app and returns the
// function that runs it (its result is the process exit code).

#include <functional>

#include "CLI/CLI.hpp"

namespace kh::cli {

using Command = std::function<int()>;

/** `harness conform`: exit 0 when every MUST case passes, 1 otherwise, 2 when unreachable. */
Command addConformCommand(CLI::App& app);

/** `harness load`: exit 0 done, 1 no request succeeded or the SLO failed, 2 bad input. */
Command addLoadCommand(CLI::App& app);

/** `harness compare A.json B.json ... -o DIR`: exit 1 when a threshold flags a regression. */
Command addCompareCommand(CLI::App& app);

/** `harness report RUN.json -o FILE.html`: renders a saved run. */
Command addReportCommand(CLI::App& app);

/** `harness run [FILES] [--target ...]`: scenarios; exit 1 on a failed assertion, 2 bad input. */
Command addRunCommand(CLI::App& app);

/** `harness simulate`: the KPA in virtual time over workloads; exit 0 done, 2 bad input. */
Command addSimulateCommand(CLI::App& app);

}  // namespace kh::cli
