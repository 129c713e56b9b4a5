//! The spec's "Hello World with call_soon()": a callback prints
//! `Hello World` and stops the loop.
//!
//! ```sh
//! cargo run --example hello_world
//! ```

fn hello_world(lp: &anyloop::EventLoop) {
    println!("Hello World");
    lp.stop();
}

fn main() -> Result<(), anyloop::Error> {
    let lp = anyloop::new_event_loop()?;

    // Schedule a call to hello_world()
    lp.call_soon(hello_world)?;

    // Blocking call interrupted by lp.stop()
    let result = lp.run_forever();
    lp.close()?;
    result
}
