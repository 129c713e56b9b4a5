//! The spec's "Watch a file descriptor for read events": wait until a
//! socket of a socket pair receives data with `add_reader`, print it, stop.
//!
//! ```sh
//! cargo run --example watch_fd
//! ```

#[cfg(unix)]
fn main() -> Result<(), anyloop::Error> {
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    // Create a pair of connected file descriptors
    let (mut rsock, mut wsock) = UnixStream::pair()?;
    let rfd = rsock.as_raw_fd();

    let lp = anyloop::new_event_loop()?;

    // Register the file descriptor for read event
    lp.add_reader(rfd, move |lp| {
        let mut data = [0u8; 100];
        let n = rsock.read(&mut data).unwrap_or(0);
        println!("Received: {}", String::from_utf8_lossy(&data[..n]));

        // We are done: unregister the file descriptor
        let _ = lp.remove_reader(rfd);

        // Stop the event loop
        lp.stop();
    })?;

    // Simulate the reception of data from the network
    lp.call_soon(move |_| {
        let _ = wsock.write_all(b"abc");
    })?;

    // Run the event loop
    let result = lp.run_forever();
    // We are done. Close the event loop (the sockets closed with their owners).
    lp.close()?;
    result
}

#[cfg(not(unix))]
fn main() {
    eprintln!("watch_fd needs Unix file descriptors");
}
