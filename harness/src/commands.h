#pragma once
// Subcommands of the `harness` CLI. Each registers its options on the app and returns the
// function that runs it (its result is the process exit code).

#include <functional>

#include "CLI/CLI.hpp"

namespace kh::cli {

using Command = std::function<int()>;

/** `harness conform`: exit 0 when every MUST case passes, 1 otherwise, 2 when unreachable. */
Command addConformCommand(CLI::App& app);

}  // namespace kh::cli
