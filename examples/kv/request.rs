//! A pants delimiter for whole RESP requests.
//!
//! [`Requests`] cuts one request per frame: an array of bulk strings
//! (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) or an inline command line
//! (`GET k\r\n`). The frame, a [`Request`], borrows the receive buffer: the
//! arguments are slices of it, so a request is parsed once, copied never,
//! and handed to `on_read` in one call however many arguments it has.
//!
//! The delimiter checks everything a request must satisfy before it hands
//! it out (lengths, CRLFs, limits), so iterating over the arguments of a
//! frame cannot fail. A request that arrives in pieces is checked as it
//! arrives: the delimiter remembers how far it got (the contract of
//! [`Delimiter`] lets it: after `Incomplete` it sees the same bytes with
//! more appended), so a large request is not parsed again per read. A
//! malformed request is a [`FrameError::Malformed`] carrying Redis' message
//! (`invalid bulk length`...).

use pants::{Decoded, Delimiter, FrameError, Needed};

use crate::resp::{parse_array_len, parse_bulk_len, ProtocolError, MAX_REQUEST_BYTES};

/// Longest header line or inline command (Redis' `PROTO_INLINE_MAX_SIZE`).
pub const MAX_LINE: usize = 64 * 1024;

/// One request, borrowed from the receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// An array of bulk strings: the usual form, and what clients send.
    Array(Args<'a>),
    /// An inline command line (as typed in telnet), without its line end.
    Inline(&'a [u8]),
    /// `*0`, `*-1` or an empty line: ignored, as by Redis.
    Empty,
}

/// The arguments of an array request, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Args<'a> {
    /// The bulk strings, each still with its `$<len>\r\n` header and CRLF.
    rest: &'a [u8],
    left: usize,
}

impl<'a> Args<'a> {
    /// How many arguments are left.
    pub fn len(&self) -> usize {
        self.left
    }
}

impl<'a> Iterator for Args<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        // Checked by the delimiter: `$`, digits, CRLF, the body, CRLF.
        let digits_end = memchr::memchr(b'\r', self.rest)?;
        let len = self.rest[1..digits_end].iter().fold(0usize, |n, &d| n * 10 + usize::from(d - b'0'));
        let body = digits_end + 2;
        let arg = self.rest.get(body..body + len)?;
        self.rest = self.rest.get(body + len + 2..)?;
        self.left -= 1;
        Some(arg)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Args<'_> {}

/// The RESP request delimiter; see the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct Requests {
    /// How far the request at the front of the buffer has been checked.
    scan: Scan,
}

#[derive(Debug, Clone, Default)]
struct Scan {
    /// Bytes checked: the array header and every whole bulk string so far
    /// (0: nothing yet).
    done: usize,
    /// Where the array header ends (0: not an array yet).
    header_end: usize,
    /// Arguments announced by the header.
    argc: usize,
    /// Arguments not checked yet.
    left: usize,
    /// Bulk bytes announced so far.
    bulk_bytes: usize,
    /// Bytes after `done` already searched for a line end (none there).
    searched: usize,
    /// Where the bulk string being read ends (with its CRLF), once its
    /// header is in; 0 otherwise.
    bulk_end: usize,
}

fn malformed(error: ProtocolError) -> FrameError {
    FrameError::malformed(error.0)
}

impl Requests {
    /// The end of the line starting at `from` (the index of its `\n`), or
    /// `None` after remembering how far the search got. A line longer than
    /// [`MAX_LINE`] is `too_long`.
    fn line_end(&mut self, buf: &[u8], from: usize, too_long: &'static str) -> Result<Option<usize>, FrameError> {
        let start = from + self.scan.searched;
        match memchr::memchr(b'\n', &buf[start..]) {
            // The same limit however the line arrived.
            Some(at) if start + at - from > MAX_LINE => Err(FrameError::Malformed(too_long.into())),
            Some(at) => {
                self.scan.searched = 0;
                Ok(Some(start + at))
            }
            None if buf.len() - from > MAX_LINE => Err(FrameError::Malformed(too_long.into())),
            None => {
                self.scan.searched = buf.len() - from;
                Ok(None)
            }
        }
    }

    /// A frame of `consumed` bytes, and a fresh scan for the next request.
    fn cut<'a>(&mut self, frame: Request<'a>, consumed: usize) -> Result<Decoded<Request<'a>>, FrameError> {
        self.scan = Scan::default();
        Ok(Decoded::Frame { frame, consumed })
    }
}

impl Delimiter for Requests {
    type Output<'a> = Request<'a>;

    fn decode<'a>(&mut self, buf: &'a [u8]) -> Result<Decoded<Request<'a>>, FrameError> {
        if self.scan.header_end == 0 {
            let Some(&first) = buf.first() else { return Ok(Decoded::Incomplete(Needed::Unknown)) };
            if first != b'*' {
                // An inline command: one line, `\r\n` or a bare `\n`.
                let Some(end) = self.line_end(buf, 0, "too big inline request")? else {
                    return Ok(Decoded::Incomplete(Needed::Unknown));
                };
                let line = &buf[..end];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                let frame = if line.is_empty() { Request::Empty } else { Request::Inline(line) };
                return self.cut(frame, end + 1);
            }
            let Some(end) = self.line_end(buf, 0, "too big mbulk count string")? else {
                return Ok(Decoded::Incomplete(Needed::Unknown));
            };
            let line = &buf[1..end];
            let digits = line.strip_suffix(b"\r").unwrap_or(line);
            match parse_array_len(digits).map_err(malformed)? {
                None => return self.cut(Request::Empty, end + 1),
                Some(n) => {
                    self.scan.header_end = end + 1;
                    self.scan.done = end + 1;
                    self.scan.argc = n;
                    self.scan.left = n;
                }
            }
        }
        while self.scan.left > 0 {
            let at = self.scan.done;
            if self.scan.bulk_end == 0 {
                // A bulk string header, `$<len>\r\n` (a bare `\n` is part of
                // the line, which makes it invalid).
                let Some(end) = self.line_end(buf, at, "too big bulk count string")? else {
                    return Ok(Decoded::Incomplete(Needed::Unknown));
                };
                let line = &buf[at..end];
                let Some(line) = line.strip_suffix(b"\r") else {
                    return Err(FrameError::Malformed("invalid bulk length".into()));
                };
                let len = parse_bulk_len(line).map_err(malformed)?;
                self.scan.bulk_bytes += len;
                if self.scan.bulk_bytes > MAX_REQUEST_BYTES {
                    return Err(FrameError::Malformed("request too large".into()));
                }
                self.scan.bulk_end = end + 1 + len + 2;
            }
            let bulk_end = self.scan.bulk_end;
            if buf.len() < bulk_end {
                return Ok(Decoded::Incomplete(Needed::Exactly(bulk_end - buf.len())));
            }
            if &buf[bulk_end - 2..bulk_end] != b"\r\n" {
                return Err(FrameError::Malformed("expected CRLF after a bulk string".into()));
            }
            self.scan.done = bulk_end;
            self.scan.bulk_end = 0;
            self.scan.left -= 1;
        }
        let args = Args { rest: &buf[self.scan.header_end..self.scan.done], left: self.scan.argc };
        let consumed = self.scan.done;
        self.cut(Request::Array(args), consumed)
    }

    /// Enough room for the request as far as it is known: the bulk string
    /// being read, or a header line after what was checked.
    fn min_buffer(&self) -> usize {
        self.scan.bulk_end.max(self.scan.done + MAX_LINE + 2)
    }

    fn reset(&mut self) {
        self.scan = Scan::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(frame: Request<'_>) -> Vec<Vec<u8>> {
        match frame {
            Request::Array(args) => args.map(<[u8]>::to_vec).collect(),
            other => panic!("not an array: {other:?}"),
        }
    }

    #[test]
    fn cuts_arrays_inline_commands_and_empty_requests() {
        let mut framer = pants::Framer::new(Requests::default());
        framer.push(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n*0\r\n\r\n*1\r\n$0\r\n\r\n");
        assert_eq!(args(framer.next_frame().unwrap().unwrap()), [b"GET".to_vec(), b"k".to_vec()]);
        assert_eq!(framer.next_frame().unwrap(), Some(Request::Inline(b"PING")));
        assert_eq!(framer.next_frame().unwrap(), Some(Request::Empty));
        assert_eq!(framer.next_frame().unwrap(), Some(Request::Empty));
        assert_eq!(args(framer.next_frame().unwrap().unwrap()), [Vec::<u8>::new()]);
        assert!(framer.is_empty());
    }

    #[test]
    fn the_same_frames_however_the_request_is_split() {
        let input = b"*3\r\n$3\r\nSET\r\n$4\r\nk\r\ny\r\n$10\r\n0123456789\r\nGET k\n";
        for split in 0..=input.len() {
            let mut framer = pants::Framer::new(Requests::default());
            let mut seen = Vec::new();
            for chunk in [&input[..split], &input[split..]] {
                framer.push(chunk);
                framer
                    .for_each_frame(|frame| {
                        seen.push(match frame {
                            Request::Inline(line) => vec![line.to_vec()],
                            array => args(array),
                        })
                    })
                    .unwrap();
            }
            let set: Vec<Vec<u8>> = vec![b"SET".to_vec(), b"k\r\ny".to_vec(), b"0123456789".to_vec()];
            assert_eq!(seen, [set, vec![b"GET k".to_vec()]], "split at {split}");
            assert!(framer.is_empty());
        }
    }

    #[test]
    fn malformed_requests_are_errors_with_redis_messages() {
        for (input, message) in [
            (&b"*1\r\n$abc\r\n"[..], "invalid bulk length"),
            (b"*x\r\n", "invalid multibulk length"),
            (b"*1\r\nPING\r\n", "expected '$', got 'P'"),
            (b"*1\r\n$2\r\nabcd", "expected CRLF after a bulk string"),
            (b"*1\r\n$2\n", "invalid bulk length"),
        ] {
            let mut framer = pants::Framer::new(Requests::default());
            framer.push(input);
            assert_eq!(framer.next_frame(), Err(FrameError::Malformed(message.into())), "{input:?}");
        }
    }

    #[test]
    fn lines_over_the_limit_are_refused_before_the_buffer_limit() {
        let mut framer = pants::Framer::new(Requests::default());
        framer.push(&vec![b'x'; MAX_LINE + 1]);
        assert_eq!(framer.next_frame(), Err(FrameError::Malformed("too big inline request".into())));
        let mut framer = pants::Framer::new(Requests::default());
        framer.push(b"*1\r\n$");
        framer.push(&vec![b'1'; MAX_LINE + 1]);
        assert_eq!(framer.next_frame(), Err(FrameError::Malformed("too big bulk count string".into())));
    }
}
