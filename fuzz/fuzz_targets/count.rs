//! `Count(n)` for n in 1..=8192 (from two input bytes), so frames both below
//! and above the buffer size (which `min_buffer` then raises).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pants::delimiter::Count;
use pants_fuzz::{take, Plan};

fuzz_target!(|data: &[u8]| {
    let Some((plan, mut data)) = Plan::parse(data) else { return };
    let Some(&[a, b]) = take(&mut data, 2) else { return };
    let n = 1 + usize::from(u16::from_le_bytes([a, b])) % 8192;
    let make = || Count::new(n).unwrap();
    assert_eq!(make().size(), n);
    plan.run(data, make, make);
});
