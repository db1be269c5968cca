//! The typed write side on real loopback sockets: `Stream::send` encodes
//! with the delimiter that cut the frame being handled, `send_with` with any
//! encoder, an encoding error queues nothing, and a stream that cannot
//! write says why.

mod common;

use common::{join, peer, read_all, send_and_shutdown, tcp_pair, Log};
use pants::delimiter::{Count, Packed, Until};
use pants::{Engine, Handler, NetStruct, PackError, Read, Stream, StreamError};

#[derive(NetStruct, Debug, PartialEq)]
struct Reply<'a> {
    seq: u16,
    #[netstruct(len = u8)]
    text: &'a str,
}

/// Reads lines; answers each in kind, then a packed reply, then a counted
/// body, and logs what `send` refused.
struct Answerer {
    log: Log,
    seq: u16,
}

impl Handler for Answerer {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        stream.send_with(&Until::lf(), b"hello").unwrap();
    }

    fn on_close(&mut self, stream: &mut Stream<Self>) {
        let refused = stream.send_with(&Until::lf(), b"too late");
        self.log.push(format!("after close: {}", common::kind(&refused.unwrap_err())));
    }
}

impl Read<Until> for Answerer {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        self.seq += 1;
        // A frame the peer would cut in two: refused, nothing queued.
        match stream.send([line, b"\nsmuggled"].concat()) {
            Err(StreamError::Pack(PackError::TerminatorInFrame { at })) => self.log.push(format!("refused at {at}")),
            other => panic!("expected a refusal, got {other:?}"),
        }
        stream.send(line.to_ascii_uppercase()).unwrap();
        let text = std::str::from_utf8(line).unwrap();
        stream.send_with(&Packed::<Reply>::new(), &Reply { seq: self.seq, text }).unwrap();
        let body = Count::new(3).unwrap();
        assert!(matches!(
            stream.send_with(&body, b"four"),
            Err(StreamError::Pack(PackError::WrongLength { expected: 3, len: 4 }))
        ));
        stream.send_with(&body, b"end").unwrap();
    }
}

#[test]
fn send_writes_frames_of_the_protocol_and_refuses_what_the_peer_would_misread() {
    let engine = Engine::new().unwrap();
    let (ours, theirs) = tcp_pair();
    let log = Log::new();
    Stream::new(Answerer { log: log.clone(), seq: 0 }).read_delimiter(Until::lf()).attach_tcp(&engine, ours).unwrap();
    let got = join(
        &engine,
        peer(move || {
            send_and_shutdown(&theirs, b"ab\ncd\n");
            read_all(&theirs).0
        }),
    );
    let mut expected = b"hello\n".to_vec();
    for (seq, line) in [(1u16, "ab"), (2, "cd")] {
        expected.extend_from_slice(line.to_ascii_uppercase().as_bytes());
        expected.push(b'\n');
        expected.extend_from_slice(&Reply { seq, text: line }.to_bytes().unwrap());
        expected.extend_from_slice(b"end");
    }
    assert_eq!(got, expected);
    common::wait(&engine, "on_close", || log.len() == 3);
    assert_eq!(log.events(), ["refused at 2", "refused at 2", "after close: Closed"]);
}

/// Reads packed notes and answers each with `send`, borrowing the frame.
struct Echoer;

impl Handler for Echoer {}

impl Read<Packed<Reply<'_>>> for Echoer {
    fn on_read(&mut self, stream: &mut Stream<Self, Packed<Reply<'_>>>, reply: Reply<'_>) {
        stream.send(&Reply { seq: reply.seq + 1, text: reply.text }).unwrap();
    }
}

#[test]
fn send_on_a_packed_stream_writes_its_struct() {
    let engine = Engine::new().unwrap();
    let (ours, theirs) = tcp_pair();
    Stream::new(Echoer).read_delimiter(Packed::<Reply>::new()).attach_tcp(&engine, ours).unwrap();
    let got = join(
        &engine,
        peer(move || {
            let mut wire = Reply { seq: 1, text: "one" }.to_bytes().unwrap();
            wire.extend(Reply { seq: 10, text: "two" }.to_bytes().unwrap());
            send_and_shutdown(&theirs, &wire);
            read_all(&theirs).0
        }),
    );
    let mut expected = Reply { seq: 2, text: "one" }.to_bytes().unwrap();
    expected.extend(Reply { seq: 11, text: "two" }.to_bytes().unwrap());
    assert_eq!(got, expected);
}
