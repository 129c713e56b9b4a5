# anyloop's task runner. `just test` is what CI runs (via .ci/run).

set shell := ["bash", "-euo", "pipefail", "-c"]

# Everything: lints, the native test suite, the cross-target builds.
test: setup lint test-native build-targets test-wasi

# The main demo: the spec's hello_world and display_date examples.
demo:
    cargo run --example hello_world
    cargo run --example display_date

# Rust targets the tests build for.
setup:
    rustup target add x86_64-unknown-none wasm32-wasip1 wasm32-wasip2

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
