#!/usr/bin/env python3
"""Speed against real peers, in one run (bench/peers.sh installs the peers, builds, then runs this).

Sections (each figure is the median of --reps alternating runs: every configuration of a section
runs once before any runs again, so drift on a shared machine falls on all of them alike):

  hops         The same model server (xgboost iris, V1 predict, one worker) straight, behind nginx
               (proxy_pass, upstream keepalive), HAProxy (http-reuse always), our queue-proxy,
               refstack's ingress (activator out of the path: target-burst-capacity 0) and the full
               serverless path (ingress, activator and queue-proxy: target-burst-capacity -1),
               loaded by wrk at concurrency 1 and 16. Per hop: req/s, p50, the p50 it adds over
               direct, and the proxy processes' CPU per request (from /proc/PID/stat).
  loaders      harness load against wrk and h2load (HTTP/1.1, keep-alive POST, equal threads and
               connections) on nginx's static body and on our model server; the generator's CPU
               per request from its own rusage.
  grpc         harness load --protocol grpc against Triton's perf_analyzer on our model server's
               V2 gRPC ModelInfer, at the same concurrency; the requests each sent are counted at the
               model server (its /metrics), since perf_analyzer reports only its stable windows.
  modelserver  Our model server on V2 REST iris against nginx returning the same bytes statically
               and KServe's own Python ModelServer (PyPI kserve, one worker) on the same model
               file; wrk loads each; the server's CPU per request.
  coldstart    bench/cold_start.sh (zero pods to first byte through refstack), its p50 and p99.

Everything binds 127.0.0.1. Every process started here is stopped here (and dies with this one).
"""
import argparse
import ctypes
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")
V1_BODY = '{"instances":[[6.8,2.8,4.8,1.4],[6.0,3.4,4.5,1.6]]}'
V2_BODY = ('{"inputs":[{"name":"input-0","shape":[2,4],"datatype":"FP32",'
           '"data":[6.8,2.8,4.8,1.4,6.0,3.4,4.5,1.6]}]}')
MODEL = "xgboost-iris"
V1_PATH = f"/v1/models/{MODEL}:predict"
V2_PATH = f"/v2/models/{MODEL}/infer"


def log(msg):
    print(f"[peers {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def die_with_parent():
    # PR_SET_PDEATHSIG: a child started here gets SIGTERM if this script dies first.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pids):
    """utime + stime of each process (all its threads), summed, in seconds."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def descendants(pid):
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, stack = [], [pid]
    while stack:
        for c in children.get(stack.pop(), []):
            out.append(c)
            stack.append(c)
    return out


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def wait_until(what, check, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def http_ok(url, headers=None, data=None):
    req = urllib.request.Request(url, data=data.encode() if data else None, headers=headers or {})
    with urllib.request.urlopen(req, timeout=2) as r:
        return r.status == 200


class Fleet:
    """The long-running processes of this run (servers, proxies, refstack)."""

    def __init__(self, work):
        self.work = work
        self.procs = []

    def start(self, name, argv, env=None, cwd=None):
        logf = open(os.path.join(self.work, f"{name}.log"), "w")
        p = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                             preexec_fn=die_with_parent)
        p.name = name
        self.procs.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.remove(p)

    def stop_all(self):
        for p in list(reversed(self.procs)):
            self.stop(p)

    def check_alive(self):
        for p in self.procs:
            if p.poll() is not None:
                tail = open(os.path.join(self.work, f"{p.name}.log")).read()[-2000:]
                raise RuntimeError(f"{p.name} exited with {p.returncode}:\n{tail}")


def run_measured(argv, timeout, env=None):
    """Runs a load generator to the end; returns (stdout, its own CPU seconds from rusage)."""
    with tempfile.TemporaryFile(mode="w+") as out:
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, preexec_fn=die_with_parent)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                p.kill()
                os.wait4(p.pid, 0)
                raise RuntimeError(f"{argv[0]} ran past {timeout} s")
            time.sleep(0.02)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read()
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {p.returncode}:\n{text[-2000:]}")
        return text, ru.ru_utime + ru.ru_stime


def to_ms(value, unit):
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


class Loaders:
    def __init__(self, args, work):
        self.args = args
        self.work = work
        self.harness_bin = os.path.join(args.build_dir, "bin", "harness")
        self.lua = {}

    def _post_lua(self, body, host):
        key = (body, host)
        if key not in self.lua:
            path = os.path.join(self.work, f"post{len(self.lua)}.lua")
            with open(path, "w") as f:
                f.write('wrk.method = "POST"\n')
                f.write(f"wrk.body = '{body}'\n")
                f.write('wrk.headers["Content-Type"] = "application/json"\n')
                if host:
                    f.write(f'wrk.headers["Host"] = "{host}"\n')
            self.lua[key] = path
        return self.lua[key]

    def wrk(self, url, body, connections, threads=1, host=None, watch=()):
        """One wrk run; returns req/s, requests, p50 ms, wrk's CPU s and the watched pids' CPU s."""
        argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{self.args.duration}s", "--latency",
                "-s", self._post_lua(body, host), url]
        before = cpu_seconds(watch)
        text, own_cpu = run_measured(argv, self.args.duration + 30)
        watched = cpu_seconds(watch) - before
        requests = int(re.search(r"(\d+) requests in", text).group(1))
        m = re.search(r"^\s*50%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        # wrk prints these lines only when there were any: such a run measures something else.
        if "Non-2xx or 3xx responses" in text or "Socket errors" in text or requests == 0:
            raise RuntimeError(f"wrk against {url}: errors or no requests:\n{text}")
        return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)), "requests": requests,
                "p50_ms": to_ms(*m.groups()), "loader_cpu_us": own_cpu / requests * 1e6,
                "server_cpu_us": watched / requests * 1e6}

    def h2load(self, url, body, connections, threads=1):
        path = os.path.join(self.work, "h2load-body.json")
        with open(path, "w") as f:
            f.write(body)
        argv = ["h2load", "--h1", f"-t{threads}", f"-c{connections}", "-D", str(self.args.duration),
                "-d", path, "-H", "Content-Type: application/json", url]
        text, own_cpu = run_measured(argv, self.args.duration + 30)
        done = int(re.search(r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded", text).group(2))
        rps = float(re.search(r"finished in [\d.]+s, ([\d.]+) req/s", text).group(1))
        if done == 0:
            raise RuntimeError(f"h2load against {url} succeeded no requests:\n{text}")
        return {"rps": rps, "requests": done, "loader_cpu_us": own_cpu / done * 1e6}

    def harness(self, target, connections, threads=1, protocol="v1", body=V1_BODY, grpc=None):
        out = os.path.join(self.work, "harness.json")
        argv = [self.harness_bin, "load", "--model", MODEL, "--protocol", protocol, "-c", str(connections),
                "-t", str(threads), "-d", f"{self.args.duration}s", "--warmup", "0", "-q", "-o", out]
        if grpc:
            argv += ["--grpc", grpc]
        else:
            argv += ["--target", target]
            path = os.path.join(self.work, "harness-body.json")
            with open(path, "w") as f:
                f.write(body)
            argv += ["--input", path]
        _, own_cpu = run_measured(argv, self.args.duration + 60)
        with open(out) as f:
            doc = json.load(f)
        s = doc["summary"]
        requests = s["completed"] + s["warmup_requests"]
        if s["errors"] or requests == 0:
            raise RuntimeError(f"harness load against {target or grpc}: {s['errors']} errors ({s['first_error']})")
        return {"rps": s["throughput"], "requests": requests, "p50_ms": doc["service_time"]["p50_ms"],
                "loader_cpu_us": own_cpu / requests * 1e6}

    def perf_analyzer(self, grpc, concurrency, served):
        """Triton's perf_analyzer over V2 gRPC at a fixed concurrency. It runs measurement windows
        until three agree, so the requests it sent are counted at the server (served())."""
        path = os.path.join(self.work, "pa-input.json")
        with open(path, "w") as f:
            json.dump({"data": [{"input-0": {"content": [6.8, 2.8, 4.8, 1.4, 6.0, 3.4, 4.5, 1.6],
                                               "shape": [2, 4]}}]}, f)
        argv = [self.args.perf_analyzer, "-m", MODEL, "-u", grpc, "-i", "grpc",
                "--concurrency-range", f"{concurrency}:{concurrency}",
                "--measurement-interval", "2000", "--input-data", path, "--shape", "input-0:2,4"]
        before = served()
        env = dict(os.environ)
        if self.args.perf_analyzer_libs:
            env["LD_LIBRARY_PATH"] = self.args.perf_analyzer_libs
        text, own_cpu = run_measured(argv, 180, env=env)
        requests = served() - before
        m = re.search(r"Throughput: ([\d.]+) infer/sec", text)
        p50 = re.search(r"p50 latency: (\d+) usec", text)
        if not m or requests <= 0:
            raise RuntimeError(f"perf_analyzer printed no throughput:\n{text[-3000:]}")
        return {"rps": float(m.group(1)), "requests": requests, "p50_ms": int(p50.group(1)) / 1000 if p50 else None,
                "loader_cpu_us": own_cpu / requests * 1e6}


def served_requests(http_port, protocol):
    """The model server's count of answered requests of one protocol (its Prometheus metrics)."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5).read().decode()
    return sum(float(v) for v in re.findall(
        r'^kh_modelserver_requests_total\{[^}]*protocol="' + protocol + r'"[^}]*\} ([\d.e+]+)$', text, re.M))


def median_of(runs, key):
    vals = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def summarize(runs_by_name):
    out = {}
    for name, runs in runs_by_name.items():
        keys = set().union(*(r.keys() for r in runs))
        out[name] = {k: median_of(runs, k) for k in sorted(keys)
                     if all(isinstance(r.get(k), (int, float)) for r in runs)}
        out[name]["runs"] = len(runs)
    return out


def start_modelserver(fleet, args, name):
    pf = os.path.join(fleet.work, f"{name}.ports.json")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    fleet.start(name, [os.path.join(args.build_dir, "bin", "modelserver"), "--model_name", MODEL,
                       "--model_dir", os.path.join(args.root, "reference-impl/models/xgboost-iris"),
                       "--http_port", "0", "--grpc_port", "0", "--workers", "1", "--port_file", pf], env=env)
    wait_until(f"{name} ports", lambda: os.path.getsize(pf) > 0)
    ports = json.load(open(pf))
    wait_until(f"{name} ready", lambda: http_ok(f"http://127.0.0.1:{ports['http_port']}/v2/health/ready"))
    return fleet.procs[-1], ports


def start_nginx(fleet, static_body, upstream_port):
    """One nginx process (master_process off, so its pid is the worker): a static server answering
    every path with static_body, and a reverse proxy to upstream_port with upstream keepalive."""
    static_port, proxy_port = free_port(), free_port()
    w = fleet.work
    conf = os.path.join(w, "nginx.conf")
    body = static_body.replace("'", "\\'")
    with open(conf, "w") as f:
        f.write(f"""
master_process off;
daemon off;
worker_processes 1;
pid {w}/nginx.pid;
error_log {w}/nginx.err warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 10000000;
  client_body_temp_path {w}/nginx-body;
  proxy_temp_path {w}/nginx-proxy;
  fastcgi_temp_path {w}/nginx-fastcgi;
  uwsgi_temp_path {w}/nginx-uwsgi;
  scgi_temp_path {w}/nginx-scgi;
  upstream model {{ server 127.0.0.1:{upstream_port}; keepalive 64; keepalive_requests 10000000; }}
  server {{
    listen 127.0.0.1:{static_port};
    location / {{ default_type application/json; return 200 '{body}'; }}
  }}
  server {{
    listen 127.0.0.1:{proxy_port};
    location / {{ proxy_pass http://model; proxy_http_version 1.1; proxy_set_header Connection ""; }}
  }}
}}
""")
    p = fleet.start("nginx", ["nginx", "-p", w, "-c", conf])
    wait_until("nginx", lambda: http_ok(f"http://127.0.0.1:{static_port}/"))
    return p, static_port, proxy_port


def start_haproxy(fleet, upstream_port):
    port = free_port()
    conf = os.path.join(fleet.work, "haproxy.cfg")
    with open(conf, "w") as f:
        f.write(f"""
global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  http-reuse always
frontend in
  bind 127.0.0.1:{port}
  default_backend model
backend model
  server ms 127.0.0.1:{upstream_port}
""")
    p = fleet.start("haproxy", ["haproxy", "-db", "-f", conf])
    wait_until("haproxy", lambda: http_ok(f"http://127.0.0.1:{port}/v2/health/ready"))
    return p, port


def start_queue_proxy(fleet, args, user_port):
    pf = os.path.join(fleet.work, "qp.ports.json")
    p = fleet.start("queue-proxy", [os.path.join(args.build_dir, "bin", "queue-proxy"), "--user_port", str(user_port),
                                    "--http_port", "0", "--admin_port", "0", "--container_concurrency", "0",
                                    "--drain_quiet_period_ms", "0", "--port_file", pf])
    wait_until("queue-proxy ports", lambda: os.path.getsize(pf) > 0)
    port = json.load(open(pf))["http_port"]
    wait_until("queue-proxy ready",
               lambda: http_ok(f"http://127.0.0.1:{port}/healthz", {"K-Network-Probe": "queue"}))
    return p, port


def start_refstack(fleet, args):
    """refstack with two single-pod InferenceServices on the same model: hop-ingress
    (target-burst-capacity 0: the activator leaves the path once the pod is up) and hop-full
    (-1: the activator stays in the path). Returns the refstack process, its ingress port and the
    pids of hop-full's queue-proxy."""
    admin, ingress, grpc = free_port(), free_port(), free_port()
    state = os.path.join(fleet.work, "refstack-state")
    rs = fleet.start("refstack", [os.path.join(args.build_dir, "bin", "refstack"), "up", "--state-dir", state,
                                  "--admin-port", str(admin), "--ingress-port", str(ingress),
                                  "--grpc-port", str(grpc)], cwd=args.root)
    client = [os.path.join(args.build_dir, "bin", "refstack"), "--admin", f"127.0.0.1:{admin}"]
    wait_until("refstack API", lambda: subprocess.run(client + ["get", "isvc"], capture_output=True).returncode == 0)
    manifests = ""
    for name, tbc in (("hop-ingress", "0"), ("hop-full", "-1")):
        manifests += f"""---
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: {name}
  annotations:
    autoscaling.knative.dev/target-burst-capacity: "{tbc}"
spec:
  predictor:
    minReplicas: 1
    maxReplicas: 1
    model:
      modelFormat: {{name: xgboost}}
      storageUri: file://{args.root}/reference-impl/models/xgboost-iris
"""
    subprocess.run(client + ["apply", "-f", "-"], input=manifests.encode(), check=True, capture_output=True)
    for name in ("hop-ingress", "hop-full"):
        wait_until(f"{name} answering through the ingress",
                   lambda: http_ok(f"http://127.0.0.1:{ingress}/v1/models/{name}:predict",
                                   {"Host": f"{name}-default.example.com", "Content-Type": "application/json"},
                                   V1_BODY), timeout=120)
    qp = [p for p in descendants(rs.pid) if "queue-proxy" in cmdline(p).split(" ")[0] and "hop-full" in cmdline(p)]
    if not qp:
        raise RuntimeError("hop-full's queue-proxy was not found among refstack's children")
    return rs, ingress, qp


def hops(args, fleet, loaders):
    log("hops: starting the model server, nginx, HAProxy, queue-proxy and refstack")
    _, ms_ports = start_modelserver(fleet, args, "modelserver-hops")
    user = ms_ports["http_port"]
    nginx, _, nginx_proxy = start_nginx(fleet, "{}", user)
    haproxy, haproxy_port = start_haproxy(fleet, user)
    qp, qp_port = start_queue_proxy(fleet, args, user)
    rs, ingress, full_qp = start_refstack(fleet, args)
    configs = [
        ("direct", f"http://127.0.0.1:{user}", None, []),
        ("nginx", f"http://127.0.0.1:{nginx_proxy}", None, [nginx.pid]),
        ("haproxy", f"http://127.0.0.1:{haproxy_port}", None, [haproxy.pid]),
        ("queue-proxy", f"http://127.0.0.1:{qp_port}", None, [qp.pid]),
            ("ingress", f"http://127.0.0.1:{ingress}", "hop-ingress-default.example.com", [rs.pid]),
        ("full-path", f"http://127.0.0.1:{ingress}", "hop-full-default.example.com", [rs.pid] + full_qp),
    ]
    results = {}
    for conc in args.hop_concurrency:
        runs = {name: [] for name, *_ in configs}
        for rep in range(args.reps):
            for name, base, host, watch in configs:
                fleet.check_alive()
                model = host.split("-default")[0] if host else MODEL
                r = loaders.wrk(base + f"/v1/models/{model}:predict", V1_BODY, conc, host=host, watch=watch)
                runs[name].append(r)
                log(f"hops c={conc} rep {rep + 1}/{args.reps} {name:12s} {r['rps']:9.0f} req/s  p50 {r['p50_ms']:.3f} ms"
                    f"  proxy CPU {r['server_cpu_us']:.1f} us/req")
            # Added p50 within the repetition, against that repetition's direct run; the ingress's
            # own hop against the queue-proxy run, since its pod has a queue-proxy (its CPU is
            # refstack's alone).
            for name, *_ in configs:
                base = "queue-proxy" if name == "ingress" else "direct"
                runs[name][-1]["added_p50_us"] = (runs[name][-1]["p50_ms"] - runs[base][-1]["p50_ms"]) * 1000
        results[f"c{conc}"] = summarize(runs)
    for p in (rs, qp, haproxy, nginx):
        fleet.stop(p)
    return results


def loaders_section(args, fleet, loaders):
    log("loaders: harness load against wrk and h2load on nginx's static body and on our model server")
    _, ms_ports = start_modelserver(fleet, args, "modelserver-loaders")
    nginx, static_port, _ = start_nginx(fleet, '{"predictions":[1,1]}', ms_ports["http_port"])
    results = {}
    c, t = args.loader_connections, args.loader_threads
    for target_name, base in (("nginx-static", f"http://127.0.0.1:{static_port}"),
                              ("modelserver", f"http://127.0.0.1:{ms_ports['http_port']}")):
        runs = {"wrk": [], "h2load": [], "harness": []}
        for rep in range(args.reps):
            fleet.check_alive()
            runs["wrk"].append(loaders.wrk(base + V1_PATH, V1_BODY, c, threads=t))
            runs["h2load"].append(loaders.h2load(base + V1_PATH, V1_BODY, c, threads=t))
            runs["harness"].append(loaders.harness(base, c, threads=t))
            log(f"loaders {target_name} rep {rep + 1}/{args.reps}: " + ", ".join(
                f"{k} {v[-1]['rps']:.0f} req/s ({v[-1]['loader_cpu_us']:.1f} us CPU/req)" for k, v in runs.items()))
        results[target_name] = summarize(runs)
    fleet.stop(nginx)
    log("grpc: harness load --protocol grpc against perf_analyzer")
    grpc = f"127.0.0.1:{ms_ports['grpc_port']}"
    if args.perf_analyzer:
        runs = {"perf_analyzer": [], "harness": []}
        for rep in range(args.reps):
            fleet.check_alive()
            try:
                runs["perf_analyzer"].append(loaders.perf_analyzer(
                    grpc, args.grpc_concurrency, lambda: served_requests(ms_ports["http_port"], "grpc")))
            except RuntimeError as e:
                log(f"perf_analyzer failed, the gRPC comparison is left out: {e}")
                runs = None
                break
            runs["harness"].append(loaders.harness(None, args.grpc_concurrency, protocol="grpc", grpc=grpc))
            log(f"grpc rep {rep + 1}/{args.reps}: perf_analyzer {runs['perf_analyzer'][-1]['rps']:.0f} infer/s, "
                f"harness {runs['harness'][-1]['rps']:.0f} req/s")
        results["grpc"] = summarize(runs) if runs else {"skipped": "perf_analyzer failed (see the log)"}
    else:
        results["grpc"] = {"skipped": "perf_analyzer is not installed"}
    return results


def modelserver_section(args, fleet, loaders):
    log("modelserver: ours against nginx's static body and KServe's Python ModelServer")
    ms, ms_ports = start_modelserver(fleet, args, "modelserver-serving")
    base = f"http://127.0.0.1:{ms_ports['http_port']}"
    req = urllib.request.Request(base + V2_PATH, data=V2_BODY.encode(), headers={"Content-Type": "application/json"})
    answer = urllib.request.urlopen(req, timeout=5).read().decode()
    nginx, static_port, _ = start_nginx(fleet, answer, ms_ports["http_port"])
    servers = [("modelserver", base, [ms.pid]), ("nginx-static", f"http://127.0.0.1:{static_port}", [nginx.pid])]
    if args.python:
        port, gport = free_port(), free_port()
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        ks = fleet.start("kserve", [args.python, os.path.join(args.root, "bench", "kserve_model_server.py"),
                                    "--framework", "xgboost", "--model_name", MODEL, "--model_dir",
                                    os.path.join(args.root, "reference-impl/models/xgboost-iris"),
                                    "--http_port", str(port), "--grpc_port", str(gport), "--workers", "1"], env=env)
        wait_until("KServe's ModelServer", lambda: http_ok(f"http://127.0.0.1:{port}/v2/health/ready"), timeout=120)
        # uvicorn may run the app in a child: count the whole tree.
        servers.append(("kserve-python", f"http://127.0.0.1:{port}", [ks.pid] + descendants(ks.pid)))
    runs = {name: [] for name, *_ in servers}
    for rep in range(args.reps):
        for name, url, watch in servers:
            fleet.check_alive()
            r = loaders.wrk(url + V2_PATH, V2_BODY, args.loader_connections, watch=watch)
            runs[name].append(r)
            log(f"modelserver rep {rep + 1}/{args.reps} {name:14s} {r['rps']:9.0f} req/s  p50 {r['p50_ms']:.3f} ms"
                f"  server CPU {r['server_cpu_us']:.1f} us/req")
    return {"answer_bytes": len(answer), **summarize(runs)}


def coldstart_section(args, work):
    log(f"coldstart: bench/cold_start.sh {args.cold_cycles}")
    out = os.path.join(work, "cold.json")
    env = dict(os.environ, KH_BENCH_BUILD_DIR=args.build_dir, KH_COLD_START_JSON=out)
    p = subprocess.run([os.path.join(args.root, "bench", "cold_start.sh"), str(args.cold_cycles)], env=env,
                       capture_output=True, text=True, preexec_fn=die_with_parent)
    if p.returncode != 0:
        raise RuntimeError(f"cold_start.sh failed:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    print(p.stdout, file=sys.stderr)
    return json.load(open(out))


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt(x, spec=".2f", suffix=""):
    return "-" if x is None else f"{x:{spec}}{suffix}"


def table(doc):
    """Markdown tables of the figures and the ratios the issue sets goals for."""
    lines = []
    if "hops" in doc:
        lines += ["### Proxy hops (wrk, V1 iris predict, one model-server worker)", "",
                  "The ingress's pod has a queue-proxy: its added p50 is over the queue-proxy row, its CPU is "
                  "refstack's alone. The full path (ingress, activator, queue-proxy) counts refstack's and the "
                  "pod queue-proxy's CPU and is held against two nginx hops.", "",
                  "| hop | c | req/s | p50 ms | added p50 us | proxy CPU us/req | CPU vs nginx | added p50 vs nginx |",
                  "|---|---|---|---|---|---|---|---|"]
        for conc, cfgs in doc["hops"].items():
            ng = cfgs["nginx"]
            for name, r in cfgs.items():
                # The full path is held against two nginx hops (its goal).
                scale = 2 if name == "full-path" else 1
                cpu_r = ratio(r.get("server_cpu_us"), scale * ng["server_cpu_us"]) if name != "direct" else None
                # A ratio to an added p50 within the noise (nginx adding under 25 us, as when the
                # model server is the bottleneck) says nothing.
                p50_r = (ratio(r.get("added_p50_us"), scale * ng["added_p50_us"])
                         if name != "direct" and ng["added_p50_us"] >= 25 else None)
                label = {"ingress": "ingress (its hop alone)", "full-path": "full path (vs 2 nginx hops)"}.get(name, name)
                lines.append(f"| {label} | {conc[1:]} | {fmt(r['rps'], '.0f')} | "
                             f"{fmt(r['p50_ms'], '.3f')} | {fmt(r.get('added_p50_us'), '.0f')} | "
                             f"{fmt(r.get('server_cpu_us') if name != 'direct' else None, '.1f')} | "
                             f"{fmt(cpu_r, '.2f', 'x')} | {fmt(p50_r, '.2f', 'x')} |")
        lines.append("")
    if "loaders" in doc:
        lines += ["### Load generators (HTTP/1.1 keep-alive POST; gRPC ModelInfer)", "",
                  "req/s shows the target's limit when the target saturates its core (nginx, one model-server "
                  "worker); the generator's CPU per request is the figure that travels.", "",
                  "| target | generator | req/s | vs wrk | vs h2load | generator CPU us/req | CPU/req vs wrk |",
                  "|---|---|---|---|---|---|---|"]
        for target in ("nginx-static", "modelserver"):
            r = doc["loaders"].get(target)
            if not r:
                continue
            for gen in ("wrk", "h2load", "harness"):
                g = r[gen]
                lines.append(f"| {target} | {gen} | {fmt(g['rps'], '.0f')} | {fmt(ratio(g['rps'], r['wrk']['rps']), '.2f', 'x')} | "
                             f"{fmt(ratio(g['rps'], r['h2load']['rps']), '.2f', 'x')} | {fmt(g['loader_cpu_us'], '.1f')} | "
                             f"{fmt(ratio(g['loader_cpu_us'], r['wrk']['loader_cpu_us']), '.2f', 'x')} |")
        g = doc["loaders"].get("grpc", {})
        if "harness" in g:
            pa, kh = g["perf_analyzer"], g["harness"]
            lines.append(f"| modelserver gRPC | perf_analyzer | {fmt(pa['rps'], '.0f')} | | | "
                         f"{fmt(pa['loader_cpu_us'], '.1f')} | |")
            lines.append(f"| modelserver gRPC | harness | {fmt(kh['rps'], '.0f')} | {fmt(ratio(kh['rps'], pa['rps']), '.2f', 'x')} "
                         f"perf_analyzer | | {fmt(kh['loader_cpu_us'], '.1f')} | "
                         f"{fmt(ratio(kh['loader_cpu_us'], pa['loader_cpu_us']), '.2f', 'x')} perf_analyzer's |")
        elif g:
            lines.append(f"| modelserver gRPC | perf_analyzer | {g.get('skipped')} | | | | |")
        lines.append("")
    if "modelserver" in doc:
        m = doc["modelserver"]
        lines += [f"### Model server (wrk, V2 REST iris, {m['answer_bytes']}-byte answer, one worker each)", "",
                  "| server | req/s | p50 ms | server CPU us/req | ours vs it (req/s) |", "|---|---|---|---|---|"]
        for name in ("modelserver", "nginx-static", "kserve-python"):
            if name in m:
                r = m[name]
                lines.append(f"| {name} | {fmt(r['rps'], '.0f')} | {fmt(r['p50_ms'], '.3f')} | {fmt(r['server_cpu_us'], '.1f')} | "
                             f"{fmt(ratio(m['modelserver']['rps'], r['rps']), '.2f', 'x') if name != 'modelserver' else ''} |")
        lines.append("")
    if "coldstart" in doc:
        c = doc["coldstart"]
        lines += ["### Cold start (zero pods to first byte through refstack)", "",
                  f"{c['count']} cold starts: p50 {c['p50_ms']:.1f} ms, p99 {c['p99_ms']:.1f} ms, max {c['max_ms']:.1f} ms; "
                  "median breakdown (ms from arrival): " +
                  ", ".join(f"{k} {v:.1f}" for k, v in c["median_breakdown_ms"].items()), ""]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", required=True)
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--out", required=True, help="directory for peers.json and peers.md")
    ap.add_argument("--duration", type=int, default=5, help="seconds per load run (default 5)")
    ap.add_argument("--reps", type=int, default=3, help="alternating runs per figure; the median is kept (default 3)")
    ap.add_argument("--sections", default="hops,loaders,modelserver,coldstart")
    ap.add_argument("--hop-concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 16])
    ap.add_argument("--loader-connections", type=int, default=32)
    ap.add_argument("--loader-threads", type=int, default=1)
    ap.add_argument("--grpc-concurrency", type=int, default=16)
    ap.add_argument("--cold-cycles", type=int, default=50)
    ap.add_argument("--perf-analyzer", default="", help="perf_analyzer executable (empty: no gRPC comparison)")
    ap.add_argument("--perf-analyzer-libs", default="", help="LD_LIBRARY_PATH for perf_analyzer (its libcudart.so.12)")
    ap.add_argument("--python", default="", help="the virtualenv's python with kserve (empty: no KServe server)")
    args = ap.parse_args()
    sections = args.sections.split(",")
    work = tempfile.mkdtemp(prefix="kh-peers-")
    fleet = Fleet(work)
    loaders = Loaders(args, work)
    doc = {"schema": "kh.peers/v1", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                       "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")},
           "settings": {"duration_s": args.duration, "reps": args.reps, "hop_concurrency": args.hop_concurrency,
                        "loader_connections": args.loader_connections, "loader_threads": args.loader_threads,
                        "grpc_concurrency": args.grpc_concurrency, "cold_cycles": args.cold_cycles}}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        if "hops" in sections:
            doc["hops"] = hops(args, fleet, loaders)
            fleet.stop_all()
        if "loaders" in sections:
            doc["loaders"] = loaders_section(args, fleet, loaders)
            fleet.stop_all()
        if "modelserver" in sections:
            doc["modelserver"] = modelserver_section(args, fleet, loaders)
            fleet.stop_all()
        if "coldstart" in sections:
            doc["coldstart"] = coldstart_section(args, work)
    finally:
        fleet.stop_all()
        if os.environ.get("KH_KEEP_WORK"):
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    os.makedirs(args.out, exist_ok=True)
    md = table(doc)
    with open(os.path.join(args.out, "peers.json"), "w") as f:
        json.dump(doc, f, indent=2)
    with open(os.path.join(args.out, "peers.md"), "w") as f:
        f.write(f"# Speed against peers, {doc['date']}, {doc['machine']['cpus']} CPUs ({doc['machine']['cpu']})\n\n{md}\n")
    print(md)
    log(f"wrote {args.out}/peers.json and peers.md")


if __name__ == "__main__":
    main()
