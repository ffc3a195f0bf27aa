#include "kh/kubeapi/jsonpath.h"

#include <cctype>

#include "kh/common/strings.h"

namespace kh::kubeapi {
namespace {

using common::strCat;

bool isIdentChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  absl::Status error(std::string_view what) const {
    return absl::InvalidArgumentError(strCat("jsonpath \"", s_, "\" at ", pos_, ": ", what));
  }
  bool done() const { return pos_ >= s_.size(); }
  char peek() const { return done() ? '\0' : s_[pos_]; }
  void skipSpaces() {
    while (!done() && s_[pos_] == ' ') ++pos_;
  }
  bool consume(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  bool consume(std::string_view text) {
    if (s_.substr(pos_, text.size()) != text) return false;
    pos_ += text.size();
    return true;
  }
  std::string identifier() {
    size_t start = pos_;
    while (!done() && isIdentChar(s_[pos_])) ++pos_;
    return std::string(s_.substr(start, pos_ - start));
  }
  absl::StatusOr<std::string> quoted() {
    char quote = peek();
    if (quote != '\'' && quote != '"') return error("expected a quoted string");
    ++pos_;
    std::string out;
    while (!done() && s_[pos_] != quote) {
      if (s_[pos_] == '\\' && pos_ + 1 < s_.size()) ++pos_;  // "\." is a literal dot
      out.push_back(s_[pos_++]);
    }
    if (!consume(quote)) return error("unterminated string");
    return out;
  }
  absl::StatusOr<nlohmann::json> literal() {
    skipSpaces();
    char c = peek();
    if (c == '\'' || c == '"') {
      auto text = quoted();
      if (!text.ok()) return text.status();
      return nlohmann::json(*text);
    }
    if (consume("true")) return nlohmann::json(true);
    if (consume("false")) return nlohmann::json(false);
    if (consume("null")) return nlohmann::json(nullptr);
    size_t start = pos_;
    while (!done() && (std::isdigit(static_cast<unsigned char>(peek())) || peek() == '-' ||
                       peek() == '.' || peek() == '+' || peek() == 'e' || peek() == 'E')) {
      ++pos_;
    }
    auto number = nlohmann::json::parse(s_.substr(start, pos_ - start), nullptr, false);
    if (pos_ == start || number.is_discarded() || !number.is_number()) {
      return error("expected a literal");
    }
    return number;
  }

  size_t pos_ = 0;

 private:
  std::string_view s_;
};

bool filterHolds(const nlohmann::json& element, const std::vector<std::string>& path, int op,
                 const nlohmann::json& literal) {
  const nlohmann::json* node = &element;
  for (const auto& field : path) {
    if (!node->is_object()) return op == 2;  // kNe: a missing field is "not equal"
    auto it = node->find(field);
    if (it == node->end()) return op == 2;
    node = &*it;
  }
  if (op == 0) return true;
  bool equal = *node == literal;
  return op == 1 ? equal : !equal;
}

}  // namespace

absl::StatusOr<JsonPath> JsonPath::parse(std::string_view expression) {
  std::string_view text = expression;
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  if (text.size() >= 2 && text.front() == '{' && text.back() == '}') {
    text = text.substr(1, text.size() - 2);
  }
  Parser p(text);
  JsonPath path;
  p.consume('$');
  while (!p.done()) {
    if (p.consume('.')) {
      if (p.consume('*')) {
        Step step;
        step.type = Step::Type::kWildcard;
        path.steps_.push_back(std::move(step));
        continue;
      }
      std::string name = p.identifier();
      if (name.empty()) return p.error("expected a field name after '.'");
      Step step;
      step.field = std::move(name);
      path.steps_.push_back(std::move(step));
      continue;
    }
    if (p.consume('[')) {
      p.skipSpaces();
      Step step;
      if (p.consume('*')) {
        step.type = Step::Type::kWildcard;
      } else if (p.peek() == '\'' || p.peek() == '"') {
        auto name = p.quoted();
        if (!name.ok()) return name.status();
        step.field = *name;
      } else if (p.consume("?(")) {
        step.type = Step::Type::kFilter;
        p.skipSpaces();
        if (!p.consume('@')) return p.error("a filter starts with '@'");
        while (p.consume('.')) {
          std::string name = p.identifier();
          if (name.empty()) return p.error("expected a field name in the filter");
          step.filter_path.push_back(std::move(name));
        }
        p.skipSpaces();
        if (p.consume("==")) {
          step.op = Step::Op::kEq;
        } else if (p.consume("!=")) {
          step.op = Step::Op::kNe;
        }
        if (step.op != Step::Op::kExists) {
          auto lit = p.literal();
          if (!lit.ok()) return lit.status();
          step.literal = std::move(*lit);
        }
        p.skipSpaces();
        if (!p.consume(')')) return p.error("expected ')' closing the filter");
      } else {
        size_t start = p.pos_;
        p.consume('-');
        while (std::isdigit(static_cast<unsigned char>(p.peek()))) ++p.pos_;
        auto index = common::parseInt<int64_t>(text.substr(start, p.pos_ - start));
        if (!index) return p.error("expected an index, '*', a quoted name or a filter");
        step.type = Step::Type::kIndex;
        step.index = *index;
      }
      p.skipSpaces();
      if (!p.consume(']')) return p.error("expected ']'");
      path.steps_.push_back(std::move(step));
      continue;
    }
    return p.error("expected '.' or '['");
  }
  return path;
}

std::vector<const nlohmann::json*> JsonPath::evaluate(const nlohmann::json& root) const {
  std::vector<const nlohmann::json*> current{&root};
  std::vector<const nlohmann::json*> next;
  for (const auto& step : steps_) {
    next.clear();
    for (const nlohmann::json* node : current) {
      switch (step.type) {
        case Step::Type::kField:
          if (node->is_object()) {
            auto it = node->find(step.field);
            if (it != node->end()) next.push_back(&*it);
          }
          break;
        case Step::Type::kIndex:
          if (node->is_array()) {
            int64_t size = static_cast<int64_t>(node->size());
            int64_t i = step.index < 0 ? size + step.index : step.index;
            if (i >= 0 && i < size) next.push_back(&(*node)[static_cast<size_t>(i)]);
          }
          break;
        case Step::Type::kWildcard:
          if (node->is_array() || node->is_object()) {
            for (const auto& child : *node) next.push_back(&child);
          }
          break;
        case Step::Type::kFilter:
          if (node->is_array()) {
            for (const auto& child : *node) {
              if (filterHolds(child, step.filter_path, static_cast<int>(step.op), step.literal)) {
                next.push_back(&child);
              }
            }
          }
          break;
      }
    }
    current.swap(next);
    if (current.empty()) break;
  }
  return current;
}

const nlohmann::json* JsonPath::first(const nlohmann::json& root) const {
  auto all = evaluate(root);
  return all.empty() ? nullptr : all.front();
}

}  // namespace kh::kubeapi
