//! pants in a `#![no_std]` program with no allocator: see `../README.md`.
//!
//! Every check returns its number on failure, which becomes the exit code.

#![no_std]
#![no_main]

use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

use pants::delimiter::{Count, Fixed, Packed, Until};
use pants::zerocopy::big_endian::U16;
use pants::zerocopy::{FromBytes, Immutable, KnownLayout, Unaligned};
use pants::{Delimiter, FrameError, Framer, NetStruct};

/// A sensor report with a borrowed unit string.
#[derive(NetStruct, Debug, PartialEq)]
struct Report<'a> {
    sensor: u8,
    value: i32,
    #[netstruct(len = u8, max = 16)]
    unit: &'a str,
}

/// A fixed 3-byte header laid over the buffer.
#[derive(FromBytes, KnownLayout, Immutable, Unaligned)]
#[zerocopy(crate = "pants::zerocopy")]
#[repr(C)]
struct Header {
    kind: u8,
    len: U16,
}

/// Lines from an `embedded_io::Read` (a byte slice standing in for a UART),
/// through a 32-byte buffer smaller than the input.
fn lines_from_a_uart() -> Result<(), i32> {
    let mut uart: &[u8] = b"AT+CSQ\r\n+CSQ: 21,0\r\n\r\nOK\r\n";
    let expected: [&[u8]; 4] = [b"AT+CSQ", b"+CSQ: 21,0", b"", b"OK"];
    let mut memory = [0u8; 32];
    let mut framer = Framer::with_storage(Until::crlf(), &mut memory[..]);
    let mut seen = 0;
    loop {
        match framer.next_frame() {
            Ok(Some(line)) => {
                if expected.get(seen) != Some(&line) {
                    return Err(1);
                }
                seen += 1;
                continue;
            }
            Ok(None) => {}
            Err(_) => return Err(2),
        }
        match framer.read_from_embedded(&mut uart, 5) {
            Ok(0) => break,
            Ok(_) => {}
            Err(_) => return Err(3),
        }
    }
    if seen != expected.len() || framer.finish().is_err() {
        return Err(4);
    }
    Ok(())
}

/// Derived structs encoded with `encode_into` and decoded borrowing the
/// buffer, one byte at a time, then a bad one refused with a typed error.
fn netstruct_round_trip() -> Result<(), i32> {
    let reports = [Report { sensor: 1, value: -40, unit: "C" }, Report { sensor: 2, value: 1013, unit: "hPa" }];
    let mut wire = [0u8; 64];
    let mut len = 0;
    for report in &reports {
        len += report.encode_into(&mut wire[len..]).map_err(|_| 10)?;
    }
    let mut framer = Framer::with_storage(Packed::<Report>::new(), [0u8; 24]);
    let mut seen = 0;
    for byte in &wire[..len] {
        framer.try_push(core::slice::from_ref(byte)).map_err(|_| 11)?;
        while let Some(report) = framer.next_frame().map_err(|_| 12)? {
            if reports.get(seen) != Some(&report) {
                return Err(13);
            }
            seen += 1;
        }
    }
    if seen != 2 {
        return Err(14);
    }
    // A unit longer than its max: refused when the prefix arrives.
    framer.try_push(&[3, 0, 0, 0, 0, 200]).map_err(|_| 15)?;
    match framer.next_frame() {
        Err(FrameError::FieldTooLong { field: "unit", len: 200, max: 16 }) => Ok(()),
        _ => Err(16),
    }
}

/// A fixed header, then a body of the size it announces: a typestate
/// switch on a caller's buffer, nothing allocated.
fn header_then_body() -> Result<(), i32> {
    let mut memory = [0u8; 16];
    let mut framer = Framer::with_storage(Fixed::<Header>::new(), &mut memory[..]);
    framer.try_push(b"\x07\x00\x05hello\x07").map_err(|_| 20)?;
    let len = match framer.next_frame().map_err(|_| 21)? {
        Some(header) if header.kind == 7 => header.len.get(),
        _ => return Err(22),
    };
    let mut framer = framer.read_delimiter(Count::new(len.into()).map_err(|_| 23)?);
    if framer.next_frame().map_err(|_| 24)? != Some(&b"hello"[..]) {
        return Err(25);
    }
    if framer.buffered() != b"\x07" {
        return Err(26);
    }
    Ok(())
}

/// The same through `embedded-io-async`, polled by hand (no executor).
fn async_read() -> Result<(), i32> {
    async fn count_records(mut source: &[u8]) -> Result<usize, i32> {
        let mut framer = Framer::with_storage(Count::new(4).map_err(|_| 30)?, [0u8; 8]);
        let mut records = 0;
        loop {
            while framer.next_frame().map_err(|_| 31)?.is_some() {
                records += 1;
            }
            if framer.read_from_embedded_async(&mut source, 3).await.map_err(|_| 32)? == 0 {
                return Ok(records);
            }
        }
    }
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(count_records(b"aaaabbbbccccdd")).as_mut().poll(&mut cx) {
        Poll::Ready(Ok(3)) => Ok(()),
        Poll::Ready(Err(code)) => Err(code),
        _ => Err(33),
    }
}

/// A delimiter written against the trait, without an allocator: its
/// malformed reason is a `&'static str`.
fn custom_delimiter() -> Result<(), i32> {
    struct Digit;
    impl Delimiter for Digit {
        type Output<'a> = u8;
        fn decode(&mut self, buf: &[u8]) -> Result<pants::Decoded<u8>, FrameError> {
            match buf.first() {
                None => Ok(pants::Decoded::Incomplete(pants::Needed::Exactly(1))),
                Some(byte @ b'0'..=b'9') => Ok(pants::Decoded::Frame { frame: byte - b'0', consumed: 1 }),
                Some(_) => Err(FrameError::malformed("not a digit")),
            }
        }
    }
    let mut framer = Framer::with_storage(Digit, [0u8; 4]);
    framer.try_push(b"42x").map_err(|_| 40)?;
    let (a, b) = (framer.next_frame(), framer.next_frame());
    if (a, b) != (Ok(Some(4)), Ok(Some(2))) {
        return Err(41);
    }
    match framer.next_frame() {
        Err(FrameError::Malformed(reason)) if reason == "not a digit" => Ok(()),
        _ => Err(42),
    }
}

/// Terminators longer than 4 bytes are held inline without `alloc` (up to
/// 32 bytes), found however the input is split; longer ones are refused.
fn long_terminators() -> Result<(), i32> {
    let input = b"one<END>two<E<END>";
    for split in 0..=input.len() {
        let mut framer = Framer::with_storage(Until::new(b"<END>").map_err(|_| 50)?, [0u8; 32]);
        let mut seen = 0;
        for part in [&input[..split], &input[split..]] {
            framer.try_push(part).map_err(|_| 51)?;
            while let Some(frame) = framer.next_frame().map_err(|_| 52)? {
                // Compared at once: the frame borrows the framer.
                if seen >= 2 || frame != [&b"one"[..], b"two<E"][seen] {
                    return Err(53);
                }
                seen += 1;
            }
        }
        if seen != 2 {
            return Err(54);
        }
    }
    match Until::new([b'-'; 33]) {
        Err(pants::DelimiterError::TerminatorTooLong { len: 33, max: 32 }) => Ok(()),
        _ => Err(55),
    }
}

fn run() -> Result<(), i32> {
    lines_from_a_uart()?;
    long_terminators()?;
    netstruct_round_trip()?;
    header_then_body()?;
    async_read()?;
    custom_delimiter()
}

/// The C runtime's entry point: the program has no `std` to provide `main`.
#[no_mangle]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    match run() {
        Ok(()) => 0,
        Err(code) => code,
    }
}

// The host's C library: its start-up code calls `main`, and it provides
// `memcpy`, `memmove`, `memset` and `memcmp`, which `core` needs. Nothing
// of Rust's `std` is linked.
#[link(name = "c")]
extern "C" {
    fn abort() -> !;
}

/// The unwinding personality routine that the prebuilt `core` of a hosted
/// target refers to. This program is built with `panic = "abort"`, so
/// nothing ever unwinds and this is never called; it only satisfies the
/// linker, as on any bare-metal build of a hosted target.
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}

/// No `std`, so the program says what a panic does: abort (nothing here
/// should panic, on any input; CI sees the signal if something does).
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // SAFETY: `abort` takes no arguments and never returns; it is safe to
    // call from any state, which is what a panic handler needs.
    unsafe { abort() }
}
