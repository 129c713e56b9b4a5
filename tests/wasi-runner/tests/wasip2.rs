//! The WASI host on wasm32-wasip2 (`wasi:io/poll` + `wasi:sockets`), under
//! the embedded wasmtime with loopback-only socket permissions: the loop,
//! the stdio pipes, and real networking against native peers on
//! 127.0.0.1. The guests are built by `just test-wasi`.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, UdpSocket};
use std::thread;
use std::time::Duration;

use anyloop_wasi_runner::{BoundedPipe, Options, Target, loopback_only, run};
use common::*;
use wasmtime_wasi::sockets::SocketAddrUse;

const P2: Target = Target::P2;

#[test]
fn timers_fire_in_order_and_never_early() {
    timers(P2);
}

#[test]
fn cancelled_handles_never_run() {
    cancel(P2);
}

#[test]
fn stop_inside_a_batch_lets_the_batch_finish() {
    stop_batch(P2);
}

#[test]
fn stdin_with_data_ready_is_read_at_once() {
    stdin_ready(P2);
}

#[test]
fn stdin_closed_and_empty_is_eof() {
    stdin_empty(P2);
}

#[test]
fn stdin_late_data_arrives_while_the_loop_runs() {
    stdin_late(P2);
}

#[test]
fn stdout_backpressure_pauses_and_resumes_writing() {
    stdout_backpressure(P2);
}

#[test]
fn exception_handler_gets_unretrieved_errors() {
    exception_handler(P2);
}

#[test]
fn a_panic_traps_the_component() {
    panic_traps(P2);
}

#[test]
fn raw_sockets_signals_processes_and_threads_are_unsupported_with_a_reason() {
    unsupported(P2, "wasip2 sockets are wasi:sockets resources");
}

#[test]
fn wasi_stdin_echo_upper_cases_lines_until_eof() {
    stdin_echo_example(P2);
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

/// The `wasi_echo_server` example under wasmtime echoes 10 MiB byte for
/// byte to a native client, then stops after that one connection.
#[test]
fn echo_server_example_echoes_10_mib_to_a_native_client() {
    let path = example(P2, "wasi_echo_server");
    anyloop_wasi_runner::precompile(&path).expect("compiles");
    let stdout = BoundedPipe::new(1 << 20);
    let out_pipe = stdout.clone();
    let server = thread::spawn(move || {
        run(
            &path,
            Options {
                args: vec!["--connections".into(), "1".into()],
                stdout: Some(out_pipe),
                network: true,
                ..Default::default()
            },
        )
    });
    // The first line is the address.
    let mut first = Vec::new();
    while !first.contains(&b'\n') {
        let chunk = stdout.read(256, Duration::from_secs(10));
        assert!(!chunk.is_empty(), "the server printed no address: {:?}", String::from_utf8_lossy(&first));
        first.extend_from_slice(&chunk);
    }
    let line = String::from_utf8_lossy(&first).into_owned();
    let addr = line.lines().next().and_then(|l| l.strip_prefix("Serving on ")).expect("Serving on ADDR").to_string();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");

    let data = pattern(10 << 20);
    let mut conn = TcpStream::connect(&addr).expect("connects");
    let mut writer = conn.try_clone().expect("clone");
    let sent = data.clone();
    let w = thread::spawn(move || {
        writer.write_all(&sent).expect("send");
        writer.shutdown(Shutdown::Write).expect("shutdown");
    });
    let mut got = Vec::with_capacity(data.len());
    conn.read_to_end(&mut got).expect("receive");
    w.join().expect("writer");
    assert_eq!(got.len(), data.len());
    assert!(got == data, "the echo differs from what was sent");

    let outcome = server.join().expect("server thread").expect("runs");
    assert_eq!((outcome.code, outcome.trap.as_deref()), (0, None), "{}", outcome.stderr_text());
}

/// create_connection from the guest to a native echo server.
#[test]
fn create_connection_to_a_native_echo_server() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let echo = thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut r = s.try_clone().expect("clone");
        let mut buf = vec![0; 65536];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let n = 1 << 20;
    let out =
        probe(P2, &["tcp_client", &port.to_string(), &n.to_string()], Options { network: true, ..Default::default() });
    echo.join().expect("echo");
    assert_eq!(lines_with(&out, "echoed "), [format!("{n} same true")], "{}", out.stdout_text());
    assert_eq!(lines_with(&out, "peer "), [format!("Some(127.0.0.1:{port}) local Some(127.0.0.1)")]);
    assert_eq!(lines_with(&out, "lost "), ["None"]);
}

/// A closed port: ConnectionRefused, a typed error.
#[test]
fn connection_refused_is_a_typed_error() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let out = probe(P2, &["refused", &port.to_string()], Options { network: true, ..Default::default() });
    let l = lines_with(&out, "connect ");
    assert_eq!(l.len(), 1, "{}", out.stdout_text());
    assert!(l[0].starts_with("ConnectionRefused "), "{}", l[0]);
}

/// UDP both ways with a native echo socket, connected and not.
#[test]
fn udp_round_trip_with_a_native_peer() {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = sock.local_addr().expect("addr").port();
    sock.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let echo = thread::spawn(move || {
        let mut buf = [0u8; 2048];
        for _ in 0..6 {
            let Ok((n, from)) = sock.recv_from(&mut buf) else { break };
            let _ = sock.send_to(&buf[..n], from);
        }
    });
    let out = probe(P2, &["udp", &port.to_string()], Options { network: true, ..Default::default() });
    echo.join().expect("echo");
    let echoes = lines_with(&out, "echo ");
    assert_eq!(echoes.len(), 6, "{}", out.stdout_text());
    for (i, connected) in [(0, true), (1, true), (2, true), (0, false), (1, false), (2, false)] {
        assert!(
            echoes.iter().any(|e| e.starts_with(&format!("\"ping {i} connected={connected}\" from 127.0.0.1:"))),
            "missing ping {i} connected={connected}: {echoes:?}"
        );
    }
}

/// getaddrinfo("localhost") through wasi:sockets/ip-name-lookup.
#[test]
fn dns_resolves_localhost() {
    let out = probe(P2, &["dns"], Options { network: true, ..Default::default() });
    let addrs = lines_with(&out, "addr ");
    assert!(!addrs.is_empty(), "{}", out.stdout_text());
    for a in &addrs {
        assert!(
            a.starts_with("127.0.0.1:80 family Inet socktype 1") || a.starts_with("[::1]:80 family Inet6 socktype 1"),
            "{a}"
        );
    }
}

/// The runner's socket policy: loopback only (binds may also use the
/// wildcard address with port 0, the implicit bind of a connect).
#[test]
fn socket_permissions_are_loopback_only() {
    let a = |s: &str| s.parse().expect("addr");
    assert!(loopback_only(a("127.0.0.1:80"), SocketAddrUse::TcpConnect));
    assert!(loopback_only(a("127.8.9.10:80"), SocketAddrUse::UdpSend));
    assert!(loopback_only(a("[::1]:80"), SocketAddrUse::TcpConnect));
    assert!(loopback_only(a("0.0.0.0:0"), SocketAddrUse::TcpBind));
    assert!(loopback_only(a("127.0.0.1:0"), SocketAddrUse::TcpListen));
    assert!(!loopback_only(a("0.0.0.0:8080"), SocketAddrUse::TcpListen));
    assert!(!loopback_only(a("10.0.0.1:80"), SocketAddrUse::TcpConnect));
    assert!(!loopback_only(a("192.0.2.1:53"), SocketAddrUse::UdpSend));
    assert!(!loopback_only(a("0.0.0.0:80"), SocketAddrUse::TcpConnect));
    assert!(!loopback_only(a("[2001:db8::1]:80"), SocketAddrUse::TcpAccept));
}

#[test]
fn a_loop_with_nothing_to_wait_for_returns_an_error() {
    deadlock_is_an_error(P2);
}

/// wasip2 has no descriptors: fd watchers are Unsupported, with the reason.
#[test]
fn fd_watchers_are_unsupported() {
    let out = probe(P2, &["watch"], Options::default());
    for what in ["add_reader(99) ", "add_writer(1) ", "add_reader(0) "] {
        let l = lines_with(&out, what);
        assert!(l.len() == 1 && l[0].starts_with("Unsupported ") && l[0].contains("no descriptors"), "{what}{l:?}");
    }
}

/// An idle loop with one 2 s timer: one `wasi:io/poll.poll`, a handful of
/// host calls in all.
#[test]
fn an_idle_loop_makes_a_handful_of_host_calls() {
    idle_host_calls(P2, "wasi:io/poll.poll");
}

/// create_server's Server: serving state, address, echo, close() keeps
/// accepted clients, close_clients(), wait_closed().
#[test]
fn server_lifecycle_close_close_clients_wait_closed() {
    let out = probe(P2, &["server_lifecycle"], Options { network: true, ..Default::default() });
    let text = out.stdout_text();
    let want = [
        "serving true",
        "bound loopback true port>0 true",
        "echo \"ping\"",
        "serving after close false",
        "wait_closed done before close_clients false",
        "echo \"pingpong\"",
        "wait_closed done",
        "lost None",
        "client closing true",
    ];
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines, want, "{text}");
}

#[test]
fn debug_mode_reports_slow_callbacks() {
    debug_mode(P2);
}
