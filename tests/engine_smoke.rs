//! First end-to-end checks over loopback: echo, typed switching, close.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use pants::delimiter::{Count, Raw, Until};
use pants::{Address, Engine, Handler, Read, Server, Stream, StreamError};

struct Echo;
impl Handler for Echo {}
impl Read<Raw> for Echo {
    fn on_read(&mut self, stream: &mut Stream<Self, Raw>, data: &[u8]) {
        stream.write(data).unwrap();
    }
}

#[derive(Default)]
struct Log(Rc<RefCell<Vec<String>>>);

impl Handler for Log {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        self.0.borrow_mut().push("connect".into());
        stream.write(b"hello\r\n5\r\nworld").unwrap();
    }
    fn on_close(&mut self, _stream: &mut Stream<Self>) {
        self.0.borrow_mut().push("close".into());
    }
    fn on_connect_error(&mut self, stream: &mut Stream<Self>, error: StreamError) {
        self.0.borrow_mut().push(format!("connect_error: {error}"));
        stream.close();
    }
}
impl Read<Until> for Log {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        self.0.borrow_mut().push(format!("line {}", String::from_utf8_lossy(line)));
        if let Ok(n) = std::str::from_utf8(line).unwrap().parse::<usize>() {
            stream.read_delimiter(Count::new(n).unwrap());
        }
    }
}
impl Read<Count> for Log {
    fn on_read(&mut self, stream: &mut Stream<Self, Count>, body: &[u8]) {
        self.0.borrow_mut().push(format!("body {}", String::from_utf8_lossy(body)));
        stream.close();
    }
}

#[test]
fn echo_server_round_trip() {
    let engine = Engine::new().unwrap();
    let server = Server::from_fn(|_| Some(Stream::new(Echo))).listen(&engine, "127.0.0.1:0").unwrap();
    let Address::Ip(addr) = engine.local_address(server).unwrap() else { panic!("no address") };
    let client = std::thread::spawn(move || {
        use std::io::{Read as _, Write as _};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        s.write_all(&data).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        got == data
    });
    engine.run_until(Duration::from_secs(10), || client.is_finished()).unwrap();
    assert!(client.join().unwrap());
    assert_eq!(engine.connections(server).unwrap().len(), 0);
}

#[test]
fn connect_refused_reaches_on_connect_error() {
    let engine = Engine::new().unwrap();
    // A port nobody listens on: bind, take the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = Rc::new(RefCell::new(Vec::new()));
    Stream::new(Log(log.clone())).read_delimiter(Until::crlf()).connect(&engine, ("127.0.0.1", port)).unwrap();
    engine.run_until(Duration::from_secs(5), || log.borrow().iter().any(|l| l == "close")).unwrap();
    let log = log.borrow();
    assert!(log[0].starts_with("connect_error"), "{log:?}");
    assert_eq!(log[1], "close");
}

#[test]
fn lines_then_count_over_tcp() {
    let engine = Engine::new().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        use std::io::{Read as _, Write as _};
        let (mut s, _) = listener.accept().unwrap();
        let mut got = vec![0; 15];
        s.read_exact(&mut got).unwrap();
        s.write_all(&got).unwrap();
        // Our close() after the body half-closes: read_to_end sees the end.
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
        got
    });
    let log = Rc::new(RefCell::new(Vec::new()));
    let id = Stream::new(Log(log.clone())).read_delimiter(Until::crlf()).connect(&engine, Address::Ip(addr)).unwrap();
    let _ = id;
    engine.run_until(Duration::from_secs(5), || log.borrow().iter().any(|l| l == "close")).unwrap();
    assert_eq!(peer.join().unwrap(), b"hello\r\n5\r\nworld");
    let _ = Echo;
    let log = log.borrow();
    assert_eq!(*log, ["connect", "line hello", "line 5", "body world", "close"]);
}

mod panics_in_with_stream {
    use pants::delimiter::Raw;
    use pants::{Engine, Handler, Read, Server, ServerHandler, Stream, StreamBuilder, StreamError};

    struct Quiet;
    impl Handler for Quiet {}
    impl Read<Raw> for Quiet {
        fn on_read(&mut self, _: &mut Stream<Self, Raw>, _: &[u8]) {}
    }

    #[test]
    fn a_panic_inside_with_stream_is_an_error_and_closes_the_stream() {
        let engine = Engine::new().unwrap();
        let (ours, _theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let id = Stream::new(Quiet).attach_unix(&engine, ours).unwrap();
        let error = engine.with_stream::<Quiet, ()>(id, |_, _| panic!("boom")).unwrap_err();
        assert!(matches!(&error, StreamError::Panicked(message) if message == "boom"), "{error:?}");
        // The stream is closed, as after a panicking callback.
        assert!(engine.run_until(std::time::Duration::from_secs(5), || engine.channel_count() == 0).unwrap());
    }

    struct Refuser;
    impl ServerHandler for Refuser {
        type Handler = Quiet;
        type Delimiter = Raw;
        fn on_accept(&mut self, _: &mut Server, _: &pants::Address) -> Option<StreamBuilder<Quiet, Raw>> {
            None
        }
    }

    #[test]
    fn a_panic_inside_with_server_is_an_error_and_closes_the_server() {
        let engine = Engine::new().unwrap();
        let id = Server::new(Refuser).listen(&engine, "127.0.0.1:0").unwrap();
        let error = engine.with_server::<Refuser, ()>(id, |_, _| panic!("bang")).unwrap_err();
        assert!(matches!(&error, StreamError::Panicked(message) if message == "bang"), "{error:?}");
        assert_eq!(engine.channel_count(), 0, "the server closed");
        let again = engine.with_server::<Refuser, ()>(id, |_, _| ()).unwrap_err();
        assert!(matches!(again, StreamError::NoSuchStream(_)), "{again:?}");
    }
}
