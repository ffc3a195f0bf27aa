#include "kh/refstack/refstack.h"

#include <fstream>
#include <sstream>

#include "kh/common/strings.h"
#include "kh/common/yaml_json.h"
#include "prometheus/text_serializer.h"
#include "kh/controller/scaling.h"
#include "stack_impl.h"

namespace kh::refstack {

std::string resourceKey(const std::string& ns, const std::string& name) { return ns + "/" + name; }

void jsonResponse(http::Response& res, int status, const json& body) {
  res.result(static_cast<boost::beast::http::status>(status));
  res.set(boost::beast::http::field::content_type, "application/json");
  res.body() = body.dump();
}

namespace {

std::string readFile(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

const prometheus::Histogram::BucketBoundaries kLatencyBuckets = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

}  // namespace

// ------------------------------------------------------------------ metrics

Metrics::Metrics()
    : registry(std::make_shared<prometheus::Registry>()),
      resources(prometheus::BuildGauge()
                    .Name("kh_refstack_resources")
                    .Help("Resources held by refstack, by kind")
                    .Register(*registry)),
      reconciles(prometheus::BuildCounter()
                     .Name("kh_refstack_reconciles_total")
                     .Help("Reconcile passes over an InferenceService")
                     .Register(*registry)
                     .Add({})),
      reconcile_seconds(prometheus::BuildHistogram()
                            .Name("kh_refstack_reconcile_seconds")
                            .Help("Time of one reconcile pass")
                            .Register(*registry)
                            .Add({}, kLatencyBuckets)),
      pods(prometheus::BuildGauge().Name("kh_refstack_pods").Help("Pods by phase").Register(*registry)),
      pod_restarts(prometheus::BuildCounter()
                       .Name("kh_refstack_pod_restarts_total")
                       .Help("Pod restarts after a crash, by revision")
                       .Register(*registry)) {}

std::string Metrics::text() const {
  prometheus::TextSerializer serializer;
  return serializer.Serialize(registry->Collect());
}

StackImpl::StackImpl(const Config& c, const common::TimeSource& t)
    : config(c), time(t), events(t), random(c.random_seed), routing(c.domain) {}

// ------------------------------------------------------------------ config file

absl::StatusOr<Config> loadConfigFile(const std::filesystem::path& path, Config config) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(common::strCat("cannot read config file ", path.string()));
  auto docs = common::parseYamlDocuments(readFile(path), path.string());
  if (!docs.ok()) return docs.status();
  if (docs->size() != 1 || !(*docs)[0].is_object()) {
    return absl::InvalidArgumentError(common::strCat(path.string(), ": expected one YAML mapping"));
  }
  const json& c = (*docs)[0];
  auto bad = [&](const std::string& key, const std::string& want) {
    return absl::InvalidArgumentError(common::strCat(path.string(), ": ", key, ": expected ", want));
  };
  for (const auto& [key, value] : c.items()) {
    if (key == "stateDir" || key == "address" || key == "domain" || key == "adminToken" ||
        key == "runtimesDir" || key == "pvcRoot" || key == "baseDir" || key == "storageCaFile") {
      if (!value.is_string()) return bad(key, "a string");
      std::string v = value;
      if (key == "stateDir") config.state_dir = v;
      if (key == "address") config.address = v;
      if (key == "domain") config.domain = v;
      if (key == "adminToken") config.admin_token = v;
      if (key == "runtimesDir") config.runtimes_dir = v;
      if (key == "pvcRoot") config.pvc_root = v;
      if (key == "baseDir") config.base_dir = v;
      if (key == "storageCaFile") config.storage_ca_file = v;
    } else if (key == "adminPort" || key == "ingressPort" || key == "grpcIngressPort") {
      if (!value.is_number_integer() || value.get<int64_t>() < 0 || value.get<int64_t>() > 65535) {
        return bad(key, "a port number (0 picks a free port)");
      }
      auto port = value.get<uint16_t>();
      if (key == "adminPort") config.admin_port = port;
      if (key == "ingressPort") config.ingress_port = port;
      if (key == "grpcIngressPort") config.grpc_ingress_port = port;
    } else if (key == "ingressWorkers") {
      if (!value.is_number_integer() || value.get<int64_t>() < 1 || value.get<int64_t>() > 256) {
        return bad(key, "an integer in [1, 256]");
      }
      config.ingress_workers = value.get<int>();
    } else if (key == "revisionTimeoutSeconds" || key == "podGracePeriodSeconds" ||
               key == "drainQuietPeriodSeconds" || key == "autoscalerTickSeconds") {
      if (!value.is_number() || value.get<double>() < 0) return bad(key, "a number of seconds >= 0");
      auto ms = std::chrono::milliseconds(static_cast<int64_t>(value.get<double>() * 1000));
      if (key == "revisionTimeoutSeconds") config.revision_timeout = ms;
      if (key == "podGracePeriodSeconds") config.pod_grace_period = ms;
      if (key == "drainQuietPeriodSeconds") config.drain_quiet_period = ms;
      if (key == "autoscalerTickSeconds") config.autoscaler_tick = std::max(ms, std::chrono::milliseconds(200));
    } else if (key == "randomSeed") {
      if (!value.is_number_unsigned()) return bad(key, "a non-negative integer");
      config.random_seed = value.get<uint64_t>();
    } else if (key == "activatorQueueLimit") {
      if (!value.is_number_integer() || value.get<int64_t>() < 1) return bad(key, "an integer >= 1");
      config.activator_queue_limit = value.get<size_t>();
    } else if (key == "queueProxy") {
      if (!value.is_string()) return bad(key, "a command (empty: no queue-proxy, no autoscaling)");
      config.queue_proxy.clear();
      std::istringstream words(value.get<std::string>());
      for (std::string w; words >> w;) config.queue_proxy.push_back(w);
    } else if (key == "autoscaler") {
      if (!value.is_object()) return bad(key, "a mapping of Knative config-autoscaler keys");
      for (const auto& [k, v] : value.items()) {
        config.autoscaler[k] = v.is_string() ? v.get<std::string>() : v.dump();
      }
      ctl::ComponentExtension none;
      if (auto st = ctl::resolveScalingSettings(config.autoscaler, none, {}); !st.ok()) {
        return absl::InvalidArgumentError(common::strCat(path.string(), ": autoscaler: ", common::toStd(st.status().message())));
      }
    } else if (key == "images") {
      if (!value.is_object()) return bad(key, "a mapping of image -> command (a string or a list)");
      for (const auto& [image, command] : value.items()) {
        std::vector<std::string> argv;
        if (command.is_string()) {
          std::istringstream words(command.get<std::string>());
          for (std::string w; words >> w;) argv.push_back(w);
        } else if (command.is_array()) {
          for (const auto& a : command) {
            if (!a.is_string()) return bad("images." + image, "strings");
            argv.push_back(a);
          }
        }
        if (argv.empty()) return bad("images." + image, "a non-empty command");
        config.images[image] = argv;
      }
    } else {
      return absl::InvalidArgumentError(common::strCat(
          path.string(), ": unknown key '", key,
          "' (known: stateDir, address, adminPort, ingressPort, grpcIngressPort, adminToken, domain, "
          "images, runtimesDir, pvcRoot, baseDir, storageCaFile, ingressWorkers, revisionTimeoutSeconds, "
          "podGracePeriodSeconds, drainQuietPeriodSeconds, autoscalerTickSeconds, activatorQueueLimit, randomSeed, "
          "queueProxy, autoscaler)"));
    }
  }
  return config;
}

// ------------------------------------------------------------------ lifecycle

Refstack::Refstack(std::unique_ptr<StackImpl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<Refstack>> Refstack::start(const Config& config,
                                                          const common::TimeSource& time) {
  if (!config.autoscaler.empty()) {
    ctl::ComponentExtension none;
    if (auto st = ctl::resolveScalingSettings(config.autoscaler, none, {}); !st.ok()) {
      return absl::InvalidArgumentError(common::strCat("autoscaler config: ", common::toStd(st.status().message())));
    }
  }
  auto impl = std::make_unique<StackImpl>(config, time);
  StackImpl* raw = impl.get();
  std::error_code ec;
  std::filesystem::create_directories(config.state_dir / "logs", ec);
  std::filesystem::create_directories(config.state_dir / "pods", ec);
  if (ec) {
    return absl::UnavailableError(common::strCat("cannot create ", config.state_dir.string(), ": ", ec.message()));
  }
  // Pods left running by a refstack that was killed belong to nobody now (pods started by this
  // version die with it; an older one's, or a grandchild of a custom container, may not).
  if (int orphans = pods::killOrphanedPods((config.state_dir / "pods").string()); orphans > 0) {
    impl->events.emit(events::OrphansEnded{orphans});
  }
  if (!config.runtimes_dir.empty()) {
    std::vector<std::filesystem::path> files;
    for (const auto& f : std::filesystem::directory_iterator(config.runtimes_dir, ec)) {
      if (f.path().extension() == ".yaml") files.push_back(f.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      auto parsed = ctl::parseManifests(readFile(f), f.string());
      if (!parsed.ok()) return parsed.status();
      for (auto& r : *parsed) {
        if (r.serving_runtime) impl->builtin_runtimes.push_back(*r.serving_runtime);
      }
    }
    impl->cluster_runtimes = impl->builtin_runtimes;
  }
  {
    std::lock_guard lock(impl->mu);
    if (auto st = impl->restore(); !st.ok()) return st;
  }
  ctl::StorageConfig storage;
  storage.base_dir = config.base_dir;
  storage.pvc_root = config.pvc_root.empty() ? config.state_dir / "pvc" : config.pvc_root;
  storage.cache_dir = config.state_dir / "cache";
  storage.ca_file = config.storage_ca_file;
  // A download ended: every service is reconciled again (the reconciler thread looks them up;
  // this runs under the resolver's lock, which must not wait for the reconciler's).
  impl->storage = std::make_unique<ctl::StorageResolver>(storage, [raw](const std::string&) {
    raw->enqueue(std::string(kEveryService));
  });
  // The activator: held requests wake the KPA; cold starts are events and a metric.
  activator::Activator::Options activator_options;
  activator_options.time = &time;
  activator_options.random = &impl->random;
  activator_options.events = &impl->events;
  activator_options.metrics = impl->metrics.registry.get();
  activator_options.on_activation = [raw](const std::string& revision) {
    if (raw->kpa) raw->kpa->activate(revision);
  };
  impl->activator = std::make_unique<activator::Activator>(std::move(activator_options));
  ctl::KpaReconciler::Deps kpa_deps;
  kpa_deps.time = &time;
  kpa_deps.activator = impl->activator.get();
  kpa_deps.events = &impl->events;
  kpa_deps.target = raw;
  kpa_deps.metrics = impl->metrics.registry.get();
  ctl::KpaOptions kpa_options;
  kpa_options.tick = config.autoscaler_tick;
  // One stat a second, as Knative's scraper; a short tick (tests) scrapes as often.
  kpa_options.scrape_period = std::min(std::chrono::milliseconds(1000), config.autoscaler_tick);
  impl->kpa = std::make_unique<ctl::KpaReconciler>(std::move(kpa_deps), kpa_options);
  impl->pods = std::make_unique<pods::PodManager>(time, [raw](const pods::PodEvent& e) { raw->onPodEvent(e); });
  http::ServerOptions admin;
  admin.address = config.address;
  admin.port = config.admin_port;
  admin.server_name = "refstack-admin";
  auto admin_server = http::HttpServer::create(admin, *impl);
  if (!admin_server.ok()) return admin_server.status();
  impl->admin_server = std::move(*admin_server);
  impl->ingress_metrics = std::make_unique<ingress::IngressMetrics>(*impl->metrics.registry);
  ingress::IngressDeps deps;
  deps.routing = &impl->routing;
  deps.activator = impl->activator.get();
  deps.time = &time;
  deps.random = &impl->random;
  deps.metrics = impl->ingress_metrics.get();
  deps.metrics_text = [raw] { return raw->metrics.text(); };
  ingress::HttpIngressOptions http_options;
  http_options.request_timeout = config.revision_timeout;
  impl->http_ingress = std::make_unique<ingress::HttpIngress>(deps, http_options);
  http::ServerOptions ingress_opts;
  ingress_opts.address = config.address;
  ingress_opts.port = config.ingress_port;
  ingress_opts.workers = std::max(1, config.ingress_workers);
  ingress_opts.server_name = "refstack-ingress";
  ingress_opts.body_timeout = config.revision_timeout;
  auto ingress_server = http::HttpServer::create(ingress_opts, *impl->http_ingress);
  if (!ingress_server.ok()) return ingress_server.status();
  impl->ingress_server = std::move(*ingress_server);
  impl->http_ingress->attach(*impl->ingress_server);
  ingress::GrpcIngressOptions grpc_options;
  grpc_options.address = config.address;
  grpc_options.port = config.grpc_ingress_port;
  grpc_options.request_timeout = config.revision_timeout;
  auto grpc_ingress = ingress::GrpcIngress::start(deps, grpc_options);
  if (!grpc_ingress.ok()) return grpc_ingress.status();
  impl->grpc_ingress = std::move(*grpc_ingress);
  impl->kpa->start();
  impl->reconciler = std::thread([raw] { raw->reconcileLoop(); });
  impl->housekeeping = std::thread([raw] { raw->housekeepingLoop(); });
  impl->admin_server->start();
  impl->ingress_server->start();
  {
    std::lock_guard lock(impl->mu);
    for (const auto& [k, e] : impl->services) impl->enqueue(k);
    impl->metrics.resources.Add({{"kind", "ClusterServingRuntime"}}).Set(static_cast<double>(impl->cluster_runtimes.size()));
  }
  return std::unique_ptr<Refstack>(new Refstack(std::move(impl)));
}

Refstack::~Refstack() {
  impl_->storage.reset();  // no download calls back from here on
  // Held requests cannot wait for pods any more: the activator answers them first, then the
  // servers stop taking requests and finish what is in flight.
  impl_->activator->stop();
  impl_->ingress_server->drain(std::chrono::seconds(5));
  impl_->grpc_ingress->stop();
  {
    std::lock_guard lock(impl_->watchers_mu);
    for (auto& [id, w] : impl_->watchers) {
      impl_->events.unsubscribe(id);
      w->finish();
    }
    impl_->watchers.clear();
  }
  impl_->admin_server->drain(std::chrono::seconds(2));
  {
    std::lock_guard lock(impl_->queue_mu);
    impl_->stopping = true;
  }
  impl_->queue_cv.notify_all();
  impl_->housekeeping_cv.notify_all();
  impl_->reconciler.join();
  impl_->housekeeping.join();
  impl_->kpa->stop();
  for (auto& t : impl_->stoppers) t.join();
  impl_->http_ingress->stop();
  impl_->pods.reset();  // stops every pod
}

uint16_t Refstack::adminPort() const { return impl_->admin_server->port(); }
uint16_t Refstack::ingressPort() const { return impl_->ingress_server->port(); }
uint16_t Refstack::grpcIngressPort() const { return impl_->grpc_ingress->port(); }

absl::StatusOr<nlohmann::json> Refstack::apply(const std::string& yaml, const std::string& source) {
  return impl_->applyText(yaml, source);
}

absl::Status Refstack::remove(const std::string& kind, const std::string& ns, const std::string& name) {
  if (kind == "InferenceService" || kind == "inferenceservice" || kind == "isvc") {
    return impl_->removeService(ns, name);
  }
  if (kind == "ServingRuntime" || kind == "servingruntime") return impl_->removeRuntime(false, ns, name);
  if (kind == "ClusterServingRuntime" || kind == "clusterservingruntime") return impl_->removeRuntime(true, "", name);
  return absl::InvalidArgumentError(common::strCat(
      "cannot delete a ", kind, ": refstack deletes InferenceService, ServingRuntime and ClusterServingRuntime"));
}

absl::StatusOr<nlohmann::json> Refstack::get(const std::string& ns, const std::string& name) const {
  return impl_->getJson(ns, name);
}
nlohmann::json Refstack::list() const { return impl_->listJson(); }
std::vector<events::Event> Refstack::events(int64_t since) const { return impl_->events.after(since); }

std::optional<events::Event> Refstack::waitForEvent(int64_t since,
                                                    const std::function<bool(const ::kh::events::Event&)>& match,
                                                    std::chrono::milliseconds timeout) const {
  return impl_->events.waitFor(since, match, timeout);
}

void Refstack::waitForShutdown() {
  std::unique_lock lock(impl_->shutdown_mu);
  impl_->shutdown_cv.wait(lock, [&] { return impl_->shutdown_requested; });
}

void Refstack::requestShutdown() {
  std::lock_guard lock(impl_->shutdown_mu);
  impl_->shutdown_requested = true;
  impl_->shutdown_cv.notify_all();
}

}  // namespace kh::refstack
