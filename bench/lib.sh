# Shared by the bench scripts: a free loopback port, an nginx serving one static body, refstack.
# Sourced after scripts/common.sh; expects $work (a temporary directory: kh_bench_workdir makes
# one).

# A port nothing listens on (nginx cannot take port 0 and report it).
kh_free_port() {
  local p
  while true; do
    p=$(shuf -i 20000-60000 -n 1)
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

# kh_start_nginx PORT BODY: one worker answering every path with BODY; sets $nginx_pid.
kh_start_nginx() {
  local port="$1" body="${2//\'/\\\'}"
  cat >"$work/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/nginx.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$port;
    location / { default_type application/json; return 200 '$body'; }
  }
}
NGX
  nginx -c "$work/nginx.conf" &
  nginx_pid=$!
  for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && return 0; sleep 0.05; done
  echo "nginx did not start:" >&2
  cat "$work/nginx.err" >&2 || true
  return 1
}

# kh_start_refstack [refstack up flags...]: refstack on free ports with its state under $work,
# waits for its API; sets $pid, $admin, $ingress, $grpc and $rs (the refstack client command).
# The caller's EXIT trap stops $pid.
kh_start_refstack() {
  admin="$(kh_free_port)"; ingress="$(kh_free_port)"; grpc="$(kh_free_port)"
  (cd "$KH_ROOT" && exec "$KH_BUILD_DIR/bin/refstack" up --state-dir "$work/state" --admin-port "$admin" \
    --ingress-port "$ingress" --grpc-port "$grpc" "$@" >"$work/refstack.log" 2>&1) &
  pid=$!
  rs=("$KH_BUILD_DIR/bin/refstack" --admin "127.0.0.1:$admin")
  for _ in $(seq 1 100); do "${rs[@]}" get isvc >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "refstack did not start:" >&2
  cat "$work/refstack.log" >&2 || true
  return 1
}

# kh_bench_workdir: a temporary $work, removed at exit (kept with KH_KEEP_WORK=1), and the
# refstack of kh_start_refstack ($pid) stopped at exit.
kh_bench_workdir() {
  work="$(mktemp -d)"
  pid=""
  trap kh_bench_cleanup EXIT
}
kh_bench_cleanup() {
  [[ -n "$pid" ]] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  [[ -n "${KH_KEEP_WORK:-}" ]] && echo "kept $work" >&2 || rm -rf "$work"
}
