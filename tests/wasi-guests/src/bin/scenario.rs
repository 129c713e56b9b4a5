//! Runs one conformance scenario inside a WASI module (see the crate docs).

use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let Some(name) = std::env::args().nth(1) else {
        eprintln!("usage: scenario NAME | --list");
        return ExitCode::from(2);
    };
    if name == "--list" {
        for s in anyloop_scenarios::all() {
            println!("{}", s.name);
        }
        return ExitCode::SUCCESS;
    }
    let Some(s) = anyloop_scenarios::find(&name) else {
        println!("FAIL {name}: no such scenario");
        return ExitCode::from(1);
    };
    match anyloop_scenarios::run_blocking(s, Duration::from_secs(10)) {
        Ok(()) => {
            println!("ok {name}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("FAIL {name}: {e}");
            ExitCode::from(1)
        }
    }
}
