#include "kh/graph/router.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <mutex>

#include "fmt/format.h"
#include "kh/common/json.h"
#include "kh/common/strings.h"

namespace kh::graph {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

bool successful(int status) { return status >= 200 && status <= 299; }

std::optional<json> parseJson(std::string_view text) {
  auto v = common::parseJson(text);
  if (!v.ok()) return std::nullopt;
  return std::move(*v);
}

// What Go's json.Unmarshal into map[string]interface{} says of a body that is not an object.
std::string notAnObject(std::string_view body) {
  size_t i = body.find_first_not_of(" \t\r\n");
  if (i == std::string_view::npos) return "unexpected end of JSON input";
  auto v = parseJson(body);
  if (!v) return fmt::format("invalid character '{}' looking for beginning of value", body[i]);
  const char* type = v->is_array() ? "array" : v->is_string() ? "string" : v->is_boolean() ? "bool" : "number";
  return fmt::format("json: cannot unmarshal {} into Go value of type map[string]interface {{}}", type);
}

void appendGoFloat(std::string& out, double f) {
  // encoding/json's floatEncoder: shortest round-trip digits, fixed notation unless the
  // magnitude is below 1e-6 or at least 1e21; exponents as e-7, not e-07.
  char buf[64];
  double a = std::fabs(f);
  bool scientific = a != 0 && (a < 1e-6 || a >= 1e21);
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, f, scientific ? std::chars_format::scientific : std::chars_format::fixed);
  std::string s(buf, ec == std::errc() ? end : buf);
  if (scientific) {
    size_t n = s.size();
    if (n >= 4 && s[n - 4] == 'e' && s[n - 3] == '-' && s[n - 2] == '0') s.erase(n - 2, 1);
  }
  out += s;
}

void appendGoString(std::string& out, const std::string& s) {
  static const char* kHex = "0123456789abcdef";
  out.push_back('"');
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      case '<': case '>': case '&':  // HTML-safe, as json.Marshal
        out += "\\u00";
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 15]);
        continue;
      default: break;
    }
    if (c < 0x20) {
      out += "\\u00";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    } else if (c == 0xe2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
               (static_cast<unsigned char>(s[i + 2]) == 0xa8 || static_cast<unsigned char>(s[i + 2]) == 0xa9)) {
      out += static_cast<unsigned char>(s[i + 2]) == 0xa8 ? "\\u2028" : "\\u2029";
      i += 2;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  out.push_back('"');
}

void appendGo(std::string& out, const json& v) {
  switch (v.type()) {
    case json::value_t::object: {
      out.push_back('{');
      bool first = true;
      for (const auto& [k, e] : v.items()) {  // nlohmann's objects are sorted, as Go's map keys
        if (!first) out.push_back(',');
        first = false;
        appendGoString(out, k);
        out.push_back(':');
        appendGo(out, e);
      }
      out.push_back('}');
      return;
    }
    case json::value_t::array: {
      out.push_back('[');
      for (size_t i = 0; i < v.size(); ++i) {
        if (i) out.push_back(',');
        appendGo(out, v[i]);
      }
      out.push_back(']');
      return;
    }
    case json::value_t::string: return appendGoString(out, v.get_ref<const std::string&>());
    case json::value_t::boolean: out += v.get<bool>() ? "true" : "false"; return;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return appendGoFloat(out, v.get<double>());  // interface{} holds float64
    default: out += "null"; return;
  }
}

// mapPredictionsToInstances: {"predictions": X} -> {"instances": X}, other fields dropped, as
// KServe decodes into its sequenceReqRes struct and re-encodes it.
std::string mapPredictions(const std::string& request) {
  auto v = parseJson(request);
  if (!v || !v->is_object()) return request;
  auto it = v->find("predictions");
  if (it == v->end() || !it->is_array() || it->empty()) return request;
  if (auto inst = v->find("instances"); inst != v->end() && !inst->is_array() && !inst->is_null()) return request;
  std::string out = "{\"instances\":";
  appendGo(out, *it);
  out.push_back('}');
  return out;
}

}  // namespace

std::string goJson(const json& value) {
  std::string out;
  appendGo(out, value);
  return out;
}

std::string canonicalHeaderKey(std::string_view name) {
  std::string out(name);
  // textproto leaves a key with a byte outside the token set unchanged.
  for (char c : out) {
    bool token = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!token) return out;
  }
  bool upper = true;
  for (char& c : out) {
    if (upper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    else if (!upper && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    upper = c == '-';
  }
  return out;
}

HeaderPatterns HeaderPatterns::parse(std::string_view text, std::vector<std::string>* warnings) {
  HeaderPatterns out;
  // strings.Split(text, ","): every piece is a pattern, an empty one included (it matches all).
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string pattern(text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    try {
      out.patterns_.emplace_back(pattern, std::regex::ECMAScript | std::regex::optimize);
    } catch (const std::regex_error& e) {
      if (warnings) warnings->push_back(fmt::format("failed to compile pattern \"{}\": {}", pattern, e.what()));
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

Headers HeaderPatterns::select(const Headers& incoming) const {
  Headers out;
  std::vector<std::string> matched;
  for (const auto& p : patterns_) {
    for (const auto& [name, value] : incoming) {
      std::string canonical = canonicalHeaderKey(name);
      if (std::find(matched.begin(), matched.end(), canonical) != matched.end()) continue;
      if (!std::regex_search(canonical, p)) continue;
      matched.push_back(canonical);
      for (const auto& [n, v] : incoming) {
        if (canonicalHeaderKey(n) == canonical) out.emplace_back(canonical, v);
      }
    }
  }
  return out;
}

std::string stepsHeader(const std::vector<StepTrace>& steps) {
  json out = json::array();
  for (const auto& s : steps) {
    json e = {{"node", s.node},
              {"step", s.step},
              {"target", s.target},
              {"status", s.status},
              {"start_ms", std::round(s.start_ms * 1000) / 1000},
              {"ms", std::round(s.ms * 1000) / 1000}};
    if (!s.error.empty()) e["error"] = s.error;
    out.push_back(std::move(e));
  }
  return common::jsonText(out);
}

// ------------------------------------------------------------------ the router

/** One graph request: its headers, the start time and the trace of its service calls. */
struct Router::Request {
  Headers step_headers;
  Clock::time_point start = Clock::now();
  std::mutex mu;  // an Ensemble's steps may finish on several threads
  std::vector<StepTrace> steps;
};

/** What a node (or a step) gives back: KServe's (bytes, status, error). */
struct Router::Outcome {
  int status = 0;
  std::string body;
  std::optional<std::string> error;  // set: the Go function returned an error

  static Outcome failure(int status, std::string cause) { return {status, {}, std::move(cause)}; }
};

Router::Router(GraphSpec graph, RouterOptions options, StepClient& client, common::RandomSource& random)
    : graph_(std::move(graph)), options_(std::move(options)), client_(client), random_(random) {}

void Router::route(std::string input, const Headers& headers, Callback done) const {
  auto request = std::make_shared<Request>();
  request->step_headers = options_.propagate.select(headers);
  bool has_type = false;
  for (const auto& [n, v] : request->step_headers) has_type = has_type || n == "Content-Type";
  if (!has_type) request->step_headers.emplace_back("Content-Type", "application/json");
  auto in = std::make_shared<const std::string>(std::move(input));
  runNode(request, kRootNode, in, 0, [request, done = std::move(done)](Outcome o) mutable {
    GraphResponse r;
    r.status = o.status;
    if (o.error) {
      // KServe marshals a struct (InferenceGraphRoutingError): fields in declaration order.
      r.body = R"({"error":"Failed to process request","cause":)";
      appendGoString(r.body, *o.error);
      r.body += '}';
      r.json = true;
    } else {
      r.body = std::move(o.body);
      r.json = parseJson(r.body).has_value();
    }
    {
      std::lock_guard lock(request->mu);
      r.steps = std::move(request->steps);
    }
    std::move(done)(std::move(r));
  });
}

void Router::runNode(const std::shared_ptr<Request>& request, const std::string& name,
                     std::shared_ptr<const std::string> input, int depth, NodeDone done) const {
  auto it = graph_.nodes.find(name);
  if (it == graph_.nodes.end()) {
    // KServe reads the zero value of a missing node: a router type of "".
    return std::move(done)(Outcome::failure(500, "invalid route type: "));
  }
  if (depth >= options_.max_depth) {
    return std::move(done)(Outcome::failure(
        500, fmt::format("graph nodes nested deeper than {} (node \"{}\"): a cycle?", options_.max_depth, name)));
  }
  const Node& node = it->second;
  // A Splitter's or Switch's step that fails outright fails the node with 500
  // (handleSplitterORSwitchNode).
  auto chosen = [&](size_t i) {
    runStep(request, name, i, std::move(input), depth, [done = std::move(done)](Outcome o) mutable {
      if (o.error) o.status = 500;
      std::move(done)(std::move(o));
    });
  };
  switch (node.type) {
    case RouterType::kSplitter: {
      const int64_t point = static_cast<int64_t>(random_.below(100));
      int64_t end = 0;
      for (size_t i = 0; i < node.steps.size(); ++i) {
        end += node.steps[i].weight.value_or(0);
        if (point < end) return chosen(i);
      }
      return std::move(done)(Outcome::failure(500, "no route was selected by the splitter"));
    }
    case RouterType::kSwitch: {
      if (auto doc = parseJson(*input)) {
        for (size_t i = 0; i < node.steps.size(); ++i) {
          const auto& c = node.steps[i].compiled_condition;
          if (c && c->exists(*doc)) return chosen(i);
        }
      }
      return std::move(done)(Outcome::failure(404, "None of the routes matched with the switch condition"));
    }
    case RouterType::kEnsemble:
      return runEnsemble(request, name, std::move(input), depth, std::move(done));
    case RouterType::kSequence:
      if (node.steps.empty()) {
        return std::move(done)(Outcome::failure(500, fmt::format("node \"{}\" has no steps", name)));
      }
      return runSequence(request, name, 0, std::move(input), nullptr, 0, depth, std::move(done));
  }
}

void Router::runStep(const std::shared_ptr<Request>& request, const std::string& node_name, size_t index,
                     std::shared_ptr<const std::string> input, int depth, NodeDone done) const {
  const Step& step = graph_.nodes.at(node_name).steps[index];
  if (!step.node_name.empty()) {
    // A nested node: its error becomes this step's failure (the caller turns it into a 500).
    return runNode(request, step.node_name, std::move(input), depth + 1, std::move(done));
  }
  StepRequest call;
  call.url = step.service_url;
  call.body = *input;
  call.headers = request->step_headers;
  call.timeout = options_.step_timeout;
  auto started = Clock::now();
  StepTrace trace;
  trace.node = node_name;
  trace.step = step.name.empty() ? std::to_string(index) : step.name;
  trace.target = step.service_url;
  trace.start_ms = std::chrono::duration<double, std::milli>(started - request->start).count();
  if (step.service_url.empty()) {
    // A serviceName the controller did not resolve (the router run by hand).
    trace.error = "unsupported protocol scheme \"\"";
    {
      std::lock_guard lock(request->mu);
      request->steps.push_back(trace);
    }
    return std::move(done)(Outcome::failure(500, fmt::format("Post \"\": {}", trace.error)));
  }
  client_.call(std::move(call), [request, trace = std::move(trace), started, done = std::move(done)](
                                    absl::StatusOr<StepResponse> r) mutable {
    trace.ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
    Outcome o;
    if (r.ok()) {
      trace.status = r->status;
      o.status = r->status;
      o.body = std::move(r->body);
    } else {
      trace.error = std::string(common::toStd(r.status().message()));
      o = Outcome::failure(500, fmt::format("Post \"{}\": {}", trace.target, trace.error));
    }
    {
      std::lock_guard lock(request->mu);
      request->steps.push_back(std::move(trace));
    }
    std::move(done)(std::move(o));
  });
}

void Router::runSequence(const std::shared_ptr<Request>& request, const std::string& node_name, size_t index,
                         std::shared_ptr<const std::string> input, std::shared_ptr<const std::string> previous,
                         int previous_status, int depth, NodeDone done) const {
  const Node& node = graph_.nodes.at(node_name);
  if (index == node.steps.size()) {
    return std::move(done)(Outcome{previous_status, previous ? *previous : std::string(), std::nullopt});
  }
  const Step& step = node.steps[index];
  std::shared_ptr<const std::string> request_body = input;
  if (step.data == "$response" && index > 0) request_body = previous;
  if (step.map_predictions_to_instances) {
    request_body = std::make_shared<const std::string>(mapPredictions(*request_body));
  }
  if (step.compiled_condition) {
    std::optional<json> doc = previous ? parseJson(*previous) : std::nullopt;
    if (!doc) return std::move(done)(Outcome::failure(500, "invalid response"));
    // A condition that finds nothing ends the node with the previous answer and 200 (KServe
    // v0.15.1 on).
    if (!step.compiled_condition->exists(*doc)) return std::move(done)(Outcome{200, *previous, std::nullopt});
  }
  runStep(request, node_name, index, request_body, depth,
          [this, request, node_name, index, input, depth, done = std::move(done)](Outcome o) mutable {
            if (o.error) return std::move(done)(Outcome::failure(500, std::move(*o.error)));
            const Step& s = graph_.nodes.at(node_name).steps[index];
            if (s.dependency == Dependency::kHard && !successful(o.status)) return std::move(done)(std::move(o));
            auto body = std::make_shared<const std::string>(std::move(o.body));
            runSequence(request, node_name, index + 1, input, body, o.status, depth, std::move(done));
          });
}

void Router::runEnsemble(const std::shared_ptr<Request>& request, const std::string& node_name,
                         std::shared_ptr<const std::string> input, int depth, NodeDone done) const {
  const Node& node = graph_.nodes.at(node_name);
  if (node.steps.empty()) return std::move(done)(Outcome{200, "{}", std::nullopt});
  struct Join {
    std::vector<Outcome> outcomes;
    std::atomic<size_t> remaining;
    NodeDone done;
  };
  auto join = std::make_shared<Join>();
  join->outcomes.resize(node.steps.size());
  join->remaining = node.steps.size();
  join->done = std::move(done);
  for (size_t i = 0; i < node.steps.size(); ++i) {
    runStep(request, node_name, i, input, depth, [this, join, node_name, i](Outcome o) mutable {
      join->outcomes[i] = std::move(o);
      if (join->remaining.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
      // Every step is in: merged in step order, as KServe reads its channels.
      const Node& n = graph_.nodes.at(node_name);
      json merged = json::object();
      for (size_t k = 0; k < n.steps.size(); ++k) {
        Outcome& step = join->outcomes[k];
        if (step.error) return std::move(join->done)(Outcome::failure(500, std::move(*step.error)));
        auto doc = parseJson(step.body);
        if (!doc || !(doc->is_object() || doc->is_null())) {
          return std::move(join->done)(Outcome::failure(500, notAnObject(step.body)));
        }
        if (n.steps[k].dependency == Dependency::kHard && !successful(step.status)) {
          // The first failed Hard step decides, its body re-encoded as KServe's.
          return std::move(join->done)(Outcome{step.status, goJson(*doc), std::nullopt});
        }
        merged[n.steps[k].name.empty() ? std::to_string(k) : n.steps[k].name] = std::move(*doc);
      }
      std::move(join->done)(Outcome{200, goJson(merged), std::nullopt});
    });
  }
}

}  // namespace kh::graph
