#include "kh/graph/gjson.h"

#include <charconv>
#include <cstdlib>
#include <vector>

#include "kh/common/strings.h"

namespace kh::graph {
namespace {

using nlohmann::json;

}  // namespace

// One step of a compiled path.
struct GjsonPath::Node {
  enum class Kind { kKey, kCount, kMap, kQuery, kThis, kMulti };
  enum class Op { kExists, kEq, kNe, kLt, kLe, kGt, kGe, kLike, kNotLike };
  Kind kind = Kind::kKey;
  std::string key;                       // kKey
  bool all = false;                      // kQuery: #(...)# (every match)
  std::shared_ptr<const Node> lhs;       // kQuery: the path in the element (null: the element)
  Op op = Op::kExists;                   // kQuery
  std::string rhs;                       // kQuery: the value, unquoted
  bool rhs_quoted = false;
  std::vector<std::shared_ptr<const Node>> paths;  // kMulti
  std::shared_ptr<const Node> next;      // the rest of the path
};

namespace {

using Node = GjsonPath::Node;
using NodePtr = std::shared_ptr<const Node>;

// Segments per path, nested ones included. A compiled path is a chain of nodes that is parsed,
// evaluated and destroyed recursively: without a bound, a long enough path (the fuzzer's had
// thousands of '.') overflows the stack of whatever compiles it. Real conditions have a few.
constexpr int kMaxSegments = 256;

class Parser {
 public:
  // `segments` counts every segment of the whole path, across the parsers of its nested parts.
  Parser(std::string_view text, size_t base, int* segments) : text_(text), base_(base), segments_(segments) {}

  absl::StatusOr<NodePtr> path(bool top) {
    if (text_.empty()) return NodePtr();
    NodePtr first;
    size_t start = pos_;
    auto seg = segment(top);
    if (!seg.ok()) return seg.status();
    first = std::move(*seg);
    (void)start;
    return first;
  }

  size_t pos() const { return pos_; }

  absl::Status error(std::string_view what, size_t at) const {
    return absl::InvalidArgumentError(common::strCat(what, " at offset ", base_ + at));
  }

 private:
  // One segment and (recursively) the rest after its dot.
  absl::StatusOr<NodePtr> segment(bool first) {
    if (++*segments_ > kMaxSegments) return error(common::strCat("a path of more than ", kMaxSegments, " segments"), pos_);
    auto node = std::make_shared<Node>();
    if (pos_ >= text_.size()) return error("an empty key", pos_);
    char c = text_[pos_];
    if (c == '[' && first) {
      node->kind = Node::Kind::kMulti;
      ++pos_;
      while (true) {
        size_t end = findClose(pos_, ',', ']');
        if (end == std::string_view::npos) return error("'[' without ']'", pos_ - 1);
        std::string_view inner = text_.substr(pos_, end - pos_);
        if (inner.empty()) return error("an empty path in '[...]'", pos_);
        Parser sub(inner, base_ + pos_, segments_);
        auto p = sub.path(true);
        if (!p.ok()) return p.status();
        if (sub.pos() != inner.size()) return sub.error("unexpected text", sub.pos());
        node->paths.push_back(std::move(*p));
        pos_ = end + 1;
        if (text_[end] == ']') break;
      }
    } else if (c == '#' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '(') {
      node->kind = Node::Kind::kQuery;
      size_t open = pos_ + 1;
      size_t close = findClose(open + 1, ')', ')');
      if (close == std::string_view::npos) return error("'#(' without ')'", pos_);
      if (auto st = query(*node, text_.substr(open + 1, close - open - 1), open + 1); !st.ok()) return st;
      pos_ = close + 1;
      if (pos_ < text_.size() && text_[pos_] == '#') {
        node->all = true;
        ++pos_;
      }
    } else if (c == '#') {
      ++pos_;
      node->kind = pos_ < text_.size() ? Node::Kind::kMap : Node::Kind::kCount;
    } else if (c == '@') {
      size_t end = pos_;
      while (end < text_.size() && text_[end] != '.') ++end;
      std::string_view name = text_.substr(pos_, end - pos_);
      if (name != "@this") return error(common::strCat("the modifier '", name, "' is not in the subset"), pos_);
      node->kind = Node::Kind::kThis;
      pos_ = end;
    } else {
      node->kind = Node::Kind::kKey;
      while (pos_ < text_.size() && text_[pos_] != '.') {
        char k = text_[pos_];
        if (k == '\\') {
          if (pos_ + 1 >= text_.size()) return error("a '\\' at the end", pos_);
          node->key.push_back(text_[pos_ + 1]);
          pos_ += 2;
          continue;
        }
        if (k == '*' || k == '?') return error("key wildcards are not in the subset", pos_);
        if (k == '|' || k == '{' || k == '[' || k == '(' || k == ')' || k == '!' || k == ',' || k == ']') {
          return error(common::strCat("unexpected '", std::string(1, k), "'"), pos_);
        }
        node->key.push_back(k);
        ++pos_;
      }
      if (node->key.empty()) return error("an empty key", pos_);
    }
    if (pos_ < text_.size()) {
      if (text_[pos_] != '.') return error(common::strCat("unexpected '", std::string(1, text_[pos_]), "'"), pos_);
      ++pos_;
      if (pos_ >= text_.size()) return error("a path ending in '.'", pos_ - 1);
      auto rest = segment(false);
      if (!rest.ok()) return rest.status();
      node->next = std::move(*rest);
    }
    return NodePtr(std::move(node));
  }

  // The index of the first `a` or `b` at nesting depth 0 from `from`, skipping quoted strings.
  size_t findClose(size_t from, char a, char b) const {
    int depth = 0;
    bool quoted = false;
    for (size_t i = from; i < text_.size(); ++i) {
      char c = text_[i];
      if (quoted) {
        if (c == '\\') ++i;
        else if (c == '"') quoted = false;
        continue;
      }
      if (c == '"') quoted = true;
      else if (c == '(' || c == '[') ++depth;
      else if ((c == ')' || c == ']') && depth > 0) --depth;
      else if (depth == 0 && (c == a || c == b)) return i;
    }
    return std::string_view::npos;
  }

  absl::Status query(Node& node, std::string_view body, size_t at) {
    // The operator: the first one outside quotes and parentheses.
    struct OpText {
      const char* text;
      Node::Op op;
    };
    static const OpText kOps[] = {{"==", Node::Op::kEq}, {"!=", Node::Op::kNe}, {"<=", Node::Op::kLe},
                                  {">=", Node::Op::kGe}, {"!%", Node::Op::kNotLike}, {"=", Node::Op::kEq},
                                  {"<", Node::Op::kLt},  {">", Node::Op::kGt},  {"%", Node::Op::kLike}};
    int depth = 0;
    bool quoted = false;
    size_t op_at = std::string_view::npos, op_len = 0;
    for (size_t i = 0; i < body.size() && op_at == std::string_view::npos; ++i) {
      char c = body[i];
      if (quoted) {
        if (c == '\\') ++i;
        else if (c == '"') quoted = false;
        continue;
      }
      if (c == '"') {
        quoted = true;
        continue;
      }
      if (c == '(' || c == '[') ++depth;
      if ((c == ')' || c == ']') && depth > 0) --depth;
      if (depth > 0) continue;
      for (const auto& o : kOps) {
        std::string_view t(o.text);
        if (body.substr(i, t.size()) == t) {
          op_at = i;
          op_len = t.size();
          node.op = o.op;
          break;
        }
      }
    }
    std::string_view lhs = op_at == std::string_view::npos ? body : body.substr(0, op_at);
    while (!lhs.empty() && lhs.back() == ' ') lhs.remove_suffix(1);
    while (!lhs.empty() && lhs.front() == ' ') {
      lhs.remove_prefix(1);
      ++at;
    }
    if (op_at == std::string_view::npos && lhs.empty()) return error("an empty query", at);
    if (!lhs.empty()) {
      Parser sub(lhs, base_ + at, segments_);
      auto p = sub.path(true);
      if (!p.ok()) return p.status();
      if (sub.pos() != lhs.size()) return sub.error("unexpected text", sub.pos());
      node.lhs = std::move(*p);
    }
    if (op_at == std::string_view::npos) return absl::OkStatus();
    std::string_view rhs = body.substr(op_at + op_len);
    while (!rhs.empty() && rhs.front() == ' ') rhs.remove_prefix(1);
    while (!rhs.empty() && rhs.back() == ' ') rhs.remove_suffix(1);
    if (!rhs.empty() && rhs.front() == '"') {
      json s = json::parse(rhs, nullptr, false);
      if (!s.is_string()) return error("a malformed string value", at + op_at + op_len);
      node.rhs = s.get<std::string>();
      node.rhs_quoted = true;
    } else {
      node.rhs = std::string(rhs);
    }
    return absl::OkStatus();
  }

  std::string_view text_;
  size_t base_;
  int* segments_;
  size_t pos_ = 0;
};

std::optional<json> eval(const NodePtr& node, const json& value);

bool compare(const Node& q, const json& element) {
  if (q.op == Node::Op::kExists) return q.lhs == nullptr || eval(q.lhs, element).has_value();
  std::optional<json> got = q.lhs ? eval(q.lhs, element) : std::optional<json>(element);
  if (!got) return false;
  const json& v = *got;
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    switch (q.op) {
      case Node::Op::kEq: return s == q.rhs;
      case Node::Op::kNe: return s != q.rhs;
      case Node::Op::kLt: return s < q.rhs;
      case Node::Op::kLe: return s <= q.rhs;
      case Node::Op::kGt: return s > q.rhs;
      case Node::Op::kGe: return s >= q.rhs;
      case Node::Op::kLike: return wildcardMatch(s, q.rhs);
      case Node::Op::kNotLike: return !wildcardMatch(s, q.rhs);
      default: return false;
    }
  }
  if (v.is_number()) {
    // As gjson's strconv.ParseFloat: a value that is not a number compares as 0.
    char* end = nullptr;
    double r = std::strtod(q.rhs.c_str(), &end);
    if (end == q.rhs.c_str()) r = 0;
    double n = v.get<double>();
    switch (q.op) {
      case Node::Op::kEq: return n == r;
      case Node::Op::kNe: return n != r;
      case Node::Op::kLt: return n < r;
      case Node::Op::kLe: return n <= r;
      case Node::Op::kGt: return n > r;
      case Node::Op::kGe: return n >= r;
      default: return false;
    }
  }
  if (v.is_boolean()) {
    std::string b = v.get<bool>() ? "true" : "false";
    if (q.op == Node::Op::kEq) return b == q.rhs;
    if (q.op == Node::Op::kNe) return b != q.rhs;
    return false;
  }
  if (v.is_null()) return q.op == Node::Op::kEq ? q.rhs == "null" : q.op == Node::Op::kNe && q.rhs != "null";
  return false;
}

// The rest of a path applied to every element, the results that exist kept (gjson's `#.` and
// `#(...)#.`).
json mapRest(const NodePtr& rest, const json& array) {
  json out = json::array();
  for (const auto& e : array) {
    if (!rest) {
      out.push_back(e);
    } else if (auto r = eval(rest, e)) {
      out.push_back(std::move(*r));
    }
  }
  return out;
}

std::optional<json> eval(const NodePtr& node, const json& value) {
  if (!node) return value;
  switch (node->kind) {
    case Node::Kind::kThis:
      return eval(node->next, value);
    case Node::Kind::kKey: {
      if (value.is_object()) {
        auto it = value.find(node->key);
        if (it == value.end()) return std::nullopt;
        return eval(node->next, *it);
      }
      if (value.is_array()) {
        size_t index = 0;
        auto [p, ec] = std::from_chars(node->key.data(), node->key.data() + node->key.size(), index);
        if (ec != std::errc() || p != node->key.data() + node->key.size() || index >= value.size()) {
          return std::nullopt;
        }
        return eval(node->next, value[index]);
      }
      return std::nullopt;
    }
    case Node::Kind::kCount:
      if (!value.is_array()) return std::nullopt;
      return json(value.size());
    case Node::Kind::kMap:
      if (!value.is_array()) return std::nullopt;
      return mapRest(node->next, value);
    case Node::Kind::kQuery: {
      if (!value.is_array()) return std::nullopt;
      if (!node->all) {
        for (const auto& e : value) {
          if (compare(*node, e)) return eval(node->next, e);
        }
        return std::nullopt;
      }
      json matches = json::array();
      for (const auto& e : value) {
        if (compare(*node, e)) matches.push_back(e);
      }
      return mapRest(node->next, matches);
    }
    case Node::Kind::kMulti: {
      json out = json::array();
      for (const auto& p : node->paths) {
        if (auto r = eval(p, value)) out.push_back(std::move(*r));
      }
      return eval(node->next, out);
    }
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<GjsonPath> GjsonPath::compile(std::string_view path) {
  GjsonPath out;
  out.text_ = std::string(path);
  if (path.empty()) return absl::InvalidArgumentError("gjson path '': an empty path at offset 0");
  int segments = 0;
  Parser parser(path, 0, &segments);
  auto root = parser.path(true);
  if (!root.ok()) {
    return absl::InvalidArgumentError(common::strCat("gjson path '", path, "': ", common::toStd(root.status().message())));
  }
  if (parser.pos() != path.size()) {
    return absl::InvalidArgumentError(common::strCat("gjson path '", path, "': unexpected text at offset ", parser.pos()));
  }
  out.root_ = std::move(*root);
  return out;
}

std::optional<nlohmann::json> GjsonPath::get(const nlohmann::json& doc) const {
  if (!root_) return std::nullopt;
  return eval(root_, doc);
}

bool wildcardMatch(std::string_view text, std::string_view pattern) {
  // Iterative glob matching with backtracking to the last '*'.
  size_t t = 0, p = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++t;
      ++p;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace kh::graph
