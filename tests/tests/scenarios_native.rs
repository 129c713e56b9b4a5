//! Every conformance scenario, on the native host.

use std::time::Duration;

#[test]
fn every_scenario_passes_natively() {
    let mut failures = Vec::new();
    for s in anyloop_scenarios::all().into_iter().chain(anyloop_scenarios::net()) {
        if let Err(e) = anyloop_scenarios::run_blocking(s, Duration::from_secs(10)) {
            failures.push(format!("{}: {e}", s.name));
        }
    }
    assert!(failures.is_empty(), "failed scenarios:\n{}", failures.join("\n"));
}
