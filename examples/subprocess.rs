//! A child process driven by a `SubprocessProtocol`, as in the spec's
//! "loop.subprocess_exec() and SubprocessProtocol" example: run
//! `sh -c "echo hello; echo oops >&2; exit 3"`, collect what arrives on its
//! stdout and stderr, and print it with the exit status.
//!
//! ```sh
//! cargo run --example subprocess
//! ```

use anyloop::net::SubprocessOptions;
use anyloop::{BaseProtocol, EventLoop, LoopFuture, SubprocessProtocol};

/// Collects the child's output; `exit_future` resolves when it exited
/// (after all its output arrived).
struct Collect {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    exit_future: LoopFuture<()>,
}

impl BaseProtocol for Collect {}

impl SubprocessProtocol for Collect {
    fn pipe_data_received(&mut self, fd: i32, data: &[u8]) {
        match fd {
            1 => self.stdout.extend_from_slice(data),
            _ => self.stderr.extend_from_slice(data),
        }
    }

    fn process_exited(&mut self) {
        let _ = self.exit_future.set_result(());
    }
}

async fn run(lp: EventLoop) -> Result<(), anyloop::Error> {
    let exit_future = lp.create_future();
    let protocol = Collect { stdout: Vec::new(), stderr: Vec::new(), exit_future: exit_future.clone() };

    // stdin, stdout and stderr are pipes by default.
    let (transport, protocol) = lp
        .subprocess_exec(
            move || protocol,
            "sh",
            &["-c", "echo hello; echo oops >&2; exit 3"],
            SubprocessOptions::default(),
        )
        .await?;

    // Wait for the child's exit with the protocol's process_exited().
    exit_future.await?;
    transport.close();

    let p = protocol.borrow();
    print!("stdout: {}", String::from_utf8_lossy(&p.stdout));
    print!("stderr: {}", String::from_utf8_lossy(&p.stderr));
    match transport.get_returncode() {
        Some(status) => println!("exit status: {status}"),
        None => println!("exit status: unknown"),
    }
    Ok(())
}

fn main() -> Result<(), anyloop::Error> {
    let lp = anyloop::new_event_loop()?;
    let result = lp.run_until_complete(run(lp.clone()));
    lp.close()?;
    result?
}
