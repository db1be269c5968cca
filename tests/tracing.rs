//! The `tracing` feature: a span per stream and server, entered around the
//! stream's callbacks, and events for connects, closes (with the
//! counters), errors and TLS handshakes, checked with a small capturing
//! subscriber written here (no `tracing-subscriber`).
#![cfg(feature = "tracing")]

mod common;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{closed_port, peer, read_all, wait, IO_TIMEOUT};
use pants::delimiter::Until;
use pants::{Address, Engine, Handler, Read, Server, Stream, StreamId};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

// ---------------------------------------------------------------------------
// A capturing subscriber
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct SpanData {
    name: &'static str,
    target: String,
    fields: BTreeMap<String, String>,
    parent: Option<u64>,
    /// References alive (the span is closed at 0).
    refs: usize,
    entered: usize,
}

#[derive(Debug, Clone)]
struct EventData {
    level: Level,
    message: String,
    fields: BTreeMap<String, String>,
    /// The span it is in (explicit parent, else the current span).
    span: Option<u64>,
}

#[derive(Default)]
struct State {
    next: u64,
    spans: BTreeMap<u64, SpanData>,
    /// Entered spans, innermost last (the tests are single-threaded).
    stack: Vec<u64>,
    events: Vec<EventData>,
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<State>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_string(), format!("{value:?}"));
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _metadata: &Metadata<'_>) -> bool {
        true
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut state = self.0.lock().unwrap();
        state.next += 1;
        let id = state.next;
        let mut fields = BTreeMap::new();
        span.record(&mut Fields(&mut fields));
        let parent = match span.parent() {
            Some(parent) => Some(parent.into_u64()),
            None if span.is_contextual() => state.stack.last().copied(),
            None => None,
        };
        let data = SpanData {
            name: span.metadata().name(),
            target: span.metadata().target().to_string(),
            fields,
            parent,
            refs: 1,
            entered: 0,
        };
        state.spans.insert(id, data);
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut state = self.0.lock().unwrap();
        if let Some(data) = state.spans.get_mut(&span.into_u64()) {
            values.record(&mut Fields(&mut data.fields));
        }
    }

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut state = self.0.lock().unwrap();
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let message = fields.remove("message").unwrap_or_default();
        let span = match event.parent() {
            Some(parent) => Some(parent.into_u64()),
            None if event.is_contextual() => state.stack.last().copied(),
            None => None,
        };
        state.events.push(EventData { level: *event.metadata().level(), message, fields, span });
    }

    fn enter(&self, span: &Id) {
        let mut state = self.0.lock().unwrap();
        state.stack.push(span.into_u64());
        if let Some(data) = state.spans.get_mut(&span.into_u64()) {
            data.entered += 1;
        }
    }

    fn exit(&self, span: &Id) {
        let mut state = self.0.lock().unwrap();
        let top = state.stack.pop();
        assert_eq!(top, Some(span.into_u64()), "spans exited out of order");
    }

    fn clone_span(&self, span: &Id) -> Id {
        if let Some(data) = self.0.lock().unwrap().spans.get_mut(&span.into_u64()) {
            data.refs += 1;
        }
        span.clone()
    }

    fn try_close(&self, span: Id) -> bool {
        let mut state = self.0.lock().unwrap();
        match state.spans.get_mut(&span.into_u64()) {
            Some(data) => {
                data.refs -= 1;
                data.refs == 0
            }
            None => false,
        }
    }
}

impl Capture {
    fn spans(&self) -> BTreeMap<u64, SpanData> {
        self.0.lock().unwrap().spans.clone()
    }

    fn events(&self) -> Vec<EventData> {
        self.0.lock().unwrap().events.clone()
    }

    /// The stream span with this id field.
    fn stream_span(&self, id: StreamId) -> (u64, SpanData) {
        let id = id.to_string();
        let spans = self.spans();
        let found: Vec<_> =
            spans.into_iter().filter(|(_, s)| s.name == "stream" && s.fields.get("id") == Some(&id)).collect();
        assert_eq!(found.len(), 1, "one span for stream {id}: {found:?}");
        found.into_iter().next().unwrap()
    }

    /// The events in span `span`, as "message" strings.
    fn messages_in(&self, span: u64) -> Vec<String> {
        self.events().into_iter().filter(|e| e.span == Some(span)).map(|e| e.message).collect()
    }

    fn event_in(&self, span: u64, message: &str) -> EventData {
        let found: Vec<_> =
            self.events().into_iter().filter(|e| e.span == Some(span) && e.message == message).collect();
        assert_eq!(found.len(), 1, "one {message:?} event in span {span}: {:#?}", self.events());
        found.into_iter().next().unwrap()
    }
}

fn address_of(engine: &Engine, server: StreamId) -> std::net::SocketAddr {
    match engine.local_address(server).unwrap() {
        Address::Ip(address) => address,
        other => panic!("not an IP address: {other}"),
    }
}

// ---------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------

/// Echoes lines; emits an event of its own in `on_read`.
struct Echo;

impl Handler for Echo {}

impl Read<Until> for Echo {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        tracing::info!(len = line.len(), "handler saw a line");
        stream.send(line).unwrap();
    }
}

/// Says hello, closes after the echo.
struct Hello;

impl Handler for Hello {
    fn on_connect(&mut self, stream: &mut Stream<Self>) {
        stream.send_with(&Until::lf(), b"hello").unwrap();
    }
}

impl Read<Until> for Hello {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, _line: &[u8]) {
        stream.close();
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn one_connection_has_its_spans_and_connect_and_close_events() {
    let capture = Capture::default();
    let dispatch = tracing::Dispatch::new(capture.clone());
    tracing::dispatcher::with_default(&dispatch, || {
        let engine = Engine::new().unwrap();
        let server = Server::from_fn(|_| Some(Stream::new(Echo).read_delimiter(Until::lf())))
            .listen(&engine, "127.0.0.1:0")
            .unwrap();
        let address = address_of(&engine, server);
        let client = Stream::new(Hello).read_delimiter(Until::lf()).connect(&engine, address).unwrap();
        wait(&engine, "the server's connection", || engine.connections(server).unwrap().len() == 1);
        let accepted = engine.connections(server).unwrap()[0];
        wait(&engine, "both streams to go", || engine.channel_count() == 1);

        // The client's span: its id, side and the peer it connected to.
        let (client_span, data) = capture.stream_span(client);
        assert_eq!(data.target, "pants::stream");
        assert_eq!(data.fields["side"], "client");
        assert_eq!(data.fields["peer"], address.to_string());
        assert!(data.entered > 0);
        assert_eq!(data.refs, 0, "the span is closed with its stream");
        assert_eq!(capture.messages_in(client_span), ["connecting", "connected", "closed"]);
        let closed = capture.event_in(client_span, "closed");
        assert_eq!(closed.level, Level::DEBUG);
        // "hello\n" out, "hello\n" back, one frame.
        let counts: Vec<&str> = ["graceful", "bytes_read", "bytes_written", "frames_read", "unsent"]
            .iter()
            .map(|k| &*closed.fields[*k])
            .collect();
        assert_eq!(counts, ["true", "6", "6", "1", "0"]);

        // The accepted stream's span is a child of its server's.
        let (accepted_span, data) = capture.stream_span(accepted);
        assert_eq!(data.fields["side"], "accepted");
        let server_span = data.parent.expect("the accepted stream's span has a parent");
        let spans = capture.spans();
        assert_eq!(spans[&server_span].name, "server");
        assert_eq!(spans[&server_span].fields["id"], server.to_string());
        assert_eq!(spans[&server_span].fields["local"], address.to_string());
        assert!(data.fields["peer"].starts_with("127.0.0.1:"), "{:?}", data.fields);
        assert_eq!(data.refs, 0);
        // The handler's own event is inside the stream's span.
        assert_eq!(capture.messages_in(accepted_span), ["connected", "handler saw a line", "closed"]);
        let closed = capture.event_in(accepted_span, "closed");
        assert_eq!(closed.fields["bytes_read"], "6");
        assert_eq!(closed.fields["bytes_written"], "6");
        assert_eq!(capture.messages_in(server_span), ["listening"]);

        // Every span entered was exited.
        assert!(capture.0.lock().unwrap().stack.is_empty());
    });
}

/// Reads lines; its errors are the defaults (log and close).
struct Lines;

impl Handler for Lines {}

impl Read<Until> for Lines {
    fn on_read(&mut self, _stream: &mut Stream<Self, Until>, _line: &[u8]) {}
}

#[test]
fn errors_are_events_in_the_streams_span() {
    let capture = Capture::default();
    let dispatch = tracing::Dispatch::new(capture.clone());
    tracing::dispatcher::with_default(&dispatch, || {
        let engine = Engine::new().unwrap();

        // A refused connect.
        let port = closed_port();
        let refused =
            Stream::new(Lines).read_delimiter(Until::lf()).connect(&engine, ("127.0.0.1", port.port())).unwrap();

        // An overflow, a partial frame at the end of stream, a read timeout.
        let server = Server::from_fn(|_| {
            Some(
                Stream::new(Lines).read_delimiter(Until::lf()).buffer_size(16).read_timeout(Duration::from_millis(200)),
            )
        })
        .listen(&engine, "127.0.0.1:0")
        .unwrap();
        let address = address_of(&engine, server);
        let overflow = peer(move || {
            let mut socket = std::net::TcpStream::connect(address).unwrap();
            socket.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            socket.write_all(&[b'x'; 64]).unwrap();
            read_all(socket)
        });
        let truncated = peer(move || {
            let mut socket = std::net::TcpStream::connect(address).unwrap();
            socket.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            socket.write_all(b"partial").unwrap();
            socket.shutdown(std::net::Shutdown::Write).unwrap();
            read_all(socket)
        });
        let silent = peer(move || {
            let socket = std::net::TcpStream::connect(address).unwrap();
            socket.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            read_all(socket)
        });
        wait(&engine, "the three peers", || overflow.is_finished() && truncated.is_finished() && silent.is_finished());

        // A read error: the peer resets the connection once its line is read.
        let plain = Server::from_fn(|_| Some(Stream::new(Lines).read_delimiter(Until::lf())))
            .listen(&engine, "127.0.0.1:0")
            .unwrap();
        let plain_address = address_of(&engine, plain);
        let (read_tx, read_rx) = std::sync::mpsc::channel::<()>();
        let resetter = peer(move || {
            let mut socket = std::net::TcpStream::connect(plain_address).unwrap();
            socket.write_all(b"line\n").unwrap();
            read_rx.recv_timeout(IO_TIMEOUT).unwrap();
            rustix::net::sockopt::set_socket_linger(&socket, Some(Duration::ZERO)).unwrap();
            drop(socket); // RST
        });
        wait(&engine, "the line to be read", || {
            engine.connections(plain).unwrap().first().is_some_and(|id| engine.counters(*id).unwrap().frames_read == 1)
        });
        read_tx.send(()).unwrap();
        common::join(&engine, resetter);
        wait(&engine, "every stream to go", || engine.channel_count() == 2);

        let (span, _) = capture.stream_span(refused);
        let failed = capture.event_in(span, "connect failed");
        assert_eq!(failed.level, Level::WARN);
        assert_eq!(failed.fields["address"], format!("127.0.0.1:{}", port.port()));
        assert!(failed.fields["error"].contains(&port.port().to_string()), "{failed:?}");
        let closed = capture.event_in(span, "closed");
        assert_eq!(closed.fields["bytes_written"], "0");

        // One error of each kind, each in an accepted stream's span.
        let spans = capture.spans();
        let mut kinds: Vec<String> = capture
            .events()
            .into_iter()
            .filter(|e| e.message == "error")
            .inspect(|e| {
                assert_eq!(e.level, Level::WARN);
                let span = e.span.expect("an error event is in a span");
                assert_eq!(spans[&span].fields["side"], "accepted", "{e:?}");
            })
            .map(|e| e.fields["kind"].clone())
            .collect();
        kinds.sort();
        assert_eq!(kinds, ["overflow", "read", "timeout", "truncated"]);
        assert!(capture.0.lock().unwrap().stack.is_empty());
    });
}

#[cfg(feature = "tls")]
#[test]
fn tls_handshakes_are_events_with_what_they_negotiated() {
    use pants::tls::{TlsClient, TlsServer};
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap().signed_by(&key, &ca).unwrap();
    let tls_server =
        TlsServer::builder().certificate(leaf.pem().as_bytes(), key.serialize_pem().as_bytes()).build().unwrap();
    let tls_client = TlsClient::builder().root_certificates(ca.pem().as_bytes()).build().unwrap();

    let capture = Capture::default();
    let dispatch = tracing::Dispatch::new(capture.clone());
    tracing::dispatcher::with_default(&dispatch, || {
        let engine = Engine::new().unwrap();
        let server = Server::from_fn(|_| Some(Stream::new(Echo).read_delimiter(Until::lf())))
            .tls(tls_server)
            .listen(&engine, "127.0.0.1:0")
            .unwrap();
        let port = address_of(&engine, server).port();
        let client = Stream::new(Hello)
            .read_delimiter(Until::lf())
            .tls(tls_client)
            .connect(&engine, ("localhost", port))
            .unwrap();
        wait(&engine, "the server's connection", || engine.connections(server).unwrap().len() == 1);
        let accepted = engine.connections(server).unwrap()[0];
        wait(&engine, "both streams to go", || engine.channel_count() == 1);

        for id in [client, accepted] {
            let (span, _) = capture.stream_span(id);
            let messages = capture.messages_in(span);
            let connected = messages.iter().position(|m| m == "connected");
            let started = messages.iter().position(|m| m == "TLS handshake started");
            let done = messages.iter().position(|m| m == "TLS handshake complete");
            assert!(connected.is_some() && connected < started && started < done, "{messages:?}");
            let complete = capture.event_in(span, "TLS handshake complete");
            assert_eq!(complete.fields["version"], "TLSv1_3");
            assert!(complete.fields["cipher"].starts_with("TLS13_"), "{complete:?}");
            // Plaintext bytes: "hello\n" each way.
            let closed = capture.event_in(span, "closed");
            assert_eq!((&*closed.fields["bytes_read"], &*closed.fields["bytes_written"]), ("6", "6"));
        }
        // A host name: the client's span has the address connected to.
        let (_, data) = capture.stream_span(client);
        assert!(data.fields["peer"].ends_with(&format!(":{port}")), "{:?}", data.fields);
    });
}
