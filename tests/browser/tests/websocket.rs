//! The WebSocket transport in headless Chromium, against a real echo server
//! on 127.0.0.1 (tests/browser/echo_server.py, started by
//! `just test-browser`).
#![cfg(all(target_arch = "wasm32", target_os = "unknown"))]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use anyloop::host::{self, WebSocketTransport};
use anyloop::{BaseTransport, ErrorKind, EventLoop, ExtraInfo, ReadTransport, StreamProtocol, WriteTransport};
use anyloop_browser_tests::*;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const LIMIT: Duration = Duration::from_secs(20);

fn data(events: &[Ev]) -> Vec<Vec<u8>> {
    events
        .iter()
        .filter_map(|e| match e {
            Ev::Data(d) => Some(d.clone()),
            _ => None,
        })
        .collect()
}

/// A deterministic pseudo-random byte pattern.
fn pattern(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn e(e: anyloop::Error) -> String {
    format!("{:?}: {e}", e.kind())
}

#[wasm_bindgen_test]
async fn text_and_binary_round_trips_of_one_mib() {
    let (sent, events) = run_test(LIMIT, async |lp: EventLoop| {
        let url = echo_url("roundtrip")?;
        let (rec, events) = Recorder::new();
        let received = rec.received.clone();
        let (t, _p) = host::create_websocket_connection(&lp, || rec, &url, &[]).await.map_err(e)?;
        // 1 MiB in all: binary messages of many sizes, text messages
        // (ASCII and multi-byte UTF-8) in between.
        let mut sent: Vec<Vec<u8>> = Vec::new();
        let mut total = 0;
        let mut i = 0u32;
        while total < 1 << 20 {
            let len = [1usize, 100, 4096, 65_536, 200_000, 7][i as usize % 6].min((1 << 20) - total);
            let msg = if i % 3 == 1 {
                let text: String = "añyloop→ws ".chars().cycle().take(len / 2 + 1).collect();
                t.send_text(&text).map_err(e)?;
                text.into_bytes()
            } else {
                let bin = pattern(i, len);
                t.write(&bin).map_err(e)?;
                bin
            };
            total += msg.len();
            sent.push(msg);
            i += 1;
        }
        let want: usize = sent.iter().map(Vec::len).sum();
        wait_until(&lp, LIMIT, "all echoes", || received.get() >= want).await?;
        t.close();
        wait_until(&lp, LIMIT, "connection_lost", || events.borrow().iter().any(|e| matches!(e, Ev::Lost(_)))).await?;
        let events = events.borrow().clone();
        Ok((sent, events))
    })
    .await
    .unwrap();
    let total: usize = sent.iter().map(Vec::len).sum();
    assert!(total >= 1 << 20, "sent {total} bytes");
    assert_eq!(events.first(), Some(&Ev::Made));
    assert_eq!(events.last(), Some(&Ev::Lost(None)));
    let got = data(&events);
    assert_eq!(got.len(), sent.len(), "one data_received per message");
    for (i, (g, s)) in got.iter().zip(&sent).enumerate() {
        assert!(g == s, "message {i} differs: {} bytes back for {} sent", g.len(), s.len());
    }
}

#[wasm_bindgen_test]
async fn writes_before_open_are_sent_on_open_in_order() {
    let (state_at_write, events) = run_test(LIMIT, async |lp: EventLoop| {
        let url = echo_url("early")?;
        let (rec, events) = Recorder::new();
        let (sp, _p) = StreamProtocol::plain(rec);
        let t = WebSocketTransport::connect(&lp, sp, &url, &[]).map_err(e)?;
        let state = t.ready_state();
        t.write(b"first").map_err(e)?;
        t.send_text("second").map_err(e)?;
        t.writelines(&[b"thi", b"rd"]).map_err(e)?;
        let buffered = t.get_write_buffer_size();
        ensure(buffered == 5 + 6 + 5, || format!("write buffer size before open: {buffered}"))?;
        t.opened().await.map_err(e)?;
        t.opened().await.map_err(e)?; // may be awaited again
        wait_until(&lp, LIMIT, "three echoes", || data(&events.borrow()).len() == 3).await?;
        t.abort();
        wait_until(&lp, LIMIT, "connection_lost", || events.borrow().len() == 5).await?;
        let ev = events.borrow().clone();
        Ok((state, ev))
    })
    .await
    .unwrap();
    assert_eq!(state_at_write, 0, "the socket was still connecting");
    assert_eq!(
        events,
        [
            Ev::Made,
            Ev::Data(b"first".to_vec()),
            Ev::Data(b"second".to_vec()),
            Ev::Data(b"third".to_vec()),
            Ev::Lost(None)
        ]
    );
}

#[wasm_bindgen_test]
async fn connection_refused_fails_the_connect_future() {
    let (kind, message, events) = run_test(LIMIT, async |lp: EventLoop| {
        let url = closed_url()?;
        let (rec, events) = Recorder::new();
        let err = match host::create_websocket_connection(&lp, || rec, &url, &[]).await {
            Ok(_) => return Err("connected to a port where nothing listens".into()),
            Err(err) => err,
        };
        // Give a stray callback every chance to show up.
        sleep(&lp, Duration::from_millis(50)).await;
        let ev = events.borrow().clone();
        Ok((err.kind(), err.message().to_owned(), ev))
    })
    .await
    .unwrap();
    assert_eq!(kind, ErrorKind::ConnectionRefused, "{message}");
    assert!(message.contains("127.0.0.1"), "{message}");
    assert!(events.is_empty(), "the protocol saw {events:?}");
}

#[wasm_bindgen_test]
async fn bad_urls_are_invalid_input() {
    let kinds = run_test(LIMIT, async |lp: EventLoop| {
        let mut kinds = Vec::new();
        for url in ["ws://[::1", "ftp://127.0.0.1/", "ws://127.0.0.1:1/#fragment"] {
            let (rec, _) = Recorder::new();
            let r = host::create_websocket_connection(&lp, || rec, url, &[]).await;
            kinds.push((url, r.map(|_| ()).map_err(|e| e.kind())));
        }
        Ok(kinds)
    })
    .await
    .unwrap();
    for (url, k) in kinds {
        assert_eq!(k, Err(ErrorKind::InvalidInput), "{url}");
    }
}

/// Connects, sends `command` as text (the echo server obeys "!close CODE
/// REASON" and "!drop") or closes from our side, and returns the events and
/// the close details.
async fn close_case(lp: &EventLoop, how: &str) -> Result<(Vec<Ev>, Option<ExtraInfo>, Option<ExtraInfo>), String> {
    let (rec, events) = Recorder::new();
    let (t, _p) = host::create_websocket_connection(lp, || rec, &echo_url("close")?, &[]).await.map_err(e)?;
    match how {
        "close()" => t.close(),
        "close_with(4002)" => t.close_with(4002, "client says bye").map_err(e)?,
        command => t.send_text(command).map_err(e)?,
    }
    wait_until(lp, LIMIT, "connection_lost", || events.borrow().iter().any(|e| matches!(e, Ev::Lost(_)))).await?;
    let ev = events.borrow().clone();
    Ok((ev, t.get_extra_info("close_code"), t.get_extra_info("close_reason")))
}

#[wasm_bindgen_test]
async fn close_codes_reach_connection_lost_and_extra_info() {
    let cases = run_test(LIMIT, async |lp: EventLoop| {
        let mut out = Vec::new();
        for how in ["close()", "close_with(4002)", "!close 1000 done", "!close 1001 away", "!close 4001 bye", "!drop"] {
            out.push((how, close_case(&lp, how).await?));
        }
        Ok(out)
    })
    .await
    .unwrap();
    let want: &[(Option<ErrorKind>, i64, &str)] = &[
        (None, 1000, ""),
        (None, 4002, "client says bye"),
        (None, 1000, "done"),
        (None, 1001, "away"),
        (Some(ErrorKind::ConnectionAborted), 4001, "bye"),
        (Some(ErrorKind::ConnectionReset), 1006, ""),
    ];
    for ((how, (events, code, reason)), (lost, want_code, want_reason)) in cases.into_iter().zip(want) {
        assert_eq!(events.first(), Some(&Ev::Made), "{how}");
        assert_eq!(events.last(), Some(&Ev::Lost(*lost)), "{how}: {events:?}");
        assert_eq!(code, Some(ExtraInfo::Int(*want_code)), "{how}");
        assert_eq!(reason, Some(ExtraInfo::Text(String::from(*want_reason))), "{how}");
    }
}

#[wasm_bindgen_test]
async fn after_close_and_abort_writes_fail_and_lost_comes_once() {
    let (after_close, after_abort, events, bad_code) = run_test(LIMIT, async |lp: EventLoop| {
        let (rec, events) = Recorder::new();
        let (t, _p) = host::create_websocket_connection(&lp, || rec, &echo_url("x")?, &[]).await.map_err(e)?;
        let bad_code = t.close_with(1006, "").map_err(|e| e.kind());
        t.close();
        t.close(); // idempotent
        let after_close = t.write(b"late").map_err(|e| e.kind());
        ensure(t.is_closing(), || "not closing after close()".into())?;
        let (rec2, events2) = Recorder::new();
        let (t2, _p2) = host::create_websocket_connection(&lp, || rec2, &echo_url("y")?, &[]).await.map_err(e)?;
        t2.abort();
        let lost_at_once = events2.borrow().iter().any(|e| matches!(e, Ev::Lost(_)));
        ensure(!lost_at_once, || "connection_lost was called synchronously from abort()".into())?;
        let after_abort = t2.write(b"late").map_err(|e| e.kind());
        wait_until(&lp, LIMIT, "both lost", || {
            events.borrow().iter().any(|e| matches!(e, Ev::Lost(_)))
                && events2.borrow().iter().any(|e| matches!(e, Ev::Lost(_)))
        })
        .await?;
        sleep(&lp, Duration::from_millis(30)).await;
        let all = (events.borrow().clone(), events2.borrow().clone());
        Ok((after_close, after_abort, all, bad_code))
    })
    .await
    .unwrap();
    assert_eq!(bad_code, Err(ErrorKind::InvalidInput));
    assert_eq!(after_close, Err(ErrorKind::InvalidState));
    assert_eq!(after_abort, Err(ErrorKind::InvalidState));
    assert_eq!(events.0, [Ev::Made, Ev::Lost(None)]);
    assert_eq!(events.1, [Ev::Made, Ev::Lost(None)]);
}

#[wasm_bindgen_test]
async fn pause_writing_and_resume_writing_follow_buffered_amount() {
    let (events, high_seen) = run_test(LIMIT, async |lp: EventLoop| {
        let (rec, events) = Recorder::new();
        let received = rec.received.clone();
        let (t, _p) = host::create_websocket_connection(&lp, || rec, &echo_url("flow")?, &[]).await.map_err(e)?;
        t.set_write_buffer_limits(Some(64 * 1024), Some(16 * 1024)).map_err(e)?;
        let chunk = pattern(7, 256 * 1024);
        for _ in 0..8 {
            t.write(&chunk).map_err(e)?;
        }
        let high_seen = t.get_write_buffer_size();
        wait_until(&lp, LIMIT, "all echoes", || received.get() >= 8 * chunk.len()).await?;
        wait_until(&lp, LIMIT, "resume_writing", || events.borrow().contains(&Ev::Resume)).await?;
        t.close();
        wait_until(&lp, LIMIT, "connection_lost", || events.borrow().iter().any(|e| matches!(e, Ev::Lost(_)))).await?;
        let ev: Vec<Ev> = events.borrow().iter().filter(|e| !matches!(e, Ev::Data(_))).cloned().collect();
        Ok((ev, high_seen))
    })
    .await
    .unwrap();
    assert!(high_seen > 64 * 1024, "bufferedAmount right after 2 MiB of writes: {high_seen}");
    assert_eq!(events, [Ev::Made, Ev::Pause, Ev::Resume, Ev::Lost(None)]);
}

#[wasm_bindgen_test]
async fn pause_reading_holds_messages_back_in_order() {
    let (while_paused, events) = run_test(LIMIT, async |lp: EventLoop| {
        let (rec, events) = Recorder::new();
        let (t, _p) = host::create_websocket_connection(&lp, || rec, &echo_url("read")?, &[]).await.map_err(e)?;
        t.pause_reading();
        ensure(!t.is_reading(), || "is_reading after pause_reading".into())?;
        for m in [&b"one"[..], b"two", b"three"] {
            t.write(m).map_err(e)?;
        }
        sleep(&lp, Duration::from_millis(100)).await;
        let while_paused = data(&events.borrow()).len();
        t.resume_reading();
        wait_until(&lp, LIMIT, "three messages", || data(&events.borrow()).len() == 3).await?;
        t.close();
        wait_until(&lp, LIMIT, "connection_lost", || events.borrow().iter().any(|e| matches!(e, Ev::Lost(_)))).await?;
        let ev = events.borrow().clone();
        Ok((while_paused, ev))
    })
    .await
    .unwrap();
    assert_eq!(while_paused, 0);
    assert_eq!(data(&events), [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]);
}

#[wasm_bindgen_test]
async fn extra_info_and_subprotocol() {
    let info = run_test(LIMIT, async |lp: EventLoop| {
        let url = echo_url("info")?;
        let (rec, events) = Recorder::new();
        let (t, _p) = host::create_websocket_connection(&lp, || rec, &url, &["echo.v1"]).await.map_err(e)?;
        let info = (
            t.get_extra_info("url"),
            t.get_extra_info("subprotocol"),
            t.get_extra_info("close_code"),
            t.peername(),
            t.can_write_eof(),
            t.write_eof().map_err(|e| e.kind()),
            url,
        );
        t.close();
        wait_until(&lp, LIMIT, "connection_lost", || events.borrow().iter().any(|e| matches!(e, Ev::Lost(_)))).await?;
        Ok(info)
    })
    .await
    .unwrap();
    let (url, proto, code, peer, eof, write_eof, want_url) = info;
    assert_eq!(url, Some(ExtraInfo::Text(want_url)));
    assert_eq!(proto, Some(ExtraInfo::Text("echo.v1".into())));
    assert_eq!(code, None, "no close code while open");
    assert_eq!(peer, None);
    assert!(!eof);
    assert_eq!(write_eof, Err(ErrorKind::Unsupported));
}

#[wasm_bindgen_test]
async fn closing_the_loop_closes_its_websockets() {
    let lp = new_loop().unwrap();
    lp.run_forever().unwrap();
    let (rec, events) = Recorder::new();
    let url = echo_url("loop-close").unwrap();
    let connected = host::create_websocket_connection(&lp, || rec, &url, &[]).await;
    let (t, _p) = connected.unwrap();
    lp.stop();
    host::stopped(&lp).await;
    lp.close().unwrap();
    let state = t.ready_state();
    let write = t.write(b"x").map_err(|e| e.kind());
    js_sleep(50.0).await;
    let events = events.borrow().clone();
    assert!(state >= 2, "readyState {state} after the loop closed");
    assert_eq!(write, Err(ErrorKind::InvalidState));
    // The loop is closed: the protocol hears nothing more.
    assert_eq!(events, [Ev::Made]);
}

#[wasm_bindgen_test]
async fn dropping_the_connect_future_aborts_the_connection() {
    let events = run_test(LIMIT, async |lp: EventLoop| {
        let (rec, events) = Recorder::new();
        let url = echo_url("dropped")?;
        // Give up at once: the future is dropped while still connecting.
        let r = within(&lp, Duration::ZERO, host::create_websocket_connection(&lp, || rec, &url, &[])).await;
        ensure(r.is_err(), || "connected in zero time".into())?;
        sleep(&lp, Duration::from_millis(100)).await;
        let ev = events.borrow().clone();
        Ok(ev)
    })
    .await
    .unwrap();
    assert!(events.is_empty(), "the protocol of an abandoned connection saw {events:?}");
}

#[wasm_bindgen_test]
async fn a_buffered_protocol_gets_every_byte() {
    #[derive(Default)]
    struct Buffered {
        buf: Vec<u8>,
        got: Rc<RefCell<Vec<u8>>>,
    }
    impl anyloop::BaseProtocol for Buffered {}
    impl anyloop::BufferedProtocol for Buffered {
        fn get_buffer(&mut self, _sizehint: usize) -> &mut [u8] {
            self.buf.resize(1000, 0);
            &mut self.buf
        }
        fn buffer_updated(&mut self, n: usize) {
            self.got.borrow_mut().extend_from_slice(&self.buf[..n]);
        }
    }
    let sent = pattern(3, 50_000);
    let s2 = sent.clone();
    let got = run_test(LIMIT, async move |lp: EventLoop| {
        let got = Rc::new(RefCell::new(Vec::new()));
        let (sp, _p) = StreamProtocol::buffered(Buffered { buf: Vec::new(), got: got.clone() });
        let t = host::create_websocket_connection_with(&lp, sp, &echo_url("buffered")?, &[]).await.map_err(e)?;
        t.write(&s2).map_err(e)?;
        wait_until(&lp, LIMIT, "the echo", || got.borrow().len() >= s2.len()).await?;
        t.abort();
        Ok(got.take())
    })
    .await
    .unwrap();
    assert!(got == sent, "{} bytes back", got.len());
}

#[wasm_bindgen_test]
async fn abort_before_open_cancels_and_the_protocol_hears_nothing() {
    let (opened, events) = run_test(LIMIT, async |lp: EventLoop| {
        let (rec, events) = Recorder::new();
        let (sp, _p) = StreamProtocol::plain(rec);
        let t = WebSocketTransport::connect(&lp, sp, &echo_url("abort-early")?, &[]).map_err(e)?;
        t.write(b"never sent").map_err(e)?;
        t.abort();
        let opened = t.opened().await.map_err(|e| e.kind());
        sleep(&lp, Duration::from_millis(100)).await;
        let ev = events.borrow().clone();
        Ok((opened, ev))
    })
    .await
    .unwrap();
    assert_eq!(opened, Err(ErrorKind::Cancelled));
    assert!(events.is_empty(), "{events:?}");
}
