// The dense runtime's CUDA backend seen from kh::runtimes: opens the libkh_dense_cuda.so plugin
// (built only where the CUDA toolkit is) on first use and wraps its Net as a DenseBackend.
// Opening on demand keeps CUDA out of every process that computes on the CPU.

#include <dlfcn.h>
#include <unistd.h>

#include <filesystem>
#include <mutex>

#include "dense_model.h"
#include "kh/common/strings.h"
#include "kh/dense_cuda/dense_cuda.h"

namespace kh::runtimes {
namespace {

using CreateFn = dense_cuda::Net* (*)(const dense_cuda::NetSpec*, std::string*);
using CountFn = int (*)(std::string*);

struct Plugin {
  CreateFn create = nullptr;
  CountFn device_count = nullptr;
  std::string error;  // why it could not be opened
};

// KH_DENSE_CUDA_PLUGIN, else beside the executable, else the build tree's copy.
std::vector<std::string> pluginCandidates() {
  std::vector<std::string> paths;
  if (const char* env = std::getenv("KH_DENSE_CUDA_PLUGIN"); env != nullptr && *env != '\0') {
    paths.emplace_back(env);
    return paths;
  }
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) paths.push_back((exe.parent_path() / "libkh_dense_cuda.so").string());
  paths.emplace_back(KH_DENSE_CUDA_BUILD_PLUGIN);
  return paths;
}

const Plugin& plugin() {
  static const Plugin loaded = [] {
    Plugin p;
    std::string tried;
    for (const auto& path : pluginCandidates()) {
      std::error_code ec;
      if (!std::filesystem::exists(path, ec)) {
        tried += common::strCat(tried.empty() ? "" : ", ", path);
        continue;
      }
      // Never closed: the plugin lives as long as the process.
      void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (handle == nullptr) {
        p.error = common::strCat("cannot open ", path, ": ", dlerror());
        return p;
      }
      p.create = reinterpret_cast<CreateFn>(dlsym(handle, "kh_dense_cuda_create"));
      p.device_count = reinterpret_cast<CountFn>(dlsym(handle, "kh_dense_cuda_device_count"));
      if (p.create == nullptr || p.device_count == nullptr) {
        p.error = common::strCat(path, " is not the kserve-harness CUDA plugin");
        p.create = nullptr;
      }
      return p;
    }
    p.error = common::strCat(
        "this build has no CUDA plugin (libkh_dense_cuda.so: it is built when CMake finds the "
        "CUDA toolkit); looked for ", tried);
    return p;
  }();
  return loaded;
}

class CudaDenseBackend final : public DenseBackend {
 public:
  explicit CudaDenseBackend(std::unique_ptr<dense_cuda::Net> net) : net_(std::move(net)) {}
  const char* name() const override { return "cuda-cublas"; }
  std::string device() const override { return common::strCat("cuda: ", net_->deviceName()); }

  absl::Status forward(const float* x, int rows, float* y) const override {
    std::string error = net_->forward(x, rows, y);
    if (error.empty()) return absl::OkStatus();
    return absl::InternalError(common::strCat("CUDA: ", error));
  }

  absl::Status health() const override {
    if (!net_->failed()) return absl::OkStatus();
    return absl::UnavailableError("a CUDA error left the device unusable; reload the model");
  }

 private:
  std::unique_ptr<dense_cuda::Net> net_;
};

static_assert(static_cast<int>(Activation::kSoftmax) ==
                  static_cast<int>(dense_cuda::Activation::kSoftmax) &&
              static_cast<int>(Activation::kRelu) == static_cast<int>(dense_cuda::Activation::kRelu),
              "kh::runtimes::Activation and kh::dense_cuda::Activation must keep one order");

dense_cuda::Precision precisionOf(const std::vector<DenseLayer>& layers) {
  auto all = [&](std::string_view dtype) {
    for (const auto& l : layers) {
      if (l.stored_dtype != dtype) return false;
    }
    return true;
  };
  if (all("F16")) return dense_cuda::Precision::kFp16;
  if (all("BF16")) return dense_cuda::Precision::kBf16;
  return dense_cuda::Precision::kFp32;
}

}  // namespace

bool nvidiaDeviceNodesPresent() {
  std::error_code ec;
  return std::filesystem::exists("/dev/nvidiactl", ec) || std::filesystem::exists("/dev/nvidia0", ec);
}

absl::StatusOr<std::unique_ptr<DenseBackend>> makeCudaDenseBackend(
    const std::vector<DenseLayer>& layers, int max_rows, int streams) {
  const Plugin& p = plugin();
  if (p.create == nullptr) return absl::FailedPreconditionError(p.error);
  std::string error;
  if (p.device_count(&error) == 0) return absl::FailedPreconditionError(error);
  std::vector<dense_cuda::LayerSpec> specs;
  for (const auto& l : layers) {
    dense_cuda::LayerSpec s;
    s.weight = l.weight.data();
    s.bias = l.bias.data();
    s.in = l.in;
    s.out = l.out;
    s.activation = static_cast<dense_cuda::Activation>(static_cast<int>(l.activation));
    specs.push_back(s);
  }
  dense_cuda::NetSpec spec;
  spec.layers = specs.data();
  spec.layer_count = static_cast<int>(specs.size());
  spec.precision = precisionOf(layers);
  spec.max_rows = std::max(1, max_rows);
  spec.streams = std::max(1, streams);
  dense_cuda::Net* net = p.create(&spec, &error);
  if (net == nullptr) return absl::FailedPreconditionError(error);
  return std::unique_ptr<DenseBackend>(new CudaDenseBackend(std::unique_ptr<dense_cuda::Net>(net)));
}

}  // namespace kh::runtimes
