//! `asyncio.run(main())` in Rust: sleep, then print `Hello World`.
//!
//! ```sh
//! cargo run --example hello_async
//! ```

use std::time::Duration;

fn main() -> Result<(), anyloop::Error> {
    anyloop::run(async {
        anyloop::sleep(Duration::from_millis(100)).await;
        println!("Hello World");
    })
}
