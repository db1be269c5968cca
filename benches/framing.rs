//! Decode throughput of pants framing against hand-written loops and
//! tokio-util codecs. Results and method: BENCHMARKS.md.
//!
//! Every variant sees the same 4 MiB input in the same 64 KiB chunks, as a
//! socket would deliver it: take a chunk, cut every whole frame, keep the
//! partial frame for the next chunk. Every variant does the same work per
//! frame ([`touch`]: `black_box` of its length and first byte, or of two
//! fields for the fixed struct), and every variant has the same 64 KiB limit
//! on a frame (pants' default buffer size).
//!
//! "Buffered" hand loops model a read loop: each chunk is copied into the
//! loop's own buffer (as `read` into a buffer would), frames are cut from it
//! in place, and the partial frame is moved to the front. That is the work
//! `Framer::push` + `next_frame` and the tokio codecs (`BytesMut`) do too.
//! The "in place" memchr loop for lines is a lower bound: it scans each chunk
//! where it lies and copies only the partial line carried over.
//!
//! Each variant is one `#[inline(never)]` function (one call per input), so
//! an instruction count under callgrind can be read per variant:
//! `scripts/framing_instructions.sh`.

use std::hint::black_box;
use std::time::Duration;

use bytes::BytesMut;
use criterion::{Criterion, Throughput};
use pants::delimiter::{Array, Count, Fixed, Packed, Until};
use pants::{Delimiter, Framer, NetStruct};
use tokio_util::codec::{AnyDelimiterCodec, Decoder, LengthDelimitedCodec, LinesCodec};
use zerocopy::big_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, KnownLayout, Unaligned};

/// Bytes per socket read.
const CHUNK: usize = 64 * 1024;
/// Input size per iteration.
const INPUT: usize = 4 << 20;
/// Largest frame every variant accepts (pants' default buffer size).
const LIMIT: usize = 64 * 1024;
/// Count frame size.
const COUNT: usize = 100;

/// The per-frame work, the same in every variant.
#[inline(always)]
fn touch(frame: &[u8]) {
    black_box((frame.len(), frame.first().copied()));
}

/// xorshift64*: deterministic inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
}

/// Text lines of 90..=110 printable ASCII bytes (about 100), each followed by `end`.
fn lines(end: &[u8]) -> Vec<u8> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::with_capacity(INPUT + 200);
    while out.len() < INPUT {
        for _ in 0..rng.range(90, 110) {
            out.push(b' ' + rng.range(0, 94) as u8);
        }
        out.extend_from_slice(end);
    }
    out
}

/// `u32` big-endian length prefix + a body of 32..=96 bytes (64 on average).
fn prefixed() -> Vec<u8> {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut out = Vec::with_capacity(INPUT + 200);
    while out.len() < INPUT {
        let len = rng.range(32, 96);
        out.extend_from_slice(&(len as u32).to_be_bytes());
        out.extend((0..len).map(|_| rng.next() as u8));
    }
    out
}

/// Random bytes (for `Count` and `Fixed`), a whole number of `unit`s.
fn random(unit: usize) -> Vec<u8> {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let n = INPUT / unit * unit;
    (0..n).map(|_| rng.next() as u8).collect()
}

// ---------------------------------------------------------------- pants

/// pants' batch path: push each chunk, cut every whole frame with
/// `Framer::for_each_frame`.
#[inline(never)]
fn pants_batch<D: Delimiter>(input: &[u8], delimiter: D, mut touch: impl FnMut(D::Output<'_>)) -> usize {
    let mut framer = Framer::new(delimiter);
    let mut frames = 0;
    for chunk in input.chunks(CHUNK) {
        framer.push(chunk);
        frames += framer.for_each_frame(&mut touch).expect("no errors");
    }
    assert!(framer.is_empty());
    frames
}

/// pants one frame per call: push each chunk, `Framer::next_frame` until it
/// returns `None`.
#[inline(never)]
fn pants_next_frame<D: Delimiter>(input: &[u8], delimiter: D, mut touch: impl FnMut(D::Output<'_>)) -> usize {
    let mut framer = Framer::new(delimiter);
    let mut frames = 0;
    for chunk in input.chunks(CHUNK) {
        framer.push(chunk);
        while let Some(frame) = framer.next_frame().expect("no errors") {
            touch(frame);
            frames += 1;
        }
    }
    assert!(framer.is_empty());
    frames
}

// ---------------------------------------------------------------- lines

/// Finds the end of the next line in `buf[from..]`: the index of its `\n`
/// and the line's length before the terminator (`\r\n` when `crlf`: a bare
/// `\n` is part of the line). `prev` is the byte before `buf`, if any.
#[inline(always)]
fn next_line_end(buf: &[u8], mut from: usize, crlf: bool, prev: Option<u8>) -> Option<(usize, usize)> {
    loop {
        let nl = from + memchr::memchr(b'\n', &buf[from..])?;
        if !crlf {
            return Some((nl, nl));
        }
        let before = if nl == 0 { prev } else { Some(buf[nl - 1]) };
        if before == Some(b'\r') {
            return Some((nl, nl.saturating_sub(1)));
        }
        from = nl + 1;
    }
}

/// A read loop: copy the chunk into our buffer, cut lines with memchr, move
/// the partial line to the front, never rescan bytes already searched.
#[inline(never)]
fn memchr_buffered<const CRLF: bool>(input: &[u8]) -> usize {
    let crlf = CRLF;
    let mut buf: Vec<u8> = Vec::new();
    let mut scanned = 0;
    let mut frames = 0;
    for chunk in input.chunks(CHUNK) {
        buf.extend_from_slice(chunk);
        let mut start = 0;
        // Bytes before `scanned` hold no line end; a `\r` at the very end of
        // the previous search is found again through `buf[nl - 1]`.
        let mut from = scanned;
        while let Some((nl, end)) = next_line_end(&buf, from, crlf, None) {
            touch(&buf[start..end]);
            frames += 1;
            start = nl + 1;
            from = start;
        }
        assert!(buf.len() - start < LIMIT, "line over the limit");
        buf.drain(..start);
        scanned = buf.len();
    }
    assert!(buf.is_empty());
    frames
}

/// Lower bound: scan each chunk where it lies, copying only the partial line
/// carried over to the next chunk.
#[inline(never)]
fn memchr_in_place<const CRLF: bool>(input: &[u8]) -> usize {
    let crlf = CRLF;
    let mut carry: Vec<u8> = Vec::new();
    let mut frames = 0;
    for chunk in input.chunks(CHUNK) {
        let mut rest = chunk;
        if !carry.is_empty() {
            match next_line_end(rest, 0, crlf, carry.last().copied()) {
                Some((nl, end)) => {
                    if end == nl && crlf && nl == 0 {
                        // "\r" | "\n": the terminator straddles the chunks.
                        carry.pop();
                    } else {
                        carry.extend_from_slice(&rest[..end]);
                    }
                    touch(&carry);
                    frames += 1;
                    carry.clear();
                    rest = &rest[nl + 1..];
                }
                None => {
                    carry.extend_from_slice(rest);
                    assert!(carry.len() < LIMIT, "line over the limit");
                    continue;
                }
            }
        }
        let mut start = 0;
        while let Some((nl, end)) = next_line_end(rest, start, crlf, None) {
            touch(&rest[start..end]);
            frames += 1;
            start = nl + 1;
        }
        assert!(rest.len() - start < LIMIT, "line over the limit");
        carry.extend_from_slice(&rest[start..]);
    }
    assert!(carry.is_empty());
    frames
}

/// tokio-util `LinesCodec`: splits on `\n`, strips a trailing `\r`, checks
/// UTF-8 and returns an owned `String` per line.
#[inline(never)]
fn tokio_lines(input: &[u8]) -> usize {
    let mut codec = LinesCodec::new_with_max_length(LIMIT);
    let mut buf = BytesMut::new();
    let mut frames = 0;
    for chunk in input.chunks(CHUNK) {
        buf.extend_from_slice(chunk);
        while let Some(line) = codec.decode(&mut buf).expect("valid lines") {
            touch(line.as_bytes());
            frames += 1;
        }
    }
    assert!(buf.is_empty());
    frames
}

/// tokio-util `AnyDelimiterCodec` on `\n`: bytes, no UTF-8 check, no copy
/// (`Bytes` split off the buffer). With `crlf` the trailing `\r` is stripped
/// after the fact (it treats a bare `\n` as a terminator too, which this
/// input does not contain).
#[inline(never)]
fn tokio_any_delimiter<const CRLF: bool>(input: &[u8]) -> usize {
    let crlf = CRLF;
    let mut codec = AnyDelimiterCodec::new_with_max_length(b"\n".to_vec(), b"\n".to_vec(), LIMIT);
    let mut buf = BytesMut::new();
    let mut frames = 0;
    for chunk in input.chunks(CHUNK) {
        buf.extend_from_slice(chunk);
        while let Some(line) = codec.decode(&mut buf).expect("valid lines") {
            let line: &[u8] = &line;
            touch(if crlf { line.strip_suffix(b"\r").unwrap_or(line) } else { line });
            frames += 1;
        }
    }
    assert!(buf.is_empty());
    frames
}

// ---------------------------------------------------------------- count

/// A read loop cutting frames of `n` bytes, `n` known only at run time (as
/// a protocol's size field gives it): the hand-written `Count`.
#[inline(never)]
fn hand_count(input: &[u8]) -> usize {
    hand_count_of(input, black_box(COUNT))
}

/// The same loop with the size a constant the compiler folds in: the
/// hand-written `Array<100>`.
#[inline(never)]
fn hand_count_const(input: &[u8]) -> usize {
    hand_count_of(input, COUNT)
}

#[inline(always)]
fn hand_count_of(input: &[u8], n: usize) -> usize {
    let mut buf: Vec<u8> = Vec::new();
    let mut frames = 0;
    for chunk in input.chunks(CHUNK) {
        buf.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(frame) = buf.get(start..start + n) {
            touch(frame);
            frames += 1;
            start += n;
        }
        buf.drain(..start);
    }
    assert!(buf.is_empty());
    frames
}

// ---------------------------------------------------------------- netstruct

#[derive(NetStruct)]
struct Message<'a> {
    #[netstruct(len = u32)]
    body: &'a [u8],
}

#[inline(never)]
fn hand_prefixed(input: &[u8]) -> usize {
    let mut buf: Vec<u8> = Vec::new();
    let mut frames = 0;
    for chunk in input.chunks(CHUNK) {
        buf.extend_from_slice(chunk);
        let mut start = 0;
        while let Some(prefix) = buf[start..].first_chunk::<4>() {
            let len = u32::from_be_bytes(*prefix) as usize;
            assert!(4 + len <= LIMIT, "frame over the limit");
            let Some(body) = buf.get(start + 4..start + 4 + len) else { break };
            touch(body);
            frames += 1;
            start += 4 + len;
        }
        buf.drain(..start);
    }
    assert!(buf.is_empty());
    frames
}

#[inline(never)]
fn tokio_length_delimited(input: &[u8]) -> usize {
    let mut codec =
        LengthDelimitedCodec::builder().length_field_length(4).big_endian().max_frame_length(LIMIT).new_codec();
    let mut buf = BytesMut::new();
    let mut frames = 0;
    for chunk in input.chunks(CHUNK) {
        buf.extend_from_slice(chunk);
        while let Some(body) = codec.decode(&mut buf).expect("no errors") {
            touch(&body);
            frames += 1;
        }
    }
    assert!(buf.is_empty());
    frames
}

// ---------------------------------------------------------------- fixed

/// A 16-byte binary header.
#[derive(FromBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct Header {
    kind: u8,
    flags: u8,
    len: U16,
    seq: U32,
    stamp: U64,
}

#[inline(always)]
fn touch_message(message: Message<'_>) {
    touch(message.body);
}

#[inline(always)]
fn touch_header(header: &Header) {
    black_box((header.kind, header.seq.get()));
}

#[inline(never)]
fn hand_fixed(input: &[u8]) -> usize {
    const SIZE: usize = size_of::<Header>();
    let mut buf: Vec<u8> = Vec::new();
    let mut frames = 0;
    for chunk in input.chunks(CHUNK) {
        buf.extend_from_slice(chunk);
        let mut start = 0;
        while let Ok((header, _)) = Header::ref_from_prefix(&buf[start..]) {
            touch_header(header);
            frames += 1;
            start += SIZE;
        }
        buf.drain(..start);
    }
    assert!(buf.is_empty());
    frames
}

// ---------------------------------------------------------------- the suite

/// A way of cutting an input: returns the number of frames it cut.
type Cutter = fn(&[u8]) -> usize;

/// One benchmark group: an input and the variants that cut it.
struct Group {
    name: &'static str,
    input: Vec<u8>,
    variants: Vec<(&'static str, Cutter)>,
}

fn groups() -> Vec<Group> {
    vec![
        Group {
            name: "lines_crlf",
            input: lines(b"\r\n"),
            variants: vec![
                ("pants", |input| pants_batch(input, Until::crlf(), touch)),
                ("pants_next_frame", |input| pants_next_frame(input, Until::crlf(), touch)),
                ("memchr_buffered", memchr_buffered::<true>),
                ("memchr_in_place", memchr_in_place::<true>),
                ("tokio_lines", tokio_lines),
                ("tokio_any_delimiter", tokio_any_delimiter::<true>),
            ],
        },
        Group {
            name: "lines_lf",
            input: lines(b"\n"),
            variants: vec![
                ("pants", |input| pants_batch(input, Until::lf(), touch)),
                ("pants_next_frame", |input| pants_next_frame(input, Until::lf(), touch)),
                ("memchr_buffered", memchr_buffered::<false>),
                ("memchr_in_place", memchr_in_place::<false>),
                ("tokio_lines", tokio_lines),
                ("tokio_any_delimiter", tokio_any_delimiter::<false>),
            ],
        },
        Group {
            name: "count_100",
            input: random(COUNT),
            variants: vec![
                ("pants", |input| pants_batch(input, Count::new(COUNT).expect("not zero"), touch)),
                ("pants_next_frame", |input| pants_next_frame(input, Count::new(COUNT).expect("not zero"), touch)),
                ("hand_loop", hand_count),
                ("pants_array", |input| pants_batch(input, Array::<COUNT>, |frame| touch(frame))),
                ("hand_loop_const", hand_count_const),
            ],
        },
        Group {
            name: "netstruct_u32_body",
            input: prefixed(),
            variants: vec![
                ("pants", |input| pants_batch(input, Packed::<Message>::new(), touch_message)),
                ("pants_next_frame", |input| pants_next_frame(input, Packed::<Message>::new(), touch_message)),
                ("hand_loop", hand_prefixed),
                ("tokio_length_delimited", tokio_length_delimited),
            ],
        },
        Group {
            name: "fixed_16",
            input: random(size_of::<Header>()),
            variants: vec![
                ("pants", |input| pants_batch(input, Fixed::<Header>::new(), touch_header)),
                ("pants_next_frame", |input| pants_next_frame(input, Fixed::<Header>::new(), touch_header)),
                ("hand_loop", hand_fixed),
            ],
        },
    ]
}

/// Every variant of a group cuts the same number of frames (lines: about
/// one per 100 bytes).
fn check(group: &Group) {
    let counts: Vec<usize> = group.variants.iter().map(|(_, cut)| cut(&group.input)).collect();
    assert!(counts.iter().all(|&n| n == counts[0] && n > 0), "{}: {counts:?}", group.name);
    if group.name.starts_with("lines") {
        let expected = group.input.len() / 100;
        assert!(counts[0].abs_diff(expected) < expected / 10, "{}: {counts:?}", group.name);
    }
}

fn config() -> Criterion {
    // Short runs: the whole suite takes about two minutes.
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(30)
}

/// The baseline of a group: the hand-written loop pants is held against.
fn baseline(group: &Group) -> &'static str {
    if group.name.starts_with("lines") {
        "memchr_buffered"
    } else {
        "hand_loop"
    }
}

/// Times every variant of each group once per round, `rounds` rounds, the
/// variants interleaved so that a change in the machine's load hits all of
/// them alike. Prints each variant's best throughput, the baseline's
/// fastest time over the variant's fastest (the figure the load disturbs
/// least), and the median over the rounds of baseline time / variant time
/// (above 1: faster than the hand loop).
fn interleaved(groups: &[Group], rounds: usize) {
    for group in groups {
        check(group);
        let mut times = vec![Vec::with_capacity(rounds); group.variants.len()];
        for _ in 0..rounds {
            for ((_, cut), times) in group.variants.iter().zip(&mut times) {
                let start = std::time::Instant::now();
                black_box(cut(black_box(&group.input)));
                times.push(start.elapsed().as_secs_f64());
            }
        }
        let base = group.variants.iter().position(|(name, _)| *name == baseline(group)).expect("a baseline");
        for ((variant, _), own) in group.variants.iter().zip(&times) {
            let mut ratios: Vec<f64> = times[base].iter().zip(own).map(|(b, t)| b / t).collect();
            ratios.sort_by(f64::total_cmp);
            let fastest = own.iter().copied().fold(f64::INFINITY, f64::min);
            let gib_s = group.input.len() as f64 / fastest / f64::from(1 << 30);
            let base_fastest = times[base].iter().copied().fold(f64::INFINITY, f64::min);
            println!(
                "{}/{variant}\t{gib_s:.2} GiB/s\tfastest {:.2}x\tmedian {:.2}x",
                group.name,
                base_fastest / fastest,
                ratios[ratios.len() / 2]
            );
        }
    }
}

/// `cargo bench --bench framing [filter]` runs the criterion suite.
/// `FRAMING_RUN=group/variant:n` instead runs that variant `n` times on its
/// input and nothing else (for instruction counts under callgrind; `n = 0`
/// measures the setup alone); `FRAMING_RUN=list` lists the variants.
/// `FRAMING_ROUNDS=n` times the variants interleaved instead
/// ([`interleaved`]).
fn main() {
    let groups = groups();
    if let Ok(run) = std::env::var("FRAMING_RUN") {
        if run == "list" {
            for group in &groups {
                for (variant, _) in &group.variants {
                    println!("{}/{variant}", group.name);
                }
            }
            return;
        }
        let (name, times) = run.rsplit_once(':').expect("FRAMING_RUN=group/variant:n");
        let times: usize = times.parse().expect("a count after ':'");
        let (group, cut) = groups
            .iter()
            .flat_map(|group| group.variants.iter().map(move |(variant, cut)| (group, variant, cut)))
            .find(|(group, variant, _)| format!("{}/{variant}", group.name) == name)
            .map(|(group, _, cut)| (group, cut))
            .unwrap_or_else(|| panic!("no variant {name}"));
        for _ in 0..times {
            black_box(cut(black_box(&group.input)));
        }
        return;
    }
    if let Ok(rounds) = std::env::var("FRAMING_ROUNDS") {
        interleaved(&groups, rounds.parse().expect("FRAMING_ROUNDS=n"));
        return;
    }
    let mut c = config().configure_from_args();
    for group in &groups {
        check(group);
        let mut bench = c.benchmark_group(group.name);
        bench.throughput(Throughput::Bytes(group.input.len() as u64));
        for (variant, cut) in &group.variants {
            bench.bench_function(*variant, |b| b.iter(|| cut(black_box(&group.input))));
        }
        bench.finish();
    }
    c.final_summary();
}
