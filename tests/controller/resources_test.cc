// Manifests and KServe's validation rules and messages.

#include "kh/controller/resources.h"

#include <fstream>
#include <sstream>

#include "gtest/gtest.h"

namespace kh::controller {
namespace {

std::string message(const absl::Status& s) { return std::string(s.message()); }

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

InferenceService parseOne(const std::string& yaml) {
  auto r = parseManifests(yaml, "test");
  EXPECT_TRUE(r.ok()) << r.status();
  return *r->at(0).inference_service;
}

const char* kIsvc = R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: iris, namespace: ns1}
spec:
  predictor:
    minReplicas: 0
    maxReplicas: 3
    containerConcurrency: 2
    model:
      modelFormat: {name: xgboost, version: "1"}
      protocolVersion: v2
      storageUri: pvc://models/iris
)";

TEST(Manifests, ParseInferenceService) {
  auto isvc = parseOne(kIsvc);
  EXPECT_EQ(isvc.metadata.name, "iris");
  EXPECT_EQ(isvc.metadata.namespace_name, "ns1");
  EXPECT_EQ(isvc.predictor.extension.min_replicas, 0);
  EXPECT_EQ(isvc.predictor.extension.max_replicas, 3);
  EXPECT_EQ(isvc.predictor.model_format->name, "xgboost");
  EXPECT_EQ(isvc.predictor.model_format->version, "1");
  EXPECT_EQ(isvc.predictor.protocol_version, "v2");
  EXPECT_TRUE(validateInferenceService(isvc).ok());
}

TEST(Manifests, LegacyFrameworkFieldsBecomeTheModel) {
  auto isvc = parseOne(R"(
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: flowers}
spec:
  predictor:
    triton: {storageUri: "gs://bucket/model"}
)");
  EXPECT_EQ(isvc.predictor.model_format->name, "triton");
  EXPECT_EQ(isvc.predictor.protocol_version, "v2");  // triton defaults to v2
  EXPECT_EQ(isvc.predictor.storage_uri, "gs://bucket/model");
  EXPECT_TRUE(validateInferenceService(isvc).ok());
}

TEST(Manifests, ShippedManifestsAndRuntimesParseAndValidate) {
  for (const char* f : {"reference-impl/manifests/xgboost-iris.yaml", "reference-impl/manifests/dense-iris.yaml",
                        "reference-impl/manifests/canary.yaml", "reference-impl/manifests/transformer.yaml",
                        "reference-impl/controller/runtimes/kh-xgboost.yaml",
                        "reference-impl/controller/runtimes/kh-dense.yaml"}) {
    auto r = parseManifests(readFile(std::string(KH_TEST_SOURCE_DIR) + "/" + f), f);
    ASSERT_TRUE(r.ok()) << f << ": " << r.status();
    for (const auto& res : *r) {
      if (res.inference_service) {
        EXPECT_TRUE(validateInferenceService(*res.inference_service).ok()) << f;
      }
      if (res.serving_runtime) {
        EXPECT_TRUE(validateServingRuntime(*res.serving_runtime).ok()) << f;
      }
    }
  }
}

TEST(Manifests, MultiDocumentAndErrors) {
  auto two = parseManifests(std::string(kIsvc) + "\n---\n" + std::string(kIsvc), "m");
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two->size(), 2u);
  auto yaml_error = parseManifests("a: [1, 2\nb: 3\n", "broken.yaml");
  ASSERT_FALSE(yaml_error.ok());
  EXPECT_NE(message(yaml_error.status()).find("broken.yaml:"), std::string::npos);
  EXPECT_NE(message(parseManifests("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n").status()).find("unsupported kind 'Pod'"),
            std::string::npos);
  EXPECT_NE(message(parseManifests("apiVersion: serving.kserve.io/v1alpha1\nkind: InferenceService\nmetadata: {name: x}\nspec: {predictor: {}}\n").status()).find("apiVersion"),
            std::string::npos);
  EXPECT_NE(message(parseManifests("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: x}\nspec: {}\n").status()).find("spec.predictor is required"),
            std::string::npos);
  EXPECT_NE(message(parseManifests("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nspec: {predictor: {}}\n").status()).find("metadata.name is required"),
            std::string::npos);
  EXPECT_NE(message(parseManifests("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: x}\nspec: {predictor: {minReplicas: one}}\n").status()).find("minReplicas must be an integer"),
            std::string::npos);
}

struct Bad {
  const char* predictor;
  const char* expect;
};

TEST(Validation, KServeRulesAndMessages) {
  const Bad cases[] = {
      {"{minReplicas: -1, model: {modelFormat: {name: x}}}", "MinReplicas cannot be less than 0."},
      {"{maxReplicas: -1, model: {modelFormat: {name: x}}}", "MaxReplicas cannot be less than 0."},
      {"{minReplicas: 3, maxReplicas: 2, model: {modelFormat: {name: x}}}", "MinReplicas cannot be greater than MaxReplicas."},
      {"{containerConcurrency: -1, model: {modelFormat: {name: x}}}", "Parallelism cannot be less than 0."},
      {"{scaleMetric: gpu, model: {modelFormat: {name: x}}}", "Unsupported value: \"gpu\""},
      {"{canaryTrafficPercent: 101, model: {modelFormat: {name: x}}}", "between 0 and 100"},
      {"{model: {modelFormat: {name: x}}, xgboost: {storageUri: /m}}", "Exactly one of"},
      {"{}", "Exactly one of"},
      {"{model: {modelFormat: {name: x}, protocolVersion: v3}}", "Invalid protocol v3"},
      {"{model: {modelFormat: {name: x}, storageUri: \"ftp://host/m\"}}", "StorageUri [ftp://host/m] is not supported."},
  };
  for (const auto& c : cases) {
    auto isvc = parseOne(std::string("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: ok}\nspec:\n  predictor: ") + c.predictor + "\n");
    auto st = validateInferenceService(isvc);
    ASSERT_FALSE(st.ok()) << c.predictor;
    EXPECT_NE(message(st).find(c.expect), std::string::npos) << c.predictor << " -> " << st;
  }
  // max 0 means no limit, so min 5 is fine; relative paths and pvc are accepted.
  EXPECT_TRUE(validateInferenceService(parseOne("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: ok}\nspec:\n  predictor: {minReplicas: 5, model: {modelFormat: {name: x}, storageUri: models/iris}}\n")).ok());
}

TEST(Validation, Names) {
  EXPECT_TRUE(isValidName("iris"));
  EXPECT_TRUE(isValidName("a-1"));
  EXPECT_FALSE(isValidName("1abc"));
  EXPECT_FALSE(isValidName("Iris"));
  EXPECT_FALSE(isValidName("abc-"));
  EXPECT_FALSE(isValidName(std::string(64, 'a')));
  auto isvc = parseOne("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: Bad_Name}\nspec:\n  predictor: {model: {modelFormat: {name: x}}}\n");
  EXPECT_NE(message(validateInferenceService(isvc)).find("The InferenceService \"Bad_Name\" is invalid"),
            std::string::npos);
}

TEST(Validation, ServingRuntimes) {
  auto r = parseManifests(R"(
apiVersion: serving.kserve.io/v1alpha1
kind: ServingRuntime
metadata: {name: rt}
spec:
  supportedModelFormats: [{name: sklearn, priority: 2}]
  containers: [{name: kserve-container, image: x}]
)");
  ASSERT_TRUE(r.ok());
  EXPECT_NE(message(validateServingRuntime(*r->at(0).serving_runtime)).find("only valid with autoSelect"),
            std::string::npos);
  auto no_containers = parseManifests("apiVersion: serving.kserve.io/v1alpha1\nkind: ServingRuntime\nmetadata: {name: rt}\nspec: {}\n");
  EXPECT_FALSE(no_containers.ok());
}

}  // namespace
}  // namespace kh::controller

namespace kh::controller {
namespace {

// Found by the manifest fuzz target: a field of the wrong type was read with json's get<>(),
// which throws, and took the process down (refstack applies manifests from kubectl).
TEST(ManifestTypes, MistypedFieldsAreErrorsNotCrashes) {
  const char* cases[] = {
      R"(apiVersion: serving.kserve.io/v1alpha1
kind: ClusterServingRuntime
metadata: {name: rt}
spec:
  protocolVersions: [v1, {v2: p}]
  containers: [{name: kserve-container, image: x}]
)",
      R"(apiVersion: serving.kserve.io/v1alpha1
kind: ServingRuntime
metadata: {name: rt}
spec:
  supportedModelFormats: [{name: {a: 1}}]
  containers: [{name: kserve-container, image: x}]
)",
      R"(apiVersion: serving.kserve.io/v1alpha1
kind: ServingRuntime
metadata: {name: rt}
spec:
  supportedModelFormats: 7
  disabled: "yes"
  containers: [{name: kserve-container, image: x}]
)",
  };
  for (const char* yaml : cases) {
    absl::StatusOr<std::vector<Resource>> r = absl::InternalError("not run");
    EXPECT_NO_THROW(r = parseManifests(yaml, "m.yaml")) << yaml;
    ASSERT_FALSE(r.ok()) << yaml;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  }
}

// The model is a container: a number where the API server wants a string is refused at admission.
// (An env value of 4 once reached the reconciler, whose value() threw and ended the process.)
TEST(ManifestTypes, ModelEnvAndArgsMustBeStrings) {
  const std::pair<const char*, const char*> cases[] = {
      {"env: [{name: W, value: 4}]", "model.env[0].value must be a string"},
      {"env: [{value: x}]", "model.env[0].name is required"},
      {"env: {W: x}", "model.env must be a list"},
      {"args: [--a, 5]", "model.args[1] must be a string"},
  };
  for (const auto& [field, expect] : cases) {
    std::string yaml = std::string(
        "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: m}\nspec:\n"
        "  predictor: {model: {modelFormat: {name: sklearn}, ") + field + "}}\n";
    auto r = parseManifests(yaml, "m.yaml");
    ASSERT_FALSE(r.ok()) << yaml;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
    EXPECT_NE(r.status().message().find(expect), absl::string_view::npos) << r.status();
  }
  EXPECT_TRUE(parseManifests("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: m}\n"
                             "spec:\n  predictor: {model: {modelFormat: {name: sklearn}, env: [{name: W, value: \"4\"}, {name: E}],"
                             " args: [--a]}}\n",
                             "m.yaml")
                  .ok());
}

}  // namespace
}  // namespace kh::controller

namespace kh::controller {
namespace {

// Found by the manifest fuzz target: on this input yaml-cpp 0.7's parser stops advancing and
// YAML::LoadAll reports the same document forever, growing until the process is killed.
TEST(ManifestYaml, AParserThatStopsAdvancingIsAnErrorNotAHang) {
  auto r = parseManifests(readFile(std::string(KH_TEST_SOURCE_DIR) +
                                   "/fuzz/corpus/manifest/regression-yaml-parser-stuck"),
                          "m.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(message(r.status()).find("malformed YAML"), std::string::npos) << r.status();
}

TEST(ManifestYaml, AliasBombsAndDeepNestingAreRefused) {
  // Nine levels of ten aliases each: 10^9 values once expanded.
  std::string bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= 9; ++i) {
    bomb += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) bomb += (k ? ", *a" : "*a") + std::to_string(i - 1);
    bomb += "]\n";
  }
  auto r = parseManifests(bomb, "bomb.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(message(r.status()).find("expands to more than"), std::string::npos) << r.status();

  std::string deep(500, '[');
  deep += std::string(500, ']');
  auto d = parseManifests(deep, "deep.yaml");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << d.status();
}

}  // namespace
}  // namespace kh::controller
