//! Host checks for the wasmtime tests: `probe CHECK [ARGS…]` (see the
//! crate docs). Each check prints what it saw; the test on the native side
//! decides.

#[cfg(not(target_os = "wasi"))]
fn main() {
    eprintln!("probe is a WASI guest: build it with --target wasm32-wasip1 or wasm32-wasip2");
}

#[cfg(target_os = "wasi")]
fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(check) = args.first().cloned() else {
        eprintln!("usage: probe CHECK [ARGS...]");
        return std::process::ExitCode::from(2);
    };
    let result = checks::run(&check, &args[1..]);
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            println!("error {e}");
            std::process::ExitCode::from(1)
        }
    }
}

#[cfg(target_os = "wasi")]
mod checks {
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    use std::time::{Duration, Instant as StdInstant};

    use anyloop::{BaseProtocol, Error, ErrorKind, EventLoop, Protocol, Transport};

    pub(crate) fn run(check: &str, args: &[String]) -> Result<(), Error> {
        let arg = |i: usize| args.get(i).and_then(|a| a.parse::<u64>().ok()).unwrap_or(0);
        match check {
            "timers" => timers(),
            "cancel" => cancel(),
            "stop_batch" => stop_batch(),
            "stdin" => stdin(),
            "stdout_flood" => stdout_flood(arg(0) as usize),
            "exception" => exception(),
            "panic" => panic_in_callback(),
            "idle" => idle(arg(0)),
            "unsupported" => unsupported(),
            "deadlock" => deadlock(),
            "debug" => debug(),
            "watch" => watch(),
            "watch_unwatchable" => watch_unwatchable(),
            #[cfg(target_env = "p2")]
            "refused" => net::refused(arg(0) as u16),
            #[cfg(target_env = "p2")]
            "tcp_client" => net::tcp_client(arg(0) as u16, arg(1) as usize),
            #[cfg(target_env = "p2")]
            "udp" => net::udp(arg(0) as u16),
            #[cfg(target_env = "p2")]
            "dns" => net::dns(),
            #[cfg(target_env = "p2")]
            "server_lifecycle" => net::server_lifecycle(),
            other => Err(Error::new(ErrorKind::InvalidInput, format!("unknown check {other:?}"))),
        }
    }

    /// Timers scheduled out of order fire in deadline order, FIFO among
    /// equals, never before their deadline on the loop clock or on the
    /// host's own clock (std::time::Instant is the WASI monotonic clock).
    fn timers() -> Result<(), Error> {
        let lp = anyloop::new_event_loop()?;
        let t0 = lp.time();
        let h0 = StdInstant::now();
        let order = Rc::new(RefCell::new(Vec::new()));
        for (id, ms) in [(0u32, 50u64), (1, 10), (2, 30), (3, 10), (4, 0), (5, 20), (6, 1)] {
            let order = order.clone();
            lp.call_later(Duration::from_millis(ms), move |lp| {
                let at_loop = lp.time() - t0;
                let at_host = h0.elapsed();
                println!(
                    "fired {id} want_us {} loop_us {} host_us {}",
                    ms * 1000,
                    at_loop.as_micros(),
                    at_host.as_micros()
                );
                order.borrow_mut().push(id);
            })?;
        }
        lp.call_later(Duration::from_millis(80), |lp| lp.stop())?;
        lp.run_forever()?;
        let ids: Vec<String> = order.borrow().iter().map(|i| i.to_string()).collect();
        println!("order {}", ids.join(","));
        lp.close()
    }

    /// Cancelled handles never run: a timer, a call_soon, a timer
    /// cancelled from another callback.
    fn cancel() -> Result<(), Error> {
        let lp = anyloop::new_event_loop()?;
        let ran = Rc::new(RefCell::new(Vec::new()));
        let r = ran.clone();
        let h1 = lp.call_later(Duration::from_millis(10), move |_| r.borrow_mut().push("timer"))?;
        h1.cancel();
        let r = ran.clone();
        let h2 = lp.call_soon(move |_| r.borrow_mut().push("soon"))?;
        h2.cancel();
        let r = ran.clone();
        let h4 = lp.call_later(Duration::from_millis(40), move |_| r.borrow_mut().push("late"))?;
        lp.call_later(Duration::from_millis(20), move |_| h4.cancel())?;
        let r = ran.clone();
        lp.call_later(Duration::from_millis(30), move |_| r.borrow_mut().push("kept"))?;
        lp.call_later(Duration::from_millis(60), |lp| lp.stop())?;
        lp.run_forever()?;
        println!("ran {}", ran.borrow().join(","));
        println!("cancelled {} {}", h1.cancelled(), h2.cancelled());
        lp.close()
    }

    /// stop() inside a batch: the rest of the batch runs, what the batch
    /// scheduled waits for the next run_forever.
    fn stop_batch() -> Result<(), Error> {
        let lp = anyloop::new_event_loop()?;
        let log = Rc::new(RefCell::new(Vec::new()));
        let l = log.clone();
        lp.call_soon(move |lp| {
            l.borrow_mut().push("a");
            lp.stop();
            let l = l.clone();
            let _ = lp.call_soon(move |_| l.borrow_mut().push("later"));
        })?;
        for name in ["b", "c"] {
            let l = log.clone();
            lp.call_soon(move |_| l.borrow_mut().push(name))?;
        }
        lp.run_forever()?;
        println!("first {}", log.borrow().join(","));
        lp.call_soon(|lp| lp.stop())?;
        lp.run_forever()?;
        println!("second {}", log.borrow().join(","));
        lp.close()
    }

    /// A tick counter, to show the loop keeps running while it waits.
    fn ticker(lp: &EventLoop, ticks: Rc<Cell<u32>>, every: Duration) {
        let t = ticks.clone();
        let _ = lp.call_later(every, move |lp| {
            t.set(t.get() + 1);
            ticker(lp, t, every);
        });
    }

    struct StdinLog {
        ticks: Rc<Cell<u32>>,
        lost: anyloop::LoopFuture<()>,
    }
    impl BaseProtocol for StdinLog {
        fn connection_lost(&mut self, exc: Option<Error>) {
            println!("lost {:?}", exc.map(|e| e.kind()));
            let _ = self.lost.set_result(());
        }
    }
    impl Protocol for StdinLog {
        fn data_received(&mut self, data: &[u8]) {
            println!("data {} {:?}", self.ticks.get(), String::from_utf8_lossy(data));
        }
        fn eof_received(&mut self) -> bool {
            println!("eof {}", self.ticks.get());
            false
        }
    }

    /// Reads stdin through connect_read_pipe while a 20 ms ticker runs:
    /// prints each chunk and EOF with the tick count at that moment.
    fn stdin() -> Result<(), Error> {
        let lp = anyloop::new_event_loop()?;
        let ticks = Rc::new(Cell::new(0));
        ticker(&lp, ticks.clone(), Duration::from_millis(20));
        let t = ticks.clone();
        let lost = lp.create_future::<()>();
        let l = lost.clone();
        lp.run_until_complete({
            let lp = lp.clone();
            async move {
                let (_transport, _p) = lp.connect_read_pipe(move || StdinLog { ticks: t, lost: l }, 0).await?;
                lost.await
            }
        })??;
        lp.close()
    }

    #[derive(Default)]
    struct Flow {
        paused: Cell<bool>,
        pauses: Cell<u32>,
        resumes: Cell<u32>,
        sent: Cell<usize>,
        max_buffer: Cell<usize>,
        ticks_paused: Cell<u32>,
        transport: RefCell<Option<Rc<dyn Transport>>>,
    }

    struct FlowProtocol {
        s: Rc<Flow>,
        total: usize,
    }
    impl BaseProtocol for FlowProtocol {
        fn pause_writing(&mut self) {
            self.s.paused.set(true);
            self.s.pauses.set(self.s.pauses.get() + 1);
        }
        fn resume_writing(&mut self) {
            self.s.paused.set(false);
            self.s.resumes.set(self.s.resumes.get() + 1);
            let (s, total) = (self.s.clone(), self.total);
            if let Ok(lp) = anyloop::get_running_loop() {
                let _ = lp.call_soon(move |_| pump(&s, total));
            }
        }
        fn connection_lost(&mut self, exc: Option<Error>) {
            let s = &self.s;
            eprintln!(
                "pauses={} resumes={} ticks_paused={} max_buffer={} sent={} exc={:?}",
                s.pauses.get(),
                s.resumes.get(),
                s.ticks_paused.get(),
                s.max_buffer.get(),
                s.sent.get(),
                exc
            );
            if let Ok(lp) = anyloop::get_running_loop() {
                lp.stop();
            }
        }
    }
    impl Protocol for FlowProtocol {
        fn data_received(&mut self, _data: &[u8]) {}
    }

    fn pump(s: &Rc<Flow>, total: usize) {
        let Some(t) = s.transport.borrow().clone() else { return };
        while !s.paused.get() && s.sent.get() < total {
            let start = s.sent.get();
            let n = (64 * 1024).min(total - start);
            let chunk: Vec<u8> = (start..start + n).map(|i| (i % 251) as u8).collect();
            if t.write(&chunk).is_err() {
                return;
            }
            s.sent.set(start + n);
            s.max_buffer.set(s.max_buffer.get().max(t.get_write_buffer_size()));
        }
        if s.sent.get() >= total {
            t.close();
        }
    }

    /// Writes `total` bytes (a known pattern) to stdout through
    /// connect_write_pipe, honouring pause/resume_writing, while a 5 ms
    /// ticker counts the ticks that happen while paused.
    fn stdout_flood(total: usize) -> Result<(), Error> {
        let lp = anyloop::new_event_loop()?;
        let s = Rc::new(Flow::default());
        let s2 = s.clone();
        let (t, _p) = lp.run_until_complete({
            let lp = lp.clone();
            async move { lp.connect_write_pipe(move || FlowProtocol { s: s2, total }, 1).await }
        })??;
        *s.transport.borrow_mut() = Some(t);
        fn tick(lp: &EventLoop, s: Rc<Flow>) {
            let _ = lp.call_later(Duration::from_millis(5), move |lp| {
                if s.paused.get() {
                    s.ticks_paused.set(s.ticks_paused.get() + 1);
                }
                tick(lp, s);
            });
        }
        tick(&lp, s.clone());
        let s3 = s.clone();
        lp.call_soon(move |_| pump(&s3, total))?;
        lp.run_forever()?;
        s.transport.borrow_mut().take();
        lp.close()
    }

    /// The exception handler gets what has no caller to return to (here a
    /// future's error nobody retrieved); the default handler writes to
    /// stderr.
    fn exception() -> Result<(), Error> {
        let lp = anyloop::new_event_loop()?;
        let seen = Rc::new(RefCell::new(Vec::new()));
        let s = seen.clone();
        lp.set_exception_handler(Some(Rc::new(move |_, ctx| {
            s.borrow_mut().push(format!(
                "{} / {:?}",
                ctx.message,
                ctx.exception.as_ref().map(|e| e.message().to_string())
            ));
        })));
        lp.call_soon(|lp| {
            let f = lp.create_future::<u32>();
            let _ = f.set_exception(Error::new(ErrorKind::Other, "boom"));
            drop(f);
        })?;
        lp.call_soon(|lp| lp.stop())?;
        lp.run_forever()?;
        for s in seen.borrow().iter() {
            println!("handler {s}");
        }
        lp.set_exception_handler(None);
        lp.call_exception_handler(&anyloop::ExceptionContext::new("default handler reached"));
        lp.close()
    }

    /// A panic in a callback: wasm aborts on panic, so the module traps
    /// (there is nothing to unwind); the message reaches stderr.
    fn panic_in_callback() -> Result<(), Error> {
        let lp = anyloop::new_event_loop()?;
        lp.call_soon(|_| panic!("probe panic in a callback"))?;
        lp.call_soon(|lp| lp.stop())?;
        lp.run_forever()?;
        println!("survived");
        lp.close()
    }

    /// An idle loop with one timer `secs` seconds away.
    fn idle(secs: u64) -> Result<(), Error> {
        let lp = anyloop::new_event_loop()?;
        let start = StdInstant::now();
        lp.call_later(Duration::from_secs(secs), |lp| lp.stop())?;
        lp.run_forever()?;
        let polls = lp.host::<anyloop::host::WasiHost>().map(|h| h.polls()).unwrap_or(0);
        println!("polls {polls} elapsed_ms {}", start.elapsed().as_millis());
        lp.close()
    }

    fn report<T>(what: &str, r: Result<T, Error>) {
        match r {
            Ok(_) => println!("{what} ok"),
            Err(e) => println!("{what} {:?} {}", e.kind(), e),
        }
    }

    /// What WASI cannot do returns Unsupported with a reason;
    /// call_soon_threadsafe works on the only thread there is.
    fn unsupported() -> Result<(), Error> {
        let lp = anyloop::new_event_loop()?;
        let l = lp.clone();
        lp.run_until_complete(async move {
            report("sock_accept", l.sock_accept(3).await);
            report("sock_recv", l.sock_recv(3, 10).await);
            report("sock_sendall", l.sock_sendall(3, b"x").await);
            report("subprocess_exec", l.subprocess_exec(|| Nop, "ls", &[], Default::default()).await);
            report("run_in_executor", l.run_in_executor(|| 1).await);
        })?;
        report("add_signal_handler", lp.add_signal_handler(2, |_| {}));
        let handle = lp.handle()?;
        handle.call_soon_threadsafe(|lp| {
            println!("threadsafe ran");
            lp.stop();
        })?;
        lp.run_forever()?;
        lp.close()
    }

    struct Nop;
    impl BaseProtocol for Nop {}
    impl anyloop::SubprocessProtocol for Nop {}

    /// Debug mode: a callback that takes longer than
    /// slow_callback_duration is reported on stderr.
    fn debug() -> Result<(), Error> {
        let lp = anyloop::new_event_loop()?;
        lp.set_debug(true);
        lp.set_slow_callback_duration(Duration::from_millis(50));
        lp.call_soon(|_| {
            let start = StdInstant::now();
            while start.elapsed() < Duration::from_millis(80) {}
        })?;
        lp.call_soon(|_| {})?;
        lp.call_soon(|lp| lp.stop())?;
        lp.run_forever()?;
        println!("debug {}", lp.get_debug());
        lp.close()
    }

    /// Nothing to wait for and nothing that could ever wake the module:
    /// run_forever returns an error instead of sleeping forever.
    fn deadlock() -> Result<(), Error> {
        let lp = anyloop::new_event_loop()?;
        report("run_forever", lp.run_forever());
        lp.close()
    }

    /// A reader on stdout (open, but not readable in wasmtime): the watcher
    /// is woken once, switched off, and reported — the loop does not spin.
    fn watch_unwatchable() -> Result<(), Error> {
        let lp = anyloop::new_event_loop()?;
        let seen = Rc::new(RefCell::new(Vec::new()));
        let s = seen.clone();
        lp.set_exception_handler(Some(Rc::new(move |_, ctx| s.borrow_mut().push(ctx.message.clone()))));
        let woken = Rc::new(Cell::new(0));
        let w = woken.clone();
        report("add_reader(1)", lp.add_reader(1, move |_| w.set(w.get() + 1)));
        lp.call_later(Duration::from_millis(200), |lp| lp.stop())?;
        lp.run_forever()?;
        let polls = lp.host::<anyloop::host::WasiHost>().map(|h| h.polls()).unwrap_or(0);
        println!("woken {} polls {polls}", woken.get());
        for m in seen.borrow().iter() {
            println!("handler {m}");
        }
        lp.close()
    }

    /// add_reader / add_writer on raw descriptors: stdout is writable at
    /// once; stdin's reader runs (level-triggered) while data is there and
    /// sees EOF; a descriptor that is not open is refused.
    fn watch() -> Result<(), Error> {
        use std::io::Read;
        let lp = anyloop::new_event_loop()?;
        report("add_reader(99)", lp.add_reader(99, |_| {}));
        let w = lp.add_writer(1, |lp| {
            println!("writable");
            let _ = lp.remove_writer(1);
        });
        report("add_writer(1)", w);
        let r = lp.add_reader(0, |lp| {
            // More than std's stdin buffer, so std reads the fd directly
            // and nothing stays hidden in its buffer.
            let mut buf = vec![0u8; 64 * 1024];
            match std::io::stdin().read(&mut buf) {
                Ok(0) | Err(_) => {
                    println!("reader eof removed={:?}", lp.remove_reader(0));
                    lp.stop();
                }
                Ok(n) => println!("reader {:?}", String::from_utf8_lossy(&buf[..n])),
            }
        });
        report("add_reader(0)", r);
        if lp.remove_reader(0).is_err() {
            // wasip2 has no descriptors to watch: nothing will stop the loop.
            return lp.close();
        }
        // Re-add after a remove, as a program may.
        lp.add_reader(0, |lp| {
            let mut buf = vec![0u8; 64 * 1024];
            match std::io::stdin().read(&mut buf) {
                Ok(0) | Err(_) => {
                    println!("reader eof removed={:?}", lp.remove_reader(0));
                    lp.stop();
                }
                Ok(n) => println!("reader {:?}", String::from_utf8_lossy(&buf[..n])),
            }
        })?;
        lp.run_forever()?;
        println!("removed again {:?}", lp.remove_reader(0));
        lp.close()
    }

    #[cfg(target_env = "p2")]
    pub(crate) mod net {
        use std::cell::RefCell;
        use std::net::SocketAddr;
        use std::rc::Rc;

        use anyloop::net::{AddrInfoHints, DatagramOptions, SockAddr};
        use anyloop::{BaseProtocol, DatagramProtocol, DatagramTransport, Error, Protocol, Transport};

        struct Nop;
        impl BaseProtocol for Nop {}
        impl Protocol for Nop {
            fn data_received(&mut self, _data: &[u8]) {}
        }

        /// create_connection to a closed port fails with ConnectionRefused.
        pub(crate) fn refused(port: u16) -> Result<(), Error> {
            let lp = anyloop::new_event_loop()?;
            let l = lp.clone();
            let r = lp.run_until_complete(async move {
                l.create_connection(|| Nop, "127.0.0.1", port, Default::default()).await.map(|_| ())
            })?;
            super::report("connect", r);
            lp.close()
        }

        struct Collect {
            got: Rc<RefCell<Vec<u8>>>,
            want: usize,
            transport: Option<Rc<dyn Transport>>,
        }
        impl BaseProtocol for Collect {
            fn connection_lost(&mut self, exc: Option<Error>) {
                println!("lost {:?}", exc.map(|e| e.kind()));
                // tcp_client runs the loop until the connection is gone;
                // server_lifecycle awaits instead (want == usize::MAX).
                if self.want != usize::MAX
                    && let Ok(lp) = anyloop::get_running_loop()
                {
                    lp.stop();
                }
            }
        }
        impl Protocol for Collect {
            fn connection_made(&mut self, t: Rc<dyn Transport>) {
                self.transport = Some(t);
            }
            fn data_received(&mut self, data: &[u8]) {
                let mut got = self.got.borrow_mut();
                got.extend_from_slice(data);
                if got.len() >= self.want
                    && let Some(t) = &self.transport
                {
                    t.close();
                }
            }
        }

        /// Connects to a native echo server, sends `n` bytes, reads them back.
        pub(crate) fn tcp_client(port: u16, n: usize) -> Result<(), Error> {
            let lp = anyloop::new_event_loop()?;
            let got = Rc::new(RefCell::new(Vec::new()));
            let g = got.clone();
            let l = lp.clone();
            let (t, _p) = lp.run_until_complete(async move {
                l.create_connection(
                    move || Collect { got: g, want: n, transport: None },
                    "127.0.0.1",
                    port,
                    Default::default(),
                )
                .await
            })??;
            println!("peer {:?} local {:?}", t.peername(), t.sockname().map(|a| a.ip()));
            let data: Vec<u8> = (0..n).map(|i| (i % 253) as u8).collect();
            t.write(&data)?;
            lp.run_forever()?;
            let ok = *got.borrow() == data;
            println!("echoed {} same {ok}", got.borrow().len());
            lp.close()
        }

        struct Udp {
            got: Rc<RefCell<Vec<(String, SocketAddr)>>>,
            want: usize,
            transport: Option<Rc<dyn DatagramTransport>>,
        }
        impl BaseProtocol for Udp {
            fn connection_lost(&mut self, _exc: Option<Error>) {
                if let Ok(lp) = anyloop::get_running_loop() {
                    lp.stop();
                }
            }
        }
        impl DatagramProtocol for Udp {
            fn connection_made(&mut self, t: Rc<dyn DatagramTransport>) {
                self.transport = Some(t);
            }
            fn datagram_received(&mut self, data: &[u8], addr: SocketAddr) {
                self.got.borrow_mut().push((String::from_utf8_lossy(data).into_owned(), addr));
                if self.got.borrow().len() >= self.want
                    && let Some(t) = &self.transport
                {
                    t.close();
                }
            }
            fn error_received(&mut self, exc: Error) {
                println!("error_received {:?}", exc.kind());
            }
        }

        /// A connected endpoint and an unconnected one, each sending three
        /// datagrams to a native UDP echo socket and printing the echoes.
        pub(crate) fn udp(port: u16) -> Result<(), Error> {
            let lp = anyloop::new_event_loop()?;
            let server: SocketAddr = ([127, 0, 0, 1], port).into();
            for connected in [true, false] {
                let got = Rc::new(RefCell::new(Vec::new()));
                let g = got.clone();
                let opts = if connected {
                    DatagramOptions { remote_addr: Some(SockAddr::Ip(server)), ..Default::default() }
                } else {
                    DatagramOptions { local_addr: Some(SockAddr::Host("127.0.0.1".into(), 0)), ..Default::default() }
                };
                let l = lp.clone();
                let (t, _p) = lp.run_until_complete(async move {
                    l.create_datagram_endpoint(move || Udp { got: g, want: 3, transport: None }, opts).await
                })??;
                for i in 0..3 {
                    let msg = format!("ping {i} connected={connected}");
                    t.sendto(msg.as_bytes(), if connected { None } else { Some(server) })?;
                }
                lp.run_forever()?;
                for (text, from) in got.borrow().iter() {
                    println!("echo {text:?} from {from}");
                }
            }
            lp.close()
        }

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

        /// A server and its clients in one module: serving state, the
        /// bound address, an echo, close() (clients stay), close_clients(),
        /// then wait_closed() resolves.
        pub(crate) fn server_lifecycle() -> Result<(), Error> {
            let lp = anyloop::new_event_loop()?;
            let l = lp.clone();
            lp.run_until_complete(async move {
                let server =
                    l.create_server(|| Echo { transport: None }, Some("127.0.0.1"), 0, Default::default()).await?;
                println!("serving {}", server.is_serving());
                let Some(anyloop::net::Addr::Ip(addr)) = server.sockets().first().cloned() else {
                    return Err(Error::new(anyloop::ErrorKind::Other, "no address"));
                };
                println!("bound loopback {} port>0 {}", addr.ip().is_loopback(), addr.port() > 0);
                let got = Rc::new(RefCell::new(Vec::new()));
                let g = got.clone();
                let (client, _p) = l
                    .create_connection(
                        move || Collect { got: g, want: usize::MAX, transport: None },
                        "127.0.0.1",
                        addr.port(),
                        Default::default(),
                    )
                    .await?;
                client.write(b"ping")?;
                while got.borrow().len() < 4 {
                    let f = l.create_future::<()>();
                    let f2 = f.clone();
                    l.call_later(std::time::Duration::from_millis(5), move |_| {
                        let _ = f2.set_result(());
                    })?;
                    f.await?;
                }
                println!("echo {:?}", String::from_utf8_lossy(&got.borrow()));
                server.close();
                println!("serving after close {}", server.is_serving());
                // The accepted connection is still open: wait_closed waits.
                client.write(b"pong")?;
                let closing = l.create_task({
                    let server = server.clone();
                    async move { server.wait_closed().await }
                })?;
                let f = l.create_future::<()>();
                let f2 = f.clone();
                l.call_later(std::time::Duration::from_millis(50), move |_| {
                    let _ = f2.set_result(());
                })?;
                f.await?;
                println!("wait_closed done before close_clients {}", closing.done());
                println!("echo {:?}", String::from_utf8_lossy(&got.borrow()));
                server.close_clients();
                closing.await??;
                println!("wait_closed done");
                // The server closed its end: the client sees EOF.
                let f = l.create_future::<()>();
                let f2 = f.clone();
                l.call_later(std::time::Duration::from_millis(50), move |_| {
                    let _ = f2.set_result(());
                })?;
                f.await?;
                println!("client closing {}", client.is_closing());
                Ok(())
            })??;
            lp.close()
        }

        /// getaddrinfo("localhost", "80") through wasi:sockets/ip-name-lookup.
        pub(crate) fn dns() -> Result<(), Error> {
            let lp = anyloop::new_event_loop()?;
            let l = lp.clone();
            let infos = lp.run_until_complete(async move {
                l.getaddrinfo(Some("localhost"), Some("80"), AddrInfoHints { socktype: 1, ..Default::default() }).await
            })??;
            for i in infos {
                println!("addr {} family {:?} socktype {}", i.addr, i.family, i.socktype);
            }
            lp.close()
        }
    }
}
