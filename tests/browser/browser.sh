#!/usr/bin/env bash
# anyloop in the browser: what the justfile's browser recipes run.
#
#   browser.sh setup   install what the browser recipes need (idempotent):
#                      the wasm32 target, Debian's chromium + chromedriver
#                      (+ binaryen for wasm-opt), wasm-bindgen-cli at exactly
#                      the wasm-bindgen version of Cargo.lock, and a venv
#                      with Python's `websockets` for the echo server
#   browser.sh test    the wasm-bindgen tests in headless Chromium against a
#                      WebSocket echo server on 127.0.0.1, then the
#                      browser_echo page check (6 s criterion)
#   browser.sh demo    builds and serves examples/browser_echo until ^C
#   browser.sh bench   callbacks per second in Chromium: anyloop vs plain JS
#   browser.sh size    the example's .wasm size after wasm-bindgen / wasm-opt
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
TARGET=$CARGO_TARGET_DIR
VENV="$TARGET/browser-venv"
WASM_DIR="$TARGET/wasm32-unknown-unknown"
export PATH="$HOME/.cargo/bin:$PATH"

wasm_bindgen_version() {
    awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

setup() {
    rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
    if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null || ! command -v wasm-opt >/dev/null; then
        as_root apt-get update -qq
        # The first attempt can fail on a .deb the mirror just removed.
        as_root apt-get install -y -qq chromium chromium-driver binaryen >/dev/null ||
            { as_root apt-get update -qq && as_root apt-get install -y -qq chromium chromium-driver binaryen >/dev/null; }
    fi
    local want
    want=$(wasm_bindgen_version)
    if [ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen $want" ]; then
        echo "installing wasm-bindgen-cli $want (a few minutes)"
        cargo install wasm-bindgen-cli --version "$want"
    fi
    if ! "$VENV/bin/python" -c 'import websockets' 2>/dev/null; then
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install -q "websockets>=14,<18"
    fi
}

ECHO_PID=
stop_echo() {
    if [ -n "$ECHO_PID" ]; then
        kill "$ECHO_PID" 2>/dev/null || true
        wait "$ECHO_PID" 2>/dev/null || true
        ECHO_PID=
    fi
}
trap stop_echo EXIT

# start_echo LOG [server args...]: starts the echo server, sets ECHO_PORT.
start_echo() {
    local log=$1
    shift
    local portfile
    portfile=$(mktemp)
    rm -f "$portfile"
    "$VENV/bin/python" tests/browser/echo_server.py --port-file "$portfile" "$@" >"$log" 2>&1 &
    ECHO_PID=$!
    for _ in $(seq 100); do
        [ -s "$portfile" ] && break
        kill -0 "$ECHO_PID" 2>/dev/null || { cat "$log"; echo "echo server failed to start" >&2; exit 1; }
        sleep 0.1
    done
    ECHO_PORT=$(cat "$portfile")
    rm -f "$portfile"
}

closed_port() {
    "$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# build_page PACKAGE OUT_DIR HTML_DIR: release wasm + wasm-bindgen --target web.
build_page() {
    local pkg=$1 out=$2 html=$3
    cargo build -q --release -p "$pkg" --target wasm32-unknown-unknown
    rm -rf "$out"
    mkdir -p "$out"
    wasm-bindgen --target web --no-typescript --out-dir "$out/pkg" "$WASM_DIR/release/${pkg//-/_}.wasm"
    cp "$html"/*.html "$out/"
}

build_demo() {
    build_page browser-echo "$TARGET/browser-echo-site" examples/browser_echo
}

test_browser() {
    setup
    start_echo "$TARGET/echo-server.log" --lifetime 3600
    export ANYLOOP_WS_ECHO_PORT=$ECHO_PORT
    ANYLOOP_WS_CLOSED_PORT=$(closed_port)
    export ANYLOOP_WS_CLOSED_PORT
    export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
    CHROMEDRIVER=$(command -v chromedriver)
    export CHROMEDRIVER
    export WASM_BINDGEN_TEST_WEBDRIVER_JSON=$ROOT/tests/browser/webdriver.json
    export WASM_BINDGEN_TEST_TIMEOUT=300
    cargo test -p anyloop-browser-tests --target wasm32-unknown-unknown
    stop_echo
    # The example page: served with its echo server, checked 6 s after load.
    build_demo
    start_echo "$TARGET/demo-server.log" --static "$TARGET/browser-echo-site" --lifetime 600
    "$VENV/bin/python" tests/browser/page_check.py demo "http://127.0.0.1:$ECHO_PORT/index.html" \
        --screenshot "$TARGET/browser-echo.png"
    stop_echo
}

demo() {
    setup
    build_demo
    local port=${PORT:-0}
    # The server prints the page's URL first; it serves until interrupted.
    trap - EXIT
    exec "$VENV/bin/python" tests/browser/echo_server.py --port "$port" --static "$TARGET/browser-echo-site" \
        --page index.html
}

size() {
    setup >/dev/null
    build_demo
    local wasm="$TARGET/browser-echo-site/pkg/browser_echo_bg.wasm"
    echo "browser_echo .wasm after wasm-bindgen: $(stat -c %s "$wasm") bytes"
    if command -v wasm-opt >/dev/null; then
        wasm-opt -Oz --enable-bulk-memory --enable-sign-ext --enable-mutable-globals --enable-nontrapping-float-to-int \
            --enable-reference-types --enable-multivalue "$wasm" -o "$TARGET/browser_echo_bg.opt.wasm"
        echo "after wasm-opt -Oz ($(wasm-opt --version)): $(stat -c %s "$TARGET/browser_echo_bg.opt.wasm") bytes"
        gzip -9 -c "$TARGET/browser_echo_bg.opt.wasm" | wc -c | xargs printf 'gzip -9 of that: %s bytes\n'
    fi
}

bench() {
    setup
    build_page anyloop-bench-browser "$TARGET/bench-browser-site" bench/browser
    start_echo "$TARGET/bench-server.log" --static "$TARGET/bench-browser-site" --lifetime 900
    "$VENV/bin/python" tests/browser/page_check.py bench "http://127.0.0.1:$ECHO_PORT/index.html"
    stop_echo
}

case "${1:-}" in
setup) setup ;;
test) test_browser ;;
demo) demo ;;
bench) bench ;;
size) size ;;
*)
    sed -n '2,16p' "$0"
    exit 2
    ;;
esac
