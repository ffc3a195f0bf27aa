#include "kh/activator/activator.h"

#include <algorithm>

#include "kh/common/strings.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace kh::activator {
namespace {

using common::strCat;

double msSince(common::MonotonicTime from, const std::optional<common::MonotonicTime>& t) {
  return std::chrono::duration<double, std::milli>(*t - from).count();
}

std::optional<double> offset(common::MonotonicTime from, const std::optional<common::MonotonicTime>& t) {
  if (!t) return std::nullopt;
  return msSince(from, t);
}

}  // namespace

// ------------------------------------------------------------------ randomness and balancing

const Endpoint* chooseEndpoint(const EndpointList& endpoints, int cc, RandomSource& random,
                               std::atomic<size_t>& round_robin) {
  if (endpoints.empty()) return nullptr;
  auto load = [](const Endpoint& e) { return e.in_flight->load(std::memory_order_relaxed); };
  if (cc <= 0) {
    // randomChoice2Policy: two distinct random pods, the less loaded wins.
    if (endpoints.size() == 1) return &endpoints[0];
    size_t a = random.next() % endpoints.size();
    size_t b = random.next() % (endpoints.size() - 1);
    if (b >= a) ++b;
    return load(endpoints[a]) <= load(endpoints[b]) ? &endpoints[a] : &endpoints[b];
  }
  if (cc <= 3) {
    // firstAvailableLBPolicy: the first pod (in a stable order) with a free slot.
    for (const auto& e : endpoints) {
      if (load(e) < cc) return &e;
    }
    return &*std::min_element(endpoints.begin(), endpoints.end(),
                              [&](const Endpoint& x, const Endpoint& y) { return load(x) < load(y); });
  }
  // roundRobinPolicy: the next pod in turn that has a free slot.
  for (size_t i = 0; i < endpoints.size(); ++i) {
    const Endpoint& e = endpoints[round_robin.fetch_add(1, std::memory_order_relaxed) % endpoints.size()];
    if (load(e) < cc) return &e;
  }
  return &endpoints[round_robin.fetch_add(1, std::memory_order_relaxed) % endpoints.size()];
}

const char* rejectionName(Rejection rejection) {
  switch (rejection) {
    case Rejection::kQueueFull: return "QueueFull";
    case Rejection::kTimeout: return "Timeout";
    case Rejection::kRevisionGone: return "RevisionGone";
    case Rejection::kStopping: return "Stopping";
    case Rejection::kCancelled: return "Cancelled";
  }
  return "?";
}

// ------------------------------------------------------------------ visits and cold starts

Visit& Visit::operator=(Visit&& other) noexcept {
  if (this != &other) {
    end();
    revision_ = std::move(other.revision_);
  }
  return *this;
}

void Visit::end() {
  if (!revision_) return;
  revision_->visitEnded();
  revision_.reset();
}

ColdStartTracker& ColdStartTracker::operator=(ColdStartTracker&& other) noexcept {
  if (this != &other) {
    if (revision_) revision_->abandonColdStart();
    revision_ = std::move(other.revision_);
  }
  return *this;
}

ColdStartTracker::~ColdStartTracker() {
  if (revision_) revision_->abandonColdStart();
}

void ColdStartTracker::firstByte() {
  if (!revision_) return;
  revision_->recordColdStart();
  revision_.reset();
}

// ------------------------------------------------------------------ Revision

Revision::Revision(std::string name, RevisionSettings settings, Context context)
    : name_(std::move(name)),
      settings_(std::move(settings)),
      context_(context),
      stats_(context.time->monotonicTime(), std::chrono::seconds(1)) {}

const Endpoint* Revision::choose(const EndpointList& endpoints) {
  return chooseEndpoint(endpoints, settings_.container_concurrency, *context_.random,
                        round_robin_);
}

Visit Revision::visit() {
  stats_.requestIn(context_.time->monotonicTime(), false);
  return Visit(shared_from_this());
}

void Revision::visitEnded() { stats_.requestOut(context_.time->monotonicTime(), false); }

void Revision::abandonColdStart() {
  std::lock_guard lock(mu_);
  cold_.reset();
}

void Revision::recordColdStart() {
  std::optional<ColdRecord> c;
  {
    std::lock_guard lock(mu_);
    if (!cold_) return;
    cold_->first_byte = context_.time->monotonicTime();
    c = std::move(cold_);
    cold_.reset();
  }
  events::ColdStart e;
  e.isvc = settings_.isvc;
  e.revision = name_;
  e.pod = c->startup.pod;
  e.total_ms = msSince(c->arrival, c->first_byte);
  events::ColdStartBreakdown& b = e.breakdown;
  b.buffered_ms = offset(c->arrival, c->poked);
  b.pod_spawned_ms = offset(c->arrival, c->pod_spawned);
  // A container that does not report its start-up times gets the spawn and readiness times.
  b.process_started_ms = offset(c->arrival, c->startup.process_started ? c->startup.process_started : c->pod_spawned);
  b.model_loaded_ms = offset(c->arrival, c->startup.model_loaded ? c->startup.model_loaded : c->ready);
  b.ready_ms = offset(c->arrival, c->ready);
  b.forwarded_ms = offset(c->arrival, c->forwarded);
  b.first_byte_ms = offset(c->arrival, c->first_byte);
  if (context_.cold_start_seconds != nullptr) {
    context_.cold_start_seconds
        ->Add({{"revision", name_}},
              prometheus::Histogram::BucketBoundaries{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30})
        .Observe(e.total_ms / 1000);
  }
  if (context_.events != nullptr) context_.events->emit(std::move(e));
}

// ------------------------------------------------------------------ Activator

Activator::Activator(Options options) : options_(std::move(options)) {
  context_.time = options_.time;
  context_.random = options_.random;
  context_.events = options_.events;
  if (options_.metrics != nullptr) {
    context_.cold_start_seconds = &prometheus::BuildHistogram()
                               .Name("kh_cold_start_seconds")
                               .Help("Arrival to first byte of requests that found zero pods, by revision")
                               .Register(*options_.metrics);
  }
}

Activator::~Activator() { stop(); }

std::shared_ptr<Revision> Activator::addRevision(const std::string& name, const RevisionSettings& settings) {
  std::lock_guard lock(mu_);
  auto& r = revisions_[name];
  if (!r) r = std::make_shared<Revision>(name, settings, context_);
  return r;
}

std::shared_ptr<Revision> Activator::find(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = revisions_.find(name);
  return it == revisions_.end() ? nullptr : it->second;
}

void Activator::removeRevision(const std::string& name) {
  std::shared_ptr<Revision> r;
  {
    std::lock_guard lock(mu_);
    auto it = revisions_.find(name);
    if (it == revisions_.end()) return;
    r = std::move(it->second);
    revisions_.erase(it);
  }
  std::deque<Revision::Held> held;
  {
    std::lock_guard lock(r->mu_);
    r->removed_ = true;
    held.swap(r->held_);
  }
  rejectAll(std::move(held), *r, Rejection::kRevisionGone,
            strCat("revision ", name, " went away while the request waited"));
}

uint64_t Activator::hold(const std::shared_ptr<Revision>& revision, std::unique_ptr<HeldRequest> request) {
  auto now = options_.time->monotonicTime();
  if (stopping_.load(std::memory_order_acquire)) {
    request->reject(Rejection::kStopping, "refstack is stopping");
    return 0;
  }
  enum class Outcome { kHeld, kReleaseNow, kQueueFull, kGone } outcome;
  const uint64_t ticket = next_ticket_.fetch_add(1, std::memory_order_relaxed);
  EndpointListPtr ready;
  std::deque<Revision::Held> release_now;
  {
    std::lock_guard lock(revision->mu_);
    bool has_pods = revision->endpoints_ && !revision->endpoints_->empty();
    if (revision->removed_) {
      outcome = Outcome::kGone;
    } else if (revision->held_.size() >= revision->settings_.queue_limit) {
      outcome = Outcome::kQueueFull;
    } else {
      // The first request to find the revision at zero pods records its cold start.
      bool track = !has_pods && !revision->cold_.has_value();
      if (track) {
        revision->cold_.emplace();
        revision->cold_->arrival = now;
        revision->cold_->poked = now;  // on_activation below, before anything else happens
      }
      revision->held_.push_back({ticket, now, std::move(request), revision->visit(), track});
      outcome = Outcome::kHeld;
      // The caller's routing snapshot may predate the latest endpoints: release at once.
      if (has_pods) {
        outcome = Outcome::kReleaseNow;
        ready = revision->endpoints_;
        release_now.swap(revision->held_);
      }
    }
  }
  switch (outcome) {
    case Outcome::kGone:
      request->reject(Rejection::kRevisionGone, strCat("revision ", revision->name(), " no longer takes traffic"));
      return 0;
    case Outcome::kQueueFull:
      request->reject(Rejection::kQueueFull,
                      strCat("activator queue for revision ", revision->name(), " is full (",
                             revision->settings_.queue_limit, " requests wait for pods)"));
      return 0;
    case Outcome::kReleaseNow:
      releaseAll(std::move(release_now), *revision, ready);
      return 0;
    case Outcome::kHeld:
      break;
  }
  if (options_.on_activation) options_.on_activation(revision->name());
  return ticket;
}

bool Activator::cancel(const std::shared_ptr<Revision>& revision, uint64_t ticket) {
  if (ticket == 0 || !revision) return false;
  std::deque<Revision::Held> found;
  {
    std::lock_guard lock(revision->mu_);
    auto it = std::find_if(revision->held_.begin(), revision->held_.end(),
                           [&](const Revision::Held& h) { return h.ticket == ticket; });
    if (it == revision->held_.end()) return false;
    found.push_back(std::move(*it));
    revision->held_.erase(it);
  }
  rejectAll(std::move(found), *revision, Rejection::kCancelled, "cancelled while held by the activator");
  return true;
}

void Activator::setEndpoints(const std::string& name, EndpointListPtr endpoints) {
  auto r = find(name);
  if (!r) return;
  std::deque<Revision::Held> out;
  {
    std::lock_guard lock(r->mu_);
    r->endpoints_ = endpoints;
    if (endpoints && !endpoints->empty()) out.swap(r->held_);
  }
  if (!out.empty()) releaseAll(std::move(out), *r, endpoints);
}

void Activator::setInPath(const std::string& name, bool in_path) {
  if (auto r = find(name)) r->in_path_.store(in_path, std::memory_order_release);
}

void Activator::releaseAll(std::deque<Revision::Held>&& held, Revision& revision,
                           const EndpointListPtr& endpoints) {
  auto now = options_.time->monotonicTime();
  for (auto& h : held) {
    Release release;
    release.endpoints = endpoints;
    release.endpoint = revision.choose(*endpoints);
    release.visit = std::move(h.visit);
    if (h.tracks_cold_start) {
      {
        std::lock_guard lock(revision.mu_);
        if (revision.cold_) revision.cold_->forwarded = now;
      }
      release.cold_start = ColdStartTracker(revision.shared_from_this());
    }
    h.request->release(std::move(release));
  }
}

void Activator::rejectAll(std::deque<Revision::Held>&& held, Revision& revision, Rejection why,
                          const std::string& message) {
  for (auto& h : held) {
    if (h.tracks_cold_start) revision.abandonColdStart();
    h.request->reject(why, message);
  }
}

void Activator::expire(common::MonotonicTime now) {
  std::vector<std::shared_ptr<Revision>> revisions;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, r] : revisions_) revisions.push_back(r);
  }
  for (const auto& r : revisions) {
    std::deque<Revision::Held> expired;
    {
      std::lock_guard lock(r->mu_);
      // Every request of a revision has the same timeout, so the oldest expire first.
      while (!r->held_.empty() && now - r->held_.front().arrival >= r->settings_.timeout) {
        expired.push_back(std::move(r->held_.front()));
        r->held_.pop_front();
      }
    }
    rejectAll(std::move(expired), *r, Rejection::kTimeout, "activator request timeout");
  }
}

void Activator::stop() {
  stopping_.store(true, std::memory_order_release);
  std::vector<std::shared_ptr<Revision>> revisions;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, r] : revisions_) revisions.push_back(r);
  }
  for (const auto& r : revisions) {
    std::deque<Revision::Held> held;
    {
      std::lock_guard lock(r->mu_);
      held.swap(r->held_);
    }
    rejectAll(std::move(held), *r, Rejection::kStopping, "refstack is stopping");
  }
}

void Activator::markColdStart(const std::string& name, ColdStartStep step, common::MonotonicTime at,
                              const PodStartup& startup) {
  auto r = find(name);
  if (!r) return;
  std::lock_guard lock(r->mu_);
  if (!r->cold_) return;
  switch (step) {
    case ColdStartStep::kPodSpawned:
      if (!r->cold_->pod_spawned) r->cold_->pod_spawned = at;
      break;
    case ColdStartStep::kReady:
      if (!r->cold_->ready) {
        r->cold_->ready = at;
        r->cold_->startup = startup;
      }
      break;
  }
}

std::vector<RevisionStats> Activator::stats() {
  std::vector<std::shared_ptr<Revision>> revisions;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, r] : revisions_) revisions.push_back(r);
  }
  auto now = options_.time->monotonicTime();
  std::vector<RevisionStats> out;
  for (const auto& r : revisions) {
    RevisionStats s;
    s.isvc = r->settings_.isvc;
    s.revision = r->name_;
    s.last_period = r->stats_.lastReport(now);
    s.concurrency = r->stats_.concurrency();
    {
      std::lock_guard lock(r->mu_);
      s.held = r->held_.size();
    }
    s.in_path = r->inPath();
    out.push_back(std::move(s));
  }
  return out;
}

queueproxy::StatsReport Activator::lastReport(const std::string& name) {
  auto r = find(name);
  if (!r) return {};
  return r->stats_.lastReport(options_.time->monotonicTime());
}

}  // namespace kh::activator
