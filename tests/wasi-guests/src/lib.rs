//! WASI guest programs for the wasmtime tests in `tests/wasi-runner`:
//!
//! * `scenario NAME` runs one `anyloop-scenarios` scenario with
//!   `run_blocking` and prints `ok NAME` (exit 0) or `FAIL NAME: why`
//!   (exit 1); `scenario --list` prints the names.
//! * `probe CHECK [ARGS…]` runs one host check (timers against the host
//!   clock, stdin readiness, stdout backpressure, sockets…) and prints
//!   what it saw, for the test to judge.
//!
//! Natively the binaries only say that they are WASI guests.
