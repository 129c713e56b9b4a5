//! `connect_read_pipe` / `connect_write_pipe` on the native host: OS pipes,
//! FIFOs, ptys, and a real program's stdin/stdout.
#![cfg(unix)]

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyloop::{BaseProtocol, Error, ErrorKind, EventLoop, LoopFuture, Protocol};

/// A reproducible pseudo-random payload.
fn payload(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Records a stream protocol's calls.
struct Rec {
    data: Vec<u8>,
    eof: bool,
    lost: Option<Option<ErrorKind>>,
    pauses: usize,
    resumes: usize,
    done: LoopFuture<()>,
}

impl Rec {
    fn new(lp: &EventLoop) -> Rec {
        Rec { data: Vec::new(), eof: false, lost: None, pauses: 0, resumes: 0, done: lp.create_future() }
    }
}

impl BaseProtocol for Rec {
    fn connection_lost(&mut self, exc: Option<Error>) {
        assert!(self.lost.is_none(), "connection_lost twice");
        self.lost = Some(exc.map(|e| e.kind()));
        let _ = self.done.set_result(());
    }
    fn pause_writing(&mut self) {
        self.pauses += 1;
    }
    fn resume_writing(&mut self) {
        self.resumes += 1;
    }
}

impl Protocol for Rec {
    fn data_received(&mut self, data: &[u8]) {
        assert!(!self.eof, "data after EOF");
        self.data.extend_from_slice(data);
    }
    fn eof_received(&mut self) -> bool {
        self.eof = true;
        false
    }
}

fn run<T: 'static>(f: impl AsyncFnOnce(EventLoop) -> Result<T, Error> + 'static) -> T {
    let lp = anyloop::new_event_loop().unwrap();
    let l2 = lp.clone();
    let task = lp.create_task(async move { f(l2).await }).unwrap();
    let t2 = task.as_any();
    lp.call_later(Duration::from_secs(30), move |_| {
        t2.cancel(Some("timed out"));
    })
    .unwrap();
    let r = lp.run_until_complete(task);
    lp.close().unwrap();
    match r.and_then(|r| r).and_then(|r| r) {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

fn os_pipe() -> (OwnedFd, OwnedFd) {
    let (r, w) = std::io::pipe().unwrap();
    (r.into(), w.into())
}

#[test]
fn read_pipe_delivers_everything_then_eof() {
    let (r, w) = os_pipe();
    let data = payload(3 << 20);
    let want = data.clone();
    let writer = std::thread::spawn(move || {
        let mut f = std::fs::File::from(w);
        f.write_all(&data).unwrap();
        // dropping `f` closes the write end: EOF
    });
    let rec = run(async move |lp: EventLoop| {
        let (t, p) = lp.connect_read_pipe(|| Rec::new(&lp), r.into_raw_fd()).await?;
        assert!(matches!(t.get_extra_info("pipe"), Some(anyloop::ExtraInfo::Fd(_))));
        assert_eq!(t.write(b"x").unwrap_err().kind(), ErrorKind::Unsupported, "read-only");
        let done = p.borrow().done.clone();
        done.await?;
        let rec = std::mem::replace(&mut *p.borrow_mut(), Rec::new(&lp));
        Ok(rec)
    });
    writer.join().unwrap();
    assert_eq!(rec.data.len(), want.len());
    assert!(rec.data == want, "bytes differ");
    assert!(rec.eof);
    assert_eq!(rec.lost, Some(None));
}

#[test]
fn write_pipe_has_flow_control_and_write_eof_closes() {
    let (r, w) = os_pipe();
    let data = payload(4 << 20);
    let want = data.clone();
    // A slow reader: the 64 KiB pipe fills, so the transport buffers and
    // pauses the protocol.
    let reader = std::thread::spawn(move || {
        let mut f = std::fs::File::from(r);
        let mut got = Vec::new();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = f.read(&mut buf).unwrap();
            if n == 0 {
                return got;
            }
            got.extend_from_slice(&buf[..n]);
            if got.len() < (1 << 20) {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    });
    let rec = run(async move |lp: EventLoop| {
        let (t, p) = lp.connect_write_pipe(|| Rec::new(&lp), w.into_raw_fd()).await?;
        assert!(t.can_write_eof());
        for chunk in data.chunks(256 * 1024) {
            t.write(chunk)?;
        }
        assert!(t.get_write_buffer_size() > 0, "the pipe cannot take 4 MiB at once");
        t.write_eof()?;
        assert_eq!(t.write(b"more").unwrap_err().kind(), ErrorKind::InvalidState);
        let done = p.borrow().done.clone();
        done.await?;
        assert_eq!(t.get_write_buffer_size(), 0);
        let rec = std::mem::replace(&mut *p.borrow_mut(), Rec::new(&lp));
        Ok(rec)
    });
    let got = reader.join().unwrap();
    assert!(got == want, "bytes differ ({} of {})", got.len(), want.len());
    assert_eq!((rec.pauses, rec.resumes), (1, 1), "pause_writing then resume_writing");
    assert_eq!(rec.lost, Some(None));
}

#[test]
fn a_write_pipe_whose_reader_went_away_is_lost_with_broken_pipe() {
    // Data buffered when the reader goes: connection_lost(BrokenPipe).
    let (r, w) = os_pipe();
    let rec = run(async move |lp: EventLoop| {
        let (t, p) = lp.connect_write_pipe(|| Rec::new(&lp), w.into_raw_fd()).await?;
        t.write(&payload(1 << 20))?; // more than the pipe holds
        assert!(t.get_write_buffer_size() > 0);
        drop(r);
        let done = p.borrow().done.clone();
        done.await?;
        assert_eq!(t.write(b"x").unwrap_err().kind(), ErrorKind::InvalidState);
        let rec = std::mem::replace(&mut *p.borrow_mut(), Rec::new(&lp));
        Ok(rec)
    });
    assert_eq!(rec.lost, Some(Some(ErrorKind::BrokenPipe)));

    // Nothing buffered: the write itself meets EPIPE.
    let (r, w) = os_pipe();
    drop(r);
    let rec = run(async move |lp: EventLoop| {
        let (t, p) = lp.connect_write_pipe(|| Rec::new(&lp), w.into_raw_fd()).await?;
        let done = p.borrow().done.clone();
        let _ = t.write(b"into the void");
        done.await?;
        let rec = std::mem::replace(&mut *p.borrow_mut(), Rec::new(&lp));
        Ok(rec)
    });
    assert!(matches!(rec.lost, Some(Some(ErrorKind::BrokenPipe)) | Some(None)), "{:?}", rec.lost);
}

#[test]
fn files_and_bad_descriptors_are_refused() {
    run(async move |lp: EventLoop| {
        let file = std::fs::File::open("/proc/self/exe").or_else(|_| std::fs::File::open("/etc/passwd")).unwrap();
        let e = lp.connect_read_pipe(|| Rec::new(&lp), file.into_raw_fd()).await.err().unwrap();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        for fd in [-1, 1_000_000] {
            let e = lp.connect_write_pipe(|| Rec::new(&lp), fd).await.err().unwrap();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{fd}: {e}");
        }
        Ok(())
    });
}

#[test]
fn a_fifo_is_a_pipe() {
    let dir = std::env::temp_dir().join(format!("anyloop-fifo-{}", std::process::id()));
    let _ = std::fs::remove_file(&dir);
    let path = std::ffi::CString::new(dir.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    // Opening the read end non-blocking does not wait for a writer.
    // SAFETY: open reads a NUL-terminated path; the result is checked.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC) };
    assert!(fd >= 0);
    let p2 = dir.clone();
    let writer = std::thread::spawn(move || {
        let mut f = std::fs::OpenOptions::new().write(true).open(&p2).unwrap();
        f.write_all(b"through a fifo").unwrap();
    });
    let rec = run(async move |lp: EventLoop| {
        let (_t, p) = lp.connect_read_pipe(|| Rec::new(&lp), fd).await?;
        let done = p.borrow().done.clone();
        done.await?;
        let rec = std::mem::replace(&mut *p.borrow_mut(), Rec::new(&lp));
        Ok(rec)
    });
    writer.join().unwrap();
    let _ = std::fs::remove_file(&dir);
    assert_eq!(rec.data, b"through a fifo");
    assert_eq!(rec.lost, Some(None));
}

#[test]
fn a_pty_is_a_pipe() {
    // SAFETY: posix_openpt/grantpt/unlockpt/ptsname_r on the descriptor we
    // open, with a buffer we own; results are checked.
    let (master, slave_path) = unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(m >= 0);
        assert_eq!(libc::grantpt(m), 0);
        assert_eq!(libc::unlockpt(m), 0);
        let name = libc::ptsname(m);
        assert!(!name.is_null());
        (OwnedFd::from_raw_fd(m), std::ffi::CStr::from_ptr(name).to_string_lossy().into_owned())
    };
    let mut slave = std::fs::OpenOptions::new().read(true).write(true).open(&slave_path).unwrap();
    let rec = run(async move |lp: EventLoop| {
        let (t, p) = lp.connect_read_pipe(|| Rec::new(&lp), master.as_raw_fd()).await?;
        std::mem::forget(master); // the transport owns it now
        slave.write_all(b"hello pty\n").unwrap();
        while !p.borrow().data.ends_with(b"\n") {
            anyloop::sleep(Duration::from_millis(5)).await;
        }
        t.close();
        let done = p.borrow().done.clone();
        done.await?;
        let rec = std::mem::replace(&mut *p.borrow_mut(), Rec::new(&lp));
        Ok(rec)
    });
    // A tty in canonical mode may turn "\n" into "\r\n".
    assert!(rec.data.starts_with(b"hello pty"), "{:?}", String::from_utf8_lossy(&rec.data));
    assert_eq!(rec.lost, Some(None));
}

#[test]
fn stdin_and_stdout_of_a_program_when_they_are_pipes() {
    // `child cat` wraps its own fds 0 and 1 with the pipe transports.
    let data = payload(8 << 20);
    let mut child = Command::new(env!("CARGO_BIN_EXE_child"))
        .arg("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let d2 = data.clone();
    let feeder = std::thread::spawn(move || stdin.write_all(&d2).unwrap());
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    feeder.join().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(out.len(), data.len());
    assert!(out == data, "bytes differ");
}
