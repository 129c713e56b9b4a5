//! Networking scenarios, for hosts with sockets (native, WASI preview 2):
//! the same protocol and stream code over each host's TCP.

use std::cell::RefCell;
use std::rc::Rc;

use anyloop::net::{Addr, ConnectOptions, ServerOptions};
use anyloop::{BaseProtocol, EventLoop, Protocol, StreamReader, StreamWriter, Transport};

use crate::{Done, Scenario, check};

pub(crate) const SCENARIOS: &[Scenario] = &[
    Scenario { name: "tcp_protocol_echo", start: tcp_protocol_echo },
    Scenario { name: "tcp_streams_echo", start: tcp_streams_echo },
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
