// `refstack up`: the stack in the foreground until `refstack down`, SIGINT or SIGTERM.

#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <thread>

#include "commands.h"
#include "kh/common/strings.h"
#include "kh/refstack/refstack.h"

namespace kh::refstack::cli {
namespace {

namespace fs = std::filesystem;

// The main thread waits for this pipe; the signal handler only writes to it.
int g_signal_pipe[2] = {-1, -1};
void onSignal(int) {
  char c = 1;
  (void)!::write(g_signal_pipe[1], &c, 1);
}

struct UpArgs {
  std::string config_file, state_dir = "/tmp/refstack", domain;
  uint16_t admin_port = 8090, ingress_port = 8080, grpc_port = 8081;
  std::vector<std::string> images;
  CLI::Option* state_opt = nullptr;
  CLI::Option* admin_opt = nullptr;
  CLI::Option* ingress_opt = nullptr;
  CLI::Option* grpc_opt = nullptr;
  CLI::Option* domain_opt = nullptr;
};

int runUp(const UpArgs& a, const AdminFlags& admin) {
  Config config;
  fs::path self = fs::canonical("/proc/self/exe").parent_path();
  config.images = builtinImages(self);
  config.queue_proxy = {(self / "queue-proxy").string()};
  const char* env_runtimes = std::getenv("KH_RUNTIMES_DIR");
  config.runtimes_dir = env_runtimes ? env_runtimes : KH_DEFAULT_RUNTIMES_DIR;
  if (!a.config_file.empty()) {
    auto loaded = loadConfigFile(a.config_file, config);
    if (!loaded.ok()) {
      std::cerr << "refstack: " << common::toStd(loaded.status().message()) << "\n";
      return 2;
    }
    config = *loaded;
  }
  // Flags given on the command line win over the config file.
  if (a.state_opt->count() || a.config_file.empty()) config.state_dir = a.state_dir;
  if (a.admin_opt->count() || a.config_file.empty()) config.admin_port = a.admin_port;
  if (a.ingress_opt->count() || a.config_file.empty()) config.ingress_port = a.ingress_port;
  if (a.grpc_opt->count() || a.config_file.empty()) config.grpc_ingress_port = a.grpc_port;
  if (a.domain_opt->count()) config.domain = a.domain;
  if (!admin.token.empty()) config.admin_token = admin.token;
  for (const auto& spec : a.images) {
    auto eq = spec.find('=');
    if (eq == std::string::npos) {
      std::cerr << "refstack: --image wants IMAGE=COMMAND\n";
      return 2;
    }
    std::istringstream words(spec.substr(eq + 1));
    std::vector<std::string> command;
    for (std::string w; words >> w;) command.push_back(w);
    config.images[spec.substr(0, eq)] = command;
  }
  if (::pipe(g_signal_pipe) != 0) return 1;
  std::signal(SIGINT, onSignal);
  std::signal(SIGTERM, onSignal);
  common::RealTimeSource time;
  auto stack = Refstack::start(config, time);
  if (!stack.ok()) {
    std::cerr << "refstack: " << common::toStd(stack.status().message()) << "\n";
    return 1;
  }
  std::thread signals([&] {
    char c;
    if (::read(g_signal_pipe[0], &c, 1) == 1 && c == 1) (*stack)->requestShutdown();
  });
  std::cout << "refstack up: admin http://" << config.address << ":" << (*stack)->adminPort() << ", ingress http://"
            << config.address << ":" << (*stack)->ingressPort() << " grpc " << config.address << ":"
            << (*stack)->grpcIngressPort() << ", state " << config.state_dir.string() << "\n"
            << "kubectl: export KUBECONFIG=" << (*stack)->kubeconfigPath().string()
            << "   (then: kubectl apply -f reference-impl/manifests/xgboost-iris.yaml; kubectl get isvc)"
            << std::endl;
  (*stack)->waitForShutdown();
  std::cout << "refstack: stopping pods" << std::endl;
  char stop = 0;
  (void)!::write(g_signal_pipe[1], &stop, 1);
  signals.join();
  stack->reset();
  std::cout << "refstack: stopped" << std::endl;
  return 0;
}

}  // namespace

Command addUpCommand(CLI::App& app, const AdminFlags& admin) {
  auto args = std::make_shared<UpArgs>();
  auto* up = app.add_subcommand("up", "Run the stack (Kubernetes API, ingress, controller) until `refstack down` or Ctrl-C");
  up->add_option("--config", args->config_file, "YAML config file (see reference-impl/refstack/README.md)");
  args->state_opt = up->add_option("--state-dir", args->state_dir, "State, kubeconfig, pod logs and downloads")
                        ->default_val(args->state_dir);
  args->admin_opt = up->add_option("--admin-port", args->admin_port, "Admin port: the Kubernetes API and refstack's routes")
                        ->default_val(8090);
  args->ingress_opt = up->add_option("--ingress-port", args->ingress_port, "Ingress HTTP port")->default_val(8080);
  args->grpc_opt = up->add_option("--grpc-port", args->grpc_port, "Ingress gRPC port")->default_val(8081);
  args->domain_opt = up->add_option("--domain", args->domain, "Ingress domain of InferenceService hosts (default example.com)");
  up->add_option("--image", args->images, "IMAGE=COMMAND: run this command for a container image (repeatable)");
  return [args, &admin] { return runUp(*args, admin); };
}

}  // namespace kh::refstack::cli
