#pragma once
// Test support: the iris V2 gRPC inference request the tests send.

#include <initializer_list>
#include <string>

#include "kh/protocols/grpc_predict_v2.pb.h"

namespace kh::testing {

/** A V2 gRPC inference request for the iris models: `rows` of 4 FP32 features. */
inline ::inference::ModelInferRequest irisGrpcRequest(const std::string& model,
                                                      std::initializer_list<float> rows = {6.8f, 2.8f, 4.8f, 1.4f}) {
  ::inference::ModelInferRequest request;
  request.set_model_name(model);
  auto* input = request.add_inputs();
  input->set_name("input-0");
  input->set_datatype("FP32");
  input->add_shape(static_cast<int64_t>(rows.size() / 4));
  input->add_shape(4);
  for (float v : rows) input->mutable_contents()->add_fp32_contents(v);
  return request;
}

}  // namespace kh::testing
