//! Streams on real loopback sockets: echo, readline limits, drain
//! back-pressure, cancellation without data loss, futures-io crates.

use std::rc::Rc;
use std::time::Duration;

use anyloop::net::ServerOptions;
use anyloop::{ErrorKind, StreamWriter};
use anyloop_tests::{port_of, run, stream_echo as echo};

#[test]
fn start_server_and_open_connection_echo_lines() {
    run(|lp| async move {
        let server = lp.start_server(echo, Some("127.0.0.1"), 0, ServerOptions::default()).await.unwrap();
        let (mut r, w) = lp.open_connection("127.0.0.1", port_of(&server)).await.unwrap();
        for i in 0..50 {
            let line = format!("line {i}\n");
            w.write(line.as_bytes()).unwrap();
            assert_eq!(r.readline().await.unwrap(), line.as_bytes());
        }
        w.write_eof().unwrap();
        assert_eq!(r.read(10).await.unwrap(), b"");
        assert!(r.at_eof());
        server.close();
        server.wait_closed().await.unwrap();
    });
}

#[test]
fn ten_mebibytes_round_trip_byte_for_byte() {
    run(|lp| async move {
        let server = lp.start_server(echo, Some("127.0.0.1"), 0, ServerOptions::default()).await.unwrap();
        let (mut r, w) = lp.open_connection("127.0.0.1", port_of(&server)).await.unwrap();
        let data: Vec<u8> = (0..10 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        let expected = data.clone();
        let writer = anyloop::spawn(async move {
            for chunk in data.chunks(100_000) {
                w.write(chunk).unwrap();
                w.drain().await.unwrap();
            }
            w.write_eof().unwrap();
            w
        })
        .unwrap();
        let got = r.read_to_end().await.unwrap();
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "echoed bytes differ");
        drop(writer.await.unwrap());
        server.close();
    });
}

#[test]
fn readline_over_the_limit_is_a_typed_error_and_the_stream_goes_on() {
    run(|lp| async move {
        let server = lp.start_server(echo, Some("127.0.0.1"), 0, ServerOptions::default()).await.unwrap();
        let (mut r, w) = lp.open_connection("127.0.0.1", port_of(&server)).await.unwrap();
        let long = vec![b'x'; anyloop::DEFAULT_LIMIT + 10];
        w.write(&long).unwrap();
        w.write(b"\nshort\n").unwrap();
        let err = r.readline().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LimitOverrun);
        // The long line was discarded; the next one reads fine.
        let mut next = r.readline().await.unwrap();
        while next.iter().all(|b| *b == b'x' || *b == b'\n') && next != b"short\n" {
            next = r.readline().await.unwrap();
        }
        assert_eq!(next, b"short\n");
        // readuntil keeps the data when the separator is missing.
        w.write(b"abc").unwrap();
        w.write_eof().unwrap();
        let e = r.readuntil(b"!").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnexpectedEof);
        assert_eq!(r.read(100).await.unwrap(), b"abc", "nothing lost");
        server.close();
    });
}

#[test]
fn read_exact_reports_eof_and_keeps_the_partial_bytes() {
    run(|lp| async move {
        let server = lp
            .start_server(
                |_r, w: StreamWriter| async move {
                    w.write(b"12345").unwrap();
                    w.close();
                },
                Some("127.0.0.1"),
                0,
                ServerOptions::default(),
            )
            .await
            .unwrap();
        let (mut r, _w) = lp.open_connection("127.0.0.1", port_of(&server)).await.unwrap();
        assert_eq!(r.read_exact(2).await.unwrap(), b"12");
        let e = r.read_exact(10).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::UnexpectedEof);
        assert_eq!(r.read_to_end().await.unwrap(), b"345");
        server.close();
    });
}

#[test]
fn drain_blocks_a_writer_whose_peer_does_not_read() {
    run(|lp| async move {
        // The server accepts but never reads.
        let held = Rc::new(std::cell::RefCell::new(Vec::new()));
        let h = held.clone();
        let server = lp
            .start_server(
                move |r, w| {
                    h.borrow_mut().push((r, w));
                    async {}
                },
                Some("127.0.0.1"),
                0,
                ServerOptions::default(),
            )
            .await
            .unwrap();
        let (_r, w) = lp.open_connection("127.0.0.1", port_of(&server)).await.unwrap();
        let chunk = vec![7u8; 64 * 1024];
        let mut written = 0usize;
        let blocked = loop {
            w.write(&chunk).unwrap();
            written += chunk.len();
            let transport_buffer = w.transport().get_write_buffer_size();
            let high = w.transport().get_write_buffer_limits().1;
            match anyloop::timeout(Duration::from_millis(200), w.drain()).await {
                Ok(r) => r.unwrap(),
                Err(_) => break transport_buffer,
            }
            assert!(written < 64 * 1024 * 1024, "drain never blocked");
            assert!(transport_buffer <= high + chunk.len());
        };
        // Memory stays bounded by the high-water mark plus one write.
        let high = w.transport().get_write_buffer_limits().1;
        assert!(blocked <= high + chunk.len(), "buffered {blocked} > high {high} + one write");
        // Once the peer reads, drain completes.
        let (mut pr, _pw) = held.borrow_mut().pop().unwrap();
        let reader = anyloop::spawn(async move {
            let mut n = 0;
            while n < written {
                n += pr.read(1 << 20).await.unwrap().len();
            }
            n
        })
        .unwrap();
        w.drain().await.unwrap();
        assert_eq!(reader.await.unwrap(), written);
        server.close();
    });
}

#[test]
fn a_read_cancelled_by_a_timeout_loses_no_bytes() {
    run(|lp| async move {
        let server = lp.start_server(echo, Some("127.0.0.1"), 0, ServerOptions::default()).await.unwrap();
        let (mut r, w) = lp.open_connection("127.0.0.1", port_of(&server)).await.unwrap();
        w.write(b"hello").unwrap();
        let e = anyloop::timeout(Duration::from_millis(100), r.readuntil(b"\n")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut);
        w.write(b" world\n").unwrap();
        assert_eq!(r.readline().await.unwrap(), b"hello world\n", "bytes from before the timeout are kept");
        server.close();
    });
}

#[test]
fn a_task_cancelled_while_reading_leaves_the_reader_to_another_task() {
    run(|lp| async move {
        let server = lp.start_server(echo, Some("127.0.0.1"), 0, ServerOptions::default()).await.unwrap();
        let (r, w) = lp.open_connection("127.0.0.1", port_of(&server)).await.unwrap();
        let shared = Rc::new(futures::lock::Mutex::new(r));
        let s = shared.clone();
        let reader_task = anyloop::spawn(async move {
            let mut r = s.lock().await;
            r.readline().await
        })
        .unwrap();
        w.write(b"first part, ").unwrap();
        anyloop::sleep(Duration::from_millis(50)).await;
        reader_task.cancel(None);
        assert!(reader_task.await.unwrap_err().is_cancelled());
        w.write(b"second part\n").unwrap();
        let mut r = shared.lock().await;
        assert_eq!(r.readline().await.unwrap(), b"first part, second part\n");
        server.close();
    });
}

#[test]
fn futures_io_crates_work_over_our_streams() {
    use asynchronous_codec::{Framed, LinesCodec};
    use futures::{SinkExt, StreamExt};
    run(|lp| async move {
        let server = lp.start_server(echo, Some("127.0.0.1"), 0, ServerOptions::default()).await.unwrap();
        let (r, w) = lp.open_connection("127.0.0.1", port_of(&server)).await.unwrap();
        // futures::io utilities: BufRead lines over the reader.
        let mut lines = futures::io::AsyncBufReadExt::lines(r);
        let mut w = w;
        futures::io::AsyncWriteExt::write_all(&mut w, b"alpha\nbeta\n").await.unwrap();
        futures::io::AsyncWriteExt::flush(&mut w).await.unwrap();
        assert_eq!(lines.next().await.unwrap().unwrap(), "alpha");
        assert_eq!(lines.next().await.unwrap().unwrap(), "beta");

        // A codec crate over a whole connection (reader + writer joined).
        let (r2, w2) = lp.open_connection("127.0.0.1", port_of(&server)).await.unwrap();
        let mut framed = Framed::new(anyloop::DuplexStream::new(r2, w2), LinesCodec);
        framed.send("gamma\n".to_string()).await.unwrap();
        assert_eq!(framed.next().await.unwrap().unwrap(), "gamma\n");
        server.close();
    });
}
