//! `Packed<T>` for derived `NetStruct` types: a many-field big-endian message
//! with every prefix type and a nested little-endian struct, the benchmark's
//! `u32`-prefixed body, a struct with `max` limits (nested too), and a
//! fixed-size struct.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pants::delimiter::Packed;
use pants_fuzz::types::{Body, Limited, Message, Plain};
use pants_fuzz::{byte, Plan};

fuzz_target!(|data: &[u8]| {
    let Some((plan, mut data)) = Plan::parse(data) else { return };
    let Some(selector) = byte(&mut data) else { return };
    match selector % 4 {
        0 => plan.run(data, Packed::<Message>::new, Packed::<Message>::new),
        1 => plan.run(data, Packed::<Body>::new, Packed::<Body>::new),
        2 => plan.run(data, Packed::<Limited>::new, Packed::<Limited>::new),
        _ => plan.run(data, Packed::<Plain>::new, Packed::<Plain>::new),
    }
});
