//! TLS against peers nobody here wrote: Debian's `openssl s_server` and
//! `s_client`, and Python's `ssl` module, on loopback. 10 MiB byte for
//! byte, verification both ways, close_notify and truncation, STARTTLS
//! with the ClientHello pipelined behind the upgrade line.
//! Run with `cargo test -p anyloop-tests --features tls`.
#![cfg(feature = "tls")]

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyloop::net::{ConnectOptions, ServerOptions};
use anyloop::tls::{StartTlsOptions, TlsConfig, TlsContext};
use anyloop::{Error, ErrorKind, EventLoop, ExtraInfo, StreamReader, StreamWriter};
use anyloop_tests::pki::{Ca, Cert, TempDir};
use anyloop_tests::{port_of, run, stream_echo as echo};

/// The PKI and its files, for the peers.
struct Env {
    ca: Ca,
    cert: Cert,
    dir: TempDir,
}

impl Env {
    fn new() -> Env {
        let ca = Ca::new("anyloop peer-test CA");
        let cert = ca.server(&["localhost", "127.0.0.1"]);
        let dir = TempDir::new("tls-peers");
        dir.write("ca.pem", &ca.pem);
        dir.write("cert.pem", &cert.pem);
        dir.write("key.pem", &cert.key);
        Env { ca, cert, dir }
    }

    fn file(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    fn server_tls(&self) -> Rc<dyn TlsContext> {
        Rc::new(TlsConfig::server(self.cert.pem.as_bytes(), self.cert.key.as_bytes()).build().unwrap())
    }

    fn client_opts(&self) -> ConnectOptions {
        let ssl = TlsConfig::client().root_certificates_pem(self.ca.pem.as_bytes()).unwrap().build().unwrap();
        ConnectOptions { ssl: Some(Rc::new(ssl)), server_hostname: Some("localhost".into()), ..Default::default() }
    }
}

/// A child whose stdout and stderr are collected by threads from the
/// start (a peer blocked on a full pipe would stall the test), killed if
/// the test fails before it exits.
struct Peer {
    child: Child,
    out: Arc<Mutex<Vec<u8>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
    err: Arc<Mutex<Vec<u8>>>,
}

impl Peer {
    fn spawn(cmd: &mut Command) -> Peer {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn the peer");
        let (out, err) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(Vec::new())));
        let mut readers = Vec::new();
        fn collect(mut from: impl Read + Send + 'static, to: Arc<Mutex<Vec<u8>>>) -> std::thread::JoinHandle<()> {
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok(n) = from.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    to.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            })
        }
        readers.push(collect(child.stdout.take().unwrap(), out.clone()));
        readers.push(collect(child.stderr.take().unwrap(), err.clone()));
        Peer { child, out, readers, err }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 13 + seed + i / 4099) as u8).collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Connects to a peer that is still starting: retries while refused.
async fn connect_retrying(lp: &EventLoop, port: u16, opts: ConnectOptions) -> (StreamReader, StreamWriter) {
    for _ in 0..500 {
        match lp.open_connection_with("127.0.0.1", port, opts.clone(), 64 * 1024).await {
            Ok(pair) => return pair,
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => anyloop::sleep(Duration::from_millis(10)).await,
            Err(e) => panic!("connect: {e}"),
        }
    }
    panic!("the peer never listened on {port}")
}

/// Waits for the peer to exit: its status, stdout and stderr.
async fn wait_exit(lp: &EventLoop, mut peer: Peer) -> (std::process::ExitStatus, Vec<u8>, Vec<u8>) {
    let mut child = std::mem::replace(&mut peer.child, Command::new("true").spawn().unwrap());
    let readers = std::mem::take(&mut peer.readers);
    let status = lp
        .run_in_executor(move || {
            let status = child.wait().unwrap();
            for r in readers {
                let _ = r.join();
            }
            status
        })
        .await
        .unwrap();
    let out = std::mem::take(&mut *peer.out.lock().unwrap());
    let err = std::mem::take(&mut *peer.err.lock().unwrap());
    (status, out, err)
}

#[test]
fn openssl_s_server_receives_ten_mib_from_our_client() {
    let env = Env::new();
    run(move |lp| async move {
        let port = free_port();
        let peer = Peer::spawn(
            Command::new("openssl")
                .args(["s_server", "-accept", &format!("127.0.0.1:{port}"), "-naccept", "1", "-quiet"])
                .args(["-cert", &env.file("cert.pem"), "-key", &env.file("key.pem")])
                // An open stdin: at stdin's EOF s_server would hang up.
                .stdin(Stdio::piped()),
        );
        let (_r, w) = connect_retrying(&lp, port, env.client_opts()).await;
        assert!(matches!(w.get_extra_info("ssl_version"), Some(ExtraInfo::Text(v)) if v == "TLSv1.3"));
        let data = pattern(10 * 1024 * 1024, 1);
        for chunk in data.chunks(64 * 1024) {
            w.write(chunk).unwrap();
            w.drain().await.unwrap();
        }
        w.close(); // close_notify: s_server finishes and exits
        w.wait_closed().await.unwrap();
        let (status, out, err) = wait_exit(&lp, peer).await;
        assert!(status.success(), "s_server: {status}: {}", String::from_utf8_lossy(&err));
        assert_eq!(out.len(), data.len());
        assert!(out == data, "s_server received different bytes");
    });
}

#[test]
fn openssl_s_client_exchanges_data_with_our_server_and_verifies_it() {
    let env = Env::new();
    run(move |lp| async move {
        // Reads 1 MiB, sends it back followed by 10 MiB, closes cleanly.
        let big = Rc::new(pattern(10 * 1024 * 1024, 2));
        let b2 = big.clone();
        let opts = ServerOptions { ssl: Some(env.server_tls()), ..Default::default() };
        let server = lp
            .start_server(
                move |mut r, w| {
                    let big = b2.clone();
                    async move {
                        let got = r.read_exact(1024 * 1024).await?;
                        w.write(&got)?;
                        for chunk in big.chunks(100_000) {
                            w.write(chunk)?;
                            w.drain().await?;
                        }
                        w.close();
                        w.wait_closed().await
                    }
                },
                Some("127.0.0.1"),
                0,
                opts,
            )
            .await
            .unwrap();
        let input = pattern(1024 * 1024, 3);
        let infile = env.dir.write("in.bin", &input);
        let peer = Peer::spawn(
            Command::new("openssl")
                .args(["s_client", "-connect", &format!("127.0.0.1:{}", port_of(&server)), "-quiet"])
                .args(["-CAfile", &env.file("ca.pem"), "-verify_return_error"])
                .args(["-servername", "localhost", "-verify_hostname", "localhost"])
                .stdin(std::fs::File::open(infile).unwrap()),
        );
        let (_status, out, err) = wait_exit(&lp, peer).await;
        assert_eq!(out.len(), input.len() + big.len(), "s_client: {}", String::from_utf8_lossy(&err));
        assert!(out[..input.len()] == input[..] && out[input.len()..] == big[..], "s_client got different bytes");

        // s_client trusting another CA refuses our server.
        let other = Ca::new("other CA");
        env.dir.write("other.pem", &other.pem);
        let peer = Peer::spawn(
            Command::new("openssl")
                .args(["s_client", "-connect", &format!("127.0.0.1:{}", port_of(&server)), "-quiet"])
                .args(["-CAfile", &env.file("other.pem"), "-verify_return_error", "-servername", "localhost"])
                .stdin(Stdio::null()),
        );
        let (status, _out, err) = wait_exit(&lp, peer).await;
        let err = String::from_utf8_lossy(&err);
        assert!(!status.success());
        assert!(err.contains("verify error") || err.contains("certificate verify failed"), "{err}");
        server.close();
    });
}

fn python(env: &Env, script: &str, args: &[&str]) -> Peer {
    let path = env.dir.write("peer.py", script);
    Peer::spawn(Command::new("python3").arg(path).args(args).stdin(Stdio::null()))
}

/// The port a Python server prints first.
async fn port_line(peer: &Peer) -> u16 {
    for _ in 0..1000 {
        let line = {
            let out = peer.out.lock().unwrap();
            out.iter().position(|b| *b == b'\n').map(|i| String::from_utf8_lossy(&out[..i]).into_owned())
        };
        if let Some(line) = line {
            peer.out.lock().unwrap().drain(..line.len() + 1);
            return line.trim().parse().unwrap_or_else(|_| panic!("no port: {line:?}"));
        }
        anyloop::sleep(Duration::from_millis(10)).await;
    }
    panic!("the Python peer printed no port: {}", String::from_utf8_lossy(&peer.err.lock().unwrap()))
}

const PY_ECHO_SERVER: &str = r#"
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
mode = sys.argv[3]
ls = socket.create_server(("127.0.0.1", 0))
print(ls.getsockname()[1], flush=True)
raw, _ = ls.accept()
conn = ctx.wrap_socket(raw, server_side=True)
if mode == "truncate":
    conn.sendall(b"partial")
    conn.recv(100)  # wait for the client's go
    conn.shutdown(socket.SHUT_RDWR)  # drops the TLS layer: a FIN without close_notify
    conn.close()
    sys.exit(0)
total = 0
while True:
    data = conn.recv(65536)
    if not data:
        break
    total += len(data)
    conn.sendall(data)
conn.unwrap().close()
print(total, flush=True)
"#;

#[test]
fn python_ssl_server_echoes_ten_mib_to_our_client() {
    let env = Env::new();
    run(move |lp| async move {
        let peer = python(&env, PY_ECHO_SERVER, &[&env.file("cert.pem"), &env.file("key.pem"), "echo"]);
        let port = port_line(&peer).await;
        let (mut r, w) = connect_retrying(&lp, port, env.client_opts()).await;
        let data = Rc::new(pattern(10 * 1024 * 1024, 4));
        let d2 = data.clone();
        let writer = lp
            .create_task(async move {
                for chunk in d2.chunks(100_000) {
                    w.write(chunk)?;
                    w.drain().await?;
                }
                w.write_eof()?; // close_notify + FIN: Python's recv returns b""
                Ok::<_, Error>(w)
            })
            .unwrap();
        let got = r.read_to_end().await.unwrap();
        assert_eq!(got.len(), data.len());
        assert!(got == *data, "Python echoed different bytes");
        assert!(r.exception().is_none(), "{:?}", r.exception()); // Python answered with close_notify
        let w = writer.await.unwrap().unwrap();
        w.close();
        w.wait_closed().await.unwrap();
        let (status, out, err) = wait_exit(&lp, peer).await;
        assert!(status.success(), "{}", String::from_utf8_lossy(&err));
        assert_eq!(String::from_utf8_lossy(&out).trim(), data.len().to_string());
    });
}

#[test]
fn python_ssl_server_truncating_the_stream_is_an_error() {
    let env = Env::new();
    run(move |lp| async move {
        let peer = python(&env, PY_ECHO_SERVER, &[&env.file("cert.pem"), &env.file("key.pem"), "truncate"]);
        let port = port_line(&peer).await;
        let (mut r, w) = connect_retrying(&lp, port, env.client_opts()).await;
        assert_eq!(r.read_exact(7).await.unwrap(), b"partial");
        w.write(b"go").unwrap();
        let e = r.read(100).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnexpectedEof, "{e}");
        assert!(e.to_string().contains("truncated"), "{e}");
        let _ = wait_exit(&lp, peer).await;
    });
}

const PY_CLIENT: &str = r#"
import socket, ssl, sys
ca, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
try:
    conn = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname=name)
except ssl.SSLCertVerificationError as e:
    print("VERIFY-FAILED", e.verify_message, flush=True)
    sys.exit(3)
data = bytes((i * 5 + i // 777) % 256 for i in range(1 << 20))
conn.sendall(data)
got = b""
while len(got) < len(data):
    chunk = conn.recv(65536)
    if not chunk:
        break
    got += chunk
ok = got == data
conn = conn.unwrap()  # close_notify, and wait for the server's
conn.close()
print("OK" if ok else "MISMATCH", flush=True)
"#;

#[test]
fn python_ssl_client_verifies_our_server_and_round_trips_a_mib() {
    let env = Env::new();
    run(move |lp| async move {
        let opts = ServerOptions { ssl: Some(env.server_tls()), ..Default::default() };
        let server = lp.start_server(echo, Some("127.0.0.1"), 0, opts).await.unwrap();
        let port = port_of(&server).to_string();
        let peer = python(&env, PY_CLIENT, &[&env.file("ca.pem"), &port, "localhost"]);
        let (status, out, err) = wait_exit(&lp, peer).await;
        assert!(status.success(), "{}", String::from_utf8_lossy(&err));
        assert_eq!(String::from_utf8_lossy(&out).trim(), "OK");

        // The name must match.
        let peer = python(&env, PY_CLIENT, &[&env.file("ca.pem"), &port, "example.com"]);
        let (status, out, _err) = wait_exit(&lp, peer).await;
        assert_eq!(status.code(), Some(3));
        assert!(String::from_utf8_lossy(&out).contains("Hostname mismatch"), "{}", String::from_utf8_lossy(&out));
        server.close();
    });
}

const PY_STARTTLS_CLIENT: &str = r#"
import socket, ssl, sys
ca, port = sys.argv[1], int(sys.argv[2])
ctx = ssl.create_default_context(cafile=ca)
sock = socket.create_connection(("127.0.0.1", port))
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
try:
    obj.do_handshake()
except ssl.SSLWantReadError:
    pass
# The upgrade line and the ClientHello in one send: the server reads both at once.
sock.sendall(b"STARTTLS\r\n" + out.read())
def pump():
    data = out.read()
    if data:
        sock.sendall(data)
def feed():
    data = sock.recv(65536)
    if not data:
        raise SystemExit("EOF")
    inc.write(data)
while True:
    try:
        obj.do_handshake()
        break
    except ssl.SSLWantReadError:
        pump()
        feed()
pump()
obj.write(b"hello after STARTTLS\n")
pump()
got = b""
while not got.endswith(b"\n"):
    try:
        got += obj.read(1024)
    except ssl.SSLWantReadError:
        feed()
print(got.decode().strip(), obj.version(), flush=True)
"#;

#[test]
fn python_starttls_client_pipelines_its_client_hello_behind_the_line() {
    let env = Env::new();
    run(move |lp| async move {
        let ssl = env.server_tls();
        let server = lp
            .start_server(
                move |mut r, mut w| {
                    let ssl = ssl.clone();
                    async move {
                        assert_eq!(r.readline().await?, b"STARTTLS\r\n");
                        let unread = r.buffered();
                        let opts = StartTlsOptions { server_side: true, ..Default::default() };
                        w.start_tls(&mut r, ssl, opts).await?;
                        let line = r.readline().await?;
                        w.write(
                            format!("{} / {unread} bytes pipelined\n", String::from_utf8_lossy(&line).trim())
                                .as_bytes(),
                        )?;
                        w.drain().await
                    }
                },
                Some("127.0.0.1"),
                0,
                ServerOptions::default(),
            )
            .await
            .unwrap();
        let port = port_of(&server).to_string();
        let peer = python(&env, PY_STARTTLS_CLIENT, &[&env.file("ca.pem"), &port]);
        let (status, out, err) = wait_exit(&lp, peer).await;
        assert!(status.success(), "{}", String::from_utf8_lossy(&err));
        let out = String::from_utf8_lossy(&out);
        assert!(out.starts_with("hello after STARTTLS / "), "{out}");
        assert!(out.trim().ends_with("TLSv1.3"), "{out}");
        // The ClientHello arrived with the line (a few hundred bytes).
        let pipelined: usize = out.split(" / ").nth(1).and_then(|s| s.split(' ').next()).unwrap().parse().unwrap();
        assert!(pipelined > 100, "{out}");
        server.close();
    });
}
