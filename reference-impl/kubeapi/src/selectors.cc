#include "kh/kubeapi/selectors.h"

#include <algorithm>
#include <cctype>

#include "kh/common/json.h"
#include "kh/common/strings.h"
#include "kh/kubeapi/errors.h"

namespace kh::kubeapi {
namespace {

using common::strCat;

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// Splits on commas outside parentheses.
std::vector<std::string_view> splitTopLevel(std::string_view text) {
  std::vector<std::string_view> parts;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '(') ++depth;
    if (text[i] == ')') --depth;
    if (text[i] == ',' && depth == 0) {
      parts.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(text.substr(start));
  return parts;
}

bool validLabelChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
         c == '/';
}

bool validKey(std::string_view key) {
  return !key.empty() && std::all_of(key.begin(), key.end(), validLabelChar);
}

bool validValue(std::string_view value) {
  return std::all_of(value.begin(), value.end(), validLabelChar);
}

absl::Status parseError(std::string_view requirement, std::string_view why) {
  return badRequestError(strCat("unable to parse requirement: ", why, ": \"", requirement, "\""));
}

const nlohmann::json* fieldAt(const nlohmann::json& object, const std::vector<std::string>& path) {
  const nlohmann::json* node = &object;
  for (const auto& key : path) {
    if (!node->is_object()) return nullptr;
    auto it = node->find(key);
    if (it == node->end()) return nullptr;
    node = &*it;
  }
  return node;
}

std::vector<std::string> splitDots(std::string_view field) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i <= field.size(); ++i) {
    if (i == field.size() || field[i] == '.') {
      out.emplace_back(field.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<LabelSelector> LabelSelector::parse(std::string_view text) {
  LabelSelector selector;
  if (trim(text).empty()) return selector;
  for (std::string_view raw : splitTopLevel(text)) {
    std::string_view part = trim(raw);
    if (part.empty()) return parseError(text, "empty requirement");
    Requirement req;
    if (part.front() == '!') {
      std::string_view key = trim(part.substr(1));
      if (!validKey(key)) return parseError(part, "invalid label key");
      req.key = std::string(key);
      req.op = Requirement::Op::kNotExists;
      selector.requirements_.push_back(std::move(req));
      continue;
    }
    size_t key_end = 0;
    while (key_end < part.size() && validLabelChar(part[key_end])) ++key_end;
    std::string_view key = part.substr(0, key_end);
    std::string_view rest = trim(part.substr(key_end));
    if (!validKey(key)) return parseError(part, "invalid label key");
    req.key = std::string(key);
    if (rest.empty()) {
      req.op = Requirement::Op::kExists;
    } else if (rest.substr(0, 2) == "==" || rest.substr(0, 2) == "!=" || rest.front() == '=') {
      size_t op_len = rest.front() == '=' && rest.substr(0, 2) != "==" ? 1 : 2;
      req.op = rest.front() == '!' ? Requirement::Op::kNotEquals : Requirement::Op::kEquals;
      std::string_view value = trim(rest.substr(op_len));
      if (!validValue(value)) return parseError(part, "invalid label value");
      req.values.emplace_back(value);
    } else if (rest.substr(0, 2) == "in" || rest.substr(0, 5) == "notin") {
      bool notin = rest.substr(0, 5) == "notin";
      req.op = notin ? Requirement::Op::kNotIn : Requirement::Op::kIn;
      std::string_view list = trim(rest.substr(notin ? 5 : 2));
      if (list.size() < 2 || list.front() != '(' || list.back() != ')') {
        return parseError(part, "expected a parenthesized list of values");
      }
      list = list.substr(1, list.size() - 2);
      size_t start = 0;
      for (size_t i = 0; i <= list.size(); ++i) {
        if (i == list.size() || list[i] == ',') {
          std::string_view value = trim(list.substr(start, i - start));
          if (!validValue(value)) return parseError(part, "invalid label value");
          req.values.emplace_back(value);
          start = i + 1;
        }
      }
    } else {
      return parseError(part, "expected one of =, ==, !=, in, notin");
    }
    selector.requirements_.push_back(std::move(req));
  }
  return selector;
}

bool LabelSelector::matches(const nlohmann::json& labels) const {
  for (const auto& req : requirements_) {
    const nlohmann::json* value = nullptr;
    if (labels.is_object()) {
      auto it = labels.find(req.key);
      if (it != labels.end() && it->is_string()) value = &*it;
    }
    auto in = [&] {
      return value != nullptr &&
             std::find(req.values.begin(), req.values.end(),
                       value->get_ref<const std::string&>()) != req.values.end();
    };
    switch (req.op) {
      case Requirement::Op::kEquals:
      case Requirement::Op::kIn:
        if (!in()) return false;
        break;
      case Requirement::Op::kNotEquals:
      case Requirement::Op::kNotIn:
        if (in()) return false;
        break;
      case Requirement::Op::kExists:
        if (value == nullptr) return false;
        break;
      case Requirement::Op::kNotExists:
        if (value != nullptr) return false;
        break;
    }
  }
  return true;
}

absl::StatusOr<FieldSelector> FieldSelector::parse(std::string_view text, const KindSpec& spec) {
  FieldSelector selector;
  if (trim(text).empty()) return selector;
  // Split on unescaped commas, unescaping as we go.
  std::vector<std::string> parts(1);
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\\' && i + 1 < text.size()) {
      parts.back().push_back('\\');
      parts.back().push_back(text[++i]);
    } else if (c == ',') {
      parts.emplace_back();
    } else {
      parts.back().push_back(c);
    }
  }
  for (const std::string& part : parts) {
    // Find the operator outside escapes.
    size_t op = std::string::npos;
    size_t op_len = 0;
    bool equals = true;
    for (size_t i = 0; i < part.size(); ++i) {
      if (part[i] == '\\') {
        ++i;
        continue;
      }
      if (part.compare(i, 2, "!=") == 0) {
        op = i, op_len = 2, equals = false;
        break;
      }
      if (part.compare(i, 2, "==") == 0) {
        op = i, op_len = 2;
        break;
      }
      if (part[i] == '=') {
        op = i, op_len = 1;
        break;
      }
    }
    if (op == std::string::npos) {
      return badRequestError(
          strCat("invalid selector: '", text, "'; can't understand '", part, "'"));
    }
    std::string field(trim(std::string_view(part).substr(0, op)));
    std::string value;
    std::string_view raw = std::string_view(part).substr(op + op_len);
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '\\' && i + 1 < raw.size()) ++i;
      value.push_back(raw[i]);
    }
    bool known = field == "metadata.name" || field == "metadata.namespace" ||
                 std::find(spec.field_selectors.begin(), spec.field_selectors.end(), field) !=
                     spec.field_selectors.end();
    if (!known) {
      std::string supported = "\"metadata.name\", \"metadata.namespace\"";
      for (const auto& f : spec.field_selectors) supported += strCat(", \"", f, "\"");
      return badRequestError(
          strCat("\"", field, "\" is not a known field selector: only ", supported));
    }
    Requirement req;
    // The field label "source" of events is source.component.
    req.path =
        field == "source" ? std::vector<std::string>{"source", "component"} : splitDots(field);
    req.equals = equals;
    req.value = std::move(value);
    selector.requirements_.push_back(std::move(req));
  }
  return selector;
}

bool FieldSelector::matches(const nlohmann::json& object) const {
  for (const auto& req : requirements_) {
    const nlohmann::json* node = fieldAt(object, req.path);
    std::string actual;
    if (node != nullptr && !node->is_null()) {
      actual = node->is_string() ? node->get<std::string>() : common::jsonText(*node);
    }
    if ((actual == req.value) != req.equals) return false;
  }
  return true;
}

bool Selector::matches(const nlohmann::json& object) const {
  if (!labels.empty()) {
    const nlohmann::json* l = nullptr;
    auto meta = object.find("metadata");
    if (meta != object.end() && meta->is_object()) {
      auto it = meta->find("labels");
      if (it != meta->end()) l = &*it;
    }
    static const nlohmann::json kNull;
    if (!labels.matches(l != nullptr ? *l : kNull)) return false;
  }
  return fields.matches(object);
}

absl::StatusOr<Selector> Selector::parse(std::string_view label_selector,
                                         std::string_view field_selector, const KindSpec& spec) {
  Selector selector;
  auto labels = LabelSelector::parse(label_selector);
  if (!labels.ok()) return labels.status();
  auto fields = FieldSelector::parse(field_selector, spec);
  if (!fields.ok()) return fields.status();
  selector.labels = std::move(*labels);
  selector.fields = std::move(*fields);
  return selector;
}

}  // namespace kh::kubeapi
