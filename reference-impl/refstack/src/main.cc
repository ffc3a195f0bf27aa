// refstack: run the reference serving stack, and talk to it (or use kubectl with the kubeconfig
// it writes into its state directory).

#include "CLI/CLI.hpp"
#include "commands.h"

int main(int argc, char** argv) {
  namespace cli = kh::refstack::cli;
  CLI::App app{
      "refstack: the kserve-harness reference serving stack on one machine.\n"
      "Start it with `refstack up`, then apply KServe manifests with `refstack apply` or kubectl\n"
      "(export KUBECONFIG=<state-dir>/kubeconfig), and send requests to the ingress with the\n"
      "InferenceService's Host header. Run `refstack <command> --help` for a command's options."};
  app.require_subcommand(1);
  cli::AdminFlags admin;
  app.add_option("--admin", admin.address, "Admin API address (host:port)")
      ->default_val(admin.address)
      ->envname("KH_REFSTACK_ADMIN");
  app.add_option("--token", admin.token, "Bearer token of the admin API (up: require it; others: send it)")
      ->envname("KH_REFSTACK_TOKEN");
  cli::Command up = cli::addUpCommand(app, admin);
  cli::Command apply = cli::addApplyCommand(app, admin);
  cli::Command get = cli::addGetCommand(app, admin);
  cli::Command del = cli::addDeleteCommand(app, admin);
  cli::Command events = cli::addEventsCommand(app, admin);
  cli::Command down = cli::addDownCommand(app, admin);
  CLI11_PARSE(app, argc, argv);
  if (app.got_subcommand("up")) return up();
  if (app.got_subcommand("apply")) return apply();
  if (app.got_subcommand("get")) return get();
  if (app.got_subcommand("delete")) return del();
  if (app.got_subcommand("events")) return events();
  if (app.got_subcommand("down")) return down();
  return 2;
}
