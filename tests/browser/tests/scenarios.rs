//! Every conformance scenario of `anyloop-scenarios`, on the browser host:
//! the loop started with `run_forever`, the `Done` verdict awaited.
#![cfg(all(target_arch = "wasm32", target_os = "unknown"))]

use std::time::Duration;

use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn every_scenario_passes_in_the_browser() {
    let all = anyloop_scenarios::all();
    assert!(!all.is_empty());
    let mut failures = Vec::new();
    for s in &all {
        if let Err(e) = anyloop_scenarios::run_driven(*s, Duration::from_secs(10)).await {
            failures.push(format!("{}: {e}", s.name));
        }
    }
    assert!(failures.is_empty(), "failed scenarios:\n{}", failures.join("\n"));
}
