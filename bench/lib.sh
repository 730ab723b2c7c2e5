# Sourced by the bench scripts: start `isl` servers on free ports and stop them on exit.
#
#   source "$root/bench/lib.sh"
#   isl_start "$out/x.log" "$bin" serve --backend cpu     # appends --addr 127.0.0.1:0
#   echo "$ISL_ADDR"                                       # http://127.0.0.1:PORT
#
# isl_start waits up to 60 s for the "listening on" line (`isl edge` compiles its component
# before it listens) and fails with the log when none comes; every server it started is killed
# when the script exits.

ISL_PIDS=()
isl_stop_all() {
  for p in "${ISL_PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
}
trap isl_stop_all EXIT

isl_start() { # LOG BIN ARGS...
  local log="$1"; shift
  : >"$log"
  "$@" --addr 127.0.0.1:0 >>"$log" 2>&1 &
  ISL_PIDS+=("$!")
  ISL_ADDR=""
  for _ in $(seq 1 1200); do
    ISL_ADDR="$(grep -o 'http://127.0.0.1:[0-9]*' "$log" | head -n1 || true)"
    [[ -n "$ISL_ADDR" ]] && return 0
    sleep 0.05
  done
  echo "server did not start:" >&2
  cat "$log" >&2
  return 1
}
