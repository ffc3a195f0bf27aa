#include "kh/refstack/refstack.h"

#include <fstream>
#include <sstream>

#include "kh/common/json.h"
#include "kh/common/strings.h"
#include "kh/common/yaml_json.h"
#include "kh/controller/api_objects.h"
#include "kh/controller/scaling.h"
#include "kh/kubeapi/errors.h"
#include "kh/kubeapi/kubeconfig.h"
#include "kh/common/files.h"
#include "prometheus/text_serializer.h"
#include "stack_impl.h"

namespace kh::refstack {

void jsonResponse(http::Response& res, int status, const json& body) {
  res.result(static_cast<boost::beast::http::status>(status));
  res.set(boost::beast::http::field::content_type, "application/json");
  res.body() = common::jsonText(body);
}

namespace {

std::string readFile(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string message(const absl::Status& st) { return std::string(common::toStd(st.message())); }

}  // namespace

StackImpl::StackImpl(const Config& c, const common::TimeSource& t)
    : config(c), time(t), events(t), random(c.random_seed), routing(c.domain) {}

std::string StackImpl::metricsText() const {
  prometheus::TextSerializer serializer;
  return serializer.Serialize(registry->Collect());
}

void StackImpl::housekeepingLoop() {
  std::unique_lock lock(housekeeping_mu);
  while (!stopping) {
    housekeeping_cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return stopping; });
    if (stopping) return;
    lock.unlock();
    activator->expire(time.monotonicTime());
    lock.lock();
  }
}

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
        config.autoscaler[k] = v.is_string() ? v.get<std::string>() : common::jsonText(v);
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
      return absl::InvalidArgumentError(common::strCat("autoscaler config: ", message(st.status())));
    }
  }
  auto impl = std::make_unique<StackImpl>(config, time);
  StackImpl* raw = impl.get();
  for (const char* sub : {"logs", "pods"}) {
    std::error_code ec;
    std::filesystem::create_directories(config.state_dir / sub, ec);
    if (ec) {
      return absl::UnavailableError(
          common::strCat("cannot create ", (config.state_dir / sub).string(), ": ", ec.message()));
    }
  }
  // Pods left running by a refstack that was killed belong to nobody now (pods started by this
  // version die with it; an older one's, or a grandchild of a custom container, may not).
  if (int orphans = pods::killOrphanedPods((config.state_dir / "pods").string()); orphans > 0) {
    impl->events.emit(events::OrphansEnded{orphans});
  }
  std::vector<ctl::ServingRuntime> builtin;
  if (!config.runtimes_dir.empty()) {
    // As it always has, a runtimes directory that cannot be listed gives no built-in runtimes.
    auto files = common::filesIn(config.runtimes_dir, {".yaml"}).value_or(std::vector<std::filesystem::path>{});
    for (const auto& f : files) {
      auto parsed = ctl::parseManifests(readFile(f), f.string());
      if (!parsed.ok()) return parsed.status();
      for (auto& r : *parsed) {
        if (r.serving_runtime) builtin.push_back(*r.serving_runtime);
      }
    }
  }

  // The Kubernetes API's store, with KServe's admission; what the state file holds goes in first.
  kubeapi::StoreOptions store_options;
  store_options.kinds = kubeapi::refstackKinds();
  ctl::installAdmission(store_options.kinds);
  // Revisions are the controller's record of what it made (names, launch, pod serial): kept.
  kubeapi::findKind(store_options.kinds, "Revision")->persisted = true;
  store_options.seed = config.random_seed;
  impl->store = std::make_unique<kubeapi::ObjectStore>(std::move(store_options), time);
  if (auto st = loadState(*impl->store, config.state_dir / "state.json", impl->events); !st.ok()) return st;

  ctl::StorageConfig storage;
  storage.base_dir = config.base_dir;
  storage.pvc_root = config.pvc_root.empty() ? config.state_dir / "pvc" : config.pvc_root;
  storage.cache_dir = config.state_dir / "cache";
  storage.ca_file = config.storage_ca_file;
  // A download ended: the reconciler looks at every service again (this runs under the
  // resolver's lock, so it only enqueues).
  impl->storage = std::make_unique<ctl::StorageResolver>(
      storage, [raw](const std::string&) {
        if (raw->reconciler) raw->reconciler->storageChanged();
      },
      time);
  // The activator: held requests wake the KPA; cold starts are events and a metric.
  activator::Activator::Options activator_options;
  activator_options.time = &time;
  activator_options.random = &impl->random;
  activator_options.events = &impl->events;
  activator_options.metrics = impl->registry.get();
  activator_options.on_activation = [raw](const std::string& revision) {
    if (raw->kpa) raw->kpa->activate(revision);
  };
  impl->activator = std::make_unique<activator::Activator>(std::move(activator_options));
  ctl::KpaReconciler::Deps kpa_deps;
  kpa_deps.time = &time;
  kpa_deps.activator = impl->activator.get();
  kpa_deps.events = &impl->events;
  kpa_deps.on_status = [raw](const ctl::PodAutoscalerView& view) {
    if (raw->reconciler) raw->reconciler->onPodAutoscaler(view);
  };
  kpa_deps.metrics = impl->registry.get();
  ctl::KpaOptions kpa_options;
  kpa_options.tick = config.autoscaler_tick;
  // One stat a second, as Knative's scraper; a short tick (tests) scrapes as often.
  kpa_options.scrape_period = std::min(std::chrono::milliseconds(1000), config.autoscaler_tick);
  // The reconciler is made next: the KPA reaches it through `target` once it exists.
  impl->kpa = std::make_unique<ctl::KpaReconciler>(std::move(kpa_deps), kpa_options);

  ctl::InferenceServiceReconciler::Deps rdeps;
  rdeps.store = impl->store.get();
  rdeps.activator = impl->activator.get();
  rdeps.kpa = impl->kpa.get();
  rdeps.routing = &impl->routing;
  rdeps.storage = impl->storage.get();
  rdeps.events = &impl->events;
  rdeps.time = &time;
  rdeps.metrics = impl->registry.get();
  rdeps.ingress_port = [raw] { return raw->ingress_server ? raw->ingress_server->port() : uint16_t{0}; };
  ctl::ReconcilerOptions ropts;
  ropts.domain = config.domain;
  ropts.address = config.address;
  ropts.images = config.images;
  ropts.queue_proxy = config.queue_proxy;
  ropts.autoscaler = config.autoscaler;
  ropts.revision_timeout = config.revision_timeout;
  ropts.pod_grace_period = config.pod_grace_period;
  ropts.drain_quiet_period = config.drain_quiet_period;
  ropts.activator_queue_limit = config.activator_queue_limit;
  ropts.random_seed = config.random_seed;
  ropts.state_dir = config.state_dir;
  ropts.builtin_runtimes = std::move(builtin);
  impl->reconciler = std::make_unique<ctl::InferenceServiceReconciler>(std::move(rdeps), std::move(ropts));
  impl->kpa->setTarget(impl->reconciler.get());
  impl->pods = std::make_unique<pods::PodManager>(time, [raw](const pods::PodEvent& e) { raw->reconciler->onPodEvent(e); });
  impl->reconciler->setPodManager(impl->pods.get());

  // The admin port: the Kubernetes API, and refstack's own routes beside it.
  kubeapi::ApiHandlerOptions api_options;
  api_options.bearer_token = config.admin_token;
  api_options.fallback = impl.get();
  impl->api = std::make_unique<kubeapi::ApiHandler>(*impl->store, api_options);
  http::ServerOptions admin;
  admin.address = config.address;
  admin.port = config.admin_port;
  admin.server_name = "refstack-admin";
  auto admin_server = http::HttpServer::create(admin, *impl->api);
  if (!admin_server.ok()) return admin_server.status();
  impl->admin_server = std::move(*admin_server);

  impl->ingress_metrics = std::make_unique<ingress::IngressMetrics>(*impl->registry);
  ingress::IngressDeps deps;
  deps.routing = &impl->routing;
  deps.activator = impl->activator.get();
  deps.time = &time;
  deps.random = &impl->random;
  deps.metrics = impl->ingress_metrics.get();
  deps.metrics_text = [raw] { return raw->metricsText(); };
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

  // The kubeconfig for kubectl and the kubernetes client (loopback only).
  kubeapi::KubeconfigOptions kubeconfig;
  kubeconfig.server = common::strCat("http://", config.address, ":", impl->admin_server->port());
  kubeconfig.token = config.admin_token;
  if (auto st = common::writeFileAtomically(config.state_dir / "kubeconfig", kubeapi::renderKubeconfig(kubeconfig));
      !st.ok()) {
    return st;
  }

  impl->recorder = std::make_unique<EventRecorder>(*impl->store, impl->events);
  impl->persister = std::make_unique<StatePersister>(*impl->store, config.state_dir / "state.json", impl->events);
  if (auto st = impl->persister->start(); !st.ok()) return st;
  impl->kpa->start();
  if (auto st = impl->reconciler->start(); !st.ok()) return st;
  impl->housekeeping = std::thread([raw] { raw->housekeepingLoop(); });
  impl->admin_server->start();
  impl->ingress_server->start();
  return std::unique_ptr<Refstack>(new Refstack(std::move(impl)));
}

Refstack::~Refstack() {
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
  impl_->api->closeWatches();
  impl_->admin_server->drain(std::chrono::seconds(2));
  {
    std::lock_guard lock(impl_->housekeeping_mu);
    impl_->stopping = true;
  }
  impl_->housekeeping_cv.notify_all();
  impl_->housekeeping.join();
  impl_->reconciler->stop();
  impl_->storage.reset();  // no download calls back from here on
  impl_->kpa->stop();
  impl_->http_ingress->stop();
  impl_->pods.reset();  // stops every pod
  impl_->persister.reset();  // the last state is written
  impl_->recorder.reset();
  impl_->admin_server.reset();
  impl_->api.reset();
}

uint16_t Refstack::adminPort() const { return impl_->admin_server->port(); }
uint16_t Refstack::ingressPort() const { return impl_->ingress_server->port(); }
uint16_t Refstack::grpcIngressPort() const { return impl_->grpc_ingress->port(); }
std::filesystem::path Refstack::kubeconfigPath() const { return impl_->config.state_dir / "kubeconfig"; }

absl::StatusOr<nlohmann::json> Refstack::apply(const std::string& yaml, const std::string& source) {
  return impl_->applyText(yaml, source);
}

std::map<std::string, std::vector<std::string>> builtinImages(const std::filesystem::path& bin_dir) {
  auto bin = [&](const char* name) { return (bin_dir / name).string(); };
  return {
      {"kserve-harness/modelserver", {bin("modelserver")}},
      {"kserve-harness/passthrough-transformer", {bin("passthrough-transformer")}},
      {"kserve-harness/fixed-response", {bin("fixed-response")}},
      {"kserve/router", {bin("graph-router")}},
      {"kserve/success-200-isvc", {bin("fixed-response")}},
      {"kserve/error-404-isvc", {bin("fixed-response"), "--status=404", R"(--body={"detail":"Intentional 404 code"})"}},
  };
}

absl::Status Refstack::remove(const std::string& kind, const std::string& ns, const std::string& name) {
  std::string k = kind == "isvc" ? "InferenceService" : kind == "ig" ? "InferenceGraph" : kind;
  const kubeapi::KindSpec* spec = impl_->store->findKind(k);
  if (spec == nullptr || !spec->client_writable) {
    return absl::InvalidArgumentError(common::strCat("cannot delete a ", kind,
                                                     ": refstack deletes InferenceService, ServingRuntime, "
                                                     "ClusterServingRuntime, InferenceGraph and Namespace"));
  }
  auto r = impl_->store->deleteObject(k, spec->namespaced ? ns : "", name);
  return r.status();
}

absl::Status Refstack::patch(const std::string& kind, const std::string& ns, const std::string& name,
                             const nlohmann::json& merge_patch) {
  const kubeapi::KindSpec* spec = impl_->store->findKind(kind);
  if (spec == nullptr || !spec->client_writable) {
    return absl::InvalidArgumentError(common::strCat("cannot patch a ", kind));
  }
  return impl_->store->patch(kind, spec->namespaced ? ns : "", name, kubeapi::PatchType::kMerge, common::jsonText(merge_patch))
      .status();
}

absl::StatusOr<nlohmann::json> Refstack::getObject(const std::string& kind, const std::string& ns,
                                                   const std::string& name) const {
  auto o = impl_->store->get(kind, ns, name);
  if (!o.ok()) return o.status();
  return **o;
}

absl::StatusOr<nlohmann::json> Refstack::get(const std::string& ns, const std::string& name) const {
  auto o = impl_->store->get("InferenceService", ns, name);
  if (!o.ok()) return o.status();
  return **o;
}

nlohmann::json Refstack::list() const { return listObjects("InferenceService", "", ""); }

nlohmann::json Refstack::listObjects(const std::string& kind, const std::string& ns,
                                     const std::string& label_selector) const {
  kubeapi::Selector selector;
  if (!label_selector.empty()) {
    auto parsed = kubeapi::LabelSelector::parse(label_selector);
    if (parsed.ok()) selector.labels = std::move(*parsed);
  }
  json items = json::array();
  std::string list_kind = kind + "List";
  if (const kubeapi::KindSpec* spec = impl_->store->findKind(kind)) {
    list_kind = spec->kind + "List";
    auto list = impl_->store->list(kind, ns, selector);
    if (list.ok()) {
      for (const auto& o : list->items) items.push_back(*o);
    }
    return {{"apiVersion", spec->apiVersion()}, {"kind", list_kind}, {"items", items}};
  }
  return {{"kind", list_kind}, {"items", items}};
}

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
