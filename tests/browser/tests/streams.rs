//! The async layer in the browser: streams over a WebSocket (readline
//! limits, drain, a timeout that cancels a read without losing bytes) and
//! the futures-io traits, against the echo server of `just test-browser`.
#![cfg(all(target_arch = "wasm32", target_os = "unknown"))]

use std::time::Duration;

use anyloop::{ErrorKind, EventLoop};
use anyloop_browser_tests::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const LIMIT: Duration = Duration::from_secs(10);

fn e(err: anyloop::Error) -> String {
    err.to_string()
}

#[wasm_bindgen_test]
async fn lines_over_a_websocket() {
    run_test(LIMIT, async |lp: EventLoop| {
        let (mut r, w) = anyloop::host::open_websocket_connection(&lp, &echo_url("streams")?, &[]).await.map_err(e)?;
        for i in 0..20 {
            let line = format!("line {i}\n");
            w.write(line.as_bytes()).map_err(e)?;
            w.drain().await.map_err(e)?;
            ensure(r.readline().await.map_err(e)? == line.as_bytes(), || format!("line {i}"))?;
        }
        // One message carrying two lines and the start of a third.
        w.write(b"a\nb\nc").map_err(e)?;
        ensure(r.readline().await.map_err(e)? == b"a\n", || "a".into())?;
        ensure(r.readline().await.map_err(e)? == b"b\n", || "b".into())?;
        // A timeout cancels a read; the partial line stays buffered.
        let t = lp.timeout(Duration::from_millis(50), r.readline()).await;
        ensure(t.as_ref().is_err_and(|x| x.kind() == ErrorKind::TimedOut), || format!("{t:?}"))?;
        w.write(b"d\n").map_err(e)?;
        ensure(r.readline().await.map_err(e)? == b"cd\n", || "c + d".into())?;
        w.close();
        Ok(())
    })
    .await
    .unwrap();
}

#[wasm_bindgen_test]
async fn readline_limit_and_byte_for_byte_over_a_websocket() {
    run_test(LIMIT, async |lp: EventLoop| {
        let (mut r, w) = anyloop::host::open_websocket_connection(&lp, &echo_url("streams")?, &[]).await.map_err(e)?;
        let long = vec![b'x'; anyloop::DEFAULT_LIMIT + 100];
        w.write(&long).map_err(e)?;
        w.write(b"\nafter\n").map_err(e)?;
        let err = r.readline().await.unwrap_err();
        ensure(err.kind() == ErrorKind::LimitOverrun, || format!("{err:?}"))?;
        let mut next = r.readline().await.map_err(e)?;
        while next != b"after\n" {
            ensure(next.iter().all(|b| *b == b'x' || *b == b'\n'), || format!("{next:?}"))?;
            next = r.readline().await.map_err(e)?;
        }
        // 1 MiB through the writer's drain and the reader's read_exact.
        let data: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 253) as u8).collect();
        for chunk in data.chunks(64 * 1024) {
            w.write(chunk).map_err(e)?;
            w.drain().await.map_err(e)?;
        }
        let got = r.read_exact(data.len()).await.map_err(e)?;
        ensure(got == data, || "bytes differ".into())?;
        w.close();
        Ok(())
    })
    .await
    .unwrap();
}

#[wasm_bindgen_test]
async fn futures_io_traits_over_a_websocket() {
    run_test(LIMIT, async |lp: EventLoop| {
        use futures::io::{AsyncBufReadExt, AsyncWriteExt};
        let (r, w) = anyloop::host::open_websocket_connection(&lp, &echo_url("streams")?, &[]).await.map_err(e)?;
        let mut duplex = anyloop::DuplexStream::new(r, w);
        duplex.write_all(b"one\ntwo\n").await.map_err(|x| x.to_string())?;
        duplex.flush().await.map_err(|x| x.to_string())?;
        let mut line = String::new();
        duplex.read_line(&mut line).await.map_err(|x| x.to_string())?;
        ensure(line == "one\n", || line.clone())?;
        line.clear();
        duplex.read_line(&mut line).await.map_err(|x| x.to_string())?;
        ensure(line == "two\n", || line.clone())?;
        Ok(())
    })
    .await
    .unwrap();
}
