//! The crypto floor: the same echo with only what any TLS 1.3 stack must
//! do per byte — seal and open every 16 KiB record with AES-128-GCM — and
//! nothing else: aws-lc-rs called directly, records opened in place in the
//! receive buffer (a `BufferedProtocol`, so the kernel reads straight into
//! it) and handed on without a copy, each record sealed in place in the send
//! buffer after the one copy an in-place AEAD needs. No handshake, fixed
//! keys: a measuring device, **not** a protocol. It shows how close to the
//! ceiling the real TLS transport is, and what the ceiling is on the
//! machine.

use std::rc::Rc;

use anyloop::{BaseProtocol, BufferedProtocol, Transport};
use aws_lc_rs::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

/// TLS's largest record payload.
const RECORD: usize = 16 * 1024;
const HEADER: usize = 5;
const TAG: usize = 16;

/// One direction's key and record sequence number (the nonce is IV ⊕
/// sequence, as TLS 1.3 makes it).
struct Direction {
    key: LessSafeKey,
    iv: [u8; 12],
    seq: u64,
}

impl Direction {
    fn new(secret: u8) -> Direction {
        let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &[secret; 16]).expect("a 16-byte key"));
        Direction { key, iv: [secret ^ 0x5c; 12], seq: 0 }
    }

    fn next_nonce(&mut self) -> Nonce {
        let mut n = self.iv;
        for (b, s) in n[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *b ^= s;
        }
        self.seq += 1;
        Nonce::assume_unique_for_key(n)
    }
}

/// The sending half: records are sealed into `out`, which leaves in one
/// write per batch.
struct Sealer {
    dir: Direction,
    out: Vec<u8>,
}

impl Sealer {
    fn seal(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let n = data.len().min(RECORD);
            let len = ((n + TAG) as u16).to_be_bytes();
            let header = [0x17, 0x03, 0x03, len[0], len[1]];
            self.out.extend_from_slice(&header);
            let start = self.out.len();
            self.out.extend_from_slice(&data[..n]);
            let nonce = self.dir.next_nonce();
            let tag = self
                .dir
                .key
                .seal_in_place_separate_tag(nonce, Aad::from(header), &mut self.out[start..])
                .expect("sealing cannot fail below the AES-GCM limits");
            self.out.extend_from_slice(tag.as_ref());
            data = &data[n..];
        }
    }

    fn flush(&mut self, t: &dyn Transport) {
        if !self.out.is_empty() {
            let _ = t.write(&self.out);
            self.out.clear();
        }
    }
}

/// The receiving half: the kernel reads into `buf[end..]`; complete
/// records are opened where they are.
struct Opener {
    dir: Direction,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Opener {
    fn buffer(&mut self, hint: usize) -> &mut [u8] {
        let want = hint.clamp(HEADER + RECORD + TAG, 128 * 1024);
        if self.buf.len() - self.end < want {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if self.buf.len() - self.end < want {
                self.buf.resize(self.end + want, 0);
            }
        }
        &mut self.buf[self.end..]
    }

    /// Opens every complete record, handing each plaintext to `f`.
    fn open(&mut self, n: usize, mut f: impl FnMut(&[u8])) {
        self.end += n;
        while self.end - self.start >= HEADER {
            let h = &self.buf[self.start..self.start + HEADER];
            let header = [h[0], h[1], h[2], h[3], h[4]];
            let len = u16::from_be_bytes([h[3], h[4]]) as usize;
            if self.end - self.start < HEADER + len {
                break;
            }
            let body = self.start + HEADER..self.start + HEADER + len;
            let nonce = self.dir.next_nonce();
            let plain =
                self.dir.key.open_in_place(nonce, Aad::from(header), &mut self.buf[body]).expect("an authentic record");
            f(plain);
            self.start += HEADER + len;
        }
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        }
    }
}

/// Both halves of one side of a connection.
struct Records {
    rx: Opener,
    tx: Sealer,
}

impl Records {
    fn new(server: bool) -> Records {
        let (up, down) = (Direction::new(1), Direction::new(2));
        let (rx, tx) = if server { (up, down) } else { (down, up) };
        Records { rx: Opener { dir: rx, buf: Vec::new(), start: 0, end: 0 }, tx: Sealer { dir: tx, out: Vec::new() } }
    }
}

/// The server's side: echoes every record's plaintext.
pub struct FloorEcho {
    transport: Option<Rc<dyn Transport>>,
    records: Records,
}

impl Default for FloorEcho {
    fn default() -> Self {
        FloorEcho { transport: None, records: Records::new(true) }
    }
}

impl BaseProtocol for FloorEcho {}
impl BufferedProtocol for FloorEcho {
    fn connection_made(&mut self, t: Rc<dyn Transport>) {
        self.transport = Some(t);
    }
    fn get_buffer(&mut self, hint: usize) -> &mut [u8] {
        self.records.rx.buffer(hint)
    }
    fn buffer_updated(&mut self, n: usize) {
        let Records { rx, tx } = &mut self.records;
        rx.open(n, |plain| tx.seal(plain));
        if let Some(t) = &self.transport {
            tx.flush(&**t);
        }
    }
}

/// The client's side: one message in flight, the next when it is back.
pub struct FloorPinger {
    transport: Option<Rc<dyn Transport>>,
    records: Records,
    msg: Rc<Vec<u8>>,
    got: usize,
    done: Rc<std::cell::Cell<u64>>,
    stop: Rc<std::cell::Cell<bool>>,
}

impl FloorPinger {
    pub fn new(msg: Rc<Vec<u8>>, done: Rc<std::cell::Cell<u64>>, stop: Rc<std::cell::Cell<bool>>) -> FloorPinger {
        FloorPinger { transport: None, records: Records::new(false), msg, got: 0, done, stop }
    }
}

impl BaseProtocol for FloorPinger {}
impl BufferedProtocol for FloorPinger {
    fn connection_made(&mut self, t: Rc<dyn Transport>) {
        self.records.tx.seal(&self.msg);
        self.records.tx.flush(&*t);
        self.transport = Some(t);
    }
    fn get_buffer(&mut self, hint: usize) -> &mut [u8] {
        self.records.rx.buffer(hint)
    }
    fn buffer_updated(&mut self, n: usize) {
        let mut got = 0;
        self.records.rx.open(n, |plain| got += plain.len());
        self.got += got;
        if self.got < self.msg.len() {
            return;
        }
        self.got -= self.msg.len();
        self.done.set(self.done.get() + 1);
        if !self.stop.get()
            && let Some(t) = &self.transport
        {
            self.records.tx.seal(&self.msg);
            self.records.tx.flush(&**t);
        }
    }
}

/// AES-128-GCM throughput of this machine, sealing and opening 16 KiB
/// records in place (aws-lc-rs, as the TLS transport): bytes per second of
/// CPU time (the process's other thread is idle meanwhile), so time the
/// machine's other tenants take does not count.
pub fn aes_gcm_speed() -> f64 {
    let mut tx = Direction::new(3);
    let mut rx = Direction::new(3);
    let mut buf = vec![0x5a_u8; RECORD + TAG];
    let header = [0x17, 0x03, 0x03, 0x40, 0x10];
    let (mut bytes, t0) = (0usize, anyloop_bench::process_cpu());
    while (anyloop_bench::process_cpu() - t0).as_secs_f64() < 0.3 {
        for _ in 0..64 {
            let n = tx.next_nonce();
            let tag =
                tx.key.seal_in_place_separate_tag(n, Aad::from(header), &mut buf[..RECORD]).expect("sealing works");
            buf[RECORD..].copy_from_slice(tag.as_ref());
            let n = rx.next_nonce();
            rx.key.open_in_place(n, Aad::from(header), &mut buf).expect("an authentic record");
            bytes += 2 * RECORD;
        }
    }
    bytes as f64 / (anyloop_bench::process_cpu() - t0).as_secs_f64()
}
