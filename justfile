# anyloop's task runner. `just test` is what CI runs (via .ci/run).

set shell := ["bash", "-euo", "pipefail", "-c"]

# Everything: lints, the native test suite, the cross-target builds.
test: setup lint lint-browser test-native build-targets test-browser

# The main demo: the spec's hello_world and display_date examples.
demo:
    cargo run --example hello_world
    cargo run --example display_date

# Rust targets the tests build for.
setup:
    rustup target add x86_64-unknown-none
    rustup target add wasm32-unknown-unknown

# Formatting and clippy, warnings are errors.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# Unit, integration and doc tests on the native host.
test-native:
    cargo test --workspace

# The core builds without std, for bare metal.
build-targets:
    cargo build -p anyloop-core --no-default-features --target x86_64-unknown-none

# Core microbenchmarks against a plain VecDeque + BinaryHeap loop (< 3 min).
bench:
    cargo run --release -p anyloop-bench --bin microbench

# Clippy for the browser build (the browser crates are empty natively).
lint-browser:
    cargo clippy -p anyloop-js --target wasm32-unknown-unknown -- -D warnings
    cargo clippy -p anyloop-js -p anyloop-browser-tests -p browser-echo -p anyloop-bench-browser -p anyloop-scenarios --all-targets --target wasm32-unknown-unknown -- -D warnings

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
