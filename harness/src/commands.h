#pragma once
// Subcommands of the `harness` CLI. Each registers its options on the app and returns the
// function that runs it (its result is the process exit code).

#include <functional>
#include <memory>

#include "CLI/CLI.hpp"

namespace kh::common {
class TimeSource;
}
namespace kh::scenario {
class Target;
}

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

/**
 * The embedded target as every command makes it: refstack's binaries beside this one, the
 * runtimes from $KH_RUNTIMES_DIR or the source tree.
 */
std::unique_ptr<scenario::Target> makeCliEmbeddedTarget(const common::TimeSource& time);

/**
 * `harness simulate`: the KPA in virtual time over workloads; exit 0 done, 2 bad input.
 * With --validate SCENARIO: 0 the simulator agrees with the live stack, 1 it does not.
 */
Command addSimulateCommand(CLI::App& app);

}  // namespace kh::cli
