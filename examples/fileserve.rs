//! A small HTTP/1.1 static file server.
//!
//! ```sh
//! cargo run --example fileserve -- --dir . --addr 127.0.0.1:8000
//! curl -O http://127.0.0.1:8000/Cargo.toml
//! ```
//!
//! * `GET` and `HEAD`; any other method is `405 Method Not Allowed`.
//! * Files are sent with `Stream::write_file`: `sendfile(2)`, zero-copy, the
//!   bytes never pass through this process. A single `Range: bytes=a-b` is
//!   honoured (`206`, or `416`), which sends part of a file the same way.
//! * `Content-Length` on every response; persistent connections (HTTP/1.1 by
//!   default, HTTP/1.0 with `Connection: keep-alive`), and pipelining: the
//!   requests a client sends without waiting are answered in order, each
//!   response queued behind the previous one (files included).
//! * A directory is served as its `index.html`, else as a listing; a
//!   directory URL without its final `/` is redirected (`301`) to one with it.
//! * Paths are confined to `--dir`: a `..` segment (also percent-encoded) is
//!   refused with `400`, and a symbolic link leading outside is `404`.
//! * The request head is read as `Until::crlf()` lines with a bounded line
//!   size (the stream's `buffer_size`), a bounded total size and header
//!   count: past those, `431`. A malformed request is `400`, an unsupported
//!   HTTP version `505`; both close the connection. Request bodies are not
//!   supported (`400`, then close), nor are `Transfer-Encoding`s.
//! * An idle connection is closed after 30 seconds.
//!
//! It prints `listening on <address>` once it listens (`--addr` may use port
//! 0), one line per request, and stops cleanly on Ctrl-C or SIGTERM.

#[path = "common/mod.rs"]
mod common;

use std::fmt::Write as _;
use std::fs::File;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pants::delimiter::Until;
use pants::{Engine, FrameError, Handler, Read, Server, Stream};

const USAGE: &str = "usage: fileserve [--dir DIR] [--addr HOST:PORT]   (defaults: . and 127.0.0.1:8000)";

/// The longest request line or header line.
const MAX_LINE: usize = 8 * 1024;
/// The largest request head (request line and headers).
const MAX_HEAD: usize = 32 * 1024;
/// The most header lines in one request.
const MAX_HEADERS: usize = 100;
/// How long a connection may stay idle.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A request head, as far as it has been read.
#[derive(Default)]
struct Head {
    method: String,
    target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    minor: u8,
    hosts: usize,
    close: bool,
    keep_alive: bool,
    content_length: Option<u64>,
    transfer_encoding: bool,
    range: Option<String>,
}

/// A response about to be sent.
struct Reply {
    status: u16,
    reason: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Body,
}

enum Body {
    Bytes(Vec<u8>),
    /// `len` bytes of `file` from `offset`.
    File {
        file: File,
        offset: u64,
        len: u64,
    },
}

impl Body {
    fn len(&self) -> u64 {
        match self {
            Body::Bytes(bytes) => bytes.len() as u64,
            Body::File { len, .. } => *len,
        }
    }
}

impl Reply {
    /// A short plain-text error page.
    fn error(status: u16, reason: &'static str) -> Reply {
        Reply {
            status,
            reason,
            headers: vec![("Content-Type", "text/plain; charset=utf-8".into())],
            body: Body::Bytes(format!("{status} {reason}\n").into_bytes()),
        }
    }

    fn bad_request() -> Reply {
        Reply::error(400, "Bad Request")
    }

    fn from_io(error: &std::io::Error) -> Reply {
        match error.kind() {
            std::io::ErrorKind::NotFound => Reply::error(404, "Not Found"),
            std::io::ErrorKind::PermissionDenied => Reply::error(403, "Forbidden"),
            // ENOTDIR: a file used as a directory ("/file.txt/x").
            _ if error.raw_os_error() == Some(20) => Reply::error(404, "Not Found"),
            _ => Reply::error(500, "Internal Server Error"),
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

/// One client connection.
struct Http {
    root: Rc<PathBuf>,
    peer: String,
    /// The request being read: `None` until its request line arrives.
    head: Option<Head>,
    head_bytes: usize,
    header_lines: usize,
}

impl Handler for Http {
    fn on_overflow_error(&mut self, stream: &mut Stream<Self>, _error: FrameError) {
        // A line longer than the buffer limit.
        self.refuse(stream, Reply::error(431, "Request Header Fields Too Large"));
    }
}

impl Read<Until> for Http {
    fn on_read(&mut self, stream: &mut Stream<Self, Until>, line: &[u8]) {
        self.head_bytes += line.len() + 2;
        if self.head_bytes > MAX_HEAD {
            return self.refuse(stream, Reply::error(431, "Request Header Fields Too Large"));
        }
        // A bare CR or LF, or a NUL, inside a line is a request-smuggling
        // classic: refuse rather than guess.
        if line.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return self.refuse(stream, Reply::bad_request());
        }
        match &mut self.head {
            // Empty lines before a request line are allowed (RFC 9112 2.2).
            None if line.is_empty() => {}
            None => match parse_request_line(line) {
                Ok(head) => self.head = Some(head),
                Err(reply) => self.refuse(stream, reply),
            },
            Some(_) if line.is_empty() => {
                let head = self.head.take().expect("a request line was read");
                self.head_bytes = 0;
                self.header_lines = 0;
                self.respond(stream, head);
            }
            Some(head) => {
                self.header_lines += 1;
                if self.header_lines > MAX_HEADERS {
                    return self.refuse(stream, Reply::error(431, "Request Header Fields Too Large"));
                }
                if parse_header(head, line).is_err() {
                    self.refuse(stream, Reply::bad_request());
                }
            }
        }
    }
}

impl Http {
    /// Answers a request that cannot be read any further, and closes.
    fn refuse<D>(&mut self, stream: &mut Stream<Self, D>, reply: Reply) {
        let head = self.head.take().unwrap_or_default();
        self.send(stream, &head, reply, false);
    }

    /// Answers a complete request head.
    fn respond(&mut self, stream: &mut Stream<Self, Until>, head: Head) {
        let has_body = head.content_length.is_some_and(|n| n > 0) || head.transfer_encoding;
        let keep_alive = !has_body && !head.close && (head.minor == 1 || head.keep_alive);
        if head.hosts > 1 || (head.minor == 1 && head.hosts == 0) {
            // RFC 9112 3.2: exactly one Host in HTTP/1.1.
            return self.send(stream, &head, Reply::bad_request(), false);
        }
        let reply = if head.method != "GET" && head.method != "HEAD" {
            // Any body is left unread: keep_alive is false then.
            Reply::error(405, "Method Not Allowed").header("Allow", "GET, HEAD")
        } else if has_body {
            Reply::bad_request()
        } else {
            self.serve(&head)
        };
        self.send(stream, &head, reply, keep_alive);
    }

    /// The reply for a GET or HEAD of `head.target`.
    fn serve(&self, head: &Head) -> Reply {
        let (raw_path, query) = match head.target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (head.target.as_str(), None),
        };
        let Some(decoded) = raw_path.strip_prefix('/').and_then(percent_decode) else {
            return Reply::bad_request();
        };
        let mut path = PathBuf::from(&*self.root);
        for segment in decoded.split(|b| *b == b'/') {
            match segment {
                b"" | b"." => {}
                // Never climb out of the root, however it is spelt.
                b".." => return Reply::bad_request(),
                segment if segment.contains(&0) => return Reply::bad_request(),
                segment => path.push(std::ffi::OsStr::from_bytes(segment)),
            }
        }
        // A symbolic link may lead anywhere: serve only what really is under
        // the root.
        let real = match path.canonicalize() {
            Ok(real) if real.starts_with(&*self.root) => real,
            Ok(_) => return Reply::error(404, "Not Found"),
            Err(e) => return Reply::from_io(&e),
        };
        let metadata = match real.metadata() {
            Ok(metadata) => metadata,
            Err(e) => return Reply::from_io(&e),
        };
        if metadata.is_dir() {
            if !raw_path.ends_with('/') {
                let location = format!("{raw_path}/{}", query.map(|q| format!("?{q}")).unwrap_or_default());
                return Reply::error(301, "Moved Permanently").header("Location", location);
            }
            let index = real.join("index.html");
            if index.is_file() {
                return serve_file(&index, head);
            }
            return match listing(&real, &String::from_utf8_lossy(&decoded)) {
                Ok(html) => Reply {
                    status: 200,
                    reason: "OK",
                    headers: vec![("Content-Type", "text/html; charset=utf-8".into())],
                    body: Body::Bytes(html.into_bytes()),
                },
                Err(e) => Reply::from_io(&e),
            };
        }
        if !metadata.is_file() {
            // A device or a FIFO: nothing to serve (and opening a FIFO blocks).
            return Reply::error(404, "Not Found");
        }
        serve_file(&real, head)
    }

    /// Queues the reply (only its head for HEAD), logs it, and closes the
    /// connection unless `keep_alive`.
    fn send<D>(&mut self, stream: &mut Stream<Self, D>, head: &Head, reply: Reply, keep_alive: bool) {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nDate: {}\r\nServer: pants-fileserve\r\n",
            reply.status,
            reply.reason,
            http_date(SystemTime::now())
        );
        for (name, value) in &reply.headers {
            let _ = write!(out, "{name}: {value}\r\n");
        }
        let len = reply.body.len();
        let _ = write!(out, "Content-Length: {len}\r\n");
        if !keep_alive {
            out.push_str("Connection: close\r\n");
        } else if head.minor == 0 {
            out.push_str("Connection: keep-alive\r\n");
        }
        out.push_str("\r\n");

        let mut result = stream.write(out);
        if head.method != "HEAD" && result.is_ok() {
            result = match reply.body {
                Body::Bytes(bytes) => stream.write_vec(bytes),
                // Zero-copy: queued as (file, offset, length); sendfile(2)
                // moves the bytes when the socket can take them.
                Body::File { file, offset, len } if len > 0 => stream.write_file(&file, offset, len),
                Body::File { .. } => Ok(()),
            };
        }
        let request = match head.method.is_empty() {
            true => "-".to_string(),
            false => format!("{} {} HTTP/1.{}", head.method, head.target, head.minor),
        };
        println!("{} \"{request}\" {} {len}", self.peer, reply.status);
        if result.is_err() || !keep_alive {
            stream.close();
        }
    }
}

/// `METHOD SP request-target SP HTTP-version`.
fn parse_request_line(line: &[u8]) -> Result<Head, Reply> {
    let line = std::str::from_utf8(line).map_err(|_| Reply::bad_request())?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Reply::bad_request());
    };
    // Printable ASCII only: this ends up in a log line and in a Location.
    if method.is_empty()
        || !method.bytes().all(is_token_byte)
        || target.is_empty()
        || !target.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Reply::bad_request());
    }
    let minor = match version {
        "HTTP/1.1" => 1,
        "HTTP/1.0" => 0,
        v if v.starts_with("HTTP/") => return Err(Reply::error(505, "HTTP Version Not Supported")),
        _ => return Err(Reply::bad_request()),
    };
    Ok(Head { method: method.to_string(), target: target.to_string(), minor, ..Head::default() })
}

/// `name: value`, recording what this server cares about.
fn parse_header(head: &mut Head, line: &[u8]) -> Result<(), ()> {
    let colon = line.iter().position(|b| *b == b':').ok_or(())?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    // No whitespace in or around a name (this also refuses obsolete line
    // folding, a line starting with whitespace).
    if name.is_empty() || !name.iter().copied().all(is_token_byte) {
        return Err(());
    }
    let value = String::from_utf8_lossy(value);
    let value = value.trim_matches([' ', '\t']);
    match name.to_ascii_lowercase().as_slice() {
        b"host" => head.hosts += 1,
        b"connection" => {
            for option in value.split(',').map(|o| o.trim().to_ascii_lowercase()) {
                match option.as_str() {
                    "close" => head.close = true,
                    "keep-alive" => head.keep_alive = true,
                    _ => {}
                }
            }
        }
        b"content-length" => {
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(());
            }
            let n = value.parse().map_err(drop)?;
            if head.content_length.is_some_and(|m| m != n) {
                return Err(());
            }
            head.content_length = Some(n);
        }
        b"transfer-encoding" => head.transfer_encoding = true,
        b"range" => head.range = Some(value.to_string()),
        _ => {}
    }
    Ok(())
}

/// An RFC 9110 token character.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Decodes `%XX` escapes; `None` for a malformed one.
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Encodes everything but RFC 3986 unreserved characters.
fn percent_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The reply for a regular file: all of it, or the one range asked for.
fn serve_file(path: &Path, head: &Head) -> Reply {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) => return Reply::from_io(&e),
    };
    let metadata = match file.metadata() {
        Ok(metadata) => metadata,
        Err(e) => return Reply::from_io(&e),
    };
    let size = metadata.len();
    let mut reply = Reply { status: 200, reason: "OK", headers: Vec::new(), body: Body::Bytes(Vec::new()) }
        .header("Content-Type", content_type(path))
        .header("Accept-Ranges", "bytes");
    if let Ok(modified) = metadata.modified() {
        reply = reply.header("Last-Modified", http_date(modified));
    }
    // Ranges are defined for GET only (RFC 9110 14.2).
    let range = head.range.as_deref().filter(|_| head.method == "GET").and_then(|r| parse_range(r, size));
    match range {
        None => reply.body = Body::File { file, offset: 0, len: size },
        Some(Ok((offset, len))) => {
            reply.status = 206;
            reply.reason = "Partial Content";
            reply = reply.header("Content-Range", format!("bytes {offset}-{}/{size}", offset + len - 1));
            reply.body = Body::File { file, offset, len };
        }
        Some(Err(())) => {
            return Reply::error(416, "Range Not Satisfiable").header("Content-Range", format!("bytes */{size}"));
        }
    }
    reply
}

/// One `bytes=` range: `Some(Ok((offset, len)))`, `Some(Err(()))` if it
/// cannot be satisfied, or `None` to ignore the header (several ranges, or
/// not a byte range), as RFC 9110 allows.
fn parse_range(value: &str, size: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = value.strip_prefix("bytes=")?.trim();
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let number = |s: &str| -> Option<u64> { s.bytes().all(|b| b.is_ascii_digit()).then(|| s.parse().ok())? };
    if first.is_empty() {
        // The last `n` bytes.
        let n = number(last)?;
        if n == 0 || size == 0 {
            return Some(Err(()));
        }
        let n = n.min(size);
        return Some(Ok((size - n, n)));
    }
    let start = number(first)?;
    let end = if last.is_empty() { u64::MAX } else { number(last)? };
    if end < start {
        return None;
    }
    if start >= size {
        return Some(Err(()));
    }
    let end = end.min(size - 1);
    Some(Ok((start, end - start + 1)))
}

fn content_type(path: &Path) -> &'static str {
    let extension = path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    match extension.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "txt" | "rs" | "toml" | "md" | "log" => "text/plain; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "pdf" => "application/pdf",
        "wasm" => "application/wasm",
        "gz" => "application/gzip",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

/// An HTML listing of `dir`, whose URL path is `/` + `url_path`.
fn listing(dir: &Path, url_path: &str) -> std::io::Result<String> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        entries.push((name.as_bytes().to_vec(), entry.path().is_dir()));
    }
    entries.sort();
    let title = html_escape(&format!("/{url_path}"));
    let mut html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of {title}</title></head>\n<body><h1>Index of {title}</h1>\n<ul>\n"
    );
    if !url_path.is_empty() {
        html.push_str("<li><a href=\"../\">../</a></li>\n");
    }
    for (name, is_dir) in entries {
        let slash = if is_dir { "/" } else { "" };
        let text = html_escape(&String::from_utf8_lossy(&name));
        let _ = writeln!(html, "<li><a href=\"{}{slash}\">{text}{slash}</a></li>", percent_encode(&name));
    }
    html.push_str("</ul></body></html>\n");
    Ok(html)
}

/// An IMF-fixdate (RFC 9110 5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(time: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[month as usize - 1],
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut addr = "127.0.0.1:8000".to_string();
    let mut dir = PathBuf::from(".");
    let go_on = common::parse_args(USAGE, &mut addr, |arg, args| match arg.as_str() {
        "--dir" => {
            dir = args.value()?.into();
            Ok(())
        }
        _ => common::no_other_argument(arg, args),
    })?;
    if !go_on {
        return Ok(());
    }
    let root = dir.canonicalize().map_err(|e| format!("{}: {e}", dir.display()))?;
    if !root.is_dir() {
        return Err(format!("{}: not a directory", root.display()).into());
    }
    let root = Rc::new(root);

    let engine = Engine::new()?;
    let serving = root.clone();
    let server = Server::from_fn(move |peer| {
        let http = Http { root: serving.clone(), peer: peer.to_string(), head: None, head_bytes: 0, header_lines: 0 };
        Some(Stream::new(http).read_delimiter(Until::crlf()).buffer_size(MAX_LINE).idle_timeout(IDLE_TIMEOUT))
    })
    .listen(&engine, addr.as_str())?;
    // On Ctrl-C or SIGTERM: stop listening; let responses in flight finish
    // for a moment.
    common::serve(&engine, server, || println!("serving {}", root.display()))
}
