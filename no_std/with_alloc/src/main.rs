//! pants in a `#![no_std]` program with a global allocator and the `alloc`
//! feature: see `../README.md`.
//!
//! Every check returns its number on failure, which becomes the exit code.

#![no_std]
#![no_main]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicUsize, Ordering};

use pants::delimiter::{Packed, Until};
use pants::{Encode, Framer, NetStruct, Pack};

/// A message with owned fields (they need `alloc`).
#[derive(NetStruct, Debug, PartialEq)]
struct Greeting {
    id: u16,
    #[netstruct(len = u8)]
    name: String,
    #[netstruct(len = u16)]
    body: Vec<u8>,
}

/// A growable framer and the write side: `Encode` for lines, `Pack` and
/// `to_bytes` for derived structs.
fn framer_and_write_side() -> Result<(), i32> {
    let lines = Until::lf();
    let mut wire = Vec::new();
    for line in ["first", "second"] {
        lines.encode(line, &mut wire).map_err(|_| 1)?;
    }
    let mut framer = Framer::new(lines);
    framer.push(&wire);
    let mut seen = Vec::new();
    framer.for_each_frame(|line| seen.push(line.to_vec())).map_err(|_| 2)?;
    if seen != [&b"first"[..], b"second"] {
        return Err(3);
    }

    let greeting = Greeting { id: 7, name: String::from("pants"), body: alloc::vec![1, 2, 3] };
    let mut wire = greeting.to_bytes().map_err(|_| 4)?;
    greeting.pack(&mut wire).map_err(|_| 5)?;
    let mut framer = framer.read_delimiter(Packed::<Greeting>::new());
    framer.push(&wire);
    for _ in 0..2 {
        if framer.next_frame().map_err(|_| 6)?
            != Some(Greeting { id: 7, name: String::from("pants"), body: alloc::vec![1, 2, 3] })
        {
            return Err(7);
        }
    }
    if framer.finish().is_err() {
        return Err(8);
    }
    Ok(())
}

/// A run-time message in a malformed frame's reason needs `alloc`.
fn owned_reason() -> Result<(), i32> {
    let error = pants::FrameError::malformed(alloc::format!("bad byte {:#04x}", 0xff));
    match error {
        pants::FrameError::Malformed(reason) if reason == "bad byte 0xff" => Ok(()),
        _ => Err(10),
    }
}

fn run() -> Result<(), i32> {
    framer_and_write_side()?;
    owned_reason()
}

/// A bump allocator over a static arena: memory is never reused, which is
/// plenty for a short test program.
struct Bump {
    arena: UnsafeCell<[u8; ARENA]>,
    next: AtomicUsize,
}

const ARENA: usize = 256 * 1024;

// SAFETY: `alloc` hands out disjoint ranges of the arena (the atomic
// `fetch_add` makes each range unique), so sharing the arena is sound.
unsafe impl Sync for Bump {}

// SAFETY: every pointer returned lies inside the arena, is aligned to
// `layout.align()`, and is never handed out twice; null means exhausted.
unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let base = self.arena.get() as usize;
        let mut start = 0;
        let claimed = self.next.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |next| {
            start = (base + next).next_multiple_of(layout.align()) - base;
            let end = start.checked_add(layout.size())?;
            (end <= ARENA).then_some(end)
        });
        match claimed {
            Ok(_) => (base + start) as *mut u8,
            Err(_) => core::ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}
}

#[global_allocator]
static ALLOCATOR: Bump = Bump { arena: UnsafeCell::new([0; ARENA]), next: AtomicUsize::new(0) };

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
/// linker.
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}

/// The prebuilt `alloc` of a hosted target has unwinding landing pads
/// (`format!`'s), which refer to this. Nothing unwinds under
/// `panic = "abort"`, so it is never reached; if it were, it aborts.
#[no_mangle]
pub extern "C" fn _Unwind_Resume() -> ! {
    // SAFETY: as in `panic`.
    unsafe { abort() }
}

/// No `std`, so the program says what a panic does: abort.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // SAFETY: `abort` takes no arguments and never returns.
    unsafe { abort() }
}
