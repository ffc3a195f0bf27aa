#pragma once
// The one interface every model runtime implements, and the factory that loads a model directory.
// Frontends (V1/V2 REST, V2 gRPC) reach runtimes only through this interface.

#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "kh/protocols/tensor.h"

namespace kh::runtimes {

/**
 * A loaded model. predict() is thread-safe: the server calls it from every worker thread at once.
 */
class Model {
 public:
  virtual ~Model() = default;

  /**
   * @return the V2 metadata: inputs and outputs with datatypes and shapes (-1 = variable, the
   * batch dimension first). `name` is the served model name given at load time.
   */
  virtual const protocols::ModelMetadata& metadata() const = 0;

  /**
   * Runs one batch. The caller has already checked each input against metadata() (datatype,
   * rank, fixed dimensions) and that the data matches the shape; inputs come in metadata order.
   * @return every output of metadata(), in metadata order, with the batch dimension filled in.
   * InvalidArgument for input values the model cannot take, Internal for a runtime failure.
   */
  virtual absl::StatusOr<std::vector<protocols::Tensor>> predict(
      std::span<const protocols::Tensor> inputs) const = 0;

  /**
   * OK while the model can serve. A GPU model whose device failed (a CUDA error) reports the
   * error here, and the server then reports the model not ready.
   */
  virtual absl::Status health() const { return absl::OkStatus(); }
};

/** How a model is loaded. */
struct LoadOptions {
  /**
   * Where the dense runtime computes: "cpu"; "cuda" (load fails, with the CUDA error text, when
   * no device can be used); or "auto": CUDA when an NVIDIA device is visible and usable, else
   * the CPU (metadata property "device" says which, and why). The xgboost runtime is CPU only.
   */
  std::string device = "auto";
  /** Rows a GPU's buffers are sized for; larger requests run in chunks. */
  int max_batch_rows = 256;
  /** Requests a GPU computes at once, one CUDA stream each. */
  int streams = 1;
};

using ModelPtr = std::unique_ptr<Model>;

/**
 * Loads a model.
 * @param runtime "xgboost", "dense", or "auto" (chosen from the files in model_dir: model.json,
 *        model.ubj or model.bst -> xgboost; config.json with model.safetensors -> dense).
 * @param model_name the name the model is served under.
 * @return NotFound when the directory or its files are missing, InvalidArgument for files that
 *         do not parse (the message names the file and what is wrong), Unimplemented for an
 *         unknown runtime name.
 */
absl::StatusOr<ModelPtr> loadModel(std::string_view runtime, std::string_view model_name,
                                   const std::filesystem::path& model_dir,
                                   const LoadOptions& options = {});

/** @return the device names LoadOptions::device accepts. */
std::vector<std::string> deviceNames();

/** @return the runtime names loadModel() accepts, "auto" excluded. */
std::vector<std::string> runtimeNames();

}  // namespace kh::runtimes
