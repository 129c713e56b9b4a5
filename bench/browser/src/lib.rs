//! The anyloop half of `just bench-browser`: workloads exported to the
//! benchmark page (index.html), which times them against a plain JS loop
//! doing the same work and prints callbacks per second.
//!
//! Each function builds a fresh loop, runs the workload to the end with
//! `anyloop::host::run_forever`, and resolves to the milliseconds it took
//! (scheduling included, as in the JS twin).

#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod page {
    use std::cell::Cell;
    use std::rc::Rc;
    use std::time::Duration;

    use anyloop::EventLoop;
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_namespace = performance, js_name = now)]
        fn now() -> f64;
    }

    fn js(e: anyloop::Error) -> JsValue {
        anyloop::host::error_to_js(&e)
    }

    async fn timed(lp: EventLoop, count: Rc<Cell<u32>>, n: u32, start: f64) -> Result<f64, JsValue> {
        anyloop::host::run_forever(&lp).await.map_err(js)?;
        let ms = now() - start;
        lp.close().map_err(js)?;
        if count.get() != n {
            return Err(JsValue::from_str(&format!("ran {} callbacks of {n}", count.get())));
        }
        Ok(ms)
    }

    /// `n` `call_soon` callbacks scheduled at once, each bumping a counter;
    /// the last stops the loop.
    #[wasm_bindgen]
    pub async fn anyloop_batch(n: u32) -> Result<f64, JsValue> {
        let lp = anyloop::new_event_loop().map_err(js)?;
        let count = Rc::new(Cell::new(0u32));
        let start = now();
        for i in 0..n {
            let c = count.clone();
            lp.call_soon(move |lp| {
                c.set(c.get() + 1);
                if i + 1 == n {
                    lp.stop();
                }
            })
            .map_err(js)?;
        }
        timed(lp, count, n, start).await
    }

    fn hop(lp: &EventLoop, count: Rc<Cell<u32>>, n: u32) {
        count.set(count.get() + 1);
        if count.get() == n {
            lp.stop();
        } else {
            let _ = lp.call_soon(move |lp| hop(lp, count, n));
        }
    }

    /// One callback at a time, each scheduling the next, `n` in all.
    #[wasm_bindgen]
    pub async fn anyloop_chain(n: u32) -> Result<f64, JsValue> {
        let lp = anyloop::new_event_loop().map_err(js)?;
        let count = Rc::new(Cell::new(0u32));
        let start = now();
        let c = count.clone();
        lp.call_soon(move |lp| hop(lp, c, n)).map_err(js)?;
        timed(lp, count, n, start).await
    }

    /// `n` timers with deadlines spread over the next 20 ms, scheduled in
    /// a scrambled order (the timer heap at work; no JS twin).
    #[wasm_bindgen]
    pub async fn anyloop_timers(n: u32) -> Result<f64, JsValue> {
        let lp = anyloop::new_event_loop().map_err(js)?;
        let count = Rc::new(Cell::new(0u32));
        let start = now();
        let t0 = lp.time();
        for i in 0..n {
            let c = count.clone();
            let at = t0 + Duration::from_micros(u64::from(i.wrapping_mul(2_654_435_761) % 20_000));
            lp.call_at(at, move |lp| {
                c.set(c.get() + 1);
                if c.get() == n {
                    lp.stop();
                }
            })
            .map_err(js)?;
        }
        timed(lp, count, n, start).await
    }
}
