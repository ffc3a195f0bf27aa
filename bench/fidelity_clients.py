# bench/fidelity.sh's client checks (run in its throwaway virtualenv, never in the build or the tests).
# Real clients nobody here wrote, against a V2 server: KServe's InferenceRESTClient and
# InferenceGRPCClient, and Triton's tritonclient.http and tritonclient.grpc. Each makes every call it
# offers for a V2 model: health, metadata where it has it, infer with JSON and binary data, and a
# requested output. Prints one line per check; exits 1 when one fails.
import asyncio, sys
import numpy as np

# KServe's and Triton's gRPC modules both register the "inference" protobuf package, so each
# family runs in a process of its own: the first argument says which.
family, http_url, grpc_addr, model = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
host = sys.argv[5] if len(sys.argv) > 5 else ""
where = f"{http_url} (Host {host})" if host else http_url
rows = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6]]
expected = [1, 1]  # the iris classes of these rows, as KServe's e2e tests expect
results = []

def check(client, call, fn):
    try:
        ok, detail = fn()
    except Exception as e:  # a client's own exception is a failure, with its text
        ok, detail = False, f"{type(e).__name__}: {str(e)[:200]}"
    results.append(ok)
    print(f"{'PASS' if ok else 'FAIL'}  {client:<22} {call:<34} {detail}")

def classes(values):
    return [int(round(float(v))) for v in np.asarray(values).reshape(-1)]

# A fresh dict per call: tritonclient.http writes Inference-Header-Content-Length into the
# headers dict it is given, so a dict reused after a binary request sends that stale length with
# the next JSON request (a 400 from any V2 server that honours the header, KServe's included).
def hdrs():
    return {"Host": host} if host else None
grpc_meta = [("host", host)] if host else None

def kserve_clients():
  # KServe's clients (asyncio).
  from kserve import InferenceRESTClient, InferenceGRPCClient, RESTConfig
  from kserve.protocol.infer_type import InferRequest, InferInput, RequestedOutput

  def run(coro):
      return asyncio.get_event_loop().run_until_complete(coro)

  rest = InferenceRESTClient(RESTConfig(protocol="v2", retries=0))
  check("kserve REST", "is_server_live", lambda: (run(rest.is_server_live(http_url, headers=hdrs())), ""))
  check("kserve REST", "is_server_ready", lambda: (run(rest.is_server_ready(http_url, headers=hdrs())), ""))
  check("kserve REST", "is_model_ready", lambda: (run(rest.is_model_ready(http_url, model, headers=hdrs())), ""))
  def kserve_rest_infer(binary):
      inp = InferInput("input-0", [2, 4], "FP32")
      inp.set_data_from_numpy(np.array(rows, dtype=np.float32), binary_data=binary)
      req = InferRequest(model_name=model, infer_inputs=[inp], request_id="fidelity-1")
      res = run(rest.infer(http_url, req, model_name=model, headers=hdrs()))
      got = classes(res.outputs[0].as_numpy())
      return got == expected and res.id == "fidelity-1", f"classes {got}, id {res.id}"
  check("kserve REST", "infer (JSON)", lambda: kserve_rest_infer(False))
  check("kserve REST", "infer (binary data)", lambda: kserve_rest_infer(True))

  grpc_client = InferenceGRPCClient(grpc_addr, retries=0)
  check("kserve gRPC", "is_server_live", lambda: (run(grpc_client.is_server_live(headers=grpc_meta)), ""))
  check("kserve gRPC", "is_server_ready", lambda: (run(grpc_client.is_server_ready(headers=grpc_meta)), ""))
  check("kserve gRPC", "is_model_ready", lambda: (run(grpc_client.is_model_ready(model, headers=grpc_meta)), ""))
  def kserve_grpc_infer():
      inp = InferInput("input-0", [2, 4], "FP32")
      inp.set_data_from_numpy(np.array(rows, dtype=np.float32))
      req = InferRequest(model_name=model, infer_inputs=[inp], request_id="fidelity-2")
      res = run(grpc_client.infer(req, headers=grpc_meta))
      got = classes(res.outputs[0].as_numpy())
      return got == expected, f"classes {got}"
  check("kserve gRPC", "infer", kserve_grpc_infer)

def triton_clients():
  # Triton's clients.
  import tritonclient.http as th
  import tritonclient.grpc as tg
  hostport = http_url.split("://", 1)[1]
  tclient = th.InferenceServerClient(hostport)
  check("tritonclient.http", "is_server_live", lambda: (tclient.is_server_live(headers=hdrs()), ""))
  check("tritonclient.http", "is_server_ready", lambda: (tclient.is_server_ready(headers=hdrs()), ""))
  check("tritonclient.http", "is_model_ready", lambda: (tclient.is_model_ready(model, headers=hdrs()), ""))
  check("tritonclient.http", "get_server_metadata", lambda: ("name" in tclient.get_server_metadata(headers=hdrs()), ""))
  def triton_http_metadata():
      meta = tclient.get_model_metadata(model, headers=hdrs())
      return meta.get("name") == model, f"inputs {[i['name'] for i in meta.get('inputs', [])]}"
  check("tritonclient.http", "get_model_metadata", triton_http_metadata)
  def triton_http_infer(binary_in, binary_out, requested):
      inp = th.InferInput("input-0", [2, 4], "FP32")
      inp.set_data_from_numpy(np.array(rows, dtype=np.float32), binary_data=binary_in)
      outputs = None
      if requested:
          meta = tclient.get_model_metadata(model, headers=hdrs())
          outputs = [th.InferRequestedOutput(meta["outputs"][0]["name"], binary_data=binary_out)]
      res = tclient.infer(model, [inp], outputs=outputs, request_id="fidelity-3", headers=hdrs())
      name = res.get_response()["outputs"][0]["name"]
      got = classes(res.as_numpy(name))
      return got == expected, f"classes {got}"
  check("tritonclient.http", "infer (JSON)", lambda: triton_http_infer(False, False, False))
  check("tritonclient.http", "infer (binary in and out)", lambda: triton_http_infer(True, True, True))
  check("tritonclient.http", "infer (requested output, JSON)", lambda: triton_http_infer(False, False, True))

  gclient = tg.InferenceServerClient(grpc_addr)
  check("tritonclient.grpc", "is_server_live", lambda: (gclient.is_server_live(headers=dict(grpc_meta or [])), ""))
  check("tritonclient.grpc", "is_server_ready", lambda: (gclient.is_server_ready(headers=dict(grpc_meta or [])), ""))
  check("tritonclient.grpc", "is_model_ready", lambda: (gclient.is_model_ready(model, headers=dict(grpc_meta or [])), ""))
  check("tritonclient.grpc", "get_model_metadata",
        lambda: (gclient.get_model_metadata(model, headers=dict(grpc_meta or [])).name == model, ""))
  def triton_grpc_infer(requested):
      inp = tg.InferInput("input-0", [2, 4], "FP32")
      inp.set_data_from_numpy(np.array(rows, dtype=np.float32))
      outputs = None
      if requested:
          meta = gclient.get_model_metadata(model, headers=dict(grpc_meta or []))
          outputs = [tg.InferRequestedOutput(meta.outputs[0].name)]
      res = gclient.infer(model, [inp], outputs=outputs, request_id="fidelity-4", headers=dict(grpc_meta or []))
      name = res.get_response().outputs[0].name
      got = classes(res.as_numpy(name))
      return got == expected, f"classes {got}"
  check("tritonclient.grpc", "infer", lambda: triton_grpc_infer(False))
  check("tritonclient.grpc", "infer (requested output)", lambda: triton_grpc_infer(True))

(kserve_clients if family == "kserve" else triton_clients)()
print(f"{sum(results)} of {len(results)} client checks passed against {where}")
sys.exit(0 if all(results) else 1)
