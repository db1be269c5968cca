//! `Raw`: everything buffered is one frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pants::delimiter::Raw;
use pants_fuzz::Plan;

fuzz_target!(|data: &[u8]| {
    let Some((plan, stream)) = Plan::parse(data) else { return };
    plan.run(stream, || Raw, || Raw);
});
