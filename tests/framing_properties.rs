//! Properties of the sans-IO framing core, checked with proptest.
//!
//! 1. Split invariance: for every built-in delimiter, the frames, the bytes
//!    left over and `finish()` are the same whether the input is pushed all at
//!    once, one byte at a time or in random chunks, and equal to what the input
//!    was generated from (`Raw` excepted: its frames are the chunks, so only
//!    their concatenation is checked). A protocol that switches delimiters
//!    (`Until` header, `Count` body) is split-invariant too. Each run is made
//!    three times: cutting with `next_frame`, with the batch
//!    `for_each_frame`, and on a fixed buffer (`Framer::with_storage`). A
//!    fixed buffer smaller than the input gives the same lines however the
//!    input is split.
//! 2. Robustness: arbitrary bytes in arbitrary chunks never panic any
//!    delimiter, errors are sticky and consume nothing, and with frames drained
//!    after each push (and the framer cleared after an error) the buffered
//!    bytes and the buffer's memory stay bounded by the limit and the largest
//!    chunk.

use std::fmt::Debug;
use std::ops::ControlFlow;

use binrw::BinRead;
use pants::delimiter::{Array, Binrw, Count, Fixed, Packed, Raw, RegexMatch, RegexSearch, Until};
use pants::framer::{Storage, DEFAULT_BUFFER_SIZE};
use pants::{Delimiter, FrameError, Framer, NetStruct};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::TestCaseError;
use zerocopy::big_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, KnownLayout, Unaligned};

// ---------------------------------------------------------------------------
// Frame types
// ---------------------------------------------------------------------------

/// A zerocopy record with big-endian fields (10 bytes).
#[derive(FromBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct FixedRec {
    kind: u8,
    len: U16,
    value: U32,
    tail: [u8; 3],
}

type FixedOwned = (u8, u16, u32, [u8; 3]);

fn own_fixed(rec: &FixedRec) -> FixedOwned {
    (rec.kind, rec.len.get(), rec.value.get(), rec.tail)
}

fn encode_fixed(&(kind, len, value, tail): &FixedOwned) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&value.to_be_bytes());
    out.extend_from_slice(&tail);
    out
}

/// A binrw message: magic, tag, a u16 length-prefixed body and a trailer.
#[derive(BinRead, Debug, Clone, PartialEq)]
#[br(big, magic = b"BR")]
struct Msg {
    tag: u8,
    len: u16,
    #[br(count = len)]
    body: Vec<u8>,
    crc: u32,
}

fn own_msg(msg: Msg) -> Msg {
    msg
}

fn encode_msg(msg: &Msg) -> Vec<u8> {
    let mut out = b"BR".to_vec();
    out.push(msg.tag);
    out.extend_from_slice(&msg.len.to_be_bytes());
    out.extend_from_slice(&msg.body);
    out.extend_from_slice(&msg.crc.to_be_bytes());
    out
}

/// A derived NetStruct with byte strings borrowed from the buffer.
#[derive(NetStruct, Debug, PartialEq)]
struct Rec<'a> {
    id: u32,
    #[netstruct(len = u16)]
    data: &'a [u8],
    #[netstruct(len = u8)]
    name: &'a str,
    score: i16,
    ok: bool,
    small: [u8; 2],
}

type RecOwned = (u32, Vec<u8>, String, i16, bool, [u8; 2]);

fn own_rec(rec: Rec<'_>) -> RecOwned {
    (rec.id, rec.data.to_vec(), rec.name.to_owned(), rec.score, rec.ok, rec.small)
}

/// The wire format of `Rec`, written by hand (netstruct `!IH$B$h?2s`).
fn encode_rec((id, data, name, score, ok, small): &RecOwned) -> Vec<u8> {
    let mut out = id.to_be_bytes().to_vec();
    out.extend_from_slice(&u16::try_from(data.len()).unwrap().to_be_bytes());
    out.extend_from_slice(data);
    out.push(u8::try_from(name.len()).unwrap());
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&score.to_be_bytes());
    out.push(u8::from(*ok));
    out.extend_from_slice(small);
    out
}

/// A u32 length prefix, so a peer can announce frames far over the limit.
#[derive(NetStruct, Debug, PartialEq)]
struct Big<'a> {
    #[netstruct(len = u32)]
    body: &'a [u8],
}

/// A signed length prefix, a string and a bool: every Packed error path.
#[derive(NetStruct, Debug, PartialEq)]
struct Strict<'a> {
    #[netstruct(len = i16)]
    text: &'a str,
    flag: bool,
}

fn bytes(frame: &[u8]) -> Vec<u8> {
    frame.to_vec()
}

fn array<const N: usize>(frame: &[u8; N]) -> Vec<u8> {
    frame.to_vec()
}

fn captures(caps: regex::bytes::Captures<'_>) -> (Vec<u8>, Vec<u8>) {
    (caps[1].to_vec(), caps[2].to_vec())
}

// ---------------------------------------------------------------------------
// Running a framer over chunks
// ---------------------------------------------------------------------------

/// Everything observable after feeding a framer some chunks.
#[derive(Debug, PartialEq)]
struct Outcome<T> {
    frames: Vec<T>,
    error: Option<FrameError>,
    leftover: Vec<u8>,
    finish: Result<(), FrameError>,
}

impl<T> Outcome<T> {
    /// What a clean run over complete frames followed by `leftover` gives.
    fn expected(frames: Vec<T>, leftover: &[u8]) -> Self {
        Outcome { frames, error: None, leftover: leftover.to_vec(), finish: finish_of(leftover) }
    }
}

fn finish_of(leftover: &[u8]) -> Result<(), FrameError> {
    if leftover.is_empty() {
        Ok(())
    } else {
        Err(FrameError::Truncated { buffered: leftover.len() })
    }
}

/// How a run cuts the frames each chunk completes.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// `next_frame` until it returns `None`.
    OneByOne,
    /// One `for_each_frame` per chunk (the batch path).
    Batch,
    /// `next_frame` on a framer over a fixed buffer (`Framer::with_storage`)
    /// as large as the default limit, fed with `try_push`.
    Fixed,
}

/// Pushes each chunk and cuts every frame it completes; stops at the first error.
fn run<D, T, F>(delimiter: D, chunks: &[&[u8]], own: &F, cut: Cut) -> Outcome<T>
where
    D: Delimiter,
    F: for<'a> Fn(D::Output<'a>) -> T,
{
    match cut {
        Cut::Fixed => {
            let mut memory = vec![0u8; DEFAULT_BUFFER_SIZE];
            let framer = Framer::with_storage(delimiter, &mut memory[..]);
            run_on(framer, chunks, own, cut, |framer, chunk| framer.try_push(chunk).expect("the input fits the limit"))
        }
        _ => run_on(Framer::new(delimiter), chunks, own, cut, |framer, chunk| framer.push(chunk)),
    }
}

fn run_on<D, S, T, F>(
    mut framer: Framer<D, S>,
    chunks: &[&[u8]],
    own: &F,
    cut: Cut,
    push: impl Fn(&mut Framer<D, S>, &[u8]),
) -> Outcome<T>
where
    D: Delimiter,
    S: Storage,
    F: for<'a> Fn(D::Output<'a>) -> T,
{
    let mut frames = Vec::new();
    let mut error = None;
    'chunks: for chunk in chunks {
        push(&mut framer, chunk);
        if let Cut::Batch = cut {
            if let Err(e) = framer.for_each_frame(|frame| frames.push(own(frame))) {
                error = Some(e);
                break 'chunks;
            }
            continue;
        }
        loop {
            match framer.next_frame().map(|frame| frame.map(own)) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break 'chunks;
                }
            }
        }
    }
    Outcome { frames, error, leftover: framer.buffered().to_vec(), finish: framer.finish() }
}

/// Cuts `input` at the positions `cuts` pick (sorted; repeated positions give
/// empty chunks, which must be harmless).
fn chunk_at<'a>(input: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|cut| cut.index(input.len() + 1)).collect();
    points.sort_unstable();
    let mut chunks = Vec::with_capacity(points.len() + 1);
    let mut previous = 0;
    for point in points {
        chunks.push(&input[previous..point]);
        previous = point;
    }
    chunks.push(&input[previous..]);
    chunks
}

fn lengths(chunks: &[&[u8]]) -> Vec<usize> {
    chunks.iter().map(|chunk| chunk.len()).collect()
}

/// Runs `input` whole, byte by byte and in the random chunks `cuts` picks,
/// and requires each run to give exactly `expected`.
fn check_splits<D, T, F>(
    make: impl Fn() -> D,
    own: F,
    input: &[u8],
    cuts: &[Index],
    expected: &Outcome<T>,
) -> Result<(), TestCaseError>
where
    D: Delimiter,
    T: PartialEq + Debug,
    F: for<'a> Fn(D::Output<'a>) -> T,
{
    let bytewise: Vec<&[u8]> = input.chunks(1).collect();
    let random = chunk_at(input, cuts);
    for cut in [Cut::OneByOne, Cut::Batch, Cut::Fixed] {
        prop_assert_eq!(&run(make(), &[input], &own, cut), expected, "input pushed all at once, {:?}", cut);
        prop_assert_eq!(&run(make(), &bytewise, &own, cut), expected, "input pushed one byte at a time, {:?}", cut);
        prop_assert_eq!(
            &run(make(), &random, &own, cut),
            expected,
            "input pushed in chunks of {:?}, {:?}",
            lengths(&random),
            cut
        );
    }
    Ok(())
}

/// Where `needle` first occurs in `haystack` (naive, independent of memchr).
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

fn cuts() -> impl Strategy<Value = Vec<Index>> {
    prop::collection::vec(any::<Index>(), 0..24)
}

/// Bytes that often form (parts of) the terminators and separators below.
const TRICKY: &[u8] = b"ab\r\n<>END;,:x09\xff\x00";

fn tricky_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(select(TRICKY), 0..max)
}

/// Self-overlapping terminators (`aab`, `abab`) included on purpose: after a
/// failed search the last `len - 1` bytes must be searched again.
const LINE_ENDS: &[&[u8]] = &[b"\n", b"\r\n"];

const TERMINATORS: &[&[u8]] = &[b"\n", b"\r\n", b"<END>", b"aab", b"abab", b"\xff"];

/// Shortens `line` until `line ++ terminator` holds the terminator only at its
/// end, so that the generated line is exactly the frame `Until` must cut.
fn until_line(mut line: Vec<u8>, terminator: &[u8]) -> Vec<u8> {
    loop {
        let mut framed = line.clone();
        framed.extend_from_slice(terminator);
        match find(&framed, terminator) {
            Some(at) if at < line.len() => line.truncate(at),
            _ => return line,
        }
    }
}

/// Shortens `record` until the first match of `regex` in `record ++ separator`
/// is exactly the separator.
fn regex_record(regex: &regex::bytes::Regex, mut record: Vec<u8>, separator: &[u8]) -> Vec<u8> {
    loop {
        let mut framed = record.clone();
        framed.extend_from_slice(separator);
        let m = regex.find(&framed).expect("the separator matches");
        if m.start() < record.len() {
            record.truncate(m.start());
        } else {
            assert_eq!(m.range(), record.len()..framed.len(), "separator {separator:?} is one whole match");
            return record;
        }
    }
}

/// A strict prefix of `bytes` (so never a whole frame), picked by `cut`.
fn strict_prefix(bytes: &[u8], cut: Index) -> &[u8] {
    &bytes[..cut.index(bytes.len().max(1))]
}

// ---------------------------------------------------------------------------
// 1. Split invariance
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn until_is_split_invariant(
        terminator in select(TERMINATORS),
        lines in prop::collection::vec(tricky_bytes(24), 0..24),
        partial in tricky_bytes(24),
        cuts in cuts(),
    ) {
        let lines: Vec<Vec<u8>> = lines.into_iter().map(|line| until_line(line, terminator)).collect();
        // The trailing partial frame must not hold a whole terminator.
        let partial = match find(&partial, terminator) {
            Some(at) => &partial[..at],
            None => &partial[..],
        };
        let mut input = Vec::new();
        for line in &lines {
            input.extend_from_slice(line);
            input.extend_from_slice(terminator);
        }
        input.extend_from_slice(partial);
        let expected = Outcome::expected(lines, partial);
        check_splits(|| Until::new(terminator).unwrap(), bytes, &input, &cuts, &expected)?;
        if terminator == b"\n" {
            check_splits(Until::lf, bytes, &input, &cuts, &expected)?;
        }
        if terminator == b"\r\n" {
            check_splits(Until::crlf, bytes, &input, &cuts, &expected)?;
        }
    }

    #[test]
    fn count_is_split_invariant(
        n in 1..=17usize,
        data in prop::collection::vec(any::<u8>(), 0..400),
        cuts in cuts(),
    ) {
        let whole = data.len() / n * n;
        let expected = Outcome::expected(data[..whole].chunks(n).map(<[u8]>::to_vec).collect(), &data[whole..]);
        check_splits(|| Count::new(n).unwrap(), bytes, &data, &cuts, &expected)?;
    }

    #[test]
    fn array_is_split_invariant(data in prop::collection::vec(any::<u8>(), 0..300), cuts in cuts()) {
        fn case<const N: usize>(data: &[u8], cuts: &[Index]) -> Result<(), TestCaseError> {
            let whole = data.len() / N * N;
            let expected = Outcome::expected(data[..whole].chunks(N).map(<[u8]>::to_vec).collect(), &data[whole..]);
            check_splits(|| Array::<N>, array::<N>, data, cuts, &expected)
        }
        case::<1>(&data, &cuts)?;
        case::<3>(&data, &cuts)?;
        case::<8>(&data, &cuts)?;
    }

    /// `\r?\n`: a `\r` at the end of a chunk is not a match yet, and a match
    /// found in part of the input is the one found in all of it.
    #[test]
    fn regex_search_line_ends_are_split_invariant(
        records in prop::collection::vec((tricky_bytes(20), select(LINE_ENDS)), 0..24),
        partial in tricky_bytes(20),
        cuts in cuts(),
    ) {
        let records = records.into_iter().map(|(record, end)| (record, end.to_vec())).collect();
        regex_search_case(r"\r?\n", records, partial, &cuts)?;
    }

    /// `<[a-z]{0,3}>`: separators of different lengths that cannot grow once
    /// matched.
    #[test]
    fn regex_search_tags_are_split_invariant(
        records in prop::collection::vec((tricky_bytes(20), "<[a-z]{0,3}>"), 0..24),
        partial in tricky_bytes(20),
        cuts in cuts(),
    ) {
        let records = records.into_iter().map(|(record, tag)| (record, tag.into_bytes())).collect();
        regex_search_case("<[a-z]{0,3}>", records, partial, &cuts)?;
    }

    #[test]
    fn regex_match_is_split_invariant(
        records in prop::collection::vec(("[0-9]{1,6}", "[a-z]{0,8}"), 0..24),
        tail in prop_oneof![
            ("[0-9]{1,6}", "[a-z]{0,8}", any::<Index>()).prop_map(|(digits, letters, cut)| {
                let record = format!("{digits}:{letters}\n").into_bytes();
                strict_prefix(&record, cut).to_vec()
            }),
            // Not a match, and never one: there is no `\n` to end it.
            prop::collection::vec(select(&b"ab:;x09\r"[..]), 1..20),
        ],
        cuts in cuts(),
    ) {
        let mut input = Vec::new();
        for (digits, letters) in &records {
            input.extend_from_slice(format!("{digits}:{letters}\n").as_bytes());
        }
        input.extend_from_slice(&tail);
        let frames = records.into_iter().map(|(d, l)| (d.into_bytes(), l.into_bytes())).collect();
        let expected = Outcome::expected(frames, &tail);
        check_splits(|| RegexMatch::new(r"(\d+):([a-z]*)\n").unwrap(), captures, &input, &cuts, &expected)?;
    }

    #[test]
    fn fixed_is_split_invariant(
        records in prop::collection::vec(any::<FixedOwned>(), 0..40),
        partial in prop::collection::vec(any::<u8>(), 0..size_of::<FixedRec>()),
        cuts in cuts(),
    ) {
        let mut input: Vec<u8> = records.iter().flat_map(encode_fixed).collect();
        input.extend_from_slice(&partial);
        let expected = Outcome::expected(records, &partial);
        check_splits(Fixed::<FixedRec>::new, own_fixed, &input, &cuts, &expected)?;
    }

    #[test]
    fn binrw_is_split_invariant(
        records in prop::collection::vec((any::<u8>(), prop::collection::vec(any::<u8>(), 0..40), any::<u32>()), 0..20),
        last in (any::<u8>(), prop::collection::vec(any::<u8>(), 0..40), any::<u32>()),
        cut in any::<Index>(),
        cuts in cuts(),
    ) {
        let msg = |(tag, body, crc): (u8, Vec<u8>, u32)| Msg { tag, len: body.len() as u16, body, crc };
        let records: Vec<Msg> = records.into_iter().map(msg).collect();
        let last = encode_msg(&msg(last));
        let partial = strict_prefix(&last, cut);
        let mut input: Vec<u8> = records.iter().flat_map(encode_msg).collect();
        input.extend_from_slice(partial);
        let expected = Outcome::expected(records, partial);
        check_splits(Binrw::<Msg>::new, own_msg, &input, &cuts, &expected)?;
    }

    #[test]
    fn packed_is_split_invariant(
        records in prop::collection::vec(
            (any::<u32>(), prop::collection::vec(any::<u8>(), 0..300), "\\PC{0,12}", any::<i16>(), any::<bool>(), any::<[u8; 2]>()),
            0..16,
        ),
        last in (any::<u32>(), prop::collection::vec(any::<u8>(), 0..40), "\\PC{0,12}", any::<i16>(), any::<bool>(), any::<[u8; 2]>()),
        cut in any::<Index>(),
        cuts in cuts(),
    ) {
        // The derived encoder agrees with the hand-written one.
        for record in &records {
            let (id, data, name, score, ok, small) = record;
            let rec = Rec { id: *id, data, name, score: *score, ok: *ok, small: *small };
            prop_assert_eq!(rec.to_bytes().unwrap(), encode_rec(record));
        }
        let last = encode_rec(&last);
        let partial = strict_prefix(&last, cut);
        let mut input: Vec<u8> = records.iter().flat_map(encode_rec).collect();
        input.extend_from_slice(partial);
        let expected = Outcome::expected(records, partial);
        check_splits(Packed::<Rec>::new, own_rec, &input, &cuts, &expected)?;
    }

    /// Raw frames are whatever was buffered, so they depend on the chunks by
    /// definition; what they hold together does not.
    #[test]
    fn a_small_fixed_buffer_gives_the_same_lines_under_any_split(
        lines in prop::collection::vec(prop::collection::vec(any::<u8>().prop_filter("no LF", |b| *b != b'\n'), 0..20), 0..40),
        cuts in cuts(),
    ) {
        let input: Vec<u8> = lines.iter().flat_map(|line| line.iter().copied().chain([b'\n'])).collect();
        let mut memory = [0u8; 32];
        let mut framer = Framer::with_storage(Until::lf(), &mut memory[..]);
        let mut got = Vec::new();
        for chunk in chunk_at(&input, &cuts) {
            let mut rest = chunk;
            while !rest.is_empty() {
                // Push what fits, cut what it completes, go on: compaction
                // makes room in the 32 bytes.
                let room = framer.limit() - framer.len();
                let (now, later) = rest.split_at(room.min(rest.len()));
                framer.try_push(now).unwrap();
                rest = later;
                while let Some(line) = framer.next_frame().unwrap() {
                    got.push(line.to_vec());
                }
            }
        }
        prop_assert_eq!(got, lines);
        prop_assert!(framer.is_empty());
        prop_assert_eq!(framer.capacity(), 32);
    }

    #[test]
    fn raw_concatenates_to_the_input(data in prop::collection::vec(any::<u8>(), 0..600), cuts in cuts()) {
        let random = chunk_at(&data, &cuts);
        let bytewise: Vec<&[u8]> = data.chunks(1).collect();
        for chunks in [vec![&data[..]], bytewise, random] {
            let outcome = run(Raw, &chunks, &bytes, Cut::OneByOne);
            prop_assert_eq!(outcome.frames.concat(), data.clone());
            // Each push is handed over whole before the next one (the framer is
            // drained after each push); empty chunks give no frame.
            let nonempty: Vec<Vec<u8>> = chunks.iter().filter(|c| !c.is_empty()).map(|c| c.to_vec()).collect();
            prop_assert_eq!(outcome.frames, nonempty);
            prop_assert_eq!((outcome.error, outcome.leftover, outcome.finish), (None, vec![], Ok(())));
        }
    }

    /// A header line (`Until`) gives a body size, the framer switches to
    /// `Count` for the body, then back to `Until`: the same events whatever
    /// the chunks, and the bytes buffered at each switch are cut with the new
    /// delimiter.
    #[test]
    fn switching_delimiters_is_split_invariant(
        bodies in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..60), 0..16),
        last in prop::collection::vec(any::<u8>(), 0..60),
        cut in any::<Index>(),
        cuts in cuts(),
    ) {
        let message = |body: &Vec<u8>| [format!("{}\r\n", body.len()).into_bytes(), body.clone()].concat();
        let mut input: Vec<u8> = bodies.iter().flat_map(message).collect();
        let mut events = Vec::new();
        for body in &bodies {
            events.push(Event::Header(body.len()));
            if !body.is_empty() {
                events.push(Event::Body(body.clone()));
            }
        }
        // An unfinished message: its header may have been cut already.
        let last_message = message(&last);
        let partial = strict_prefix(&last_message, cut);
        input.extend_from_slice(partial);
        let header_len = last_message.len() - last.len();
        let leftover = if partial.len() >= header_len {
            events.push(Event::Header(last.len()));
            &partial[header_len..]
        } else {
            partial
        };
        let expected = (events, leftover.to_vec(), finish_of(leftover));
        let bytewise: Vec<&[u8]> = input.chunks(1).collect();
        let random = chunk_at(&input, &cuts);
        for cut in [Cut::OneByOne, Cut::Batch] {
            prop_assert_eq!(&run_switching(&[&input], cut), &expected, "all at once, {:?}", cut);
            prop_assert_eq!(&run_switching(&bytewise, cut), &expected, "byte at a time, {:?}", cut);
            prop_assert_eq!(&run_switching(&random, cut), &expected, "chunks of {:?}, {:?}", lengths(&random), cut);
        }
    }
}

fn regex_search_case(
    pattern: &str,
    records: Vec<(Vec<u8>, Vec<u8>)>,
    partial: Vec<u8>,
    cuts: &[Index],
) -> Result<(), TestCaseError> {
    let regex = regex::bytes::Regex::new(pattern).unwrap();
    let mut input = Vec::new();
    let mut frames = Vec::new();
    for (record, separator) in records {
        let record = regex_record(&regex, record, &separator);
        input.extend_from_slice(&record);
        input.extend_from_slice(&separator);
        frames.push(record);
    }
    let partial = match regex.find(&partial) {
        Some(m) => &partial[..m.start()],
        None => &partial[..],
    };
    input.extend_from_slice(partial);
    let expected = Outcome::expected(frames, partial);
    check_splits(|| RegexSearch::new(pattern).unwrap(), bytes, &input, cuts, &expected)
}

#[derive(Debug, Clone, PartialEq)]
enum Event {
    Header(usize),
    Body(Vec<u8>),
}

#[allow(clippy::large_enum_variant)] // one per run
enum Mode {
    Header(Framer<Until>),
    Body(Framer<Count>),
}

/// The header/body protocol: returns the events, the leftover and `finish()`.
fn run_switching(chunks: &[&[u8]], cut: Cut) -> (Vec<Event>, Vec<u8>, Result<(), FrameError>) {
    let mut mode = Mode::Header(Framer::new(Until::crlf()));
    let mut events = Vec::new();
    for chunk in chunks {
        match &mut mode {
            Mode::Header(framer) => framer.push(chunk),
            Mode::Body(framer) => framer.push(chunk),
        }
        loop {
            mode = match mode {
                Mode::Header(mut framer) if matches!(cut, Cut::Batch) => {
                    // Header lines in one batch, stopped by a header with a body.
                    let flow = framer.try_for_each_frame(|line| {
                        let size: usize = std::str::from_utf8(line).unwrap().parse().unwrap();
                        events.push(Event::Header(size));
                        match Count::new(size) {
                            Ok(count) => ControlFlow::Break(count),
                            Err(_) => ControlFlow::Continue(()), // no body
                        }
                    });
                    match flow.unwrap() {
                        ControlFlow::Break(count) => Mode::Body(framer.read_delimiter(count)),
                        ControlFlow::Continue(()) => {
                            mode = Mode::Header(framer);
                            break;
                        }
                    }
                }
                Mode::Header(mut framer) => {
                    let size = framer.next_frame().unwrap().map(|line| std::str::from_utf8(line).unwrap().parse());
                    let Some(size) = size else {
                        mode = Mode::Header(framer);
                        break;
                    };
                    let size: usize = size.unwrap();
                    events.push(Event::Header(size));
                    match Count::new(size) {
                        Ok(count) => Mode::Body(framer.read_delimiter(count)),
                        Err(_) => Mode::Header(framer), // no body
                    }
                }
                Mode::Body(mut framer) => {
                    let Some(body) = framer.next_frame().unwrap().map(<[u8]>::to_vec) else {
                        mode = Mode::Body(framer);
                        break;
                    };
                    events.push(Event::Body(body));
                    Mode::Header(framer.read_delimiter(Until::crlf()))
                }
            };
        }
    }
    match mode {
        Mode::Header(framer) => (events, framer.buffered().to_vec(), framer.finish()),
        Mode::Body(framer) => (events, framer.buffered().to_vec(), framer.finish()),
    }
}

/// Splits `data` at each terminator, naively: the frames and what is left.
fn naive_split(mut data: &[u8], terminator: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut frames = Vec::new();
    while let Some(at) = find(data, terminator) {
        frames.push(data[..at].to_vec());
        data = &data[at + terminator.len()..];
    }
    (frames, data.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `clear`, `discard` and `take_buffered` leave nothing of the past
    /// behind: after junk (which may have overflowed a small limit), the bytes
    /// that follow are cut exactly as a naive splitter cuts what is left
    /// buffered plus the new input. `Until` keeps a scan offset between calls,
    /// so this is where stale state would show.
    #[test]
    fn dropping_bytes_forgets_the_scan(
        terminator in select(TERMINATORS),
        junk in tricky_bytes(300),
        how in 0..3u8,
        keep in any::<Index>(),
        input in tricky_bytes(300),
        junk_cuts in cuts(),
        cuts in cuts(),
    ) {
        let mut framer = Framer::new(Until::new(terminator).unwrap()).with_buffer_size(64);
        for chunk in chunk_at(&junk, &junk_cuts) {
            framer.push(chunk);
            while let Ok(Some(_)) = framer.next_frame() {}
        }
        let rest = match how {
            0 => {
                framer.clear();
                Vec::new()
            }
            1 => {
                let kept = keep.index(framer.len() + 1);
                let rest = framer.buffered()[framer.len() - kept..].to_vec();
                framer.discard(framer.len() - kept);
                rest
            }
            _ => {
                framer.take_buffered();
                Vec::new()
            }
        };
        prop_assert_eq!(framer.buffered(), &rest[..]);
        framer.set_buffer_size(pants::framer::DEFAULT_BUFFER_SIZE);
        let mut frames = Vec::new();
        for chunk in chunk_at(&input, &cuts) {
            framer.push(chunk);
            while let Some(frame) = framer.next_frame().unwrap() {
                frames.push(frame.to_vec());
            }
        }
        let (expected, leftover) = naive_split(&[&rest[..], &input].concat(), terminator);
        prop_assert_eq!(frames, expected);
        prop_assert_eq!(framer.buffered(), &leftover[..]);
    }
}

/// The documented exception: a pattern whose match can grow (`[;,]+`) is cut
/// at the bytes buffered when it is first found, so it depends on the chunks.
/// Split invariance needs a pattern with a fixed end.
#[test]
fn growable_regex_search_depends_on_chunks() {
    let d = || RegexSearch::new("[;,]+").unwrap();
    assert_eq!(run(d(), &[b"a;,b;"], &bytes, Cut::Batch).frames, [&b"a"[..], b"b"]);
    assert_eq!(run(d(), &[b"a;", b",b;"], &bytes, Cut::Batch).frames, [&b"a"[..], b"", b"b"]);
}

// ---------------------------------------------------------------------------
// 2. Arbitrary bytes: no panic, sticky errors, bounded memory
// ---------------------------------------------------------------------------

/// Feeds `input` in the chunks `cuts` picks, draining frames after each push
/// and clearing the framer after an error. Checks that errors are sticky and
/// consume nothing, and that what is buffered stays under the limit between
/// pushes (so at most `limit - 1 + chunk` right after one) and the buffer's
/// memory under a constant factor of `limit + largest chunk`.
fn hammer<D: Delimiter>(delimiter: D, input: &[u8], cuts: &[Index]) -> Result<(), TestCaseError> {
    let mut framer = Framer::new(delimiter).with_buffer_size(256);
    let limit = framer.limit();
    let chunks = chunk_at(input, cuts);
    let largest = chunks.iter().map(|chunk| chunk.len()).max().unwrap_or(0);
    let memory_bound = (4 * (limit + largest)).max(4096);
    for chunk in &chunks {
        framer.push(chunk);
        prop_assert!(framer.len() < limit + chunk.len(), "{} buffered, limit {limit}", framer.len());
        loop {
            let before = framer.len();
            let error = match framer.next_frame() {
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(error) => error,
            };
            // Built-in delimiters never fail on nothing (and if one did, the
            // clear() below would not help: this loop would never end).
            prop_assert!(before > 0, "{:?} with nothing buffered", error);
            prop_assert_eq!(framer.len(), before, "{:?} consumed bytes", error);
            prop_assert_eq!(framer.next_frame().map(|frame| frame.is_some()), Err(error.clone()), "not sticky");
            prop_assert_eq!(framer.len(), before);
            if let FrameError::Overflow { limit: reported, needed } = error {
                prop_assert_eq!(reported, limit);
                prop_assert!(needed > limit);
            }
            framer.clear();
        }
        prop_assert!(framer.len() < limit, "{} buffered after draining, limit {limit}", framer.len());
        prop_assert!(framer.capacity() <= memory_bound, "capacity {} > {memory_bound}", framer.capacity());
    }
    match framer.finish() {
        Ok(()) => prop_assert!(framer.is_empty()),
        Err(error) => prop_assert_eq!(error, FrameError::Truncated { buffered: framer.len() }),
    }
    Ok(())
}

fn arbitrary_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![prop::collection::vec(any::<u8>(), 0..2000), tricky_bytes(2000)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic_and_stay_bounded(input in arbitrary_input(), cuts in cuts()) {
        hammer(Raw, &input, &cuts)?;
        for terminator in TERMINATORS {
            hammer(Until::new(terminator).unwrap(), &input, &cuts)?;
        }
        hammer(Count::new(7).unwrap(), &input, &cuts)?;
        hammer(Count::new(300).unwrap(), &input, &cuts)?; // over the buffer size: the limit is raised
        hammer(Array::<5>, &input, &cuts)?;
        hammer(RegexSearch::new(r"\r?\n").unwrap(), &input, &cuts)?;
        hammer(RegexSearch::new("[;,]+").unwrap(), &input, &cuts)?;
        hammer(RegexMatch::new(r"(\d+):([a-z]*)\n").unwrap(), &input, &cuts)?;
        hammer(Fixed::<FixedRec>::new(), &input, &cuts)?;
        hammer(Binrw::<Msg>::new(), &input, &cuts)?;
        hammer(Packed::<Rec>::new(), &input, &cuts)?;
        hammer(Packed::<Big>::new(), &input, &cuts)?;
        hammer(Packed::<Strict>::new(), &input, &cuts)?;
    }
}
