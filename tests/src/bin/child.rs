//! A child process for the integration tests: what must not run inside the
//! test binary itself (a signal left to its default action kills the whole
//! process) runs here, and the test checks how this process ended.
//!
//! ```sh
//! child restore-default 15   # handle SIGTERM once, remove the handler, SIGTERM again
//! child cat                  # copy stdin to stdout through pipe transports
//! child watcher              # print how a default loop watches its children
//! ```

#[cfg(unix)]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let result = match arg(0) {
        "restore-default" => restore_default(arg(1).parse().unwrap_or(0)),
        "cat" => cat::run(),
        "watcher" => watcher(),
        other => Err(anyloop::Error::new(anyloop::ErrorKind::InvalidInput, format!("unknown command {other:?}"))),
    };
    if let Err(e) = result {
        eprintln!("child: {e}");
        std::process::exit(2);
    }
}

/// Handles `signum` once on a loop, removes the handler, then sends the
/// signal again: the disposition from before must be back (the process dies
/// of a terminating signal; an ignored one stays ignored).
#[cfg(unix)]
fn restore_default(signum: i32) -> Result<(), anyloop::Error> {
    use std::io::Write;

    let lp = anyloop::new_event_loop()?;
    lp.add_signal_handler(signum, |lp| {
        println!("handled");
        lp.stop();
    })?;
    lp.call_soon(move |_| {
        // SAFETY: kill() on our own pid has no memory-safety preconditions.
        unsafe { libc::kill(libc::getpid(), signum) };
    })?;
    lp.call_later(std::time::Duration::from_secs(10), |lp| {
        println!("timeout");
        lp.stop();
    })?;
    lp.run_forever()?;
    println!("removed {}", lp.remove_signal_handler(signum)?);
    println!("removed again {}", lp.remove_signal_handler(signum)?);
    let _ = std::io::stdout().flush();
    // SAFETY: as above.
    unsafe { libc::kill(libc::getpid(), signum) };
    std::thread::sleep(std::time::Duration::from_millis(200));
    println!("survived");
    lp.close()
}

/// Runs `true` on a default loop and prints `pidfd` or `sigchld`: how the
/// loop watched it (`ANYLOOP_FORCE_SIGCHLD=1` must give `sigchld`).
#[cfg(unix)]
fn watcher() -> Result<(), anyloop::Error> {
    use anyloop::net::{Stdio, SubprocessOptions};
    use anyloop::{BaseProtocol, LoopFuture, SubprocessProtocol};

    struct Wait(LoopFuture<()>);
    impl BaseProtocol for Wait {
        fn connection_lost(&mut self, _exc: Option<anyloop::Error>) {
            let _ = self.0.set_result(());
        }
    }
    impl SubprocessProtocol for Wait {}

    let lp = anyloop::new_event_loop()?;
    let l2 = lp.clone();
    let r = lp.run_until_complete(async move {
        let done = l2.create_future::<()>();
        let d2 = done.clone();
        let opts = SubprocessOptions {
            stdin: Stdio::DevNull,
            stdout: Stdio::DevNull,
            stderr: Stdio::DevNull,
            ..Default::default()
        };
        let (t, _) = l2.subprocess_exec(move || Wait(d2), "true", &[], opts).await?;
        println!("{}", if t.get_extra_info("pidfd").is_some() { "pidfd" } else { "sigchld" });
        done.await
    });
    lp.close()?;
    r?
}

/// `cat` on the loop: stdin and stdout (pipes) wrapped with
/// `connect_read_pipe` / `connect_write_pipe`, reading paused while the
/// writer is over its high-water mark.
#[cfg(unix)]
mod cat {
    use std::cell::RefCell;
    use std::rc::Rc;

    use anyloop::{BaseProtocol, Error, LoopFuture, Protocol, Transport};

    struct Reader {
        out: Rc<dyn Transport>,
    }

    impl BaseProtocol for Reader {}

    impl Protocol for Reader {
        fn data_received(&mut self, data: &[u8]) {
            if let Err(e) = self.out.write(data) {
                eprintln!("child cat: {e}");
            }
        }

        fn eof_received(&mut self) -> bool {
            self.out.close(); // after the buffer is flushed
            false
        }
    }

    struct Writer {
        input: Option<Rc<dyn Transport>>,
        done: LoopFuture<()>,
    }

    impl BaseProtocol for Writer {
        fn pause_writing(&mut self) {
            if let Some(i) = &self.input {
                i.pause_reading();
            }
        }

        fn resume_writing(&mut self) {
            if let Some(i) = &self.input {
                i.resume_reading();
            }
        }

        fn connection_lost(&mut self, exc: Option<Error>) {
            let _ = match exc {
                None => self.done.set_result(()),
                Some(e) => self.done.set_exception(e),
            };
        }
    }

    impl Protocol for Writer {
        fn data_received(&mut self, _data: &[u8]) {}
    }

    pub fn run() -> Result<(), Error> {
        let lp = anyloop::new_event_loop()?;
        let l2 = lp.clone();
        let r = lp.run_until_complete(async move {
            let done = l2.create_future::<()>();
            let d2 = done.clone();
            let (out, writer): (_, Rc<RefCell<Writer>>) =
                l2.connect_write_pipe(move || Writer { input: None, done: d2 }, 1).await?;
            let (input, _) = l2.connect_read_pipe(move || Reader { out }, 0).await?;
            writer.borrow_mut().input = Some(input);
            done.await
        });
        lp.close()?;
        r?
    }
}

#[cfg(not(unix))]
fn main() {
    eprintln!("child: only Unix is supported");
    std::process::exit(2);
}
