#pragma once
// Subcommands of the `refstack` CLI. Each registers its options on the app and returns the
// function that runs it (its result is the process exit code: 0 done, 1 the stack refused or
// failed, 2 bad input or the stack cannot be reached).

#include <functional>
#include <string>

#include "CLI/CLI.hpp"

namespace kh::refstack::cli {

using Command = std::function<int()>;

/** Where the client commands find the admin API (--admin, --token). */
struct AdminFlags {
  std::string address = "127.0.0.1:8090";
  std::string token;
};

/** `refstack up`: runs the stack until `refstack down`, SIGINT or SIGTERM. */
Command addUpCommand(CLI::App& app, const AdminFlags& admin);
/** `refstack apply -f FILE|DIR|-`. */
Command addApplyCommand(CLI::App& app, const AdminFlags& admin);
/** `refstack get KIND [NAME] [-o json|yaml|wide]`. */
Command addGetCommand(CLI::App& app, const AdminFlags& admin);
/** `refstack delete KIND NAME`. */
Command addDeleteCommand(CLI::App& app, const AdminFlags& admin);
/** `refstack events [-w] [--since N]`. */
Command addEventsCommand(CLI::App& app, const AdminFlags& admin);
/** `refstack down`. */
Command addDownCommand(CLI::App& app, const AdminFlags& admin);

}  // namespace kh::refstack::cli
