//! A child process for the integration tests: what must not run inside the
//! test binary itself (a signal left to its default action kills the whole
//! process) runs here, and the test checks how this process ended.
//!
//! ```sh
//! child restore-default 15   # handle SIGTERM once, remove the handler, SIGTERM again
//! ```

#[cfg(unix)]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let result = match arg(0) {
        "restore-default" => restore_default(arg(1).parse().unwrap_or(0)),
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

#[cfg(not(unix))]
fn main() {
    eprintln!("child: only Unix is supported");
    std::process::exit(2);
}
