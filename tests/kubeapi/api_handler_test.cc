// ApiHandler over real sockets: discovery negotiation, OpenAPI, CRUD and its Status errors,
// Tables, the bearer token, the fallback handler and watch streams (initial events, order,
// timeoutSeconds, 410, bookmarks, Table-encoded events).

#include "kh/kubeapi/api_handler.h"

#include <gtest/gtest.h>

#include "kh/http/client.h"
#include "kh/kubeapi/errors.h"
#include "stream_client.h"

namespace kh::kubeapi {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using testing::StreamClient;

constexpr std::string_view kIsvcs =
    "/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices";
constexpr std::string_view kTableAccept =
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/"
    "json;as=Table;v=v1beta1;g=meta.k8s.io,"
    "application/json";

json isvcBody(const std::string& name) {
  return {{"apiVersion", "serving.kserve.io/v1beta1"},
          {"kind", "InferenceService"},
          {"metadata", {{"name", name}, {"labels", {{"app", name}}}}},
          {"spec", {{"predictor", {{"minReplicas", 1}}}}}};
}

class Fallback : public http::Handler {
 public:
  void handle(http::Request& req, http::Response& res) override {
    ++calls;
    res.result(200);
    res.body() = "fallback:" + std::string(req.target());
  }
  std::atomic<int> calls{0};
};

class ApiHandlerTest : public ::testing::Test {
 protected:
  void start(ApiHandlerOptions options = {}) {
    StoreOptions so;
    so.kinds = refstackKinds();
    so.seed = 7;
    store_ = std::make_unique<ObjectStore>(so, time_);
    options.fallback = options.fallback ? options.fallback : &fallback_;
    handler_ = std::make_unique<ApiHandler>(*store_, options);
    http::ServerOptions server_options;
    server_options.workers = 2;
    auto server = http::HttpServer::create(server_options, *handler_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    server_->start();
    client_ = std::make_unique<http::Client>("127.0.0.1", server_->port());
  }

  void TearDown() override {
    if (handler_) handler_->closeWatches();
    client_.reset();
    server_.reset();
    handler_.reset();
  }

  http::Response send(boost::beast::http::verb method, std::string_view target,
                      std::string body = {}, std::string_view content_type = "application/json",
                      std::string_view accept = "application/json", std::string_view auth = {}) {
    http::Request req{method, std::string(target), 11};
    req.set(boost::beast::http::field::accept, std::string(accept));
    if (!body.empty()) req.set(boost::beast::http::field::content_type, std::string(content_type));
    if (!auth.empty()) req.set(boost::beast::http::field::authorization, std::string(auth));
    req.body() = std::move(body);
    auto res = client_->send(std::move(req));
    EXPECT_TRUE(res.ok()) << res.status();
    return res.ok() ? std::move(*res) : http::Response{};
  }

  static json bodyOf(const http::Response& res) { return json::parse(res.body(), nullptr, false); }

  std::unique_ptr<StreamClient> watch(const std::string& target,
                                      std::string_view accept = "application/json") {
    auto c = StreamClient::get(server_->port(), target, "Accept: " + std::string(accept) + "\r\n");
    EXPECT_TRUE(c.ok());
    return c.ok() ? std::move(*c) : nullptr;
  }

  common::SimulatedTimeSource time_;
  Fallback fallback_;
  std::unique_ptr<ObjectStore> store_;
  std::unique_ptr<ApiHandler> handler_;
  std::unique_ptr<http::HttpServer> server_;
  std::unique_ptr<http::Client> client_;
};

using boost::beast::http::verb;

TEST_F(ApiHandlerTest, VersionAndDiscoveryNegotiation) {
  start();
  auto version = send(verb::get, "/version?timeout=5s");
  EXPECT_EQ(version.result_int(), 200);
  EXPECT_EQ(bodyOf(version)["minor"], "32");

  std::string aggregated =
      "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
      "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,"
      "application/json";
  auto apis = send(verb::get, "/apis?timeout=32s", {}, {}, aggregated);
  EXPECT_EQ(apis.result_int(), 200);
  EXPECT_EQ(apis[boost::beast::http::field::content_type],
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList");
  EXPECT_EQ(bodyOf(apis)["kind"], "APIGroupDiscoveryList");
  auto beta = send(
      verb::get, "/api", {}, {},
      "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json");
  EXPECT_EQ(beta[boost::beast::http::field::content_type],
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList");
  EXPECT_EQ(bodyOf(beta)["items"][0]["versions"][0]["version"], "v1");

  auto legacy = send(verb::get, "/apis", {}, {}, "application/json, */*");
  EXPECT_EQ(legacy[boost::beast::http::field::content_type], "application/json");
  EXPECT_EQ(bodyOf(legacy)["kind"], "APIGroupList");
  auto api = send(verb::get, "/api", {}, {}, "application/json, */*");
  EXPECT_EQ(bodyOf(api)["kind"], "APIVersions");
  EXPECT_EQ(bodyOf(send(verb::get, "/api/v1"))["groupVersion"], "v1");
  EXPECT_EQ(bodyOf(send(verb::get, "/apis/serving.kserve.io/v1alpha1"))["resources"].size(), 6u);
  EXPECT_EQ(bodyOf(send(verb::get, "/apis/serving.kserve.io"))["preferredVersion"]["version"],
            "v1beta1");
  auto unknown = send(verb::get, "/apis/nope.io/v1");
  EXPECT_EQ(unknown.result_int(), 404);
  EXPECT_EQ(bodyOf(unknown)["message"], "the server could not find the requested resource");
}

TEST_F(ApiHandlerTest, OpenApi) {
  start();
  auto root = send(verb::get, "/openapi/v3");
  ASSERT_EQ(root.result_int(), 200);
  std::string url = bodyOf(root)["paths"]["apis/serving.kserve.io/v1beta1"]["serverRelativeURL"];
  auto doc = send(verb::get, url);
  ASSERT_EQ(doc.result_int(), 200);
  EXPECT_EQ(bodyOf(doc)["openapi"], "3.0.0");
  EXPECT_EQ(send(verb::get, "/openapi/v3/api/v1").result_int(), 200);
  auto v2 = send(verb::get, "/openapi/v2");
  EXPECT_EQ(v2.result_int(), 404);
  EXPECT_EQ(bodyOf(v2)["kind"], "Status");
}

TEST_F(ApiHandlerTest, CrudWithStatusErrors) {
  start();
  std::string collection(kIsvcs);
  auto empty = send(verb::get, collection);
  ASSERT_EQ(empty.result_int(), 200);
  EXPECT_EQ(empty.body().find("\"items\":[]"), empty.body().find("\"items\""));
  EXPECT_TRUE(bodyOf(empty)["items"].is_array());
  EXPECT_EQ(bodyOf(empty)["kind"], "InferenceServiceList");

  auto created = send(verb::post,
                      collection + "?fieldManager=kubectl-client-side-apply&fieldValidation=Strict",
                      isvcBody("a").dump());
  ASSERT_EQ(created.result_int(), 201) << created.body();
  json a = bodyOf(created);
  EXPECT_EQ(a["metadata"]["generation"], 1);
  EXPECT_TRUE(a["spec"]["predictor"]["minReplicas"].is_number_integer());

  auto dup = send(verb::post, collection, isvcBody("a").dump());
  EXPECT_EQ(dup.result_int(), 409);
  EXPECT_EQ(bodyOf(dup)["reason"], "AlreadyExists");

  auto got = send(verb::get, collection + "/a");
  EXPECT_EQ(bodyOf(got), a);
  auto missing = send(verb::get, collection + "/nope");
  EXPECT_EQ(missing.result_int(), 404);
  EXPECT_EQ(bodyOf(missing),
            json::parse(R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
              "message":"inferenceservices.serving.kserve.io \"nope\" not found",
              "reason":"NotFound",
              "code":404,"details":{"name":"nope","group":"serving.kserve.io",
              "kind":"inferenceservices"}})"));

  json stale = a;
  stale["metadata"]["resourceVersion"] = "1";
  auto conflict = send(verb::put, collection + "/a", stale.dump());
  EXPECT_EQ(conflict.result_int(), 409);
  EXPECT_EQ(bodyOf(conflict)["reason"], "Conflict");

  auto patched = send(verb::patch, collection + "/a", R"({"spec":{"predictor":{"minReplicas":3}}})",
                      "application/merge-patch+json");
  ASSERT_EQ(patched.result_int(), 200) << patched.body();
  EXPECT_EQ(bodyOf(patched)["metadata"]["generation"], 2);
  auto smp = send(verb::patch, collection + "/a", "{}", "application/strategic-merge-patch+json");
  EXPECT_EQ(smp.result_int(), 415);
  EXPECT_EQ(bodyOf(smp)["reason"], "UnsupportedMediaType");
  EXPECT_EQ(bodyOf(smp)["message"],
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json-patch+json, application/merge-patch+json, "
            "application/apply-patch+yaml");
  auto status = send(verb::patch, collection + "/a/status", R"({"status":{"url":"http://a"}})",
                     "application/merge-patch+json");
  ASSERT_EQ(status.result_int(), 200);
  EXPECT_EQ(bodyOf(send(verb::get, collection + "/a/status"))["status"]["url"], "http://a");

  auto ssa = send(verb::patch, collection + "/b?fieldManager=kubectl&force=false",
                  isvcBody("b").dump(), "application/apply-patch+yaml");
  EXPECT_EQ(ssa.result_int(), 201);

  auto pods = send(verb::post, "/api/v1/namespaces/default/pods",
                   R"({"metadata":{"name":"p"},"spec":{"containers":[{"name":"c"}]}})");
  EXPECT_EQ(pods.result_int(), 405);
  EXPECT_EQ(bodyOf(pods)["reason"], "MethodNotAllowed");

  auto no_ns = send(verb::post, "/apis/serving.kserve.io/v1beta1/namespaces/foo/inferenceservices",
                    isvcBody("x").dump());
  EXPECT_EQ(no_ns.result_int(), 404);
  EXPECT_EQ(bodyOf(no_ns)["message"], "namespaces \"foo\" not found");
  auto ns = send(verb::post, "/api/v1/namespaces",
                 R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"foo"}})");
  EXPECT_EQ(ns.result_int(), 201);
  EXPECT_EQ(bodyOf(ns)["status"]["phase"], "Active");

  auto deleted = send(verb::delete_, collection + "/a", R"({"propagationPolicy":"Background"})");
  ASSERT_EQ(deleted.result_int(), 200);
  json st = bodyOf(deleted);
  EXPECT_EQ(st["kind"], "Status");
  EXPECT_EQ(st["status"], "Success");
  EXPECT_EQ(st["details"]["name"], "a");
  EXPECT_EQ(st["details"]["kind"], "inferenceservices");
  EXPECT_EQ(st["details"]["uid"], a["metadata"]["uid"]);
  EXPECT_EQ(send(verb::delete_, collection + "/a").result_int(), 404);

  auto bad_selector = send(verb::get, collection + "?fieldSelector=spec.x%3D1");
  EXPECT_EQ(bad_selector.result_int(), 400);
  EXPECT_EQ(bodyOf(bad_selector)["reason"], "BadRequest");
  EXPECT_EQ(send(verb::get, "/apis/serving.kserve.io/v1beta1/inferenceservices/a").result_int(),
            404);
  EXPECT_EQ(send(verb::get, collection + "/b/scale").result_int(), 404);
}

// Input that once threw out of a handler and ended the process: bytes that are not UTF-8 written
// back in JSON, a body nested a million levels, fields of the wrong type. Each gets a Status and
// the server goes on serving.
TEST_F(ApiHandlerTest, BadInputGetsAStatusAndTheServerKeepsServing) {
  start();
  const std::string cms = "/api/v1/namespaces/default/configmaps";
  // %FF decodes to a byte that is not UTF-8; the 404 names it as U+FFFD, as Go would.
  auto not_utf8 = send(verb::get, cms + "/%FF");
  EXPECT_EQ(not_utf8.result_int(), 404);
  EXPECT_EQ(bodyOf(not_utf8)["details"]["name"], "\xEF\xBF\xBD");

  // A raw 0xFF in a YAML label value is stored, and written back replaced.
  auto yaml = send(verb::post, cms, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: y, annotations: {a: \"x\xffy\"}}\n",
                   "application/yaml");
  ASSERT_EQ(yaml.result_int(), 201) << yaml.body();
  EXPECT_EQ(bodyOf(yaml)["metadata"]["annotations"]["a"], "x\xEF\xBF\xBDy");
  EXPECT_EQ(send(verb::get, cms).result_int(), 200);

  std::string deep = std::string(1000000, '[') + std::string(1000000, ']');
  auto nested = send(verb::post, cms, R"({"metadata":{"name":"d"},"data":{"a":)" + deep + "}}");
  EXPECT_EQ(nested.result_int(), 400);
  EXPECT_EQ(bodyOf(nested)["reason"], "BadRequest");
  EXPECT_EQ(send(verb::patch, cms + "/y", R"({"data":)" + deep + "}", "application/merge-patch+json").result_int(),
            400);

  auto labels = send(verb::post, "/api/v1/namespaces", R"({"metadata":{"name":"l","labels":"a"}})");
  EXPECT_EQ(labels.result_int(), 400);
  EXPECT_EQ(bodyOf(labels)["message"], "metadata.labels must be a map of strings");
  EXPECT_EQ(send(verb::post, cms, R"({"metadata":{"name":"n","annotations":{"a":1}}})").result_int(), 400);
  // What a patch makes of a stored object is held to the same rule.
  auto merged = send(verb::patch, cms + "/y", R"({"metadata":{"labels":"a"}})", "application/merge-patch+json");
  EXPECT_EQ(merged.result_int(), 400);
  EXPECT_EQ(bodyOf(merged)["message"], "metadata.labels must be a map of strings");
  EXPECT_EQ(send(verb::patch, cms + "/y", R"([{"op":"add","path":"/metadata/annotations/b","value":1}])",
                 "application/json-patch+json")
                .result_int(),
            400);

  auto uid = send(verb::delete_, cms + "/y", R"({"preconditions":{"uid":1}})");
  EXPECT_EQ(uid.result_int(), 400);
  EXPECT_EQ(bodyOf(uid)["message"], "preconditions.uid must be a string");

  EXPECT_EQ(send(verb::delete_, cms + "/y").result_int(), 200);  // still serving
}

TEST_F(ApiHandlerTest, ListsSelectorsAndTables) {
  start();
  std::string collection(kIsvcs);
  ASSERT_EQ(send(verb::post, collection, isvcBody("a").dump()).result_int(), 201);
  ASSERT_EQ(send(verb::post, collection, isvcBody("b").dump()).result_int(), 201);
  ASSERT_EQ(send(verb::post, "/api/v1/namespaces", R"({"metadata":{"name":"team"}})").result_int(),
            201);
  ASSERT_EQ(send(verb::post, "/apis/serving.kserve.io/v1beta1/namespaces/team/inferenceservices",
                 isvcBody("c").dump())
                .result_int(),
            201);
  auto by_label = bodyOf(send(verb::get, collection + "?labelSelector=app%3Db&limit=500"));
  ASSERT_EQ(by_label["items"].size(), 1u);
  EXPECT_EQ(by_label["items"][0]["metadata"]["name"], "b");
  EXPECT_EQ(bodyOf(send(verb::get, collection + "?labelSelector=app+in+(a,c)"))["items"].size(),
            1u);
  auto all = bodyOf(send(verb::get, "/apis/serving.kserve.io/v1beta1/inferenceservices?limit=500"));
  EXPECT_EQ(all["items"].size(), 3u);
  EXPECT_EQ(all["metadata"]["resourceVersion"], std::to_string(store_->resourceVersion()));

  time_.advance(std::chrono::seconds(5));
  auto table = send(verb::get, collection + "?limit=500", {}, {}, kTableAccept);
  ASSERT_EQ(table.result_int(), 200);
  json t = bodyOf(table);
  EXPECT_EQ(t["kind"], "Table");
  ASSERT_EQ(t["rows"].size(), 2u);
  EXPECT_EQ(t["rows"][0]["cells"][0], "a");
  EXPECT_EQ(t["rows"][0]["cells"][7], "5s");
  EXPECT_EQ(t["rows"][0]["object"]["metadata"]["namespace"], "default");
  auto one = bodyOf(send(verb::get, collection + "/b?includeObject=Object", {}, {}, kTableAccept));
  EXPECT_EQ(one["rows"].size(), 1u);
  EXPECT_EQ(one["rows"][0]["object"]["kind"], "InferenceService");
  auto ns_table = bodyOf(send(verb::get, "/api/v1/namespaces", {}, {}, kTableAccept));
  EXPECT_EQ(ns_table["rows"].size(), 2u);
  EXPECT_EQ(ns_table["columnDefinitions"][1]["name"], "Status");
}

TEST_F(ApiHandlerTest, BearerTokenAndFallback) {
  ApiHandlerOptions options;
  options.bearer_token = "s3cret";
  start(options);
  auto denied = send(verb::get, "/version");
  EXPECT_EQ(denied.result_int(), 401);
  EXPECT_EQ(bodyOf(denied)["reason"], "Unauthorized");
  EXPECT_EQ(send(verb::get, "/version", {}, {}, "application/json", "Bearer wrong").result_int(),
            401);
  EXPECT_EQ(send(verb::get, "/version", {}, {}, "application/json", "Bearer s3cret1").result_int(),
            401);
  EXPECT_EQ(send(verb::get, "/version", {}, {}, "application/json", "Bearer s3cret").result_int(),
            200);
  EXPECT_EQ(send(verb::get, "/healthz").result_int(), 401);
  EXPECT_EQ(fallback_.calls.load(), 0);
  auto fb = send(verb::get, "/healthz?x=1", {}, {}, "application/json", "Bearer s3cret");
  EXPECT_EQ(fb.result_int(), 200);
  EXPECT_EQ(fb.body(), "fallback:/healthz?x=1");
  EXPECT_EQ(fallback_.calls.load(), 1);
  EXPECT_TRUE(ApiHandler::ownsPath("/apis"));
  EXPECT_TRUE(ApiHandler::ownsPath("/api/v1/pods"));
  EXPECT_FALSE(ApiHandler::ownsPath("/apply"));
  EXPECT_FALSE(ApiHandler::ownsPath("/apiary"));
}

TEST_F(ApiHandlerTest, WatchFromZeroThenLiveInOrderAndTimeoutClosesCleanly) {
  start();
  std::string collection(kIsvcs);
  ASSERT_EQ(send(verb::post, collection, isvcBody("a").dump()).result_int(), 201);
  uint64_t opened = store_->watchesOpened("InferenceService");
  // The Python client's spelling of watch, with a timeout.
  auto w = watch(collection + "?fieldSelector=metadata.name%3Da&timeoutSeconds=2&watch=True");
  ASSERT_TRUE(w);
  ASSERT_EQ(*w->status(milliseconds(5000)), 200);
  EXPECT_NE(w->head().find("Transfer-Encoding: chunked"), std::string::npos);
  auto first = w->nextLine(milliseconds(5000));
  ASSERT_TRUE(first.ok()) << first.status();
  json added = json::parse(*first);
  EXPECT_EQ(added["type"], "ADDED");
  EXPECT_EQ(added["object"]["metadata"]["name"], "a");
  ASSERT_TRUE(store_->awaitWatchesOpened("InferenceService", opened + 1, milliseconds(5000)));
  for (int i = 1; i <= 3; ++i) {
    ASSERT_EQ(
        send(verb::patch, collection + "/a/status",
             json{{"status", {{"observedGeneration", i}}}}.dump(), "application/merge-patch+json")
            .result_int(),
        200);
  }
  ASSERT_EQ(send(verb::post, collection, isvcBody("b").dump()).result_int(), 201);  // not selected
  uint64_t last_rv = 0;
  for (int i = 1; i <= 3; ++i) {
    auto line = w->nextLine(milliseconds(5000));
    ASSERT_TRUE(line.ok()) << line.status();
    json e = json::parse(*line);
    EXPECT_EQ(e["type"], "MODIFIED");
    EXPECT_EQ(e["object"]["status"]["observedGeneration"], i);
    uint64_t rv = std::stoull(e["object"]["metadata"]["resourceVersion"].get<std::string>());
    EXPECT_GT(rv, last_rv);
    last_rv = rv;
  }
  // timeoutSeconds=2: the stream then ends with the last chunk, no BOOKMARK (not asked for).
  auto end = w->nextLine(milliseconds(10000));
  EXPECT_TRUE(absl::IsOutOfRange(end.status())) << (end.ok() ? *end : end.status().ToString());
}

TEST_F(ApiHandlerTest, WatchFromVersionExpiredAndBookmarks) {
  ApiHandlerOptions options;
  options.bookmark_interval = milliseconds(100);
  start(options);
  std::string collection(kIsvcs);
  auto a = bodyOf(send(verb::post, collection, isvcBody("a").dump()));
  ASSERT_EQ(send(verb::post, collection, isvcBody("b").dump()).result_int(), 201);
  std::string rv_a = a["metadata"]["resourceVersion"];

  auto from = watch(collection + "?watch=true&resourceVersion=" + rv_a +
                    "&allowWatchBookmarks=true&timeoutSeconds=1");
  auto line = from->nextLine(milliseconds(5000));
  ASSERT_TRUE(line.ok());
  json e = json::parse(*line);
  EXPECT_EQ(e["type"], "ADDED");
  EXPECT_EQ(e["object"]["metadata"]["name"], "b");
  bool bookmark = false;
  while (true) {
    auto next = from->nextLine(milliseconds(10000));
    if (!next.ok()) {
      EXPECT_TRUE(absl::IsOutOfRange(next.status())) << next.status();
      break;
    }
    json b = json::parse(*next);
    EXPECT_EQ(b["type"], "BOOKMARK");
    EXPECT_EQ(b["object"]["kind"], "InferenceService");
    EXPECT_EQ(b["object"]["metadata"]["resourceVersion"],
              std::to_string(store_->resourceVersion()));
    bookmark = true;
  }
  EXPECT_TRUE(bookmark);

  // History starts afresh after a restore: an old version is Expired, in the stream.
  ASSERT_TRUE(store_->restore(store_->snapshot()).ok());
  auto expired = watch(collection + "?watch=true&resourceVersion=" + rv_a);
  ASSERT_EQ(*expired->status(milliseconds(5000)), 200);
  auto err = expired->nextLine(milliseconds(5000));
  ASSERT_TRUE(err.ok());
  json status = json::parse(*err);
  EXPECT_EQ(status["type"], "ERROR");
  EXPECT_EQ(status["object"]["kind"], "Status");
  EXPECT_EQ(status["object"]["code"], 410);
  EXPECT_EQ(status["object"]["reason"], "Expired");
  EXPECT_EQ(status["object"]["message"], "too old resource version: " + rv_a + " (" +
                                             std::to_string(store_->resourceVersion()) + ")");
  EXPECT_TRUE(absl::IsOutOfRange(expired->nextLine(milliseconds(5000)).status()));

  auto bad = send(verb::get, collection + "?watch=1&resourceVersion=x");
  EXPECT_EQ(bad.result_int(), 400);
}

TEST_F(ApiHandlerTest, TableWatchSendsColumnsOnceAndCloseWatchesEndsStreams) {
  start();
  std::string collection(kIsvcs);
  ASSERT_EQ(send(verb::post, collection, isvcBody("a").dump()).result_int(), 201);
  auto w = watch(collection + "?resourceVersion=0&watch=true", kTableAccept);
  auto first = w->nextLine(milliseconds(5000));
  ASSERT_TRUE(first.ok());
  json e1 = json::parse(*first);
  EXPECT_EQ(e1["type"], "ADDED");
  EXPECT_EQ(e1["object"]["kind"], "Table");
  EXPECT_EQ(e1["object"]["columnDefinitions"].size(), 8u);
  EXPECT_EQ(e1["object"]["rows"][0]["cells"][0], "a");
  ASSERT_TRUE(
      store_
          ->updateStatus("InferenceService", "default", "a",
                         [](json& o) {
                           o["status"]["conditions"] = {{{"type", "Ready"}, {"status", "True"}}};
                           return absl::OkStatus();
                         })
          .ok());
  auto second = w->nextLine(milliseconds(5000));
  ASSERT_TRUE(second.ok());
  json e2 = json::parse(*second);
  EXPECT_EQ(e2["type"], "MODIFIED");
  EXPECT_TRUE(e2["object"]["columnDefinitions"].empty());
  EXPECT_EQ(e2["object"]["rows"][0]["cells"][2], "True");
  EXPECT_EQ(handler_->openWatches(), 1u);
  handler_->closeWatches();
  EXPECT_TRUE(absl::IsOutOfRange(w->nextLine(milliseconds(5000)).status()));
  EXPECT_EQ(handler_->openWatches(), 0u);
}

TEST_F(ApiHandlerTest, SlowOrGoneWatchersAreDropped) {
  ApiHandlerOptions options;
  options.watch_max_pending_bytes = 1;  // any unsent byte is too many
  start(options);
  std::string collection(kIsvcs);
  ASSERT_EQ(send(verb::post, collection, isvcBody("a").dump()).result_int(), 201);
  auto w = watch(collection + "?watch=true");
  ASSERT_EQ(*w->status(milliseconds(5000)), 200);
  ASSERT_TRUE(store_->awaitWatchesOpened("InferenceService", 1, milliseconds(5000)));
  // The first event already exceeds the limit: the watcher is dropped, writers never wait.
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(store_
                    ->updateStatus("InferenceService", "default", "a",
                                   [i](json& o) {
                                     o["status"]["n"] = i;
                                     return absl::OkStatus();
                                   })
                    .ok());
  }
  EXPECT_EQ(store_->activeWatches("InferenceService"), 0u);
}

}  // namespace
}  // namespace kh::kubeapi
