#pragma once
// ApiHandler: the Kubernetes API over an ObjectStore, as an http::Handler, for unmodified kubectl
// 1.32 and the kubernetes Python client (kube-api.md).
//
// Serves GET /version; discovery (/api, /apis, aggregated when the Accept header asks for
// apidiscovery.k8s.io v2 or v2beta1, legacy otherwise, plus /api/v1, /apis/<g>, /apis/<g>/<v>);
// /openapi/v3 and its per-group-version documents (/openapi/v2 is 404); every resource path:
//   /api/v1[/namespaces/<ns>]/<plural>[/<name>[/status]]
//   /apis/<g>/<v>[/namespaces/<ns>]/<plural>[/<name>[/status]]
// with GET (get, list, watch), POST, PUT, PATCH (merge, JSON, apply; strategic merge 415 on
// custom resources) and DELETE (one object or a collection); Table output when the Accept header
// asks for as=Table; watch streams as chunked NDJSON. Every error is a metav1.Status with the
// HTTP code of its reason (errors.h). Paths outside /version, /api, /apis and /openapi go to the
// fallback handler, if any (refstack's own admin routes on the same port).
//
// Threading: handleAsync() runs on the server's workers, concurrently, and answers every request
// but watches before it returns. A watch stays registered with the store and writes to its
// stream from whichever thread publishes an event (never blocking: a client that does not keep
// up is dropped). One internal timer thread ends watches at their timeout, sends bookmarks and
// sweeps dropped watches; watch deadlines use the steady clock, ages and timestamps the store's
// TimeSource.

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "kh/http/server.h"
#include "kh/kubeapi/store.h"

namespace kh::kubeapi {

struct ApiHandlerOptions {
  /**
   * When non-empty, every request (fallback paths included) must carry
   * `Authorization: Bearer <token>` (compared in constant time), else 401 Unauthorized.
   */
  std::string bearer_token;
  /** Answers paths the API does not own; null: they get 404 Status. Not owned; must outlive. */
  http::Handler* fallback = nullptr;
  /**
   * The longest a watch stays open: watches without timeoutSeconds close after this (kube-apiserver
   * picks 30-60 min), longer timeoutSeconds are cut to it. Closing is clean (the last chunk):
   * kubectl `get -w` then exits 0, kubectl wait and reflectors re-watch.
   */
  std::chrono::milliseconds max_watch_timeout{std::chrono::minutes(30)};
  /** How often a watch with allowWatchBookmarks=true gets a BOOKMARK (and one at its end). */
  std::chrono::milliseconds bookmark_interval{std::chrono::minutes(1)};
  /** A watch whose client leaves more than this unread is dropped. */
  size_t watch_max_pending_bytes = 16u << 20;
  /**
   * What GET /version reports. gcloud's kubectl dispatcher picks its kubectl by the minor
   * version, and runs its default 1.32 for "32" (kube-api.md §0).
   */
  std::string git_version = "v1.32.0";
};

class ApiHandler final : public http::Handler {
 public:
  /** `store` must outlive the handler. */
  explicit ApiHandler(ObjectStore& store, ApiHandlerOptions options = {});
  /** Ends every open watch (cleanly) and stops the timer thread. */
  ~ApiHandler() override;
  ApiHandler(const ApiHandler&) = delete;
  ApiHandler& operator=(const ApiHandler&) = delete;

  // http::Handler
  /** For synchronous servers: everything but watches (answered 400). */
  void handle(http::Request& request, http::Response& response) override;
  bool isAsync() const override { return true; }
  void handleAsync(http::Request&& request, http::Responder responder) override;
  /** Streamed bodies are offered to the fallback handler only (API bodies are read whole). */
  bool streamsBody(const http::RequestHeader& header) override;
  void handleStreamed(http::StreamedRequestPtr request) override;

  /** Whether `path` (no query) is one the API serves rather than the fallback. */
  static bool ownsPath(std::string_view path);

  /** Ends every open watch now, cleanly (e.g. before the server drains). Thread-safe. */
  void closeWatches();
  /** Watch streams open now. Thread-safe. */
  size_t openWatches() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kh::kubeapi
