//! Compile-fail tests for `#[derive(NetStruct)]`: each file in
//! `tests/ui/derive/` must fail to compile with the error in its `.stderr`.
//! Regenerate with `TRYBUILD=overwrite cargo test --test derive_ui`, then
//! read every `.stderr`: each must be the error the case is about.

#[test]
fn derive_errors() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/derive/*.rs");
}
