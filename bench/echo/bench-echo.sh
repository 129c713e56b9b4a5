#!/usr/bin/env bash
# `just bench-echo`: the TCP echo benchmark of ../shared/bench with
# anyloop's tcp_echo_server next to raw mio, tokio current-thread and (if
# pip can install it) uvloop, interleaved, then a table of server CPU per
# request and req/s with ratios vs mio and vs tokio.
#
# `just bench-streams` (STYLE=streams): anyloop's streams_echo_server next to
# its tcp_echo_server and tokio current-thread (a read/write loop, i.e.
# streams style), with the ratio of server CPU per request vs tokio.
#
# Environment: REPS (default 5), SECS (5), WAIT_QUIET (180 s), SIZES
# (1024,10240,102400), BENCH_SRC (the harness; default ../shared/bench),
# STYLE (protocol | streams).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=$TARGET/bench-echo
SRC=${BENCH_SRC:-$ROOT/../shared/bench}
[ -d "$SRC" ] || SRC=/work/shared/bench
[ -d "$SRC" ] || { echo "bench-echo: harness not found (set BENCH_SRC)" >&2; exit 1; }
REPS=${REPS:-5}
SECS=${SECS:-5}
WAIT_QUIET=${WAIT_QUIET:-180}
SIZES=${SIZES:-1024,10240,102400}
STYLE=${STYLE:-protocol}

# The harness is read-only where it lives: copy it (sources only) and build there.
mkdir -p "$WORK/harness"
(cd "$SRC" && tar --exclude=./.venv --exclude=./rust/target --exclude=./results -cf - .) | (cd "$WORK/harness" && tar -xf -)
chmod -R u+w "$WORK/harness"
H=$WORK/harness
echo "== building the peers (loadgen, mio_echo, tokio_echo)"
(cd "$H/rust" && CARGO_TARGET_DIR="$H/rust/target" cargo build --release -q)
if [ "$STYLE" = streams ]; then SERVERS=anyloop-streams,anyloop,tokio-ct; else SERVERS=anyloop,mio,tokio-ct; fi
PY=python3
if [ -x "$H/.venv/bin/python" ] || (python3 -m venv "$H/.venv" && "$H/.venv/bin/pip" install -q -r "$H/requirements.txt"); then
    PY=$H/.venv/bin/python
    "$PY" -c "import uvloop" 2>/dev/null && SERVERS=$SERVERS,uvloop-$STYLE
else
    echo "== uvloop unavailable (venv/pip failed): running without it" >&2
fi
echo "== building anyloop's echo servers"
(cd "$ROOT" && cargo build --release -q --example tcp_echo_server --example streams_echo_server)
EXTRA=(--extra "anyloop=$TARGET/release/examples/tcp_echo_server 127.0.0.1:0")
[ "$STYLE" = streams ] && EXTRA+=(--extra "anyloop-streams=$TARGET/release/examples/streams_echo_server 127.0.0.1:0")

OUT=$WORK/echo-$(date +%Y%m%d-%H%M%S).jsonl
echo "== running: $REPS reps x $SECS s, sizes $SIZES, servers $SERVERS -> $OUT"
"$PY" "$H/py/run_echo.py" --reps "$REPS" --secs "$SECS" --sizes "$SIZES" --wait-quiet "$WAIT_QUIET" \
    --servers "$SERVERS" "${EXTRA[@]}" \
    --loadgen "$H/rust/target/release/loadgen" --out "$OUT" > "$WORK/last-run.txt"
grep -E '^rep=' "$WORK/last-run.txt" || true
python3 "$ROOT/bench/echo/table.py" --style "$STYLE" "$OUT"
