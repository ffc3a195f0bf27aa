// State kept across restarts, in <state-dir>/state.json: the applied resources (as documents)
// and, per InferenceService, its revisions, rollout and launch commands, so a restarted refstack
// keeps revision names and traffic and starts the pods those revisions need. Written whole,
// atomically (temporary file, fsync, rename, fsync of the directory), whenever it changes.

#include <fstream>
#include <sstream>

#include "kh/common/files.h"
#include "kh/common/strings.h"
#include "stack_impl.h"

namespace kh::refstack {
namespace {

json componentJson(const ctl::ComponentState& cs) {
  json revisions = json::array();
  for (const auto& r : cs.revisions) revisions.push_back({{"name", r.name}, {"spec", r.spec}});
  return {{"revisions", revisions},
          {"latestCreatedRevision", cs.rollout.latest_created_revision},
          {"latestReadyRevision", cs.rollout.latest_ready_revision},
          {"latestRolledoutRevision", cs.rollout.latest_rolledout_revision},
          {"previousRolledoutRevision", cs.rollout.previous_rolledout_revision}};
}

ctl::ComponentState componentFromJson(const json& j) {
  ctl::ComponentState cs;
  for (const auto& r : j.value("revisions", json::array())) {
    ctl::Revision rev;
    rev.name = r.value("name", "");
    rev.spec = r.value("spec", json());
    cs.revisions.push_back(rev);
  }
  cs.rollout.latest_created_revision = j.value("latestCreatedRevision", "");
  cs.rollout.latest_ready_revision = j.value("latestReadyRevision", "");
  cs.rollout.latest_rolledout_revision = j.value("latestRolledoutRevision", "");
  cs.rollout.previous_rolledout_revision = j.value("previousRolledoutRevision", "");
  return cs;
}

}  // namespace

json StackImpl::stateJsonLocked() const {
  json runtimes = json::array();
  for (const auto& [k, doc] : applied_runtime_documents) runtimes.push_back(doc);
  json isvcs = json::array();
  for (const auto& [k, e] : services) {
    if (e.deleted) continue;
    json launches = json::object();
    for (const auto& [rev, l] : e.launches) {
      launches[rev] = {{"component", l.component}, {"argv", l.argv}, {"env", l.env},
                       {"readinessPath", l.readiness_path}};
    }
    json item = {{"document", e.isvc.document},
                 {"namespace", e.isvc.metadata.namespace_name},
                 {"predictor", componentJson(e.predictor)},
                 {"launches", launches},
                 {"podSerial", e.pod_serial}};
    if (e.transformer) item["transformer"] = componentJson(*e.transformer);
    if (e.explainer) item["explainer"] = componentJson(*e.explainer);
    isvcs.push_back(item);
  }
  return {{"version", 1}, {"servingRuntimes", runtimes}, {"inferenceServices", isvcs}};
}

void StackImpl::persistLocked() {
  std::string text = stateJsonLocked().dump(1);
  if (text == last_persisted) return;
  auto st = common::writeFileAtomically(config.state_dir / "state.json", text);
  if (st.ok()) {
    last_persisted = std::move(text);
  } else {
    events.emit(events::StackError{std::string(common::toStd(st.message()))});
  }
}

absl::Status StackImpl::restore() {
  std::filesystem::path path = config.state_dir / "state.json";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return absl::OkStatus();
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  json state = json::parse(text.str(), nullptr, false);
  if (state.is_discarded() || !state.is_object()) {
    return absl::DataLossError(common::strCat(path.string(), " is not valid JSON; move it away to start empty"));
  }
  for (const auto& doc : state.value("servingRuntimes", json::array())) {
    auto parsed = ctl::parseManifests(doc.dump(), path.string());
    if (!parsed.ok()) return parsed.status();
    for (auto& r : *parsed) {
      if (!r.serving_runtime) continue;
      auto rt = *r.serving_runtime;
      rt.created_order = ++runtime_order;
      auto& list = rt.cluster_scoped ? cluster_runtimes : namespaced_runtimes;
      std::erase_if(list, [&](const ctl::ServingRuntime& x) {
        return x.metadata.name == rt.metadata.name && x.metadata.namespace_name == rt.metadata.namespace_name;
      });
      list.push_back(rt);
      applied_runtime_documents[common::strCat(r.kind, "/", rt.metadata.namespace_name, "/", rt.metadata.name)] =
          rt.document;
    }
  }
  for (const auto& item : state.value("inferenceServices", json::array())) {
    json doc = item.value("document", json::object());
    auto parsed = ctl::parseManifests(doc.dump(), path.string());
    if (!parsed.ok()) return parsed.status();
    for (auto& r : *parsed) {
      if (!r.inference_service) continue;
      auto isvc = *r.inference_service;
      if (item.contains("namespace")) isvc.metadata.namespace_name = item["namespace"];
      std::string k = resourceKey(isvc.metadata.namespace_name, isvc.metadata.name);
      Entry& e = services[k];
      e.isvc = isvc;
      e.predictor = componentFromJson(item.value("predictor", json::object()));
      if (item.contains("transformer")) e.transformer = componentFromJson(item["transformer"]);
      if (item.contains("explainer")) e.explainer = componentFromJson(item["explainer"]);
      const json launches = item.value("launches", json::object());
      for (const auto& [rev, l] : launches.items()) {
        RevisionLaunch launch;
        launch.component = l.value("component", "");
        launch.argv = l.value("argv", std::vector<std::string>{});
        launch.env = l.value("env", std::map<std::string, std::string>{});
        launch.readiness_path = l.value("readinessPath", "/v2/health/ready");
        e.launches[rev] = launch;
      }
      e.pod_serial = item.value("podSerial", std::map<std::string, int>{});
      events.emit(events::ResourceRestored{k});
    }
  }
  last_persisted = stateJsonLocked().dump(1);
  return absl::OkStatus();
}

}  // namespace kh::refstack
