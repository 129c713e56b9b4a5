//! Networking scenarios, for hosts with sockets (native, WASI preview 2):
//! the same protocol and stream code over each host's TCP.

use std::cell::RefCell;
use std::rc::Rc;

use anyloop::net::{Addr, ConnectOptions, ServerOptions};
use anyloop::{BaseProtocol, Error, EventLoop, LoopFuture, Protocol, StreamReader, StreamWriter, Transport};

use crate::{Done, Scenario, Verdict, check};

pub(crate) const SCENARIOS: &[Scenario] = &[
    Scenario { name: "tcp_protocol_echo", start: tcp_protocol_echo },
    Scenario { name: "tcp_streams_echo", start: tcp_streams_echo },
    Scenario { name: "tcp_echo_half_close", start: tcp_echo_half_close },
];

/// The spec's echo server protocol, written once for every host.
#[derive(Default)]
struct Echo {
    transport: Option<Rc<dyn Transport>>,
}
impl BaseProtocol for Echo {}
impl Protocol for Echo {
    fn connection_made(&mut self, transport: Rc<dyn Transport>) {
        self.transport = Some(transport);
    }
    fn data_received(&mut self, data: &[u8]) {
        if let Some(t) = &self.transport {
            let _ = t.write(data);
        }
    }
}

/// A client protocol collecting what it receives.
#[derive(Default)]
struct Collect {
    got: Rc<RefCell<Vec<u8>>>,
    lost: Rc<RefCell<bool>>,
}
impl BaseProtocol for Collect {
    fn connection_lost(&mut self, _exc: Option<anyloop::Error>) {
        *self.lost.borrow_mut() = true;
    }
}
impl Protocol for Collect {
    fn data_received(&mut self, data: &[u8]) {
        self.got.borrow_mut().extend_from_slice(data);
    }
}

fn port(server: &anyloop::net::Server) -> Result<u16, String> {
    match server.sockets().first() {
        Some(Addr::Ip(a)) => Ok(a.port()),
        other => Err(format!("no IP socket: {other:?}")),
    }
}

fn tcp_protocol_echo(lp: &EventLoop, done: Done) {
    let l = lp.clone();
    let fut = async move {
        let server = l.create_server(Echo::default, Some("127.0.0.1"), 0, ServerOptions::default()).await;
        let server = server.map_err(|e| format!("create_server: {e}"))?;
        let (t, p) = l
            .create_connection(Collect::default, "127.0.0.1", port(&server)?, ConnectOptions::default())
            .await
            .map_err(|e| format!("create_connection: {e}"))?;
        let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        t.write(&payload).map_err(|e| e.to_string())?;
        let got = p.borrow().got.clone();
        while got.borrow().len() < payload.len() {
            l.sleep(std::time::Duration::from_millis(1)).await;
        }
        check(*got.borrow() == payload, || "echoed bytes differ".into())?;
        t.close();
        server.close();
        Ok::<(), String>(())
    };
    spawn_verdict(lp, done, fut);
}

fn tcp_streams_echo(lp: &EventLoop, done: Done) {
    let l = lp.clone();
    let fut = async move {
        async fn upper(mut r: StreamReader, w: StreamWriter) -> Result<(), anyloop::Error> {
            while let Ok(line) = r.readline().await {
                if line.is_empty() {
                    break;
                }
                w.write(&line.to_ascii_uppercase())?;
                w.drain().await?;
            }
            w.close();
            Ok(())
        }
        let server = l.start_server(upper, Some("127.0.0.1"), 0, ServerOptions::default()).await;
        let server = server.map_err(|e| format!("start_server: {e}"))?;
        let (mut r, w) = l.open_connection("127.0.0.1", port(&server)?).await.map_err(|e| e.to_string())?;
        for word in ["alpha\n", "beta\n"] {
            w.write(word.as_bytes()).map_err(|e| e.to_string())?;
            let line = r.readline().await.map_err(|e| e.to_string())?;
            check(line == word.to_uppercase().as_bytes(), || format!("{line:?}"))?;
        }
        w.write_eof().map_err(|e| e.to_string())?;
        let rest = r.read_to_end().await.map_err(|e| e.to_string())?;
        check(rest.is_empty(), || format!("unexpected {rest:?}"))?;
        server.close();
        Ok(())
    };
    spawn_verdict(lp, done, fut);
}

fn spawn_verdict(lp: &EventLoop, done: Done, fut: impl std::future::Future<Output = Result<(), String>> + 'static) {
    let d = done.clone();
    match lp.create_task(async move {
        let v = fut.await;
        if let Ok(lp) = anyloop::get_running_loop() {
            d.finish(&lp, v);
        }
    }) {
        Ok(t) => drop(t),
        Err(e) => done.finish(lp, Err(format!("create_task: {e}"))),
    }
}

/// Collects the echo and the order of its callbacks.
struct Client {
    log: Rc<RefCell<Vec<&'static str>>>,
    got: Rc<RefCell<Vec<u8>>>,
    lost: LoopFuture<Option<Error>>,
}

impl BaseProtocol for Client {
    fn connection_lost(&mut self, exc: Option<Error>) {
        self.log.borrow_mut().push("connection_lost");
        let _ = self.lost.set_result(exc);
    }
}

impl Protocol for Client {
    fn connection_made(&mut self, _t: Rc<dyn Transport>) {
        self.log.borrow_mut().push("connection_made");
    }
    fn data_received(&mut self, data: &[u8]) {
        if self.log.borrow().last() != Some(&"data_received") {
            self.log.borrow_mut().push("data_received");
        }
        self.got.borrow_mut().extend_from_slice(data);
    }
    fn eof_received(&mut self) -> bool {
        self.log.borrow_mut().push("eof_received");
        false
    }
}

fn tcp_echo_half_close(lp: &EventLoop, done: Done) {
    let l = lp.clone();
    spawn_verdict(lp, done, async move { half_close(&l).await });
}

/// Echo of 64 KiB (pieces and a vectored write), then a half-close: the
/// server echoes everything, sees the EOF and closes; the client sees the
/// echo, the EOF, then the connection's end, in that order.
async fn half_close(lp: &EventLoop) -> Verdict {
    let server = lp
        .create_server(Echo::default, Some("127.0.0.1"), 0, ServerOptions::default())
        .await
        .map_err(|e| format!("create_server: {e}"))?;
    let port = match server.sockets().first() {
        Some(Addr::Ip(a)) => a.port(),
        other => return Err(format!("server sockets: {other:?}")),
    };
    let log = Rc::new(RefCell::new(Vec::new()));
    let got = Rc::new(RefCell::new(Vec::new()));
    let lost = lp.create_future::<Option<Error>>();
    let client = Client { log: log.clone(), got: got.clone(), lost: lost.clone() };
    let (t, _p) = lp
        .create_connection(move || client, "127.0.0.1", port, ConnectOptions::default())
        .await
        .map_err(|e| format!("create_connection: {e}"))?;
    // 64 KiB in pieces and a vectored write, then EOF: the server echoes it
    // all, sees the EOF, and closes; the client sees the echo, then EOF.
    let data: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
    for piece in data[..60000].chunks(1000) {
        t.write(piece).map_err(|e| format!("write: {e}"))?;
    }
    let (a, b) = data[60000..].split_at(2000);
    t.writelines(&[a, b]).map_err(|e| format!("writelines: {e}"))?;
    t.write_eof().map_err(|e| format!("write_eof: {e}"))?;
    let exc = lost.await.map_err(|e| format!("waiting for connection_lost: {e}"))?;
    server.close();
    server.wait_closed().await.map_err(|e| format!("wait_closed: {e}"))?;
    let got = got.borrow();
    let log = log.borrow().clone();
    check(exc.is_none(), || format!("connection_lost({exc:?})"))
        .and(check(*got == data, || format!("echo differs: {} of {} bytes", got.len(), data.len())))
        .and(check(log == ["connection_made", "data_received", "eof_received", "connection_lost"], || {
            format!("callbacks: {log:?}")
        }))
        .and(check(!server.is_serving(), || "still serving after close".into()))
}
