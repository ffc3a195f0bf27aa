#include "kh/kubeapi/patch.h"

#include <cctype>

#include "kh/common/strings.h"
#include "kh/kubeapi/errors.h"

namespace kh::kubeapi {
namespace {

using common::strCat;
using nlohmann::json;

// An operation that cannot apply: 422 Invalid without details, so that kubectl prints
// "The request is invalid: <message>".
absl::Status cannotApply(std::string_view message) {
  return apiError(absl::StatusCode::kInvalidArgument, 422, "Invalid", message);
}

absl::StatusOr<std::vector<std::string>> parsePointer(std::string_view pointer) {
  std::vector<std::string> tokens;
  if (pointer.empty()) return tokens;
  if (pointer.front() != '/') {
    return badRequestError(strCat("invalid JSON pointer \"", pointer, "\": must start with '/'"));
  }
  std::string token;
  for (size_t i = 1; i <= pointer.size(); ++i) {
    if (i == pointer.size() || pointer[i] == '/') {
      tokens.push_back(std::move(token));
      token.clear();
      continue;
    }
    char c = pointer[i];
    if (c == '~') {
      if (i + 1 < pointer.size() && pointer[i + 1] == '0') {
        token.push_back('~');
      } else if (i + 1 < pointer.size() && pointer[i + 1] == '1') {
        token.push_back('/');
      } else {
        return badRequestError(strCat("invalid JSON pointer \"", pointer, "\": bad '~' escape"));
      }
      ++i;
      continue;
    }
    token.push_back(c);
  }
  return tokens;
}

std::optional<size_t> arrayIndex(const std::string& token) {
  if (token.empty() || (token.size() > 1 && token[0] == '0')) return std::nullopt;
  for (char c : token) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return std::nullopt;
  }
  return common::parseInt<size_t>(token);
}

// The node `tokens` names, or null.
json* resolve(json& doc, const std::vector<std::string>& tokens, size_t count) {
  json* node = &doc;
  for (size_t i = 0; i < count; ++i) {
    const std::string& t = tokens[i];
    if (node->is_object()) {
      auto it = node->find(t);
      if (it == node->end()) return nullptr;
      node = &*it;
    } else if (node->is_array()) {
      auto index = arrayIndex(t);
      if (!index || *index >= node->size()) return nullptr;
      node = &(*node)[*index];
    } else {
      return nullptr;
    }
  }
  return node;
}

class Patcher {
 public:
  explicit Patcher(json doc) : doc_(std::move(doc)) {}

  absl::Status add(std::string_view path, json value) {
    auto tokens = parsePointer(path);
    if (!tokens.ok()) return tokens.status();
    if (tokens->empty()) {
      doc_ = std::move(value);
      return absl::OkStatus();
    }
    json* parent = resolve(doc_, *tokens, tokens->size() - 1);
    if (parent == nullptr)
      return cannotApply(
          strCat("add operation does not apply: doc is missing path: \"", path, "\""));
    const std::string& last = tokens->back();
    if (parent->is_object()) {
      (*parent)[last] = std::move(value);
      return absl::OkStatus();
    }
    if (parent->is_array()) {
      if (last == "-") {
        parent->push_back(std::move(value));
        return absl::OkStatus();
      }
      auto index = arrayIndex(last);
      if (!index || *index > parent->size()) {
        return cannotApply(
            strCat("add operation does not apply: index out of bounds: \"", path, "\""));
      }
      parent->insert(parent->begin() + static_cast<std::ptrdiff_t>(*index), std::move(value));
      return absl::OkStatus();
    }
    return cannotApply(strCat("add operation does not apply: doc is missing path: \"", path, "\""));
  }

  absl::StatusOr<json> remove(std::string_view path, std::string_view op = "remove") {
    auto tokens = parsePointer(path);
    if (!tokens.ok()) return tokens.status();
    if (tokens->empty())
      return cannotApply(strCat(op, " operation does not apply: cannot remove the root"));
    json* parent = resolve(doc_, *tokens, tokens->size() - 1);
    const std::string& last = tokens->back();
    if (parent != nullptr && parent->is_object()) {
      auto it = parent->find(last);
      if (it != parent->end()) {
        json removed = std::move(*it);
        parent->erase(it);
        return removed;
      }
    } else if (parent != nullptr && parent->is_array()) {
      auto index = arrayIndex(last);
      if (index && *index < parent->size()) {
        json removed = std::move((*parent)[*index]);
        parent->erase(parent->begin() + static_cast<std::ptrdiff_t>(*index));
        return removed;
      }
    }
    return cannotApply(
        strCat(op, " operation does not apply: doc is missing path: \"", path, "\""));
  }

  absl::StatusOr<json> get(std::string_view path, std::string_view op) {
    auto tokens = parsePointer(path);
    if (!tokens.ok()) return tokens.status();
    json* node = resolve(doc_, *tokens, tokens->size());
    if (node == nullptr) {
      return cannotApply(
          strCat(op, " operation does not apply: doc is missing path: \"", path, "\""));
    }
    return *node;
  }

  absl::Status apply(const json& op) {
    if (!op.is_object()) return badRequestError("a JSON patch operation must be an object");
    auto name_it = op.find("op");
    auto path_it = op.find("path");
    if (name_it == op.end() || !name_it->is_string()) {
      return badRequestError("a JSON patch operation needs an \"op\"");
    }
    if (path_it == op.end() || !path_it->is_string()) {
      return badRequestError("a JSON patch operation needs a \"path\"");
    }
    const std::string& name = name_it->get_ref<const std::string&>();
    const std::string& path = path_it->get_ref<const std::string&>();
    auto value_it = op.find("value");
    auto from_it = op.find("from");
    bool needs_value = name == "add" || name == "replace" || name == "test";
    if (needs_value && value_it == op.end()) {
      return badRequestError(strCat("the \"", name, "\" operation needs a \"value\""));
    }
    bool needs_from = name == "move" || name == "copy";
    if (needs_from && (from_it == op.end() || !from_it->is_string())) {
      return badRequestError(strCat("the \"", name, "\" operation needs a \"from\""));
    }
    if (name == "add") return add(path, *value_it);
    if (name == "remove") return remove(path).status();
    if (name == "replace") {
      auto tokens = parsePointer(path);
      if (!tokens.ok()) return tokens.status();
      json* node = resolve(doc_, *tokens, tokens->size());
      if (node == nullptr) {
        return cannotApply(strCat("replace operation does not apply: doc is missing key: ", path));
      }
      *node = *value_it;
      return absl::OkStatus();
    }
    if (name == "move") {
      const std::string& from = from_it->get_ref<const std::string&>();
      if (path.size() > from.size() && path.compare(0, from.size(), from) == 0 &&
          path[from.size()] == '/') {
        return cannotApply(
            strCat("move operation does not apply: \"", path, "\" is a child of \"", from, "\""));
      }
      if (path == from) return absl::OkStatus();
      auto value = remove(from, "move");
      if (!value.ok()) return value.status();
      return add(path, std::move(*value));
    }
    if (name == "copy") {
      auto value = get(from_it->get_ref<const std::string&>(), "copy");
      if (!value.ok()) return value.status();
      return add(path, std::move(*value));
    }
    if (name == "test") {
      auto tokens = parsePointer(path);
      if (!tokens.ok()) return tokens.status();
      json* node = resolve(doc_, *tokens, tokens->size());
      if (node == nullptr || *node != *value_it) {
        return cannotApply(strCat("testing value ", path, " failed"));
      }
      return absl::OkStatus();
    }
    return badRequestError(strCat("unexpected JSON patch operation \"", name, "\""));
  }

  json take() { return std::move(doc_); }

 private:
  json doc_;
};

}  // namespace

absl::StatusOr<PatchType> patchTypeOf(std::string_view content_type) {
  std::string_view type = content_type.substr(0, content_type.find(';'));
  while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
  if (type == "application/merge-patch+json") return PatchType::kMerge;
  if (type == "application/json-patch+json") return PatchType::kJson;
  if (type == "application/strategic-merge-patch+json") return PatchType::kStrategicMerge;
  if (type == "application/apply-patch+yaml" || type == "application/apply-patch+json") {
    return PatchType::kApply;
  }
  return unsupportedPatchError();
}

json applyMergePatch(const json& target, const json& patch) {
  if (!patch.is_object()) return patch;
  json result = target.is_object() ? target : json::object();
  for (auto it = patch.begin(); it != patch.end(); ++it) {
    if (it.value().is_null()) {
      result.erase(it.key());
    } else {
      auto existing = result.find(it.key());
      result[it.key()] = applyMergePatch(existing != result.end() ? *existing : json(), it.value());
    }
  }
  return result;
}

absl::StatusOr<json> applyJsonPatch(const json& target, const json& patch) {
  if (!patch.is_array()) return badRequestError("a JSON patch must be an array of operations");
  Patcher patcher(target);
  for (const auto& op : patch) {
    absl::Status status = patcher.apply(op);
    if (!status.ok()) return status;
  }
  return patcher.take();
}

}  // namespace kh::kubeapi
