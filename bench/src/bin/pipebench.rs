//! Child-process pipe throughput: a payload sent through `cat` and read
//! back, side by side in one run.
//!
//! * `anyloop`: `subprocess_exec("cat")` with a protocol that writes with
//!   flow control (`pause_writing` / `resume_writing`) and collects stdout;
//! * `std threads`: `std::process::Command("cat")` with blocking pipes, a
//!   writer thread and the reading main thread (256 KiB reads, counted) —
//!   the plain baseline.
//!
//! `just bench-pipes` runs this and asyncio's equivalent (CPython, if
//! installed) and prints MiB/s for each.
//!
//! ```sh
//! cargo run --release -p anyloop-bench --bin pipebench -- 256
//! ```

#[cfg(unix)]
fn main() {
    use std::time::Instant;

    let mib: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(256);
    let data = std::rc::Rc::new(payload(mib << 20));
    let runs = 3;
    let mut rows = Vec::new();
    for (name, f) in [("anyloop", anyloop_cat as fn(&std::rc::Rc<Vec<u8>>) -> usize), ("std threads", std_cat)] {
        let mut best = f64::MAX;
        for _ in 0..runs {
            let t = Instant::now();
            let n = f(&data);
            let secs = t.elapsed().as_secs_f64();
            assert_eq!(n, data.len(), "{name}: bytes lost");
            best = best.min(secs);
        }
        rows.push((name, mib as f64 / best));
    }
    let base = rows[1].1;
    for (name, rate) in rows {
        println!(
            "{name:>12}: {rate:8.0} MiB/s  ({:.2}× std threads)  best of {runs}, {mib} MiB through cat",
            rate / base
        );
    }
}

#[cfg(unix)]
fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[cfg(unix)]
fn std_cat(data: &std::rc::Rc<Vec<u8>>) -> usize {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};
    let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let owned: Vec<u8> = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&owned).unwrap());
    // Count, like the anyloop side, reading as much as it does at a time.
    let mut stdout = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0;
    loop {
        match stdout.read(&mut buf).unwrap() {
            0 => break,
            k => n += k,
        }
    }
    writer.join().unwrap();
    child.wait().unwrap();
    n
}

#[cfg(unix)]
fn anyloop_cat(data: &std::rc::Rc<Vec<u8>>) -> usize {
    use std::rc::Rc;

    use anyloop::net::SubprocessOptions;
    use anyloop::{BaseProtocol, LoopFuture, SubprocessProtocol, SubprocessTransport, Transport};

    struct Pump {
        data: Rc<Vec<u8>>,
        sent: usize,
        paused: bool,
        stdin: Option<Rc<dyn Transport>>,
        received: usize,
        done: LoopFuture<()>,
    }

    impl Pump {
        fn pump(&mut self) {
            let Some(stdin) = self.stdin.clone() else { return };
            let (_, high) = stdin.get_write_buffer_limits();
            while !self.paused && self.sent < self.data.len() && stdin.get_write_buffer_size() <= high {
                let end = (self.sent + 256 * 1024).min(self.data.len());
                stdin.write(&self.data[self.sent..end]).unwrap();
                self.sent = end;
            }
            if self.sent == self.data.len() {
                let _ = stdin.write_eof();
            }
        }
    }

    impl BaseProtocol for Pump {
        fn pause_writing(&mut self) {
            self.paused = true;
        }
        fn resume_writing(&mut self) {
            self.paused = false;
            self.pump();
        }
        fn connection_lost(&mut self, _exc: Option<anyloop::Error>) {
            let _ = self.done.set_result(());
        }
    }

    impl SubprocessProtocol for Pump {
        fn connection_made(&mut self, t: Rc<dyn SubprocessTransport>) {
            self.stdin = t.get_pipe_transport(0);
            self.pump();
        }
        fn pipe_data_received(&mut self, _fd: i32, data: &[u8]) {
            self.received += data.len();
        }
    }

    let lp = anyloop::new_event_loop().unwrap();
    let l2 = lp.clone();
    let data = data.clone();
    let n = lp
        .run_until_complete(async move {
            let done = l2.create_future();
            let p = Pump { data, sent: 0, paused: false, stdin: None, received: 0, done: done.clone() };
            let (_t, p) = l2.subprocess_exec(move || p, "cat", &[], SubprocessOptions::default()).await.unwrap();
            done.await.unwrap();
            p.borrow().received
        })
        .unwrap();
    lp.close().unwrap();
    n
}

#[cfg(not(unix))]
fn main() {
    eprintln!("pipebench needs Unix pipes");
}
