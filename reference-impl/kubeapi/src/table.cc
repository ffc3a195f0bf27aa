#include "kh/kubeapi/table.h"

#include "absl/time/time.h"
#include "kh/common/json.h"
#include "kh/common/strings.h"

namespace kh::kubeapi {
namespace {

using common::strCat;

// apiextensions' cellForJSONValue for every type but "string".
nlohmann::json typedCell(const std::string& type, const nlohmann::json& value,
                         common::SystemTime now) {
  if (value.is_null()) return nullptr;
  if (type == "integer") {
    if (value.is_number_integer()) return value;
    if (value.is_number_float()) return static_cast<int64_t>(value.get<double>());
    return nullptr;
  }
  if (type == "number") {
    if (value.is_number()) return value.get<double>();
    return nullptr;
  }
  if (type == "boolean") {
    if (value.is_boolean()) return value;
    return nullptr;
  }
  if (type == "date") {
    if (!value.is_string()) return nullptr;
    std::string age = ageOf(value.get<std::string>(), now);
    return age == "<unknown>" ? nlohmann::json("<invalid>") : nlohmann::json(age);
  }
  return nullptr;
}

// What JSONPath printing writes for a value in a "string" column.
nlohmann::json stringCell(const nlohmann::json& value) {
  if (value.is_null()) return nullptr;
  if (value.is_string()) return value;
  return common::jsonText(value);
}

}  // namespace

std::string humanDuration(std::chrono::nanoseconds d) {
  using std::chrono::duration_cast;
  int64_t seconds = duration_cast<std::chrono::seconds>(d).count();  // truncates toward zero
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 60 * 2) return strCat(seconds, "s");
  int64_t minutes = seconds / 60;
  if (minutes < 10) {
    int64_t s = seconds % 60;
    return s == 0 ? strCat(minutes, "m") : strCat(minutes, "m", s, "s");
  }
  if (minutes < 60 * 3) return strCat(minutes, "m");
  int64_t hours = minutes / 60;
  if (hours < 8) {
    int64_t m = minutes % 60;
    return m == 0 ? strCat(hours, "h") : strCat(hours, "h", m, "m");
  }
  if (hours < 48) return strCat(hours, "h");
  if (hours < 24 * 8) {
    int64_t h = hours % 24;
    return h == 0 ? strCat(hours / 24, "d") : strCat(hours / 24, "d", h, "h");
  }
  if (hours < 24 * 365 * 2) return strCat(hours / 24, "d");
  if (hours < 24 * 365 * 8) {
    int64_t dy = (hours / 24) % 365;
    return dy == 0 ? strCat(hours / 24 / 365, "y") : strCat(hours / 24 / 365, "y", dy, "d");
  }
  return strCat(hours / 24 / 365, "y");
}

std::string ageOf(std::string_view rfc3339, common::SystemTime now) {
  if (rfc3339.empty()) return "<unknown>";
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, absl::string_view(rfc3339.data(), rfc3339.size()), &t,
                       &err)) {
    return "<unknown>";
  }
  return humanDuration(now - absl::ToChronoTime(t));
}

TablePrinter::TablePrinter(const KindSpec& spec)
    : columns_(spec.columns.empty() ? customResourceColumns({ageColumn()}) : spec.columns) {
  for (const auto& column : columns_) {
    std::unique_ptr<JsonPath> path;
    if (!column.cell && !column.json_path.empty()) {
      auto parsed = JsonPath::parse(column.json_path);
      if (parsed.ok()) path = std::make_unique<JsonPath>(std::move(*parsed));
    }
    paths_.push_back(std::move(path));
  }
}

nlohmann::json TablePrinter::columnDefinitions() const {
  nlohmann::json defs = nlohmann::json::array();
  for (const auto& c : columns_) {
    defs.push_back({{"name", c.name},
                    {"type", c.type},
                    {"format", c.format},
                    {"description", c.description},
                    {"priority", c.priority}});
  }
  return defs;
}

nlohmann::json TablePrinter::cell(size_t i, const nlohmann::json& object,
                                  common::SystemTime now) const {
  const PrinterColumn& column = columns_[i];
  if (column.cell) return column.cell(object, now);
  if (!paths_[i]) return nullptr;
  const nlohmann::json* value = paths_[i]->first(object);
  if (value == nullptr) return nullptr;
  if (column.type == "string") return stringCell(*value);
  return typedCell(column.type, *value, now);
}

nlohmann::json TablePrinter::row(const nlohmann::json& object, common::SystemTime now,
                                 IncludeObject include) const {
  nlohmann::json cells = nlohmann::json::array();
  for (size_t i = 0; i < columns_.size(); ++i) cells.push_back(cell(i, object, now));
  nlohmann::json row = {{"cells", std::move(cells)}};
  switch (include) {
    case IncludeObject::kNone: break;
    case IncludeObject::kObject: row["object"] = object; break;
    case IncludeObject::kMetadata: {
      auto it = object.find("metadata");
      row["object"] = {{"kind", "PartialObjectMetadata"},
                       {"apiVersion", "meta.k8s.io/v1"},
                       {"metadata", it != object.end() ? *it : nlohmann::json::object()}};
      break;
    }
  }
  return row;
}

nlohmann::json TablePrinter::table(
    const std::vector<std::shared_ptr<const nlohmann::json>>& objects, uint64_t resource_version,
    common::SystemTime now, const TableOptions& options) const {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& object : objects) rows.push_back(row(*object, now, options.include_object));
  nlohmann::json table = {{"kind", "Table"},
                          {"apiVersion", options.api_version},
                          {"metadata", {{"resourceVersion", std::to_string(resource_version)}}}};
  table["columnDefinitions"] = options.no_headers ? nlohmann::json::array() : columnDefinitions();
  table["rows"] = std::move(rows);
  return table;
}

nlohmann::json TablePrinter::table(const nlohmann::json& object, uint64_t resource_version,
                                   common::SystemTime now, const TableOptions& options) const {
  nlohmann::json rows = nlohmann::json::array();
  rows.push_back(row(object, now, options.include_object));
  nlohmann::json table = {{"kind", "Table"},
                          {"apiVersion", options.api_version},
                          {"metadata", {{"resourceVersion", std::to_string(resource_version)}}}};
  table["columnDefinitions"] = options.no_headers ? nlohmann::json::array() : columnDefinitions();
  table["rows"] = std::move(rows);
  return table;
}

}  // namespace kh::kubeapi
