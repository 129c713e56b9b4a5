//! `just bench-tls`: TLS echo throughput next to the same echo without TLS,
//! interleaved in one run.
//!
//! The server is anyloop's protocol-level echo on its own thread and loop
//! (one core); the client, on the main thread (the other core), keeps
//! `CONNS` connections each sending one message and waiting for its echo,
//! for `SECS` seconds. One connection measures the round trip (latency
//! bound); eight keep both cores busy (CPU bound), where plain echo costs
//! only the kernel's copies and TLS adds four AES-GCM passes per message. TLS: TLS 1.3 with TLS13_AES_128_GCM_SHA256 (ring),
//! our client and our server; plain: the same code without `ssl`.
//! Reported: MiB/s of echoed payload (median of `REPS` interleaved
//! repetitions), TLS / plain, and the process CPU (client + server) per
//! echoed MiB, which shows where the time goes when both cores are busy.
//! Bar: ≥ 0.5 at 100 KiB.
//!
//! Environment: SECS (default 3), REPS (3), SIZES (10240,102400), CONNS (1,8),
//! ONLY (`tls` or `plain`: one side only, for profiling).

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyloop::net::{Addr, ConnectOptions, ServerOptions};
use anyloop::tls::{TlsConfig, TlsContext, TlsVersion};
use anyloop::{BaseProtocol, Error, EventLoop, Protocol, Transport};
use anyloop_bench::{median, process_cpu};

/// The server's side: echoes everything.
#[derive(Default)]
struct Echo {
    transport: Option<Rc<dyn Transport>>,
}
impl BaseProtocol for Echo {}
impl Protocol for Echo {
    fn connection_made(&mut self, t: Rc<dyn Transport>) {
        self.transport = Some(t);
    }
    fn data_received(&mut self, data: &[u8]) {
        if let Some(t) = &self.transport {
            let _ = t.write(data);
        }
    }
}

/// The client's side: one message in flight, the next when it is back.
struct Pinger {
    transport: Option<Rc<dyn Transport>>,
    msg: Rc<Vec<u8>>,
    got: usize,
    done: Rc<Cell<u64>>,
    stop: Rc<Cell<bool>>,
}
impl BaseProtocol for Pinger {}
impl Protocol for Pinger {
    fn connection_made(&mut self, t: Rc<dyn Transport>) {
        let _ = t.write(&self.msg);
        self.transport = Some(t);
    }
    fn data_received(&mut self, data: &[u8]) {
        self.got += data.len();
        if self.got < self.msg.len() {
            return;
        }
        self.got -= self.msg.len();
        self.done.set(self.done.get() + 1);
        if !self.stop.get()
            && let Some(t) = &self.transport
        {
            let _ = t.write(&self.msg);
        }
    }
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Starts the echo servers (plain and TLS) on a thread; returns their ports.
fn start_servers(cert: String, key: String) -> (u16, u16) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let lp = anyloop::new_event_loop().unwrap();
        let ports = lp
            .run_until_complete({
                let lp = lp.clone();
                async move {
                    let port = |s: &anyloop::net::Server| match s.sockets().first() {
                        Some(Addr::Ip(a)) => a.port(),
                        _ => 0,
                    };
                    let plain = lp.create_server(Echo::default, Some("127.0.0.1"), 0, ServerOptions::default()).await?;
                    let ssl: Rc<dyn TlsContext> = Rc::new(TlsConfig::server(cert.as_bytes(), key.as_bytes()).build()?);
                    let opts = ServerOptions { ssl: Some(ssl), ..Default::default() };
                    let tls = lp.create_server(Echo::default, Some("127.0.0.1"), 0, opts).await?;
                    let ports = (port(&plain), port(&tls));
                    std::mem::forget((plain, tls)); // serve until the process exits
                    Ok::<_, Error>(ports)
                }
            })
            .unwrap()
            .unwrap();
        tx.send(ports).unwrap();
        lp.run_forever().unwrap();
    });
    rx.recv().unwrap()
}

/// Echoed payload bytes per second over `secs` with `conns` connections,
/// and the process CPU (client and server) per echoed MiB, in ms.
fn measure(
    lp: &EventLoop,
    port: u16,
    ssl: Option<Rc<dyn TlsContext>>,
    size: usize,
    conns: usize,
    secs: f64,
) -> (f64, f64) {
    let msg = Rc::new(vec![0x5a_u8; size]);
    let done = Rc::new(Cell::new(0u64));
    let stop = Rc::new(Cell::new(false));
    let transports: Rc<RefCell<Vec<Rc<dyn Transport>>>> = Rc::default();
    let (d2, s2, t2) = (done.clone(), stop.clone(), transports.clone());
    let elapsed = lp
        .run_until_complete({
            let lp = lp.clone();
            async move {
                let mut opts = ConnectOptions::default();
                if let Some(ssl) = ssl {
                    opts.ssl = Some(ssl);
                    opts.server_hostname = Some("localhost".into());
                }
                for _ in 0..conns {
                    let p = Pinger { transport: None, msg: msg.clone(), got: 0, done: d2.clone(), stop: s2.clone() };
                    let (t, _) = lp.create_connection(move || p, "127.0.0.1", port, opts.clone()).await?;
                    t2.borrow_mut().push(t);
                }
                // Warm up, then count.
                anyloop::sleep(Duration::from_millis(200)).await;
                let (n0, t0, c0) = (d2.get(), Instant::now(), process_cpu());
                anyloop::sleep(Duration::from_secs_f64(secs)).await;
                let (n1, t1, c1) = (d2.get(), Instant::now(), process_cpu());
                s2.set(true);
                Ok::<_, Error>(((n1 - n0) as f64, (t1 - t0).as_secs_f64(), (c1 - c0).as_secs_f64()))
            }
        })
        .unwrap()
        .unwrap();
    for t in transports.borrow().iter() {
        t.close();
    }
    lp.run_until_complete(anyloop::sleep(Duration::from_millis(50))).unwrap();
    let bytes = elapsed.0 * size as f64;
    let mib = bytes / (1024.0 * 1024.0);
    (bytes / elapsed.1, if mib > 0.0 { elapsed.2 * 1e3 / mib } else { 0.0 })
}

fn make_pki() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, KeyUsagePurpose};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()]).unwrap().signed_by(&key, &ca).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

fn main() -> Result<(), Error> {
    let secs = env("SECS", 3) as f64;
    let reps = env("REPS", 3);
    let conns_list: Vec<usize> = std::env::var("CONNS")
        .unwrap_or_else(|_| "1,8".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let sizes: Vec<usize> = std::env::var("SIZES")
        .unwrap_or_else(|_| "10240,102400".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let (ca, cert, key) = make_pki();
    let (plain_port, tls_port) = start_servers(cert, key);
    let client: Rc<dyn TlsContext> = Rc::new(
        TlsConfig::client()
            .root_certificates_pem(ca.as_bytes())?
            .minimum_version(TlsVersion::Tls13)
            .cipher_suites(["TLS13_AES_128_GCM_SHA256"])
            .build()?,
    );
    let lp = anyloop::new_event_loop()?;
    println!("TLS echo vs plain echo: {secs} s x {reps} reps, TLS 1.3 AES-128-GCM (ring)");
    println!(
        "{:>6} {:>8} {:>12} {:>12} {:>10} {:>16} {:>16}",
        "conns", "size", "plain MiB/s", "TLS MiB/s", "TLS/plain", "plain CPU ms/MiB", "TLS CPU ms/MiB"
    );
    let mut ok = true;
    for &conns in &conns_list {
        for &size in &sizes {
            let (mut plain, mut tls, mut plain_cpu, mut tls_cpu) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let only = std::env::var("ONLY").unwrap_or_default(); // for profiling one side
            for _ in 0..reps {
                if only != "tls" {
                    let (rate, cpu) = measure(&lp, plain_port, None, size, conns, secs);
                    plain.push(rate);
                    plain_cpu.push(cpu);
                }
                if only != "plain" {
                    let (rate, cpu) = measure(&lp, tls_port, Some(client.clone()), size, conns, secs);
                    tls.push(rate);
                    tls_cpu.push(cpu);
                }
            }
            if plain.is_empty() || tls.is_empty() {
                let v = if plain.is_empty() { &mut tls } else { &mut plain };
                println!("{conns:>6} {size:>8} {only}: {:.1} MiB/s", median(v) / (1024 * 1024) as f64);
                continue;
            }
            let (p, t) = (median(&mut plain), median(&mut tls));
            let ratio = t / p;
            let mib = (1024 * 1024) as f64;
            let (pc, tc) = (median(&mut plain_cpu), median(&mut tls_cpu));
            println!(
                "{conns:>6} {size:>8} {:>12.1} {:>12.1} {:>10.2} {:>16.3} {:>16.3}",
                p / mib,
                t / mib,
                ratio,
                pc,
                tc
            );
            if size == 100 * 1024 && ratio < 0.5 {
                ok = false;
            }
        }
    }
    lp.close()?;
    if !ok {
        println!("below the bar (TLS >= 0.5 x plain at 100 KiB) in at least one row");
    }
    Ok(())
}
