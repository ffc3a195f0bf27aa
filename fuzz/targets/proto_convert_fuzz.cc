// Proto conversion: arbitrary bytes as a ModelInferRequest (and response), converted to our
// types; what converts must hold consistent data and convert back.

#include <cstdint>

#include "fuzz_util.h"
#include "google/protobuf/stubs/logging.h"
#include "kh/protocols/grpc_predict_v2.pb.h"
#include "kh/protocols/proto_convert.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Invalid UTF-8 in string fields is refused by parsing, and logged; the log is only noise here.
  static const bool quiet = [] {
    google::protobuf::SetLogHandler(nullptr);
    return true;
  }();
  (void)quiet;
  inference::ModelInferRequest request;
  if (request.ParseFromArray(data, static_cast<int>(size))) {
    auto converted = kh::protocols::requestFromProto(request);
    if (converted.ok()) {
      for (const auto& t : converted->inputs) {
        KH_FUZZ_CHECK(kh::protocols::validateTensorData(t).ok(), "a converted tensor's data does not match its shape");
      }
      kh::protocols::InferenceResponse echo;
      echo.model_name = converted->model_name;
      echo.id = converted->id;
      echo.outputs = converted->inputs;
      inference::ModelInferResponse out;
      kh::protocols::responseToProto(echo, request.raw_input_contents_size() > 0, &out);
      auto back = kh::protocols::responseFromProto(out);
      KH_FUZZ_CHECK(back.ok(), "a response we built from accepted tensors does not convert back");
    }
  }
  inference::ModelInferResponse response;
  if (response.ParseFromArray(data, static_cast<int>(size))) (void)kh::protocols::responseFromProto(response);
  return 0;
}
