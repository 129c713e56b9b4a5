//! The browser twin of `examples/hello_async.rs`: `run(async { sleep(…);
//! "Hello World" })`, with the output going to the page instead of stdout,
//! through both browser entry points (`run` awaited, and `spawn_main`).
#![cfg(all(target_arch = "wasm32", target_os = "unknown"))]

use std::time::Duration;

use anyloop_browser_tests::js_sleep;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// A fresh `<pre id=…>` on the test page.
fn output(id: &str) -> web_sys::Element {
    let document = web_sys::window().and_then(|w| w.document()).expect("a document");
    let el = document.create_element("pre").expect("an element");
    el.set_id(id);
    document.body().expect("a body").append_child(&el).expect("appended");
    el
}

#[wasm_bindgen_test]
async fn hello_async_reaches_the_page() {
    let out = output("hello-async");
    let shown = out.clone();
    let started = anyloop_browser_tests::now_ms();
    anyloop::host::run(async move {
        anyloop::sleep(Duration::from_millis(100)).await;
        shown.set_text_content(Some("Hello World"));
    })
    .await
    .expect("run");
    assert_eq!(out.text_content().as_deref(), Some("Hello World"));
    assert!(anyloop_browser_tests::now_ms() - started >= 99.0, "the sleep was honoured");
}

#[wasm_bindgen_test]
async fn spawn_main_starts_hello_async_from_a_page_entry_point() {
    let out = output("hello-spawned");
    let shown = out.clone();
    anyloop::host::spawn_main(async move {
        anyloop::sleep(Duration::from_millis(50)).await;
        shown.set_text_content(Some("Hello World"));
    });
    // spawn_main returned at once; the page gets the text a little later.
    assert_eq!(out.text_content().as_deref(), Some(""));
    for _ in 0..100 {
        // Done once the text is there and `run` closed its loop (one loop
        // runs per page at a time, as one per thread in asyncio).
        if out.text_content().as_deref() == Some("Hello World") && anyloop::get_running_loop().is_err() {
            return;
        }
        js_sleep(20.0).await;
    }
    panic!("Hello World never reached the page: {:?}", out.text_content());
}
