//! Compile-fail tests for the typestate: a stream can only read (start with
//! or switch to) a delimiter its handler implements `Read` for, a frame
//! cannot outlive the next `next_frame` call, and degenerate delimiters are
//! refused at compile time, and `send` only takes frames its stream's
//! delimiter encodes. Each file in `tests/ui/typestate/` must fail to
//! compile with the error in its `.stderr`.
//!
//! Regenerate with `TRYBUILD=overwrite cargo test --test typestate_ui`, then
//! read every `.stderr`: each must be the error the case is about.

#[test]
fn typestate_errors() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/typestate/pass/*.rs");
    t.compile_fail("tests/ui/typestate/*.rs");
}
