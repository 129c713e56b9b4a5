# anyloop's task runner. `just test` is what CI runs (via .ci/run).

set shell := ["bash", "-euo", "pipefail", "-c"]

# Everything: lints, the native test suite, the cross-target builds.
test: setup lint lint-browser test-native test-sigchld test-tls build-targets test-browser test-wasi

# The main demo: the spec's hello_world and display_date examples.
demo:
    cargo run --example hello_world
    cargo run --example display_date

# Rust targets the tests build for.
setup:
    rustup target add x86_64-unknown-none x86_64-apple-darwin x86_64-unknown-freebsd x86_64-pc-windows-msvc
    rustup target add wasm32-unknown-unknown wasm32-wasip1 wasm32-wasip2

# Formatting, clippy and rustdoc; warnings are errors.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

# Unit, integration and doc tests on the native host.
test-native:
    cargo test --workspace

# The core builds without std, for bare metal.
build-targets:
    cargo build -p anyloop-core --no-default-features --target x86_64-unknown-none
    # The native host type-checks for kqueue (macOS, FreeBSD) and IOCP (Windows);
    # what a platform lacks returns Unsupported there.
    for t in x86_64-apple-darwin x86_64-unknown-freebsd x86_64-pc-windows-msvc; do \
        RUSTFLAGS="-D warnings" cargo check -p anyloop-native --target "$t"; \
        RUSTFLAGS="-D warnings" cargo check -p anyloop --examples --target "$t"; \
    done

# Core microbenchmarks against a plain VecDeque + BinaryHeap loop (< 3 min).
bench:
    cargo run --release -p anyloop-bench --bin microbench

# The spec's SIGINT/SIGTERM example: start it, send it each signal by the pid
# it prints, and check its output and exit status.
demo-signals:
    #!/usr/bin/env bash
    set -euo pipefail
    cargo build -q --example signals
    bin="${CARGO_TARGET_DIR:-target}/debug/examples/signals"
    for sig in INT TERM; do
        out=$(mktemp)
        "$bin" > "$out" & child=$!
        for _ in $(seq 100); do grep -q '^pid ' "$out" && break; sleep 0.05; done
        pid=$(sed -n 's/^pid \([0-9]*\):.*/\1/p' "$out")
        kill -"$sig" "$pid"
        wait "$child"
        cat "$out"
        grep -qx "got signal SIG$sig: exit" "$out"
        rm -f "$out"
    done

# The process tests again, with every loop forced onto the SIGCHLD child
# watcher (the path macOS and the BSDs take) instead of Linux's pidfd.
test-sigchld:
    ANYLOOP_FORCE_SIGCHLD=1 cargo test -p anyloop-tests --test subprocess --test reaping --test pipes

# Child-process pipe throughput through `cat`: anyloop, plain std threads,
# and CPython's asyncio (if python3 is installed), side by side (< 1 min).
bench-pipes mib="256":
    cargo run -q --release -p anyloop-bench --bin pipebench -- {{mib}}
    if command -v python3 >/dev/null; then python3 bench/py/pipebench.py {{mib}}; fi

# Clippy and rustdoc for the browser build (the browser crates are empty
# natively, so `lint` does not see their code).
lint-browser:
    cargo clippy -p anyloop-js --target wasm32-unknown-unknown -- -D warnings
    cargo clippy -p anyloop-js -p anyloop-browser-tests -p browser-echo -p anyloop-bench-browser -p anyloop-scenarios --all-targets --target wasm32-unknown-unknown -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p anyloop -p anyloop-js -p anyloop-browser-tests -p browser-echo -p anyloop-bench-browser --target wasm32-unknown-unknown

# The browser host in headless Chromium: wasm-bindgen tests against a
# WebSocket echo server on 127.0.0.1, every scenario, and the browser_echo
# page check (installs Chromium, chromedriver, wasm-bindgen-cli and a
# Python venv for the echo server as needed).
test-browser:
    bash tests/browser/browser.sh test

# examples/browser_echo: builds the page and serves it (and its echo
# server) on 127.0.0.1 until interrupted; prints the page's URL first.
demo-browser:
    bash tests/browser/browser.sh demo

# Callbacks per second in headless Chromium, anyloop against a plain JS
# loop doing the same work, and the example's .wasm size.
bench-browser:
    bash tests/browser/browser.sh bench
    bash tests/browser/browser.sh size

# The TCP echo benchmark (../shared/bench): anyloop's tcp_echo_server vs raw
# mio, tokio current-thread and uvloop (if pip can install it), interleaved;
# prints server CPU per request and req/s with ratios vs mio and tokio.
# REPS, SECS, WAIT_QUIET, SIZES override the defaults (5, 5, 180, 1/10/100 KiB).
bench-echo:
    bash bench/echo/bench-echo.sh

# Streams-style echo (start_server + read/write/drain) against the protocol
# server and tokio current-thread, server CPU per request (~12 min).
bench-streams:
    STYLE=streams bash bench/echo/bench-echo.sh

# A quick tcp_echo_server check: serves, echoes, exits 0 on SIGTERM.
demo-echo:
    #!/usr/bin/env bash
    set -euo pipefail
    cargo build -q --example tcp_echo_server --example tcp_echo_client
    dir="${CARGO_TARGET_DIR:-target}/debug/examples"
    out=$(mktemp)
    "$dir/tcp_echo_server" 127.0.0.1:0 > "$out" < /dev/null & pid=$!
    for _ in $(seq 100); do [ -s "$out" ] && break; sleep 0.05; done
    addr=$(head -1 "$out")
    "$dir/tcp_echo_client" "$addr"
    kill -TERM "$pid"
    wait "$pid"
    echo "tcp_echo_server on $addr exited 0 on SIGTERM"
    rm -f "$out"
    cargo run -q --example udp_echo

# TLS (feature `tls`): clippy and rustdoc with the feature, the TLS tests
# (our client and server, and openssl s_server / s_client and Python's ssl
# as peers; installs Debian's openssl if missing), and the tls_echo example.
test-tls:
    command -v openssl >/dev/null || (apt-get update -q && (apt-get install -y -q openssl || apt-get install -y -q openssl))
    cargo clippy --workspace --all-targets --features tls -- -D warnings
    RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p anyloop -p anyloop-tls -p anyloop-native --features tls
    cargo test -p anyloop-tests --features tls --test tls --test tls_peers --test tls_fds
    cargo test -p anyloop-tls
    cargo run -q --example tls_echo --features tls

# TLS echo throughput (TLS 1.3, AES-128-GCM) next to the same echo without
# TLS and to the crypto floor (the same echo with only AES-GCM records, no
# TLS stack), interleaved in one run, at 10 KiB and 100 KiB messages (~2 min).
bench-tls:
    cargo run -q --release -p anyloop-bench --features tls --bin bench-tls

# Rust targets of the WASI host.
setup-wasi:
    rustup target add wasm32-wasip1 wasm32-wasip2

# The WASI host and its guests, linted for both WASI targets.
lint-wasi: setup-wasi
    cargo clippy -p anyloop -p anyloop-wasi -p anyloop-wasi-guests --lib --bins --examples --target wasm32-wasip1 -- -D warnings
    cargo clippy -p anyloop -p anyloop-wasi -p anyloop-wasi-guests --lib --bins --examples --target wasm32-wasip2 -- -D warnings
    cargo clippy -p anyloop-wasi-runner --features runtime --all-targets -- -D warnings

# The WASI guests (wasip1 modules, wasip2 components) the wasmtime tests run.
build-wasi-guests: setup-wasi
    cargo build --release -p anyloop-wasi-guests --target wasm32-wasip1
    cargo build --release -p anyloop-wasi-guests --target wasm32-wasip2
    cargo build --release --target wasm32-wasip1 --example hello_world --example display_date --example wasi_stdin_echo
    cargo build --release --target wasm32-wasip2 --example wasi_stdin_echo --example wasi_echo_server

# The WASI host under an embedded wasmtime: wasip1 and wasip2 checks, the
# examples, and every conformance scenario inside a module.
test-wasi: lint-wasi build-wasi-guests
    cargo test -p anyloop-wasi-runner --features runtime

# hello_world and display_date built for wasm32-wasip1 and run by the
# embedded-wasmtime runner (anyloop-wasi-run): the same output as natively.
# Then wasi_stdin_echo on a piped stdin.
demo-wasi: setup-wasi
    cargo build --release --target wasm32-wasip1 --example hello_world --example display_date --example wasi_stdin_echo
    cargo build -p anyloop-wasi-runner --features runtime --bin anyloop-wasi-run
    t="${CARGO_TARGET_DIR:-target}"; "$t/debug/anyloop-wasi-run" "$t/wasm32-wasip1/release/examples/hello_world.wasm"
    t="${CARGO_TARGET_DIR:-target}"; "$t/debug/anyloop-wasi-run" "$t/wasm32-wasip1/release/examples/display_date.wasm"
    t="${CARGO_TARGET_DIR:-target}"; printf 'hello\nwasi\n' | "$t/debug/anyloop-wasi-run" "$t/wasm32-wasip1/release/examples/wasi_stdin_echo.wasm"
