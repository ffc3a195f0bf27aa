#include "compiled_trees.h"

#include <algorithm>
#include <cmath>

#include "kh/common/json.h"
#include "kh/common/strings.h"
#include "nlohmann/json.hpp"

namespace kh::runtimes {
namespace {

using nlohmann::json;

float numberOf(const json& node) {
  if (node.is_string()) return std::stof(node.get<std::string>());
  return node.get<float>();
}

int intOf(const json& node) {
  if (node.is_string()) return std::stoi(node.get<std::string>());
  return node.get<int>();
}

enum class Transform { kIdentity, kSigmoid, kExp, kSoftmax, kArgmax };

Transform transformFor(const std::string& objective) {
  if (objective == "binary:logistic" || objective == "reg:logistic") return Transform::kSigmoid;
  if (objective == "count:poisson" || objective == "reg:gamma" || objective == "reg:tweedie") {
    return Transform::kExp;
  }
  if (objective == "multi:softprob") return Transform::kSoftmax;
  if (objective == "multi:softmax") return Transform::kArgmax;
  return Transform::kIdentity;
}

bool knownObjective(const std::string& o) {
  static const char* kKnown[] = {"reg:squarederror",  "reg:squaredlogerror", "reg:pseudohubererror",
                                 "reg:absoluteerror", "reg:linear",          "binary:logistic",
                                 "binary:logitraw",   "reg:logistic",        "count:poisson",
                                 "reg:gamma",         "reg:tweedie",         "multi:softmax",
                                 "multi:softprob"};
  return std::find(std::begin(kKnown), std::end(kKnown), o) != std::end(kKnown);
}

}  // namespace

absl::StatusOr<CompiledTrees> CompiledTrees::fromJson(std::string_view model_json) {
  CompiledTrees t;
  try {
    json root = json::parse(model_json.begin(), model_json.end());
    const json& learner = root.at("learner");
    t.objective_ = learner.at("objective").at("name").get<std::string>();
    if (!knownObjective(t.objective_)) {
      return absl::UnimplementedError(common::strCat("objective ", t.objective_));
    }
    const json& params = learner.at("learner_model_param");
    t.features_ = intOf(params.at("num_feature"));
    int num_class = intOf(params.at("num_class"));
    if (params.contains("num_target") && intOf(params.at("num_target")) > 1) {
      return absl::UnimplementedError("multi-target models");
    }
    t.groups_ = std::max(1, num_class);
    // base_score is stored on the output scale; margins start from its inverse link.
    float base = numberOf(params.at("base_score"));
    Transform tr = transformFor(t.objective_);
    if (tr == Transform::kSigmoid || t.objective_ == "binary:logitraw") {
      if (t.objective_ == "binary:logitraw") {
        t.base_margin_ = base;
      } else {
        t.base_margin_ = -std::log(1.0f / base - 1.0f);
      }
    } else if (tr == Transform::kExp) {
      t.base_margin_ = std::log(base);
    } else {
      t.base_margin_ = base;
    }
    const json& booster = learner.at("gradient_booster");
    if (booster.at("name") != "gbtree") {
      return absl::UnimplementedError(common::strCat("booster ", common::jsonText(booster.at("name"))));
    }
    const json& model = booster.at("model");
    const json& trees = model.at("trees");
    const json& tree_info = model.at("tree_info");
    t.thresholds_.resize(static_cast<size_t>(t.features_));
    for (size_t i = 0; i < trees.size(); ++i) {
      const json& tree = trees[i];
      if (tree.contains("split_type")) {
        for (const auto& s : tree["split_type"]) {
          if (s.get<int>() != 0) return absl::UnimplementedError("categorical splits");
        }
      }
      const auto& left = tree.at("left_children");
      const auto& right = tree.at("right_children");
      const auto& cond = tree.at("split_conditions");
      const auto& index = tree.at("split_indices");
      const auto& dleft = tree.at("default_left");
      size_t count = left.size();
      if (count == 0 || right.size() != count || cond.size() != count || index.size() != count ||
          dleft.size() != count) {
        return absl::InvalidArgumentError(common::strCat("tree ", i, " has inconsistent arrays"));
      }
      int32_t group = tree_info.at(i).get<int32_t>();
      if (group < 0 || group >= t.groups_) {
        return absl::InvalidArgumentError(common::strCat("tree ", i, " has group ", group));
      }
      int32_t base_index = static_cast<int32_t>(t.nodes_.size());
      t.roots_.push_back(base_index);
      t.groups_of_tree_.push_back(group);
      for (size_t n = 0; n < count; ++n) {
        Node node;
        int l = left[n].get<int>(), r = right[n].get<int>();
        // XGBoost allocates children after their parent; requiring it guarantees every walk
        // ends at a leaf inside this tree.
        bool leaf = l < 0;
        if (leaf != (r < 0) || (!leaf && (l <= static_cast<int>(n) || r <= static_cast<int>(n) ||
                                          static_cast<size_t>(std::max(l, r)) >= count))) {
          return absl::InvalidArgumentError(
              common::strCat("tree ", i, " node ", n, " has children ", l, " and ", r));
        }
        node.left = l < 0 ? -1 : base_index + l;
        node.right = r < 0 ? -1 : base_index + r;
        node.feature = index[n].get<int32_t>();
        node.value = cond[n].get<float>();
        node.default_left = dleft[n].is_boolean() ? dleft[n].get<bool>() : dleft[n].get<int>() != 0;
        if (l >= 0) {
          if (node.feature < 0 || node.feature >= t.features_) {
            return absl::InvalidArgumentError("split on a feature out of range");
          }
          t.thresholds_[static_cast<size_t>(node.feature)].push_back(node.value);
        }
        t.nodes_.push_back(node);
      }
    }
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(common::strCat("cannot read the trees: ", e.what()));
  }
  return t;
}

void CompiledTrees::margins(const float* x, int64_t rows, float* out) const {
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * features_;
    float* m = out + r * groups_;
    for (int g = 0; g < groups_; ++g) m[g] = base_margin_;
    // Tree order and float accumulation as libxgboost's CPU predictor.
    for (size_t t = 0; t < roots_.size(); ++t) {
      int32_t n = roots_[t];
      while (nodes_[static_cast<size_t>(n)].left >= 0) {
        const Node& node = nodes_[static_cast<size_t>(n)];
        float v = row[node.feature];
        if (std::isnan(v)) {
          n = node.default_left ? node.left : node.right;
        } else {
          n = v < node.value ? node.left : node.right;
        }
      }
      m[groups_of_tree_[t]] += nodes_[static_cast<size_t>(n)].value;
    }
  }
}

void CompiledTrees::predict(const float* x, int64_t rows, std::vector<float>& out) const {
  std::vector<float> m(static_cast<size_t>(rows * groups_));
  margins(x, rows, m.data());
  Transform tr = transformFor(objective_);
  switch (tr) {
    case Transform::kIdentity:
      out = std::move(m);
      return;
    case Transform::kSigmoid:
      // libxgboost's common::Sigmoid, operation for operation (clamped exponent, epsilon).
      for (auto& v : m) v = 1.0f / (std::exp(std::min(-v, 88.7f)) + 1.0f + 1e-16f);
      out = std::move(m);
      return;
    case Transform::kExp:
      for (auto& v : m) v = std::exp(v);
      out = std::move(m);
      return;
    case Transform::kSoftmax:
      for (int64_t r = 0; r < rows; ++r) {
        float* p = m.data() + r * groups_;
        // libxgboost's common::Softmax: float maximum and exponentials, a double sum.
        float mx = p[0];
        for (int g = 1; g < groups_; ++g) mx = std::fmax(p[g], mx);
        double sum = 0;
        for (int g = 0; g < groups_; ++g) sum += (p[g] = std::exp(p[g] - mx));
        for (int g = 0; g < groups_; ++g) p[g] /= static_cast<float>(sum);
      }
      out = std::move(m);
      return;
    case Transform::kArgmax:
      out.resize(static_cast<size_t>(rows));
      for (int64_t r = 0; r < rows; ++r) {
        const float* p = m.data() + r * groups_;
        out[static_cast<size_t>(r)] = static_cast<float>(std::max_element(p, p + groups_) - p);
      }
      return;
  }
}

}  // namespace kh::runtimes
