//! Framing through the tokio reader (`pants::io::tokio::Reader`) against
//! the sans-IO `Framer` and tokio-util's `FramedRead` with `LinesCodec` and
//! `LengthDelimitedCodec`: do pants' framing ratios hold once an
//! `AsyncRead` is in between? Results and method: BENCHMARKS.md ("tokio
//! reader (issue 12)").
//!
//! Every variant frames the same 4 MiB input, handed out by an in-memory
//! `AsyncRead` in 64 KiB reads (always ready: this measures framing and the
//! reader's own overhead, not a socket), and does the same work per frame
//! ([`touch`]). The async variants run on one current-thread runtime, one
//! `block_on` per pass over the input.
//!
//! `cargo bench --features tokio --bench tokio_reader` runs the criterion
//! suite; `TOKIO_READER_ROUNDS=n` instead times the variants interleaved,
//! `n` rounds, and prints medians of per-round ratios (what BENCHMARKS.md
//! reports: on a noisy machine the interleaving matters more than
//! criterion's statistics).

use std::hint::black_box;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use futures_util::StreamExt;
use pants::delimiter::{Packed, Until};
use pants::io::tokio::{Codec, Reader};
use pants::{Delimiter, Framer, NetStruct};
use tokio::io::{AsyncRead, ReadBuf};
use tokio_util::codec::{FramedRead, LengthDelimitedCodec, LinesCodec};

/// Bytes per read.
const CHUNK: usize = 64 * 1024;
/// Input size per pass.
const INPUT: usize = 4 << 20;
/// Largest frame every variant accepts (pants' default buffer size).
const LIMIT: usize = 64 * 1024;

/// The per-frame work, the same in every variant.
#[inline(always)]
fn touch(frame: &[u8]) {
    black_box((frame.len(), frame.first().copied()));
}

/// A length-prefixed message: a big-endian `u32` length, then the body.
#[derive(NetStruct)]
struct Message<'a> {
    #[netstruct(len = u32)]
    body: &'a [u8],
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

    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
}

/// Text lines of 90..=110 printable ASCII bytes, each ending in `\n` (as in
/// `benches/framing.rs`).
fn lines() -> Vec<u8> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::with_capacity(INPUT + 200);
    while out.len() < INPUT {
        for _ in 0..rng.range(90, 110) {
            out.push(b' ' + rng.range(0, 94) as u8);
        }
        out.push(b'\n');
    }
    out
}

/// `u32` big-endian length + a body of 32..=96 bytes (as in `benches/framing.rs`).
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

/// The input as an `AsyncRead`, at most `CHUNK` bytes per read, always ready.
struct Chunks<'a>(&'a [u8]);

impl AsyncRead for Chunks<'_> {
    fn poll_read(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let n = self.0.len().min(buf.remaining()).min(CHUNK);
        let (head, rest) = self.0.split_at(n);
        buf.put_slice(head);
        self.0 = rest;
        Poll::Ready(Ok(()))
    }
}

// ---------------------------------------------------------------- variants

/// The sans-IO baseline: push each chunk, `Framer::for_each_frame`.
#[inline(never)]
fn framer_batch<D: Delimiter>(input: &[u8], delimiter: D, mut touch: impl FnMut(D::Output<'_>)) -> usize {
    let mut framer = Framer::new(delimiter);
    let mut frames = 0;
    for chunk in input.chunks(CHUNK) {
        framer.push(chunk);
        frames += framer.for_each_frame(&mut touch).expect("no errors");
    }
    assert!(framer.is_empty());
    frames
}

/// Push each chunk, `Framer::next_frame` until `None`.
#[inline(never)]
fn framer_next_frame<D: Delimiter>(input: &[u8], delimiter: D, mut touch: impl FnMut(D::Output<'_>)) -> usize {
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

/// The tokio reader, one frame per `next_frame().await`.
#[inline(never)]
async fn reader_next_frame<D: Delimiter>(input: &[u8], delimiter: D, mut touch: impl FnMut(D::Output<'_>)) -> usize {
    let mut reader = Reader::new(Chunks(input), delimiter);
    let mut frames = 0;
    while let Some(frame) = reader.next_frame().await.expect("no errors") {
        touch(frame);
        frames += 1;
    }
    frames
}

/// The tokio reader, every buffered frame per `for_each_frame().await`.
#[inline(never)]
async fn reader_for_each_frame<D: Delimiter>(
    input: &[u8],
    delimiter: D,
    mut touch: impl FnMut(D::Output<'_>),
) -> usize {
    let mut reader = Reader::new(Chunks(input), delimiter);
    let mut frames = 0;
    loop {
        match reader.for_each_frame(&mut touch).await.expect("no errors") {
            0 => return frames,
            n => frames += n,
        }
    }
}

/// tokio-util `FramedRead` with `LinesCodec` (owned `String` per line,
/// UTF-8 checked: what a tokio line server uses).
#[inline(never)]
async fn framed_lines(input: &[u8]) -> usize {
    let mut framed = FramedRead::new(Chunks(input), LinesCodec::new_with_max_length(LIMIT));
    let mut frames = 0;
    while let Some(line) = framed.next().await {
        touch(line.expect("valid lines").as_bytes());
        frames += 1;
    }
    frames
}

/// tokio-util `FramedRead` with pants' `Codec<Until>` (`BytesMut` per line).
#[inline(never)]
async fn framed_pants_codec(input: &[u8]) -> usize {
    let mut framed = FramedRead::new(Chunks(input), Codec::new(Until::lf()));
    let mut frames = 0;
    while let Some(line) = framed.next().await {
        touch(&line.expect("valid lines"));
        frames += 1;
    }
    frames
}

/// tokio-util `FramedRead` with `LengthDelimitedCodec` (4-byte big-endian length).
#[inline(never)]
async fn framed_length_delimited(input: &[u8]) -> usize {
    let codec = LengthDelimitedCodec::builder().length_field_length(4).big_endian().max_frame_length(LIMIT).new_codec();
    let mut framed = FramedRead::new(Chunks(input), codec);
    let mut frames = 0;
    while let Some(body) = framed.next().await {
        touch(&body.expect("no errors"));
        frames += 1;
    }
    frames
}

fn touch_message(message: Message<'_>) {
    touch(message.body);
}

// ---------------------------------------------------------------- harness

type Cut = Box<dyn Fn(&tokio::runtime::Runtime, &[u8]) -> usize>;

struct Group {
    name: &'static str,
    input: Vec<u8>,
    /// The variant the others are compared with (the tokio-util codec).
    baseline: &'static str,
    variants: Vec<(&'static str, Cut)>,
}

fn groups() -> Vec<Group> {
    vec![
        Group {
            name: "lines_lf",
            input: lines(),
            baseline: "framed_lines_codec",
            variants: vec![
                ("framer_batch", Box::new(|_, input| framer_batch(input, Until::lf(), touch))),
                ("framer_next_frame", Box::new(|_, input| framer_next_frame(input, Until::lf(), touch))),
                ("reader_next_frame", Box::new(|rt, input| rt.block_on(reader_next_frame(input, Until::lf(), touch)))),
                (
                    "reader_for_each_frame",
                    Box::new(|rt, input| rt.block_on(reader_for_each_frame(input, Until::lf(), touch))),
                ),
                ("framed_pants_codec", Box::new(|rt, input| rt.block_on(framed_pants_codec(input)))),
                ("framed_lines_codec", Box::new(|rt, input| rt.block_on(framed_lines(input)))),
            ],
        },
        Group {
            name: "netstruct_u32_body",
            input: prefixed(),
            baseline: "framed_length_delimited",
            variants: vec![
                ("framer_batch", Box::new(|_, input| framer_batch(input, Packed::<Message>::new(), touch_message))),
                (
                    "framer_next_frame",
                    Box::new(|_, input| framer_next_frame(input, Packed::<Message>::new(), touch_message)),
                ),
                (
                    "reader_next_frame",
                    Box::new(|rt, input| {
                        rt.block_on(reader_next_frame(input, Packed::<Message>::new(), touch_message))
                    }),
                ),
                (
                    "reader_for_each_frame",
                    Box::new(|rt, input| {
                        rt.block_on(reader_for_each_frame(input, Packed::<Message>::new(), touch_message))
                    }),
                ),
                ("framed_length_delimited", Box::new(|rt, input| rt.block_on(framed_length_delimited(input)))),
            ],
        },
    ]
}

/// Every variant of a group cuts the same number of frames.
fn check(runtime: &tokio::runtime::Runtime, group: &Group) {
    let counts: Vec<usize> = group.variants.iter().map(|(_, cut)| cut(runtime, &group.input)).collect();
    assert!(counts.iter().all(|&n| n == counts[0] && n > 0), "{}: {counts:?}", group.name);
}

/// Times the variants of each group interleaved, `rounds` rounds; prints
/// each variant's best throughput and the median over the rounds of
/// baseline time / variant time (above 1: faster than the tokio-util
/// codec), and the same against `framer_batch`.
fn interleaved(runtime: &tokio::runtime::Runtime, groups: &[Group], rounds: usize) {
    for group in groups {
        check(runtime, group);
        let mut times = vec![Vec::with_capacity(rounds); group.variants.len()];
        for _ in 0..rounds {
            for ((_, cut), times) in group.variants.iter().zip(&mut times) {
                let start = Instant::now();
                black_box(cut(runtime, black_box(&group.input)));
                times.push(start.elapsed().as_secs_f64());
            }
        }
        let index = |name: &str| group.variants.iter().position(|(n, _)| *n == name).expect("a variant");
        let (base, framer) = (index(group.baseline), index("framer_batch"));
        let median_ratio = |reference: &[f64], own: &[f64]| {
            let mut ratios: Vec<f64> = reference.iter().zip(own).map(|(r, t)| r / t).collect();
            ratios.sort_by(f64::total_cmp);
            ratios[ratios.len() / 2]
        };
        for ((variant, _), own) in group.variants.iter().zip(&times) {
            let fastest = own.iter().copied().fold(f64::INFINITY, f64::min);
            let gib_s = group.input.len() as f64 / fastest / f64::from(1 << 30);
            println!(
                "{}/{variant}\t{gib_s:.2} GiB/s\tvs {} {:.2}x\tvs framer_batch {:.2}x",
                group.name,
                group.baseline,
                median_ratio(&times[base], own),
                median_ratio(&times[framer], own),
            );
        }
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    let groups = groups();
    if let Ok(rounds) = std::env::var("TOKIO_READER_ROUNDS") {
        interleaved(&runtime, &groups, rounds.parse().expect("TOKIO_READER_ROUNDS=n"));
        return;
    }
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .configure_from_args();
    for group in &groups {
        check(&runtime, group);
        let mut bench = c.benchmark_group(format!("tokio_reader/{}", group.name));
        bench.throughput(Throughput::Bytes(group.input.len() as u64));
        for (variant, cut) in &group.variants {
            bench.bench_function(*variant, |b| b.iter(|| cut(&runtime, black_box(&group.input))));
        }
        bench.finish();
    }
    c.final_summary();
}
