//! `anyloop-wasi-run FILE.wasm [ARGS…]`: runs a WASI module (wasip1) or
//! component (wasip2) under the embedded wasmtime with the terminal's
//! stdin, stdout and stderr, and loopback-only networking; exits with the
//! guest's exit code. `just demo-wasi` uses it for the examples.

use std::path::Path;
use std::process::ExitCode;

use anyloop_wasi_runner::{Options, Stdin, run};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: anyloop-wasi-run FILE.wasm [ARGS...]");
        return ExitCode::from(2);
    };
    let opts = Options {
        args: args.collect(),
        stdin: Stdin::Inherit,
        network: true,
        inherit_output: true,
        ..Default::default()
    };
    match run(Path::new(&path), opts) {
        Ok(outcome) => ExitCode::from(u8::try_from(outcome.code).unwrap_or(1)),
        Err(e) => {
            eprintln!("anyloop-wasi-run: {path}: {e:?}");
            ExitCode::from(1)
        }
    }
}
