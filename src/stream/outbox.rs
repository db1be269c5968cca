//! A stream's queue of outgoing bytes and files.
//!
//! Small writes are coalesced into one buffer, so everything a handler queues
//! during one loop iteration goes out in one system call; separate buffers
//! (large owned writes) go out together with `writev`; files go out with
//! `sendfile`, falling back to read-and-write where the kernel cannot.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, IoSlice, Write};
use std::os::fd::BorrowedFd;
use std::os::unix::fs::FileExt;

use super::socket::Socket;

/// Where flushed bytes go: a plain socket (which `sendfile` can write to) or
/// a TLS session over one (which it cannot).
pub(crate) trait Sink: Write {
    /// The socket, if bytes written to it go to the peer unchanged.
    fn raw_fd(&self) -> Option<BorrowedFd<'_>>;
}

impl Sink for Socket {
    fn raw_fd(&self) -> Option<BorrowedFd<'_>> {
        self.fd()
    }
}

/// Writes at least this large are queued as their own buffer when given by
/// value (no copy); smaller ones are copied into the tail buffer.
const OWN_CHUNK: usize = 16 * 1024;
/// How many buffers one `writev` takes at most.
const MAX_IOVECS: usize = 64;
/// The largest piece of a file sent in one call.
const FILE_PIECE: usize = 1 << 20;
/// The buffer used when `sendfile` cannot serve.
const COPY_PIECE: usize = 64 * 1024;

enum Chunk {
    Bytes(Vec<u8>),
    File { file: File, offset: u64, remaining: u64, copy: bool },
}

/// Outgoing data, in order: `chunks` first, then `tail`.
#[derive(Default)]
pub(crate) struct Outbox {
    /// Large owned buffers and files, queued before `tail`.
    chunks: VecDeque<Chunk>,
    /// Small writes, coalesced (sent after every chunk). Kept apart from
    /// `chunks` so the common write touches only this `Vec`.
    tail: Vec<u8>,
    /// Bytes of the front (the first chunk, else the tail) already sent.
    head: usize,
    /// Bytes queued (files counted by what is left to send).
    queued: u64,
    /// Bytes sent from the queue, ever.
    sent: u64,
}

/// What a flush achieved.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Flushed {
    /// Everything went out.
    Drained,
    /// The socket is full; wait until it is writable.
    Blocked,
}

impl Outbox {
    pub(crate) fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.tail.is_empty()
    }

    pub(crate) fn queued(&self) -> u64 {
        self.queued
    }

    /// Bytes that left the queue for the sink so far (not those dropped by
    /// [`clear`](Outbox::clear)).
    pub(crate) fn sent(&self) -> u64 {
        self.sent
    }

    /// The buffer that small writes go to (`spare` gives it storage when it
    /// has none).
    #[inline]
    pub(crate) fn tail(&mut self, spare: impl FnOnce() -> Vec<u8>) -> &mut Vec<u8> {
        if self.tail.capacity() == 0 {
            self.tail = spare();
        }
        &mut self.tail
    }

    /// Records `n` bytes appended to [`tail`](Outbox::tail).
    #[inline]
    pub(crate) fn appended(&mut self, n: usize) {
        self.queued += n as u64;
    }

    /// Moves the tail behind the chunks, so something can be queued after it.
    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            self.chunks.push_back(Chunk::Bytes(std::mem::take(&mut self.tail)));
        }
    }

    pub(crate) fn push_vec(&mut self, bytes: Vec<u8>, spare: impl FnOnce() -> Vec<u8>) {
        if bytes.len() < OWN_CHUNK {
            self.tail(spare).extend_from_slice(&bytes);
            self.appended(bytes.len());
        } else {
            self.seal_tail();
            self.queued += bytes.len() as u64;
            self.chunks.push_back(Chunk::Bytes(bytes));
        }
    }

    pub(crate) fn push_file(&mut self, file: File, offset: u64, len: u64, copy: bool) {
        if len > 0 {
            self.seal_tail();
            self.queued += len;
            self.chunks.push_back(Chunk::File { file, offset, remaining: len, copy });
        }
    }

    /// Drops everything queued; returns the byte buffers for reuse.
    pub(crate) fn clear(&mut self) -> Vec<Vec<u8>> {
        self.head = 0;
        self.queued = 0;
        let tail = std::mem::take(&mut self.tail);
        self.chunks
            .drain(..)
            .filter_map(|c| match c {
                Chunk::Bytes(b) => Some(b),
                Chunk::File { .. } => None,
            })
            .chain(Some(tail).filter(|t| t.capacity() > 0))
            .map(|mut b| {
                b.clear();
                b
            })
            .collect()
    }

    /// Writes as much as the socket takes. `recycle` receives sent buffers.
    pub(crate) fn flush(&mut self, socket: &mut dyn Sink, recycle: &mut dyn FnMut(Vec<u8>)) -> io::Result<Flushed> {
        loop {
            let written = match self.chunks.front_mut() {
                None if self.tail.is_empty() => {
                    if self.tail.capacity() > 0 {
                        // Idle: the stream holds no send buffer.
                        recycle(std::mem::take(&mut self.tail));
                    }
                    return Ok(Flushed::Drained);
                }
                // Only small writes queued (the usual case): one plain
                // write, which costs the kernel less than a `writev`.
                None => socket.write(&self.tail[self.head..]),
                Some(Chunk::Bytes(_)) => {
                    let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
                    let mut count = 0;
                    let mut all_bytes = true;
                    for chunk in self.chunks.iter().take(MAX_IOVECS) {
                        match chunk {
                            Chunk::Bytes(b) => {
                                let from = if count == 0 { self.head } else { 0 };
                                slices[count] = IoSlice::new(&b[from..]);
                                count += 1;
                            }
                            Chunk::File { .. } => {
                                all_bytes = false;
                                break;
                            }
                        }
                    }
                    if all_bytes && count < MAX_IOVECS && !self.tail.is_empty() {
                        slices[count] = IoSlice::new(&self.tail);
                        count += 1;
                    }
                    if count == 1 {
                        socket.write(&slices[0])
                    } else {
                        socket.write_vectored(&slices[..count])
                    }
                }
                Some(Chunk::File { file, offset, remaining, copy }) => {
                    let want = (*remaining).min(FILE_PIECE as u64) as usize;
                    let result = if *copy {
                        Err(io::ErrorKind::Unsupported.into())
                    } else {
                        send_file(socket, file, *offset, want)
                    };
                    let result = match result {
                        Err(e) if falls_back(&e) => {
                            *copy = true;
                            copy_file(socket, file, *offset, want.min(COPY_PIECE))
                        }
                        other => other,
                    };
                    match result {
                        Ok(0) => {
                            // The file is shorter than when it was queued:
                            // nothing more to send from it.
                            log::warn!("file ended {remaining} bytes early; skipping the rest");
                            self.queued -= *remaining;
                            self.chunks.pop_front();
                            continue;
                        }
                        Ok(n) => {
                            *offset += n as u64;
                            *remaining -= n as u64;
                            self.queued -= n as u64;
                            self.sent += n as u64;
                            if *remaining == 0 {
                                self.chunks.pop_front();
                            }
                            continue;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flushed::Blocked),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                }
            };
            match written {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.consume(n, recycle),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flushed::Blocked),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Drops `n` sent bytes from the front (byte chunks, then the tail).
    fn consume(&mut self, mut n: usize, recycle: &mut dyn FnMut(Vec<u8>)) {
        self.queued -= n as u64;
        self.sent += n as u64;
        while n > 0 {
            let front = match self.chunks.front() {
                Some(Chunk::Bytes(b)) => b.len(),
                Some(Chunk::File { .. }) => break,
                None => self.tail.len(),
            };
            let left = front - self.head;
            if n < left {
                self.head += n;
                return;
            }
            n -= left;
            self.head = 0;
            if self.chunks.is_empty() {
                // The tail went out whole: keep its storage for the next
                // writes of this batch; `flush` recycles it once idle.
                self.tail.clear();
            } else if let Some(Chunk::Bytes(mut done)) = self.chunks.pop_front() {
                done.clear();
                recycle(done);
            }
        }
    }
}

fn falls_back(e: &io::Error) -> bool {
    use rustix::io::Errno;
    matches!(
        e.raw_os_error().map(Errno::from_raw_os_error),
        Some(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP | Errno::BADF)
    ) || e.kind() == io::ErrorKind::Unsupported
}

/// Zero-copy: the kernel moves file pages to the socket.
fn send_file(socket: &dyn Sink, file: &File, offset: u64, len: usize) -> io::Result<usize> {
    let Some(fd) = socket.raw_fd() else { return Err(io::ErrorKind::Unsupported.into()) };
    let mut at = offset;
    rustix::fs::sendfile(fd, file, Some(&mut at), len).map_err(io::Error::from)
}

/// Reading a file queued with `write_file` failed: the file's fault, not the
/// socket's (reported as `StreamError::File`, not `Write`).
#[derive(Debug)]
pub(crate) struct FileReadError(pub(crate) io::Error);

impl std::fmt::Display for FileReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for FileReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// The fallback: read a piece at `offset` and write what the socket takes.
fn copy_file(socket: &mut dyn Sink, file: &File, offset: u64, len: usize) -> io::Result<usize> {
    let mut piece = vec![0; len];
    let n = file.read_at(&mut piece, offset).map_err(|e| io::Error::new(e.kind(), FileReadError(e)))?;
    if n == 0 {
        return Ok(0);
    }
    socket.write(&piece[..n])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer that takes at most `per_call` bytes per call and at most
    /// `room` bytes before it would block, recording each call.
    struct Trickle {
        got: Vec<u8>,
        per_call: usize,
        room: usize,
        calls: Vec<(&'static str, usize)>,
    }

    impl Trickle {
        fn new(per_call: usize) -> Self {
            Trickle { got: Vec::new(), per_call, room: usize::MAX, calls: Vec::new() }
        }

        fn take(&mut self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
            let mut budget = self.per_call.min(self.room);
            if budget == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let mut n = 0;
            for slice in slices {
                let part = slice.len().min(budget);
                self.got.extend_from_slice(&slice[..part]);
                budget -= part;
                n += part;
            }
            self.room -= n;
            Ok(n)
        }
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.calls.push(("write", 1));
            self.take(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.calls.push(("writev", bufs.len()));
            self.take(bufs)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Sink for Trickle {
        fn raw_fd(&self) -> Option<BorrowedFd<'_>> {
            None
        }
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
    }

    fn flush_all(outbox: &mut Outbox, sink: &mut Trickle) -> usize {
        let mut recycled = 0;
        assert_eq!(
            outbox
                .flush(sink, &mut |b| {
                    assert!(b.is_empty());
                    recycled += 1;
                })
                .unwrap(),
            Flushed::Drained
        );
        assert_eq!(outbox.queued(), 0);
        assert!(outbox.is_empty());
        recycled
    }

    #[test]
    fn small_writes_coalesce_into_one_write() {
        let mut outbox = Outbox::default();
        for part in [&b"one "[..], b"two ", b"three"] {
            outbox.push_vec(part.to_vec(), Vec::new);
        }
        assert_eq!(outbox.queued(), 13);
        let mut sink = Trickle::new(usize::MAX);
        assert_eq!(flush_all(&mut outbox, &mut sink), 1);
        assert_eq!(sink.got, b"one two three");
        assert_eq!(sink.calls, [("write", 1)]);
    }

    #[test]
    fn separate_buffers_go_out_together_and_partial_writes_resume_in_order() {
        let big = pattern(3 * OWN_CHUNK, 1);
        let small = pattern(100, 2);
        let bigger = pattern(5 * OWN_CHUNK, 3);
        let mut outbox = Outbox::default();
        outbox.push_vec(big.clone(), Vec::new);
        outbox.push_vec(small.clone(), Vec::new);
        outbox.push_vec(bigger.clone(), Vec::new);
        let mut sink = Trickle::new(7_001);
        flush_all(&mut outbox, &mut sink);
        assert!(sink.got == [big, small, bigger].concat(), "bytes out of order");
        assert_eq!(sink.calls[0], ("writev", 3));
        assert_eq!(sink.calls.last(), Some(&("write", 1)), "the last buffer alone goes out with write");
    }

    #[test]
    fn a_partly_sent_tail_keeps_its_place_before_what_is_queued_after_it() {
        let first = pattern(10_000, 6);
        let big = pattern(2 * OWN_CHUNK, 7);
        let mut outbox = Outbox::default();
        outbox.push_vec(first.clone(), Vec::new);
        let mut sink = Trickle::new(4096);
        sink.room = 3000;
        assert_eq!(outbox.flush(&mut sink, &mut |_| {}).unwrap(), Flushed::Blocked);
        // Queued behind the partly sent small writes, then more small ones.
        outbox.push_vec(big.clone(), Vec::new);
        outbox.push_vec(b"last".to_vec(), Vec::new);
        assert_eq!(outbox.queued(), (first.len() - 3000 + big.len() + 4) as u64);
        sink.room = usize::MAX;
        flush_all(&mut outbox, &mut sink);
        assert!(sink.got == [&first[..], &big, b"last"].concat(), "bytes out of order");
    }

    #[test]
    fn clearing_returns_every_buffer_empty() {
        let mut outbox = Outbox::default();
        outbox.push_vec(b"small".to_vec(), Vec::new);
        outbox.push_vec(pattern(OWN_CHUNK, 8), Vec::new);
        outbox.push_vec(b"after".to_vec(), Vec::new);
        let buffers = outbox.clear();
        assert_eq!(buffers.len(), 3);
        assert!(buffers.iter().all(Vec::is_empty));
        assert!(outbox.is_empty());
        assert_eq!(outbox.queued(), 0);
    }

    #[test]
    fn a_blocked_peer_keeps_the_rest_queued_and_resumes_where_it_stopped() {
        let data = pattern(50_000, 4);
        let mut outbox = Outbox::default();
        outbox.push_vec(data.clone(), Vec::new);
        let mut sink = Trickle::new(4096);
        sink.room = 10_000;
        assert_eq!(outbox.flush(&mut sink, &mut |_| {}).unwrap(), Flushed::Blocked);
        assert_eq!(outbox.queued(), 40_000);
        sink.room = usize::MAX;
        flush_all(&mut outbox, &mut sink);
        assert!(sink.got == data);
    }

    #[test]
    fn files_between_buffers_keep_their_place() {
        let path = std::env::temp_dir().join(format!("pants-outbox-{}", std::process::id()));
        let contents = pattern(200_000, 5);
        std::fs::write(&path, &contents).unwrap();
        let file = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();

        let mut outbox = Outbox::default();
        outbox.push_vec(b"head ".to_vec(), Vec::new);
        // No descriptor on the sink: the copy fallback serves.
        outbox.push_file(file.try_clone().unwrap(), 1000, 150_000, false);
        outbox.push_vec(b" tail".to_vec(), Vec::new);
        // Past the end: what the file has, then the rest is skipped.
        outbox.push_file(file, 199_990, 100, false);
        assert_eq!(outbox.queued(), 5 + 150_000 + 5 + 100);
        let mut sink = Trickle::new(9_999);
        flush_all(&mut outbox, &mut sink);
        let expected = [&b"head "[..], &contents[1000..151_000], b" tail", &contents[199_990..]].concat();
        assert!(sink.got == expected, "file bytes out of place");
    }
}
