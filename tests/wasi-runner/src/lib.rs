//! Runs anyloop's WASI guests under an embedded wasmtime (48.x), for the
//! `anyloop-wasi-run` binary (`just demo-wasi`) and the wasmtime tests.
//!
//! * `run` instantiates a wasip1 module or a wasip2 component (told
//!   apart by the binary's header) with the given arguments, stdin and
//!   stdout, and returns its exit code and output.
//! * Networking is **loopback only**: connections, accepted clients and
//!   datagrams must name 127.0.0.0/8 or ::1; binds may also use the
//!   wildcard address with port 0 (the implicit bind of a connect).
//! * `StdinPipe` is a stdin that really waits (a tokio simplex pipe
//!   behind wasmtime's `AsyncStdinStream`): readiness follows the data.
//! * `BoundedPipe` is a stdout with a fixed capacity, reporting write
//!   readiness only when 4 KiB fit — a pipe with POSIX `PIPE_BUF`
//!   semantics — so a guest can meet backpressure.
//! * For wasip1, every `wasi_snapshot_preview1` import can be wrapped to
//!   count host calls (`Options::count_calls`).
//!
//! Modules are compiled once per process and cached: the first run of a
//! module pays for Cranelift, later runs (the timing-sensitive ones) do
//! not. Call `precompile` before measuring anything.
//!
//! Everything is behind the `runtime` feature.
#![cfg(feature = "runtime")]

mod pipes;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use wasmtime::component::{Component, ResourceTable};
use wasmtime::{Engine, Linker, Module, Store};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

pub use pipes::{BoundedPipe, PIPE_BUF, StdinPipe, StdinWriter, stdin_pipe};

/// Which WASI a guest was built for.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `wasm32-wasip1`: a core module on `wasi_snapshot_preview1`.
    P1,
    /// `wasm32-wasip2`: a component on WASI 0.2.
    P2,
}

impl Target {
    /// The Rust target triple.
    pub fn triple(self) -> &'static str {
        match self {
            Target::P1 => "wasm32-wasip1",
            Target::P2 => "wasm32-wasip2",
        }
    }
}

/// The cargo target directory this binary was built in (tests and the
/// runner live in `<target>/debug/…` or `<target>/release/…`), or
/// `ANYLOOP_WASM_TARGET_DIR`.
pub fn target_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("ANYLOOP_WASM_TARGET_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    exe.ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "debug" || n == "release"))
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// Where a guest binary (`kind` "examples" or "" for bins) built in release
/// mode for `target` lives. `just test-wasi` / `just demo-wasi` build them.
pub fn guest_path(target: Target, name: &str) -> PathBuf {
    target_dir().join(target.triple()).join("release").join(format!("{name}.wasm"))
}

/// Like [`guest_path`], for an example.
pub fn example_path(target: Target, name: &str) -> PathBuf {
    target_dir().join(target.triple()).join("release").join("examples").join(format!("{name}.wasm"))
}

/// What to give a guest.
pub struct Options {
    /// `argv[1..]` (`argv[0]` is the file name).
    pub args: Vec<String>,
    /// Its stdin.
    pub stdin: Stdin,
    /// Its stdout: captured, or a [`BoundedPipe`].
    pub stdout: Option<BoundedPipe>,
    /// Give it loopback networking (wasip2).
    pub network: bool,
    /// Count the guest's host calls (`Outcome::calls["host_calls"]`).
    pub count_calls: bool,
    /// Write stdout and stderr straight to the runner's own (the runner
    /// binary); otherwise they are captured.
    pub inherit_output: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            args: Vec::new(),
            stdin: Stdin::Empty,
            stdout: None,
            network: false,
            count_calls: false,
            inherit_output: false,
        }
    }
}

/// A guest's stdin.
pub enum Stdin {
    /// Empty, at EOF.
    Empty,
    /// These bytes, then EOF (always "ready": no waiting).
    Bytes(Vec<u8>),
    /// A pipe the test writes to while the guest runs.
    Pipe(StdinPipe),
    /// The runner's own stdin.
    Inherit,
}

/// What a guest did.
#[derive(Debug)]
pub struct Outcome {
    /// Its exit code (0 when `main` returned normally).
    pub code: i32,
    /// The trap that ended it, if it trapped (a panic aborts a wasm
    /// module with a trap).
    pub trap: Option<String>,
    /// What it wrote to stdout (empty with a [`BoundedPipe`]).
    pub stdout: Vec<u8>,
    /// What it wrote to stderr.
    pub stderr: Vec<u8>,
    /// Counted host calls (`"host_calls"`), if asked for.
    pub calls: BTreeMap<String, u64>,
    /// How long it ran (instantiation included, compilation not).
    pub elapsed: Duration,
}

impl Outcome {
    /// stdout as text.
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    /// stderr as text.
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// The shared engine: Cranelift without its own optimizations (the guests
/// are already optimized by LLVM, and a test build of Cranelift is slow).
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = wasmtime::Config::new();
        config.cranelift_opt_level(wasmtime::OptLevel::None);
        Engine::new(&config).unwrap_or_default()
    })
}

enum Compiled {
    Module(Module),
    Component(Component),
}

fn compiled(path: &Path) -> wasmtime::Result<Arc<Compiled>> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<Compiled>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(c) = cache.lock().map_err(|_| wasmtime::format_err!("cache poisoned"))?.get(path) {
        return Ok(c.clone());
    }
    let bytes = std::fs::read(path).map_err(|e| {
        wasmtime::format_err!(
            "cannot read {}: {e} — build the WASI guests first (`just test-wasi` or `just demo-wasi` does)",
            path.display()
        )
    })?;
    // A component's header has layer 1 (bytes 6..8 = 01 00); a module's 0.
    let c = if bytes.get(6..8) == Some(&[1, 0]) {
        Compiled::Component(Component::new(engine(), &bytes)?)
    } else {
        Compiled::Module(Module::new(engine(), &bytes)?)
    };
    let c = Arc::new(c);
    cache.lock().map_err(|_| wasmtime::format_err!("cache poisoned"))?.insert(path.to_path_buf(), c.clone());
    Ok(c)
}

/// Compiles `path` now, so a later [`run`] measures only the guest.
pub fn precompile(path: &Path) -> wasmtime::Result<()> {
    compiled(path).map(|_| ())
}

/// The loopback-only policy (see the crate docs).
pub fn loopback_only(addr: SocketAddr, usage: SocketAddrUse) -> bool {
    let loopback = match addr.ip() {
        IpAddr::V4(ip) => ip.is_loopback(),
        IpAddr::V6(ip) => ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    };
    match usage {
        SocketAddrUse::TcpBind | SocketAddrUse::UdpBind | SocketAddrUse::TcpListen => {
            loopback || (addr.ip().is_unspecified() && addr.port() == 0)
        }
        _ => loopback,
    }
}

struct P2State {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for P2State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.ctx, table: &mut self.table }
    }
}

/// Runs the guest at `path` to completion.
pub fn run(path: &Path, opts: Options) -> wasmtime::Result<Outcome> {
    let compiled = compiled(path)?;
    let stdout_capture = MemoryOutputPipe::new(64 << 20);
    let stderr_capture = MemoryOutputPipe::new(64 << 20);
    let mut b = WasiCtxBuilder::new();
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    b.arg(&name);
    b.args(&opts.args);
    match opts.stdin {
        Stdin::Empty => {
            b.stdin(wasmtime_wasi::p2::pipe::MemoryInputPipe::new(Vec::<u8>::new()));
        }
        Stdin::Bytes(bytes) => {
            b.stdin(wasmtime_wasi::p2::pipe::MemoryInputPipe::new(bytes));
        }
        Stdin::Pipe(p) => {
            b.stdin(p.into_stream());
        }
        Stdin::Inherit => {
            b.inherit_stdin();
        }
    }
    match &opts.stdout {
        _ if opts.inherit_output => b.inherit_stdout(),
        Some(p) => b.stdout(p.clone()),
        None => b.stdout(stdout_capture.clone()),
    };
    if opts.inherit_output {
        b.inherit_stderr();
    } else {
        b.stderr(stderr_capture.clone());
    }
    if opts.network {
        b.socket_addr_check(|addr, usage| Box::pin(async move { loopback_only(addr, usage) }));
        b.allow_ip_name_lookup(true);
        b.allow_tcp(true);
        b.allow_udp(true);
    }
    let start = Instant::now();
    let mut calls = BTreeMap::new();
    let result = match &*compiled {
        Compiled::Module(module) => run_p1(module, b.build_p1(), opts.count_calls, &mut calls),
        Compiled::Component(component) => run_p2(component, b.build(), opts.count_calls, &mut calls),
    };
    let elapsed = start.elapsed();
    if let Some(p) = &opts.stdout {
        p.close();
    }
    let (code, trap) = match result {
        Ok(code) => (code, None),
        Err(e) => (-1, Some(format!("{e:?}"))),
    };
    Ok(Outcome {
        code,
        trap,
        stdout: stdout_capture.contents().to_vec(),
        stderr: stderr_capture.contents().to_vec(),
        calls,
        elapsed,
    })
}

/// The exit code of a finished guest: 0, its `proc_exit`/`exit` code, or
/// the trap as an error.
fn exit_code(r: wasmtime::Result<()>) -> wasmtime::Result<i32> {
    match r {
        Ok(()) => Ok(0),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(I32Exit(code)) => Ok(*code),
            None => Err(e),
        },
    }
}

fn run_p1(
    module: &Module,
    ctx: wasmtime_wasi::p1::WasiP1Ctx,
    count: bool,
    calls: &mut BTreeMap<String, u64>,
) -> wasmtime::Result<i32> {
    let mut linker: Linker<wasmtime_wasi::p1::WasiP1Ctx> = Linker::new(engine());
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |t| t)?;
    let mut store = Store::new(engine(), ctx);
    let counter = count_host_calls(&mut store, count);
    let instance = linker.instantiate(&mut store, module)?;
    let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
    let r = exit_code(start.call(&mut store, ()));
    if count {
        calls.insert("host_calls".to_string(), counter.load(Ordering::Relaxed));
    }
    r
}

fn run_p2(
    component: &Component,
    ctx: WasiCtx,
    count: bool,
    calls: &mut BTreeMap<String, u64>,
) -> wasmtime::Result<i32> {
    let mut linker: wasmtime::component::Linker<P2State> = wasmtime::component::Linker::new(engine());
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    let mut store = Store::new(engine(), P2State { ctx, table: ResourceTable::new() });
    let counter = count_host_calls(&mut store, count);
    let command = wasmtime_wasi::p2::bindings::sync::Command::instantiate(&mut store, component, &linker)?;
    let r = match command.wasi_cli_run().call_run(&mut store) {
        Ok(Ok(())) => Ok(0),
        Ok(Err(())) => Ok(1),
        Err(e) => exit_code(Err(e)),
    };
    if count {
        calls.insert("host_calls".to_string(), counter.load(Ordering::Relaxed));
    }
    r
}

/// Counts every call from the guest into the host (wasmtime's call hook).
fn count_host_calls<T>(store: &mut Store<T>, count: bool) -> Arc<AtomicU64> {
    let counter = Arc::new(AtomicU64::new(0));
    if count {
        let c = counter.clone();
        store.call_hook(move |_, hook| {
            if matches!(hook, wasmtime::CallHook::CallingHost) {
                c.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        });
    }
    counter
}
