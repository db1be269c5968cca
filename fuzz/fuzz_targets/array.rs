//! `Array<N>` for a few sizes, one below every buffer size, some above.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pants::delimiter::Array;
use pants_fuzz::{byte, Plan};

fuzz_target!(|data: &[u8]| {
    let Some((plan, mut data)) = Plan::parse(data) else { return };
    let Some(selector) = byte(&mut data) else { return };
    match selector % 6 {
        0 => plan.run(data, || Array::<1>, || Array::<1>),
        1 => plan.run(data, || Array::<2>, || Array::<2>),
        2 => plan.run(data, || Array::<7>, || Array::<7>),
        3 => plan.run(data, || Array::<64>, || Array::<64>),
        4 => plan.run(data, || Array::<1000>, || Array::<1000>),
        _ => plan.run(data, || Array::<5000>, || Array::<5000>),
    }
});
