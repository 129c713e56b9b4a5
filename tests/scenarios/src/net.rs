//! Networking scenarios: a TCP echo over `create_server` and
//! `create_connection` on loopback, with a half-close at the end — what
//! every host with sockets (native, WASI preview 2) must do the same way.

use std::cell::RefCell;
use std::rc::Rc;

use anyloop::net::{Addr, ConnectOptions, ServerOptions};
use anyloop::{BaseProtocol, Error, EventLoop, LoopFuture, Protocol, Transport};

use crate::{Done, Scenario, Verdict, check};

pub(crate) const SCENARIOS: &[Scenario] = &[Scenario { name: "tcp_echo_server_and_client", start: tcp_echo }];

/// The spec's echo server protocol.
#[derive(Default)]
struct Echo(Option<Rc<dyn Transport>>);

impl BaseProtocol for Echo {
    fn connection_lost(&mut self, _exc: Option<Error>) {
        self.0 = None;
    }
}

impl Protocol for Echo {
    fn connection_made(&mut self, t: Rc<dyn Transport>) {
        self.0 = Some(t);
    }
    fn data_received(&mut self, data: &[u8]) {
        if let Some(t) = &self.0 {
            let _ = t.write(data);
        }
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

fn tcp_echo(lp: &EventLoop, done: Done) {
    let l = lp.clone();
    let d = done.clone();
    let started = lp.create_task(async move {
        let verdict = echo(&l).await;
        d.finish(&l, verdict);
    });
    if let Err(e) = started {
        done.finish(lp, Err(format!("create_task: {e}")));
    }
}

async fn echo(lp: &EventLoop) -> Verdict {
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
