#include "kh/refstack/refstack.h"

#include <fstream>
#include <sstream>

#include "kh/common/strings.h"
#include "kh/common/yaml_json.h"
#include "prometheus/text_serializer.h"
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
                       .Register(*registry)),
      ingress_requests(prometheus::BuildCounter()
                           .Name("kh_ingress_requests_total")
                           .Help("Requests through the ingress by InferenceService, revision and code")
                           .Register(*registry)),
      ingress_seconds(prometheus::BuildHistogram()
                          .Name("kh_ingress_request_seconds")
                          .Help("Latency through the ingress, by InferenceService and protocol")
                          .Register(*registry)),
      desired_pods(prometheus::BuildGauge()
                       .Name("kh_autoscaler_desired_pods")
                       .Help("Pods the autoscaler wants, by revision")
                       .Register(*registry)),
      cold_start_seconds(prometheus::BuildHistogram()
                             .Name("kh_cold_start_seconds")
                             .Help("Arrival to first byte of requests that found zero pods, by revision")
                             .Register(*registry)) {}

prometheus::Counter& Metrics::requestCounter(const std::string& isvc, const std::string& ns,
                                             const std::string& revision, int code,
                                             const char* protocol) {
  return ingress_requests.Add({{"isvc", isvc},
                               {"namespace", ns},
                               {"revision", revision},
                               {"code", std::to_string(code)},
                               {"protocol", protocol}});
}

prometheus::Histogram& Metrics::latencyHistogram(const std::string& isvc, const std::string& ns,
                                                 const char* protocol) {
  return ingress_seconds.Add({{"isvc", isvc}, {"namespace", ns}, {"protocol", protocol}}, kLatencyBuckets);
}

std::string Metrics::text() const {
  prometheus::TextSerializer serializer;
  return serializer.Serialize(registry->Collect());
}

// ------------------------------------------------------------------ events

void StackImpl::event(json e) {
  std::lock_guard lock(mu);
  eventLocked(std::move(e));
}

void StackImpl::eventLocked(json e) {
  auto now = std::chrono::duration<double>(time.systemTime().time_since_epoch()).count();
  e["seq"] = next_seq++;
  e["time"] = now;
  if (!watchers.empty()) {
    std::string line = e.dump() + "\n";
    std::erase_if(watchers, [&](const std::shared_ptr<http::StreamWriter>& w) { return !w->write(line); });
  }
  event_log.push_back(std::move(e));
  if (event_log.size() > 10000) event_log.pop_front();
  event_cv.notify_all();
}

std::vector<json> StackImpl::eventsAfter(int64_t since) const {
  std::lock_guard lock(mu);
  std::vector<json> out;
  for (const auto& e : event_log) {
    if (e["seq"].get<int64_t>() > since) out.push_back(e);
  }
  return out;
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
      if (auto st = resolveScalingSettings(config.autoscaler, none, {}); !st.ok()) {
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
          "podGracePeriodSeconds, drainQuietPeriodSeconds, autoscalerTickSeconds, activatorQueueLimit, queueProxy, "
          "autoscaler)"));
    }
  }
  return config;
}

// ------------------------------------------------------------------ lifecycle

Refstack::Refstack(std::unique_ptr<StackImpl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<Refstack>> Refstack::start(const Config& config,
                                                          const common::TimeSource& time) {
  auto impl = std::make_unique<StackImpl>(config, time);
  impl->routing.store(std::make_shared<const RoutingSnapshot>(config.domain));
  std::error_code ec;
  std::filesystem::create_directories(config.state_dir / "logs", ec);
  std::filesystem::create_directories(config.state_dir / "pods", ec);
  if (ec) {
    return absl::UnavailableError(common::strCat("cannot create ", config.state_dir.string(), ": ", ec.message()));
  }
  // Pods left running by a refstack that was killed belong to nobody now.
  if (int orphans = pods::killOrphanedPods((config.state_dir / "pods").string()); orphans > 0) {
    impl->event({{"type", "orphans"}, {"message", common::strCat("ended ", orphans, " orphaned pods")}});
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
  StackImpl* raw = impl.get();
  impl->pods = std::make_unique<pods::PodManager>(time, [raw](const pods::PodEvent& e) { raw->onPodEvent(e); });
  http::ServerOptions admin;
  admin.address = config.address;
  admin.port = config.admin_port;
  admin.server_name = "refstack-admin";
  auto admin_server = http::HttpServer::create(admin, *impl);
  if (!admin_server.ok()) return admin_server.status();
  impl->admin_server = std::move(*admin_server);
  impl->proxy = std::make_unique<IngressProxy>(*impl);
  http::ServerOptions ingress_opts;
  ingress_opts.address = config.address;
  ingress_opts.port = config.ingress_port;
  ingress_opts.workers = std::max(1, config.ingress_workers);
  ingress_opts.server_name = "refstack-ingress";
  ingress_opts.body_timeout = config.revision_timeout;
  auto ingress_server = http::HttpServer::create(ingress_opts, *impl->proxy);
  if (!ingress_server.ok()) return ingress_server.status();
  impl->ingress_server = std::move(*ingress_server);
  impl->proxy->attach(*impl->ingress_server);
  if (auto st = startGrpcIngress(*impl); !st.ok()) return st;
  if (!config.autoscaler.empty()) {
    ctl::ComponentExtension none;
    if (auto st = resolveScalingSettings(config.autoscaler, none, {}); !st.ok()) {
      return absl::InvalidArgumentError(common::strCat("autoscaler config: ", common::toStd(st.status().message())));
    }
  }
  impl->reconciler = std::thread([raw] { raw->reconcileLoop(); });
  impl->scaler = std::thread([raw] { raw->scalerLoop(); });
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
  impl_->ingress_server->drain(std::chrono::seconds(5));
  stopGrpcIngress(*impl_);
  {
    std::lock_guard lock(impl_->mu);
    for (auto& w : impl_->watchers) w->finish();
    impl_->watchers.clear();
  }
  impl_->admin_server->drain(std::chrono::seconds(2));
  {
    std::lock_guard lock(impl_->queue_mu);
    impl_->stopping = true;
  }
  impl_->queue_cv.notify_all();
  impl_->scaler_cv.notify_all();
  impl_->reconciler.join();
  impl_->scaler.join();
  for (auto& t : impl_->stoppers) t.join();
  impl_->proxy->stop();
  impl_->pods.reset();  // stops every pod
}

uint16_t Refstack::adminPort() const { return impl_->admin_server->port(); }
uint16_t Refstack::ingressPort() const { return impl_->ingress_server->port(); }
uint16_t Refstack::grpcIngressPort() const { return impl_->grpc_ingress_port; }

absl::StatusOr<nlohmann::json> Refstack::apply(const std::string& yaml, const std::string& source) {
  return impl_->applyText(yaml, source);
}
absl::Status Refstack::remove(const std::string&, const std::string& ns, const std::string& name) {
  return impl_->removeService(ns, name);
}
absl::StatusOr<nlohmann::json> Refstack::get(const std::string& ns, const std::string& name) const {
  return impl_->getJson(ns, name);
}
nlohmann::json Refstack::list() const { return impl_->listJson(); }
std::vector<nlohmann::json> Refstack::events(int64_t since) const { return impl_->eventsAfter(since); }

std::optional<nlohmann::json> Refstack::waitForEvent(
    int64_t since, const std::function<bool(const nlohmann::json&)>& match,
    std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->mu);
  std::optional<nlohmann::json> found;
  impl_->event_cv.wait_for(lock, timeout, [&] {
    for (const auto& e : impl_->event_log) {
      if (e["seq"].get<int64_t>() > since && match(e)) {
        found = e;
        return true;
      }
    }
    return false;
  });
  return found;
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
