//! Every `anyloop-scenarios` conformance scenario, inside a WASI module
//! (wasip1) and a WASI component (wasip2): the guest `scenario NAME` runs
//! it with `run_blocking` and reports through its exit code.

mod common;

use anyloop_wasi_runner::{Options, Target, precompile, run};
use common::guest;

/// The scenarios a wasm guest has: all of them but those that need
/// unwinding (wasm aborts on panic).
fn expected() -> Vec<&'static str> {
    anyloop_scenarios::all().iter().map(|s| s.name).filter(|n| *n != "panic_reaches_exception_handler").collect()
}

fn every_scenario(target: Target) {
    let path = guest(target, "scenario");
    precompile(&path).expect("compiles");
    let list = run(&path, Options { args: vec!["--list".into()], ..Default::default() }).expect("runs");
    let names: Vec<String> = list.stdout_text().lines().map(str::to_string).collect();
    assert_eq!(names, expected(), "the guest's scenarios differ from the native list");
    let mut failures = Vec::new();
    for name in &names {
        let out = run(&path, Options { args: vec![name.clone()], ..Default::default() }).expect("runs");
        if out.code != 0 || out.trap.is_some() || out.stdout_text().trim() != format!("ok {name}") {
            failures.push(format!(
                "{name}: code {} trap {:?}: {}{}",
                out.code,
                out.trap,
                out.stdout_text(),
                out.stderr_text()
            ));
        }
    }
    assert!(failures.is_empty(), "failed scenarios on {target:?}:\n{}", failures.join("\n"));
}

#[test]
fn every_scenario_passes_on_wasip1() {
    every_scenario(Target::P1);
}

#[test]
fn every_scenario_passes_on_wasip2() {
    every_scenario(Target::P2);
}
