//! Bulk senders: a handler writing from `on_write`, and the producer API
//! (`start_producing` / `on_produce`), over loopback sockets.

mod common;

use std::cell::Cell;
use std::io::Read as _;
use std::rc::Rc;

use common::{join, pattern, peer, read_all, read_n, tcp_pair, wait};
use pants::delimiter::Raw;
use pants::{Engine, Handler, Read, Stream};

/// Writes `chunk`-byte pieces of a pattern from `on_write` until `total`
/// bytes have gone, then closes.
struct OnWriteProducer {
    data: Vec<u8>,
    sent: usize,
    chunk: usize,
}

impl OnWriteProducer {
    fn next(&mut self, stream: &mut Stream<Self>) {
        if self.sent == self.data.len() {
            stream.close();
            return;
        }
        let end = (self.sent + self.chunk).min(self.data.len());
        stream.write(&self.data[self.sent..end]).unwrap();
        self.sent = end;
    }
}

impl Handler for OnWriteProducer {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        self.next(stream);
    }
    fn on_write(&mut self, stream: &mut Stream<Self>) {
        self.next(stream);
    }
}

impl Read<Raw> for OnWriteProducer {
    fn on_read(&mut self, _: &mut Stream<Self, Raw>, _: &[u8]) {}
}

fn produce_from_on_write(total: usize, chunk: usize) {
    let engine = Engine::new().unwrap();
    let (ours, theirs) = tcp_pair();
    let data = pattern(total, 7);
    let expected = data.clone();
    Stream::new(OnWriteProducer { data, sent: 0, chunk }).attach_tcp(&engine, ours).unwrap();
    let reader = peer(move || read_all(theirs));
    let (got, end) = join(&engine, reader);
    end.unwrap();
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "bytes arrived intact and in order");
}

#[test]
fn a_producer_writing_small_chunks_from_on_write_finishes() {
    // 1000 writes of 100 bytes: on today's main this stalled after 12,800.
    produce_from_on_write(100_000, 100);
}

#[test]
fn a_producer_writing_megabytes_from_on_write_finishes() {
    produce_from_on_write(16 << 20, 4096);
}

/// Answers each chunk with `ok\n`.
struct Echo;
impl Handler for Echo {}
impl Read<Raw> for Echo {
    fn on_read(&mut self, stream: &mut Stream<Self, Raw>, _: &[u8]) {
        stream.write(b"ok\n").unwrap();
    }
}

/// Sends `left` bytes through `on_produce` in `chunk` pieces, recording the
/// most it ever had queued.
struct Producer {
    data: Vec<u8>,
    sent: usize,
    chunk: usize,
    calls: Rc<Cell<usize>>,
    max_queued: Rc<Cell<u64>>,
    closed: Rc<Cell<bool>>,
}

impl Handler for Producer {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        stream.set_write_limit(256 * 1024);
        stream.start_producing();
        assert!(stream.is_producing());
    }

    fn on_produce(&mut self, stream: &mut Stream<Self>) {
        self.calls.set(self.calls.get() + 1);
        assert!(stream.queued() <= 128 * 1024, "called only at or below half the write limit");
        let end = (self.sent + self.chunk).min(self.data.len());
        stream.write(&self.data[self.sent..end]).unwrap();
        self.sent = end;
        self.max_queued.set(self.max_queued.get().max(stream.queued()));
        if self.sent == self.data.len() {
            stream.stop_producing();
            stream.close();
        }
    }

    fn on_close(&mut self, _: &mut Stream<Self>) {
        self.closed.set(true);
    }
}

impl Read<Raw> for Producer {
    fn on_read(&mut self, _: &mut Stream<Self, Raw>, _: &[u8]) {}
}

#[test]
fn a_producer_is_called_while_the_queue_is_below_half_the_write_limit() {
    let engine = Engine::new().unwrap();
    let (ours, theirs) = tcp_pair();
    let total = 32 << 20;
    let data = pattern(total, 11);
    let expected = data.clone();
    let (calls, max_queued, closed) = (Rc::default(), Rc::default(), Rc::default());
    let producer = Producer {
        data,
        sent: 0,
        chunk: 16 * 1024,
        calls: Rc::clone(&calls),
        max_queued: Rc::clone(&max_queued),
        closed: Rc::clone(&closed),
    };
    Stream::new(producer).attach_tcp(&engine, ours).unwrap();

    // A second, interactive stream must keep being served meanwhile.
    let (echo_ours, mut echo_theirs) = tcp_pair();
    Stream::new(Echo).attach_tcp(&engine, echo_ours).unwrap();
    let echo = peer(move || {
        use std::io::Write as _;
        for _ in 0..50 {
            echo_theirs.write_all(b"ping").unwrap();
            assert_eq!(read_n(&mut echo_theirs, 3), b"ok\n");
        }
    });

    // A slow reader: the producer must wait for it, not buffer 32 MiB.
    let reader = peer(move || {
        let mut theirs = theirs;
        let mut got = Vec::with_capacity(total);
        let mut chunk = vec![0u8; 8192];
        loop {
            match theirs.read(&mut chunk) {
                Ok(0) => return got,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("{e}"),
            }
            if got.len() < (1 << 20) {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        }
    });
    join(&engine, echo);
    let got = join(&engine, reader);
    wait(&engine, "on_close", || closed.get());
    assert!(got == expected, "32 MiB arrived intact and in order");
    assert!(calls.get() >= total / (16 * 1024), "one call per chunk");
    assert!(max_queued.get() <= 128 * 1024 + 16 * 1024, "queue bounded: {}", max_queued.get());
}

/// Starts producing but writes nothing: producing ends by itself.
struct Idle {
    calls: Rc<Cell<usize>>,
}
impl Handler for Idle {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        stream.start_producing();
    }
    fn on_produce(&mut self, _: &mut Stream<Self>) {
        self.calls.set(self.calls.get() + 1);
    }
}
impl Read<Raw> for Idle {
    fn on_read(&mut self, _: &mut Stream<Self, Raw>, _: &[u8]) {}
}

#[test]
fn a_producer_call_that_writes_nothing_ends_producing() {
    let engine = Engine::new().unwrap();
    let (ours, _theirs) = tcp_pair();
    let calls = Rc::new(Cell::new(0));
    let id = Stream::new(Idle { calls: calls.clone() }).attach_tcp(&engine, ours).unwrap();
    wait(&engine, "the first on_produce", || calls.get() == 1);
    common::run_for(&engine, std::time::Duration::from_millis(100));
    assert_eq!(calls.get(), 1, "no spinning");
    let producing = engine.with_stream::<Idle, _>(id, |_, stream| stream.is_producing()).unwrap();
    assert!(!producing);
}
