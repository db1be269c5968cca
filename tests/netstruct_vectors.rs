//! Conformance of `#[derive(NetStruct)]` with Python's `netstruct` 1.1.2.
//!
//! `tests/data/netstruct.json` is a copy of the shared test vectors (see the
//! README next to the original): every size, byte string and `iter_unpack`
//! count in it was produced by the Python package. Each netstruct format is
//! written here as a derived struct (the `vector_structs!` macro below), with
//! this mapping of format codes to Rust fields:
//!
//! | netstruct | Rust field |
//! |---|---|
//! | `b B h H i I l L q Q` | `i8 u8 i16 u16 i32 u32 i32 u32 i64 u64` (standard sizes: `l`/`L` are 4 bytes) |
//! | `?` | `bool` |
//! | `f`, `d` | `f32`, `f64` |
//! | `Ns`, `c` | `[u8; N]`, `[u8; 1]` |
//! | `Np` (pascal string) | `[u8; N]`, the raw bytes (length byte, data, padding) |
//! | `5b` (a repeat count) | `[i8; 5]` |
//! | `X$` | `&[u8]` (or `&str`, `Vec<u8>`, `String`) with `#[netstruct(len = X)]` |
//! | `Nx` | `pants::netstruct::Pad<N>` |
//! | `<` | `#[netstruct(little_endian)]`; `!`, `>` and no prefix are the default |
//!
//! Only the last integer before a `$` is its length: `2H$` is a plain `u16`
//! field, then a byte string with a `u16` prefix.
//!
//! The `platform_dependent` vectors (formats starting with `@` or `=`, the
//! host's native byte order, and for `@` C alignment) were made on a
//! little-endian host. There they are checked with `#[netstruct(native_endian)]`
//! structs, `@`'s alignment padding written out as `Pad<N>` fields (pants
//! never pads by itself; `#[netstruct(native)]` alone is a compile error
//! saying so, `tests/ui/derive/native_order.rs`). On a big-endian host they
//! are skipped: `SKIPPED_PLATFORM_DEPENDENT` lists exactly which, and the test
//! fails if the list and the file disagree.

use std::fmt::Debug;
use std::panic::{catch_unwind, AssertUnwindSafe};

use pants::delimiter::Packed;
use pants::netstruct::Pad;
use pants::{Decoded, FrameError, Framer, Needed, NetStruct, Pack, PackError};
use serde_json::Value as Json;

// ---------------------------------------------------------------------------
// Test data
// ---------------------------------------------------------------------------

fn data() -> Json {
    let text = include_str!("data/netstruct.json");
    serde_json::from_str(text).expect("tests/data/netstruct.json is valid JSON")
}

fn vectors(data: &Json) -> &[Json] {
    data["vectors"].as_array().expect("`vectors` is a list")
}

fn vector<'j>(data: &'j Json, id: &str) -> &'j Json {
    vectors(data).iter().find(|v| v["id"] == id).unwrap_or_else(|| panic!("no vector `{id}`"))
}

fn unhex(hex: &str) -> Vec<u8> {
    assert!(hex.len() % 2 == 0, "odd-length hex {hex:?}");
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digit")).collect()
}

fn hex_of(j: &Json) -> Vec<u8> {
    unhex(j.as_str().unwrap_or_else(|| panic!("expected a hex string, got {j}")))
}

fn usize_of(j: &Json) -> usize {
    j.as_u64().and_then(|n| usize::try_from(n).ok()).unwrap_or_else(|| panic!("expected a size, got {j}"))
}

fn sizes(j: &Json) -> Vec<usize> {
    j.as_array().unwrap_or_else(|| panic!("expected a list, got {j}")).iter().map(usize_of).collect()
}

/// A tagged value from the JSON file (see the vectors' README).
#[derive(Debug, Clone, PartialEq)]
enum Value {
    /// Wide enough for every `int` in the file, from `i64::MIN` to `u64::MAX`.
    Int(i128),
    Bytes(Vec<u8>),
    Bool(bool),
    /// The IEEE-754 bits of the double (compared exactly).
    Float(u64),
}

fn value(j: &Json) -> Value {
    match j["type"].as_str() {
        Some("int") => {
            let n = &j["value"];
            // serde_json keeps integers exact: u64 above i64::MAX, i64 below 0.
            let n = n.as_u64().map(i128::from).or_else(|| n.as_i64().map(i128::from));
            Value::Int(n.unwrap_or_else(|| panic!("not a 64-bit integer: {j}")))
        }
        Some("bytes") => Value::Bytes(hex_of(&j["hex"])),
        Some("bool") => Value::Bool(j["value"].as_bool().expect("bool value")),
        Some("float") => {
            let bits = u64::from_str_radix(j["f64_bits"].as_str().expect("f64_bits"), 16).expect("f64_bits hex");
            // The decimal `value` is for humans; the bits are what counts. They must agree.
            let approx = j["value"].as_f64().expect("float value");
            assert!((f64::from_bits(bits) - approx).abs() <= f64::EPSILON * approx.abs(), "{j}");
            Value::Float(bits)
        }
        _ => panic!("no Rust counterpart for value {j}"),
    }
}

fn values(j: &Json) -> Vec<Value> {
    j.as_array().unwrap_or_else(|| panic!("expected a list of values, got {j}")).iter().map(value).collect()
}

// ---------------------------------------------------------------------------
// Struct fields <-> flat netstruct value lists
// ---------------------------------------------------------------------------

/// A derived struct standing for one netstruct format: converts to and from
/// the flat value list `pack` takes and `unpack` returns.
trait Vector<'a>: Sized {
    /// How many values: netstruct's `count`.
    const COUNT: usize;
    fn to_values(&self) -> Vec<Value>;
    fn from_values(values: &'a [Value]) -> Self;
}

/// How one field maps to netstruct values. The kind is named per field
/// because `[u8; N]` can be `Ns` (one bytes value), `NB` (N ints) or `Np`.
trait Conv<'a, F> {
    const COUNT: usize = 1;
    fn put(field: &F, out: &mut Vec<Value>);
    fn take(values: &mut std::slice::Iter<'a, Value>) -> F;
}

/// One integer (`b B h H i I l L q Q`).
struct Int;
/// `N` integers from a repeat count (`5b`, `3B`).
struct Ints;
/// `?`. `pack` accepts any truthy value (`bool-normalise` packs the int 5).
struct Bool;
/// `f` / `d`. `f` rounds the double to f32 on the way in, like `struct`.
struct Float;
/// One bytes value: `Ns` / `c` as `[u8; N]` (`pack` pads with NULs or
/// truncates, `unpack` keeps the padding), or a `$` string.
struct Bytes;
/// `Np`, a pascal string: a length byte (at most `N - 1`), the data, NUL
/// padding. pants has no pascal type, so the field is the raw `[u8; N]`;
/// this conversion does what `struct` does to and from it.
struct Pascal;
/// `Nx`: padding, no value.
struct Skip;

fn next<'a>(values: &mut std::slice::Iter<'a, Value>) -> &'a Value {
    values.next().expect("fewer values than fields")
}

macro_rules! int_conv {
    ($($t:ty),*) => {$(
        impl<'a> Conv<'a, $t> for Int {
            fn put(field: &$t, out: &mut Vec<Value>) {
                out.push(Value::Int(i128::from(*field)));
            }
            fn take(values: &mut std::slice::Iter<'a, Value>) -> $t {
                match next(values) {
                    Value::Int(n) => <$t>::try_from(*n).unwrap_or_else(|_| panic!("{n} does not fit {}", stringify!($t))),
                    other => panic!("expected an int, got {other:?}"),
                }
            }
        }
    )*};
}

int_conv!(i8, u8, i16, u16, i32, u32, i64, u64);

impl<'a, T, const N: usize> Conv<'a, [T; N]> for Ints
where
    Int: Conv<'a, T>,
{
    const COUNT: usize = N;

    fn put(field: &[T; N], out: &mut Vec<Value>) {
        field.iter().for_each(|n| Int::put(n, out));
    }
    fn take(values: &mut std::slice::Iter<'a, Value>) -> [T; N] {
        std::array::from_fn(|_| Int::take(values))
    }
}

impl<'a> Conv<'a, bool> for Bool {
    fn put(field: &bool, out: &mut Vec<Value>) {
        out.push(Value::Bool(*field));
    }
    fn take(values: &mut std::slice::Iter<'a, Value>) -> bool {
        match next(values) {
            Value::Bool(b) => *b,
            Value::Int(n) => *n != 0,
            other => panic!("expected a bool, got {other:?}"),
        }
    }
}

fn float_bits(values: &mut std::slice::Iter<'_, Value>) -> f64 {
    match next(values) {
        Value::Float(bits) => f64::from_bits(*bits),
        other => panic!("expected a float, got {other:?}"),
    }
}

impl<'a> Conv<'a, f32> for Float {
    fn put(field: &f32, out: &mut Vec<Value>) {
        out.push(Value::Float(f64::from(*field).to_bits()));
    }
    fn take(values: &mut std::slice::Iter<'a, Value>) -> f32 {
        // Round to nearest, as `struct.pack('f', x)` does.
        float_bits(values) as f32
    }
}

impl<'a> Conv<'a, f64> for Float {
    fn put(field: &f64, out: &mut Vec<Value>) {
        out.push(Value::Float(field.to_bits()));
    }
    fn take(values: &mut std::slice::Iter<'a, Value>) -> f64 {
        float_bits(values)
    }
}

fn bytes<'a>(values: &mut std::slice::Iter<'a, Value>) -> &'a [u8] {
    match next(values) {
        Value::Bytes(b) => b,
        other => panic!("expected bytes, got {other:?}"),
    }
}

impl<'a, const N: usize> Conv<'a, [u8; N]> for Bytes {
    fn put(field: &[u8; N], out: &mut Vec<Value>) {
        out.push(Value::Bytes(field.to_vec()));
    }
    fn take(values: &mut std::slice::Iter<'a, Value>) -> [u8; N] {
        let data = bytes(values);
        let mut field = [0; N];
        let n = data.len().min(N);
        field[..n].copy_from_slice(&data[..n]);
        field
    }
}

impl<'a> Conv<'a, &'a [u8]> for Bytes {
    fn put(field: &&'a [u8], out: &mut Vec<Value>) {
        out.push(Value::Bytes(field.to_vec()));
    }
    fn take(values: &mut std::slice::Iter<'a, Value>) -> &'a [u8] {
        bytes(values)
    }
}

impl<'a> Conv<'a, &'a str> for Bytes {
    fn put(field: &&'a str, out: &mut Vec<Value>) {
        out.push(Value::Bytes(field.as_bytes().to_vec()));
    }
    fn take(values: &mut std::slice::Iter<'a, Value>) -> &'a str {
        std::str::from_utf8(bytes(values)).expect("a text vector")
    }
}

impl<'a> Conv<'a, Vec<u8>> for Bytes {
    fn put(field: &Vec<u8>, out: &mut Vec<Value>) {
        out.push(Value::Bytes(field.clone()));
    }
    fn take(values: &mut std::slice::Iter<'a, Value>) -> Vec<u8> {
        bytes(values).to_vec()
    }
}

impl<'a> Conv<'a, String> for Bytes {
    fn put(field: &String, out: &mut Vec<Value>) {
        out.push(Value::Bytes(field.as_bytes().to_vec()));
    }
    fn take(values: &mut std::slice::Iter<'a, Value>) -> String {
        String::from_utf8(bytes(values).to_vec()).expect("a text vector")
    }
}

impl<'a, const N: usize> Conv<'a, [u8; N]> for Pascal {
    fn put(field: &[u8; N], out: &mut Vec<Value>) {
        let len = usize::from(field[0]).min(N - 1);
        out.push(Value::Bytes(field[1..=len].to_vec()));
    }
    fn take(values: &mut std::slice::Iter<'a, Value>) -> [u8; N] {
        let data = bytes(values);
        let len = data.len().min(N - 1).min(255);
        let mut field = [0; N];
        field[0] = len as u8;
        field[1..=len].copy_from_slice(&data[..len]);
        field
    }
}

impl<'a, const N: usize> Conv<'a, Pad<N>> for Skip {
    const COUNT: usize = 0;

    fn put(_: &Pad<N>, _: &mut Vec<Value>) {}
    fn take(_: &mut std::slice::Iter<'a, Value>) -> Pad<N> {
        Pad
    }
}

/// Derives `NetStruct` for each struct and implements [`Vector`] for it.
/// Each field is `name: Type => Kind` (a [`Conv`] kind); attributes pass
/// through to the derive. Structs defined through a `macro_rules!` also
/// check that the derive's generated code is hygienic.
macro_rules! vector_structs {
    () => {};
    ($(#[$($sattr:tt)*])* struct $name:ident<$lt:lifetime> { $($body:tt)* } $($rest:tt)*) => {
        vector_structs!(@one [$(#[$($sattr)*])*] $name [<$lt>] $lt { $($body)* });
        vector_structs!($($rest)*);
    };
    ($(#[$($sattr:tt)*])* struct $name:ident { $($body:tt)* } $($rest:tt)*) => {
        vector_structs!(@one [$(#[$($sattr)*])*] $name [] 'v { $($body)* });
        vector_structs!($($rest)*);
    };
    (@one [$($sattr:tt)*] $name:ident [$($generics:tt)*] $lt:lifetime {
        $( $(#[$($fattr:tt)*])* $field:ident : $ty:ty => $kind:ident ),* $(,)?
    }) => {
        #[derive(NetStruct, Debug, PartialEq)]
        $($sattr)*
        struct $name $($generics)* { $( $(#[$($fattr)*])* $field: $ty ),* }

        impl<$lt> Vector<$lt> for $name $($generics)* {
            const COUNT: usize = 0 $( + <$kind as Conv<$lt, $ty>>::COUNT )*;

            fn to_values(&self) -> Vec<Value> {
                let mut out = Vec::new();
                $( <$kind as Conv<$lt, $ty>>::put(&self.$field, &mut out); )*
                out
            }
            fn from_values(values: &$lt [Value]) -> Self {
                let mut values = values.iter();
                let this = $name { $( $field: <$kind as Conv<$lt, $ty>>::take(&mut values), )* };
                assert_eq!(values.next(), None, "more values than fields");
                this
            }
        }
    };
}

// ---------------------------------------------------------------------------
// The formats of the roundtrip vectors
// ---------------------------------------------------------------------------

vector_structs! {
    /// `ih$5b` (the netstruct docstring example: the length is the `h`).
    struct Ih5b<'a> {
        i: i32 => Int,
        #[netstruct(len = i16)]
        s: &'a [u8] => Bytes,
        b: [i8; 5] => Ints,
    }

    /// `b$`: a signed 1-byte length.
    struct LenI8<'a> {
        #[netstruct(len = i8)]
        s: &'a [u8] => Bytes,
    }

    /// `B$`.
    struct LenU8<'a> {
        #[netstruct(len = u8)]
        s: &'a [u8] => Bytes,
    }

    /// `l$` with an owned `String` (`l` is 4 bytes with standard sizes).
    struct LenL {
        #[netstruct(len = i32)]
        s: String => Bytes,
    }

    /// `>H$`, with the default order spelled out.
    #[netstruct(big_endian)]
    struct LenU16Explicit<'a> {
        #[netstruct(len = u16)]
        s: &'a [u8] => Bytes,
    }

    /// `H$` (no prefix: network order).
    struct LenU16<'a> {
        #[netstruct(len = u16)]
        s: &'a [u8] => Bytes,
    }

    /// `<I$`.
    #[netstruct(little_endian)]
    struct LenU32Le<'a> {
        #[netstruct(len = u32)]
        s: &'a str => Bytes,
    }

    /// `=H$`: native order, standard sizes.
    #[netstruct(native_endian)]
    struct NativeLenU16<'a> {
        #[netstruct(len = u16)]
        s: &'a [u8] => Bytes,
    }

    /// `@BI$`: `@` pads the `B` to the `I`'s alignment (4) inside the
    /// segment; pants writes the padding out.
    #[netstruct(native_endian)]
    struct NativeAlignedBI<'a> {
        b: u8 => Int,
        _align: Pad<3> => Skip,
        #[netstruct(len = u32)]
        s: &'a [u8] => Bytes,
    }

    /// `@B$I`: alignment restarts after a string (each `$` segment is its
    /// own struct), so no padding.
    #[netstruct(native_endian)]
    struct NativeBThenI<'a> {
        #[netstruct(len = u8)]
        s: &'a [u8] => Bytes,
        i: u32 => Int,
    }

    /// `>Q$`, with an owned `Vec<u8>`.
    struct LenU64 {
        #[netstruct(len = u64)]
        s: Vec<u8> => Bytes,
    }

    /// `<bBhHiIlLqQ`.
    #[netstruct(little_endian)]
    struct AllLe {
        b: i8 => Int,
        ub: u8 => Int,
        h: i16 => Int,
        uh: u16 => Int,
        i: i32 => Int,
        ui: u32 => Int,
        l: i32 => Int,
        ul: u32 => Int,
        q: i64 => Int,
        uq: u64 => Int,
    }

    /// `!bBhHiIlLqQ`.
    struct AllBe {
        b: i8 => Int,
        ub: u8 => Int,
        h: i16 => Int,
        uh: u16 => Int,
        i: i32 => Int,
        ui: u32 => Int,
        l: i32 => Int,
        ul: u32 => Int,
        q: i64 => Int,
        uq: u64 => Int,
    }

    /// `H$B$I$`.
    struct MultiMixed<'a> {
        #[netstruct(len = u16)]
        a: &'a [u8] => Bytes,
        #[netstruct(len = u8)]
        b: &'a [u8] => Bytes,
        #[netstruct(len = u32)]
        c: &'a [u8] => Bytes,
    }

    /// `B$H$I`, with `&str` strings.
    struct MultiWithTail<'a> {
        #[netstruct(len = u8)]
        a: &'a str => Bytes,
        #[netstruct(len = u16)]
        b: &'a str => Bytes,
        tail: u32 => Int,
    }

    /// `<H$I$`, with owned fields.
    #[netstruct(little_endian)]
    struct MultiLe {
        #[netstruct(len = u16)]
        a: Vec<u8> => Bytes,
        #[netstruct(len = u32)]
        b: String => Bytes,
    }

    /// `B$3B`.
    struct RepTail3B<'a> {
        #[netstruct(len = u8)]
        s: &'a [u8] => Bytes,
        tail: [u8; 3] => Ints,
    }

    /// `2H$2H$`: in `2H$` the first `H` is a plain field, the second the length.
    struct Rep2H<'a> {
        a: u16 => Int,
        #[netstruct(len = u16)]
        s1: &'a [u8] => Bytes,
        b: u16 => Int,
        #[netstruct(len = u16)]
        s2: &'a [u8] => Bytes,
    }

    /// `QB$`: only the `B` is the length.
    struct RepQB<'a> {
        q: u64 => Int,
        #[netstruct(len = u8)]
        s: &'a [u8] => Bytes,
    }

    /// `?B$?`.
    struct Bool1<'a> {
        first: bool => Bool,
        #[netstruct(len = u8)]
        s: &'a [u8] => Bytes,
        last: bool => Bool,
    }

    /// `?`.
    struct OneBool {
        b: bool => Bool,
    }

    /// `fB$d`.
    struct FloatFd<'a> {
        f: f32 => Float,
        #[netstruct(len = u8)]
        s: &'a [u8] => Bytes,
        d: f64 => Float,
    }

    /// `<fd`.
    #[netstruct(little_endian)]
    struct FloatLe {
        f: f32 => Float,
        d: f64 => Float,
    }

    /// `cB$c`: `c` is one byte, `[u8; 1]`.
    struct CharC<'a> {
        open: [u8; 1] => Bytes,
        #[netstruct(len = u8)]
        s: &'a [u8] => Bytes,
        close: [u8; 1] => Bytes,
    }

    /// `10sB$`.
    struct FixedS<'a> {
        fixed: [u8; 10] => Bytes,
        #[netstruct(len = u8)]
        s: &'a [u8] => Bytes,
    }

    /// `5pB$`: the pascal string is the raw `[u8; 5]`.
    struct PascalP<'a> {
        p: [u8; 5] => Pascal,
        #[netstruct(len = u8)]
        s: &'a [u8] => Bytes,
    }

    /// `B$H`.
    struct EmptyThenInt<'a> {
        #[netstruct(len = u8)]
        s: &'a [u8] => Bytes,
        n: u16 => Int,
    }

    /// `I`.
    struct NoString {
        n: u32 => Int,
    }

    // The same formats again, split into nested derived structs: a nested
    // struct is inlined, so `ih$5b` is also `i` + `h$5b`.

    /// `h$5b`, to nest.
    struct H5b<'a> {
        #[netstruct(len = i16)]
        s: &'a [u8] => Bytes,
        b: [i8; 5] => Ints,
    }

    /// `i` + nested `h$5b` = `ih$5b`.
    struct Ih5bNested<'a> {
        i: i32 => Int,
        rest: H5b<'a> => Nested,
    }

    /// `H$`, to nest.
    struct HStr<'a> {
        #[netstruct(len = u16)]
        s: &'a [u8] => Bytes,
    }

    /// `B$I$`, to nest.
    struct BIStr<'a> {
        #[netstruct(len = u8)]
        b: &'a [u8] => Bytes,
        #[netstruct(len = u32)]
        c: &'a [u8] => Bytes,
    }

    /// Nested `H$` + nested `B$I$` = `H$B$I$`.
    struct MultiMixedNested<'a> {
        first: HStr<'a> => Nested,
        rest: BIStr<'a> => Nested,
    }

    /// `<fd` as `<f` + nested `<d`.
    #[netstruct(little_endian)]
    struct LeF64 {
        d: f64 => Float,
    }

    /// `<fd` from a nested little-endian struct (each struct has its own order).
    #[netstruct(little_endian)]
    struct FloatLeNested {
        f: f32 => Float,
        d: LeF64 => Nested,
    }

    /// `2xH$` (the `x-pad-2x` unpack-only vector).
    struct Pad2H<'a> {
        _pad: Pad<2> => Skip,
        #[netstruct(len = u16)]
        s: &'a [u8] => Bytes,
    }

    /// `B$x` (the `x-pad-after` unpack-only vector).
    struct BPad<'a> {
        #[netstruct(len = u8)]
        s: &'a [u8] => Bytes,
        _pad: Pad<1> => Skip,
    }

    /// `h$B` (the `neg-len-h` unpack-only vector).
    struct NegLenH<'a> {
        #[netstruct(len = i16)]
        s: &'a [u8] => Bytes,
        b: u8 => Int,
    }
}

/// A nested derived struct: its values, flattened in place.
struct Nested;

impl<'a, T: Vector<'a>> Conv<'a, T> for Nested {
    const COUNT: usize = T::COUNT;

    fn put(field: &T, out: &mut Vec<Value>) {
        out.extend(field.to_values());
    }
    fn take(values: &mut std::slice::Iter<'a, Value>) -> T {
        let rest = values.as_slice();
        let nested = T::from_values(&rest[..T::COUNT]);
        *values = rest[T::COUNT..].iter();
        nested
    }
}

// ---------------------------------------------------------------------------
// Roundtrip vectors
// ---------------------------------------------------------------------------

/// The platform-dependent (`@`/`=`) vectors skipped on this host: none on a
/// little-endian one (where they were made), all on a big-endian one.
const SKIPPED_PLATFORM_DEPENDENT: &[&str] = if cfg!(target_endian = "little") {
    &[]
} else {
    &["order-eq-H", "native-align-in-segment", "native-align-restarts"]
};

/// `(vector id, its format, the check for the struct standing for it)`. An id
/// may appear more than once (the nested variants).
type Check = fn(&Json) -> Trailing;

const ROUNDTRIP: &[(&str, &str, Check)] = &[
    ("doc-ih5b", "ih$5b", check_roundtrip::<Ih5b>),
    ("doc-ih5b", "ih$5b", check_roundtrip::<Ih5bNested>),
    ("doc-ih5b-2", "ih$5b", check_roundtrip::<Ih5b>),
    ("doc-ih5b-2", "ih$5b", check_roundtrip::<Ih5bNested>),
    ("len-b", "b$", check_roundtrip::<LenI8>),
    ("len-B", "B$", check_roundtrip::<LenU8>),
    ("len-l", "l$", check_roundtrip::<LenL>),
    ("order-gt-H", ">H$", check_roundtrip::<LenU16Explicit>),
    ("order-lt-I", "<I$", check_roundtrip::<LenU32Le>),
    ("order-eq-H", "=H$", check_roundtrip::<NativeLenU16>),
    ("native-align-in-segment", "@BI$", check_roundtrip::<NativeAlignedBI>),
    ("native-align-restarts", "@B$I", check_roundtrip::<NativeBThenI>),
    ("order-gt-Q", ">Q$", check_roundtrip::<LenU64>),
    ("order-lt-all", "<bBhHiIlLqQ", check_roundtrip::<AllLe>),
    ("order-bang-all", "!bBhHiIlLqQ", check_roundtrip::<AllBe>),
    ("multi-mixed", "H$B$I$", check_roundtrip::<MultiMixed>),
    ("multi-mixed", "H$B$I$", check_roundtrip::<MultiMixedNested>),
    ("multi-with-tail", "B$H$I", check_roundtrip::<MultiWithTail>),
    ("multi-lt", "<H$I$", check_roundtrip::<MultiLe>),
    ("rep-tail-3B", "B$3B", check_roundtrip::<RepTail3B>),
    ("rep-2H", "2H$2H$", check_roundtrip::<Rep2H>),
    ("rep-QB", "QB$", check_roundtrip::<RepQB>),
    ("bool-1", "?B$?", check_roundtrip::<Bool1>),
    ("bool-normalise", "?", check_roundtrip::<OneBool>),
    ("float-fd", "fB$d", check_roundtrip::<FloatFd>),
    ("float-round", "<fd", check_roundtrip::<FloatLe>),
    ("float-round", "<fd", check_roundtrip::<FloatLeNested>),
    ("char-c", "cB$c", check_roundtrip::<CharC>),
    ("fixed-s-pad", "10sB$", check_roundtrip::<FixedS>),
    ("pascal-p", "5pB$", check_roundtrip::<PascalP>),
    ("empty-B", "B$", check_roundtrip::<LenU8>),
    ("empty-then-int", "B$H", check_roundtrip::<EmptyThenInt>),
    ("max-b", "b$", check_roundtrip::<LenI8>),
    ("max-B", "B$", check_roundtrip::<LenU8>),
    ("no-string", "I", check_roundtrip::<NoString>),
    ("binary-string", "H$", check_roundtrip::<LenU16>),
];

/// What a `Framer` did with the two trailing bytes (`de ad`) of `with_trailing`
/// after the frame: netstruct leaves them unused, pants either waits for more
/// (`Waits`) or, where `de` is not a valid start, says so (`Refused`); either
/// way they stay buffered.
#[derive(Debug, PartialEq)]
enum Trailing {
    Waits,
    Refused(FrameError),
}

/// Decodes with `T` and flattens the frame to netstruct values.
fn decode_values<T>(buf: &[u8]) -> Result<Decoded<Vec<Value>>, FrameError>
where
    T: NetStruct,
    for<'a> T::Frame<'a>: Vector<'a>,
{
    T::decode(buf).map(|decoded| decoded.map(|frame| frame.to_values()))
}

/// The `Needed::Exactly` count of an incomplete decode.
fn needed<T>(buf: &[u8]) -> usize
where
    T: NetStruct,
    for<'a> T::Frame<'a>: Vector<'a>,
{
    match decode_values::<T>(buf) {
        Ok(Decoded::Incomplete(Needed::Exactly(n))) => n,
        other => panic!("decoding {} bytes: expected Incomplete(Exactly(_)), got {other:?}", buf.len()),
    }
}

/// `netstruct.iter_unpack` fed one byte at a time: the count `decode` gives
/// on every proper prefix, in order.
fn one_byte_needed<T>(input: &[u8]) -> Vec<usize>
where
    T: NetStruct,
    for<'a> T::Frame<'a>: Vector<'a>,
{
    (0..input.len()).map(|k| needed::<T>(&input[..k])).collect()
}

fn check_roundtrip<T>(v: &Json) -> Trailing
where
    T: NetStruct,
    for<'a> T::Frame<'a>: Vector<'a> + NetStruct + Debug + PartialEq,
{
    let packed = hex_of(&v["packed_hex"]);
    assert_eq!(packed.len(), usize_of(&v["packed_len"]));
    let input_values = values(&v["values"]);
    let unpacked = values(&v["unpacked"]);
    let frame = |decoded: Vec<Value>| -> Result<Decoded<Vec<Value>>, FrameError> {
        Ok(Decoded::Frame { frame: decoded, consumed: packed.len() })
    };

    // Sizes: netstruct `minimum_size` is `MIN_SIZE` (and the first number
    // `iter_unpack` asks for, checked below); `count` is the number of values.
    assert_eq!(T::MIN_SIZE, usize_of(&v["minimum_size"]), "MIN_SIZE");
    assert_eq!(<T::Frame<'static> as Vector<'static>>::COUNT, usize_of(&v["count"]), "count");
    assert_eq!((input_values.len(), unpacked.len()), (usize_of(&v["count"]), usize_of(&v["count"])));

    // (b) pack: the values encode to exactly `packed_hex`.
    let message = <T::Frame<'_>>::from_values(&input_values);
    assert_eq!(message.encoded_len(), packed.len(), "encoded_len");
    assert_eq!(message.to_bytes(), Ok(packed.clone()), "to_bytes");
    let mut out = b"before".to_vec();
    message.encode(&mut out).expect("encode");
    assert_eq!(out[..6], *b"before", "encode appends");
    assert_eq!(out[6..], packed, "encode");
    assert_eq!(message.size_hint(), packed.len(), "Pack::size_hint");

    // (a) unpack, with `NetStruct::decode` and with a `Framer`.
    assert_eq!(decode_values::<T>(&packed), frame(unpacked.clone()), "decode");
    let decoded = match T::decode(&packed) {
        Ok(Decoded::Frame { frame, .. }) => frame,
        other => panic!("decode: {other:?}"),
    };
    // The decoded struct is the one built from `unpacked`, and re-encodes to
    // the same bytes (for `?`, `s` and `f` those differ from `values`).
    assert_eq!(decoded, <T::Frame<'_>>::from_values(&unpacked), "decoded struct");
    assert_eq!(decoded.to_bytes(), Ok(packed.clone()), "re-encoding the decoded struct");

    let mut framer = Framer::new(Packed::<T>::new());
    framer.push(&packed);
    assert_eq!(framer.next_frame().map(|f| f.map(|f| f.to_values())), Ok(Some(unpacked.clone())), "Framer");
    assert!(framer.is_empty());
    assert_eq!(framer.next_frame().map(|f| f.is_some()), Ok(false));

    // The same through a Framer fed one byte at a time.
    let mut framer = Framer::new(Packed::<T>::new());
    for (k, byte) in packed.iter().enumerate() {
        framer.push(std::slice::from_ref(byte));
        let got = framer.next_frame().map(|f| f.map(|f| f.to_values()));
        if k + 1 < packed.len() {
            assert_eq!(got, Ok(None), "Framer after {} bytes", k + 1);
        } else {
            assert_eq!(got, Ok(Some(unpacked.clone())), "Framer fed one byte at a time");
        }
    }
    assert_eq!(framer.finish(), Ok(()));

    // (c) `iter_unpack` fed one byte at a time.
    let one = &v["iter_unpack_one_byte"];
    assert_eq!(one_byte_needed::<T>(&packed), sizes(&one["needed"]), "iter_unpack_one_byte.needed");
    assert_eq!(usize_of(&one["bytes_fed_when_complete"]), packed.len());
    assert_eq!(values(&one["result"]), unpacked);
    assert_eq!(hex_of(&one["leftover_hex"]), b"");
    // `Unpacker.feed` reports the same counts, then 0.
    let unpacker = &v["unpacker_one_byte"];
    let mut remaining = one_byte_needed::<T>(&packed);
    remaining.push(0);
    assert_eq!(sizes(&unpacker["remaining_initial_then_feed_returns"]), remaining, "Unpacker");
    assert_eq!(values(&unpacker["result"]), unpacked);

    // (d) `iter_unpack` sent exactly the bytes it asks for.
    let chunks = &v["iter_unpack_requested_chunks"];
    let mut asked = Vec::new();
    let mut fed = 0;
    loop {
        match decode_values::<T>(&packed[..fed]).expect("decode") {
            Decoded::Incomplete(Needed::Exactly(n)) => {
                asked.push(n);
                fed += n;
                assert!(fed <= packed.len(), "asked for {asked:?}, beyond the {} bytes", packed.len());
            }
            Decoded::Incomplete(Needed::Unknown) => panic!("Needed::Unknown"),
            Decoded::Frame { frame, consumed } => {
                assert_eq!((frame, consumed), (unpacked.clone(), packed.len()));
                break;
            }
        }
    }
    assert_eq!(asked, sizes(&chunks["needed"]), "iter_unpack_requested_chunks.needed");
    assert_eq!(usize_of(&chunks["bytes_fed_when_complete"]), packed.len());
    assert_eq!(values(&chunks["result"]), unpacked);

    // (e) `unpack` of a prefix fails, naming the length known to be needed.
    let truncated = v["truncated_unpack"].as_array().expect("truncated_unpack");
    assert!(!truncated.is_empty());
    for t in truncated {
        let prefix = usize_of(&t["prefix_len"]);
        assert_eq!(t["error_type"], "struct.error");
        let message = t["message"].as_str().expect("message");
        let length: usize = message
            .strip_prefix("unpack requires a string argument of length ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected message {message:?}"));
        assert_eq!(
            decode_values::<T>(&packed[..prefix]),
            Ok(Decoded::Incomplete(Needed::Exactly(length - prefix))),
            "prefix of {prefix} bytes ({message})"
        );
    }

    // (f) trailing bytes are left alone.
    let trailing = &v["with_trailing"];
    let input = hex_of(&trailing["input_hex"]);
    let leftover = hex_of(&trailing["iter_leftover_hex"]);
    assert_eq!(input, [&packed[..], &leftover].concat());
    assert_eq!(values(&trailing["unpack"]), unpacked);
    assert_eq!(values(&trailing["iter_first"]), unpacked);
    assert_eq!(decode_values::<T>(&input), frame(unpacked.clone()), "decode with trailing bytes");

    let mut framer = Framer::new(Packed::<T>::new());
    framer.push(&input);
    assert_eq!(framer.next_frame().map(|f| f.map(|f| f.to_values())), Ok(Some(unpacked.clone())));
    let after = match framer.next_frame() {
        Ok(None) => Trailing::Waits,
        Ok(Some(frame)) => panic!("a frame from the trailing bytes: {frame:?}"),
        Err(error) => Trailing::Refused(error),
    };
    assert_eq!(framer.buffered(), leftover, "the trailing bytes stay buffered");
    assert_eq!(framer.finish(), Err(FrameError::Truncated { buffered: leftover.len() }));
    // Once the rest of a frame arrives after them, they are its start.
    if after == Trailing::Waits {
        framer.clear();
        framer.push(&packed);
        framer.push(&packed);
        for _ in 0..2 {
            assert_eq!(framer.next_frame().map(|f| f.map(|f| f.to_values())), Ok(Some(unpacked.clone())));
        }
        assert!(framer.is_empty());
    }
    after
}

#[test]
fn roundtrip_vectors() {
    let data = data();
    let mut skipped = Vec::new();
    let mut checked = 0;
    let mut refused = Vec::new();
    let mut failures = Vec::new();
    for v in vectors(&data).iter().filter(|v| v["kind"] == "roundtrip") {
        let id = v["id"].as_str().expect("id");
        let format = v["format"].as_str().expect("format");
        let native = format.starts_with(['@', '=']);
        assert_eq!(v["platform_dependent"].as_bool(), Some(native), "{id}: platform_dependent");
        if native && cfg!(target_endian = "big") {
            skipped.push(id);
            continue;
        }
        let checks: Vec<_> = ROUNDTRIP.iter().filter(|(i, ..)| *i == id).collect();
        assert!(!checks.is_empty(), "roundtrip vector {id} ({format}) has no struct");
        for (_, expected_format, check) in checks {
            assert_eq!(format, *expected_format, "{id}: the struct is for another format");
            match catch_unwind(AssertUnwindSafe(|| check(v))) {
                Ok(Trailing::Waits) => {}
                Ok(Trailing::Refused(error)) => refused.push((id, error)),
                Err(panic) => {
                    let message = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    failures.push(format!("{id} ({format}): {message}"));
                }
            }
            checked += 1;
        }
    }
    assert!(failures.is_empty(), "{} failed:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(skipped, SKIPPED_PLATFORM_DEPENDENT, "skipped vectors");
    // 32 vectors (29 on a big-endian host), 4 of them also through nested
    // structs.
    assert_eq!(checked, ROUNDTRIP.len() - SKIPPED_PLATFORM_DEPENDENT.len());
    assert_eq!(checked, if cfg!(target_endian = "little") { 36 } else { 33 });
    // Every entry of the table names a vector in the file.
    for (id, ..) in ROUNDTRIP {
        assert_eq!(vector(&data, id)["kind"], "roundtrip", "{id}");
    }
    // Where the trailing `de ad` cannot start a frame, pants says so at once
    // (netstruct would hand back garbage later): `de` is -34 as a signed
    // length, and not a bool.
    let negative = FrameError::NegativeLength { field: "s", length: -34 };
    let not_bool = |field| FrameError::InvalidBool { field, value: 0xde };
    assert_eq!(
        refused,
        [
            ("len-b", negative.clone()),
            ("bool-1", not_bool("first")),
            ("bool-normalise", not_bool("b")),
            ("max-b", negative),
        ]
    );
}

#[test]
fn counts_by_kind() {
    let data = data();
    assert_eq!(data["schema_version"], 1);
    assert_eq!(vectors(&data).len(), 53);
    for (kind, count) in [("roundtrip", 32), ("unpack_only", 5), ("rejected_format", 12), ("pack_error", 4)] {
        assert_eq!(vectors(&data).iter().filter(|v| v["kind"] == kind).count(), count, "{kind}");
        assert_eq!(data["counts_by_kind"][kind], count, "{kind}");
    }
}

// ---------------------------------------------------------------------------
// unpack_only vectors
// ---------------------------------------------------------------------------

/// `B$x` and `2xH$`: padding is skipped whatever it holds, with the same
/// one-byte counts. netstruct cannot `pack` these formats (its `count` counts
/// the `x`, so `pack` wants a value for the padding and then fails); pants
/// writes zeros.
fn check_padding<T>(v: &Json, padding: usize, zeros: &[u8])
where
    T: NetStruct,
    for<'a> T::Frame<'a>: Vector<'a> + NetStruct,
{
    let id = v["id"].as_str().expect("id");
    let input = hex_of(&v["input_hex"]);
    let unpacked = values(&v["unpacked"]);
    assert_eq!(T::MIN_SIZE, usize_of(&v["minimum_size"]), "{id}");
    assert_eq!(values(&v["iter_first"]), unpacked);
    assert_eq!(hex_of(&v["iter_leftover_hex"]), b"");
    assert_eq!(decode_values::<T>(&input), Ok(Decoded::Frame { frame: unpacked.clone(), consumed: input.len() }));

    let one = &v["iter_unpack_one_byte"];
    assert_eq!(one["complete"], true);
    assert_eq!(one_byte_needed::<T>(&input), sizes(&one["needed"]), "{id}: one byte");
    assert_eq!(values(&one["result"]), unpacked);

    let mut framer = Framer::new(Packed::<T>::new());
    framer.push(&input);
    assert_eq!(framer.next_frame().map(|f| f.map(|f| f.to_values())), Ok(Some(unpacked.clone())));

    assert_eq!(v["pack_error"]["args"][0], "pack requires exactly %d arguments");
    let message = <T::Frame<'_>>::from_values(&unpacked);
    assert_eq!(message.to_bytes(), Ok(zeros.to_vec()), "{id}: padding is written as zeros");
    // netstruct's `count` counts each padding byte too (hence its `pack` error).
    assert_eq!(<T::Frame<'static> as Vector<'static>>::COUNT + padding, usize_of(&v["count"]), "{id}: count");
}

#[test]
fn unpack_only_padding() {
    let data = data();
    check_padding::<BPad>(vector(&data, "x-pad-after"), 1, b"\x02hi\x00");
    check_padding::<Pad2H>(vector(&data, "x-pad-2x"), 2, b"\x00\x00\x00\x03abc");
}

/// A negative length from a signed prefix: netstruct slices from the end of
/// the buffer (so `unpack` and a one-byte `iter_unpack` even disagree), pants
/// refuses with `FrameError::NegativeLength` as soon as the prefix is read.
#[test]
fn unpack_only_negative_lengths() {
    let data = data();

    let v = vector(&data, "neg-len-h");
    let input = hex_of(&v["input_hex"]);
    let negative = FrameError::NegativeLength { field: "s", length: -2 };
    assert_eq!(NegLenH::decode(&input), Err(negative.clone()));
    // The one-byte feed agrees with netstruct until the prefix is complete
    // (netstruct then asks for 1 more byte: 3 - 2).
    let one = sizes(&v["iter_unpack_one_byte"]["needed"]);
    assert_eq!(one, [3, 2, 1]);
    assert_eq!(one_byte_needed::<NegLenH>(&input[..2]), one[..2]);
    assert_eq!(NegLenH::decode(&input[..2]), Err(negative.clone()));
    // A Framer reports it and keeps the bytes (no error consumes input).
    let mut framer = Framer::new(Packed::<NegLenH>::new());
    framer.push(&input);
    assert_eq!(framer.next_frame(), Err(negative.clone()));
    assert_eq!(framer.next_frame(), Err(negative));
    assert_eq!(framer.buffered(), input);

    let v = vector(&data, "neg-len-b-exact");
    let input = hex_of(&v["input_hex"]);
    assert_eq!(input, [0xff]);
    assert_eq!(sizes(&v["iter_unpack_one_byte"]["needed"]), [LenI8::MIN_SIZE]);
    assert_eq!(needed::<LenI8>(&[]), 1);
    assert_eq!(LenI8::decode(&input), Err(FrameError::NegativeLength { field: "s", length: -1 }));
}

/// `0B$`: a repeat count of zero gives no integer at all, so the `$` has no
/// length (netstruct accepts the format, then fails with `IndexError: pop from
/// empty list` on any input). A derived struct cannot express it: the length
/// type of `#[netstruct(len = ..)]` must be one integer type, and `[u8; 0]`
/// is not one (a compile error: `tests/ui/derive/len_zero_count_array.rs`).
/// What remains is the `0B` part, a zero-length array field, which is 0
/// bytes.
#[test]
fn unpack_only_zero_count() {
    let data = data();
    let v = vector(&data, "zero-count-len");
    assert_eq!(v["unpack_error"]["error_type"], "IndexError");
    assert_eq!(v["iter_unpack_one_byte"]["needed"], serde_json::json!([]));

    #[derive(NetStruct, Debug, PartialEq)]
    struct ZeroCount<'a> {
        nothing: [u8; 0],
        #[netstruct(len = u8)]
        s: &'a [u8],
    }
    assert_eq!(<[u8; 0] as pants::netstruct::Field<'static>>::MIN_SIZE, 0);
    assert_eq!(ZeroCount::MIN_SIZE, 1);
    let input = hex_of(&v["input_hex"]);
    assert_eq!(ZeroCount::decode(&input), Ok(Decoded::Frame { frame: ZeroCount { nothing: [], s: b"" }, consumed: 1 }));
    assert_eq!(ZeroCount { nothing: [], s: b"abc" }.to_bytes(), Ok(b"\x03abc".to_vec()));
}

#[test]
fn unpack_only_all_covered() {
    let data = data();
    let ids: Vec<_> =
        vectors(&data).iter().filter(|v| v["kind"] == "unpack_only").map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["x-pad-after", "x-pad-2x", "neg-len-h", "neg-len-b-exact", "zero-count-len"]);
}

// ---------------------------------------------------------------------------
// pack_error and rejected_format vectors
// ---------------------------------------------------------------------------

/// `perr-B-256`: a string too long for its prefix is `PackError::TooLong`,
/// and nothing is appended.
#[test]
fn pack_error_too_long() {
    let data = data();
    let v = vector(&data, "perr-B-256");
    assert_eq!(v["format"], "B$");
    assert_eq!(v["message"], "ubyte format requires 0 <= number <= 255");
    let input = values(&v["values"]);
    let message = LenU8::from_values(&input);
    assert_eq!(message.s.len(), 256);
    let too_long = PackError::TooLong { field: "s", len: 256, max: 255 };
    assert_eq!(message.to_bytes(), Err(too_long.clone()));
    let mut out = b"kept".to_vec();
    assert_eq!(message.encode(&mut out), Err(too_long.clone()));
    assert_eq!(out, b"kept");
    assert_eq!(message.pack(&mut out), Err(too_long));
    assert_eq!(out, b"kept");
    // 255 is fine (the `max-B` vector).
    assert_eq!(LenU8 { s: &[b'a'; 255] }.to_bytes().map(|b| b.len()), Ok(256));

    // A later field too long: the fields written before it are taken back.
    let message = MultiMixed { a: b"ok", b: &[0; 256], c: b"" };
    let mut out = b"kept".to_vec();
    assert_eq!(message.encode(&mut out), Err(PackError::TooLong { field: "b", len: 256, max: 255 }));
    assert_eq!(out, b"kept");
}

/// Signed prefixes hold up to their positive maximum (`max-b`: 127 with `b`).
#[test]
fn signed_prefix_maximum() {
    let data = data();
    let v = vector(&data, "max-b");
    let packed = hex_of(&v["packed_hex"]);
    assert_eq!(packed[0], 127);
    assert_eq!(LenI8 { s: &packed[1..] }.to_bytes(), Ok(packed.clone()));
    assert_eq!(LenI8::decode(&packed), Ok(Decoded::Frame { frame: LenI8 { s: &packed[1..] }, consumed: 128 }));
    assert_eq!(LenI8 { s: &[0; 128] }.to_bytes(), Err(PackError::TooLong { field: "s", len: 128, max: 127 }));
    // 0x80 is -128, not 128.
    assert_eq!(LenI8::decode(b"\x80"), Err(FrameError::NegativeLength { field: "s", length: -128 }));

    #[derive(NetStruct, Debug, PartialEq)]
    struct LenI16<'a> {
        #[netstruct(len = i16)]
        s: &'a [u8],
    }
    let long = vec![7; 32767];
    let bytes = LenI16 { s: &long }.to_bytes().expect("32767 fits i16");
    assert_eq!(bytes[..2], [0x7f, 0xff]);
    assert_eq!(LenI16::decode(&bytes), Ok(Decoded::Frame { frame: LenI16 { s: &long }, consumed: 32769 }));
    assert_eq!(LenI16 { s: &[0; 32768] }.to_bytes(), Err(PackError::TooLong { field: "s", len: 32768, max: 32767 }));
}

/// The `rejected_format` and `pack_error` vectors and their Rust counterparts.
///
/// | vector | netstruct | Rust |
/// |---|---|---|
/// | `rej-double` `B$$` | `$` after `$` | no counterpart: a `$` is a field, it cannot follow itself |
/// | `rej-bool` `?$` | `?` as a length | `len = bool`: compile error (`ui/derive/len_bool.rs`) |
/// | `rej-s` `3s$` | `s` as a length | `len = [u8; 3]`: compile error (`ui/derive/len_array.rs`) |
/// | `rej-x` `x$` | `x` as a length | `len = Pad<1>`: compile error (`ui/derive/len_pad.rs`) |
/// | `rej-c` `c$` | `c` as a length | as `rej-s`, `[u8; 1]` |
/// | `rej-order-only-dollar` `!$` | `$` without a length | a byte string without `len`: compile error (`ui/derive/bytes_without_len.rs`) |
/// | `rej-e` `e` | half float | no `f16` on stable Rust |
/// | `rej-n` `@n` | native `ssize_t` | `isize`/`usize` fields: compile error (`ui/derive/field_usize.rs`) |
/// | `rej-space-*`, `rej-bad-char` | format syntax | no format strings |
/// | `rej-str` | text format | no format strings |
/// | `perr-B-256` | string too long | `PackError::TooLong` (`pack_error_too_long`) |
/// | `perr-argc-low`, `perr-argc-high` | wrong number of values | a struct literal names every field: E0063 / E0560 at compile time |
/// | `perr-str-value` | text for a byte string | a type mismatch at compile time (or `&str`/`String` fields, which are bytes on the wire) |
#[test]
fn rejected_and_pack_error_vectors_are_mapped() {
    let data = data();
    let ids = |kind: &str| -> Vec<String> {
        vectors(&data).iter().filter(|v| v["kind"] == kind).map(|v| v["id"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(
        ids("rejected_format"),
        [
            "rej-double",
            "rej-bool",
            "rej-s",
            "rej-x",
            "rej-c",
            "rej-order-only-dollar",
            "rej-e",
            "rej-n",
            "rej-space-before-dollar",
            "rej-space-after-count",
            "rej-bad-char",
            "rej-str"
        ]
    );
    assert_eq!(ids("pack_error"), ["perr-B-256", "perr-argc-low", "perr-argc-high", "perr-str-value"]);
    // `perr-str-value` has a Rust counterpart that is not an error: a `&str`
    // field is packed as its UTF-8 bytes.
    #[derive(NetStruct)]
    struct Text<'a> {
        #[netstruct(len = u8)]
        s: &'a str,
    }
    let v = vector(&data, "perr-str-value");
    assert_eq!(v["values"][0]["type"], "text");
    assert_eq!(Text { s: v["values"][0]["value"].as_str().unwrap() }.to_bytes(), Ok(b"\x04text".to_vec()));
}

// ---------------------------------------------------------------------------
// Beyond the vectors: pass cases for the derive
// ---------------------------------------------------------------------------

/// A little-endian struct nested in a big-endian one keeps its own order.
#[test]
fn nested_struct_keeps_its_byte_order() {
    #[derive(NetStruct, Debug, PartialEq)]
    #[netstruct(little_endian)]
    struct Inner<'a> {
        n: u16,
        #[netstruct(len = u16)]
        s: &'a [u8],
    }

    #[derive(NetStruct, Debug, PartialEq)]
    struct Outer<'a> {
        tag: u16,
        inner: Inner<'a>,
        tail: u16,
    }

    let outer = Outer { tag: 0x0102, inner: Inner { n: 0x0304, s: b"xyz" }, tail: 0x0506 };
    let bytes = b"\x01\x02\x04\x03\x03\x00xyz\x05\x06";
    assert_eq!(Outer::MIN_SIZE, 8);
    assert_eq!(outer.encoded_len(), bytes.len());
    assert_eq!(outer.to_bytes(), Ok(bytes.to_vec()));
    assert_eq!(Outer::decode(bytes), Ok(Decoded::Frame { frame: outer, consumed: bytes.len() }));
    // The inner length prefix counts for the outer struct's needs.
    let needed: Vec<_> = (0..bytes.len())
        .map(|k| match Outer::decode(&bytes[..k]) {
            Ok(Decoded::Incomplete(Needed::Exactly(n))) => n,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(needed, [8, 7, 6, 5, 4, 3, 5, 4, 3, 2, 1]);

    // And the other way round: big-endian inside little-endian.
    #[derive(NetStruct, Debug, PartialEq)]
    struct Be {
        n: u32,
    }
    #[derive(NetStruct, Debug, PartialEq)]
    #[netstruct(little_endian)]
    struct Le {
        a: u32,
        be: Be,
        b: [u16; 2],
    }
    let le = Le { a: 1, be: Be { n: 2 }, b: [3, 4] };
    let bytes = le.to_bytes().expect("encode");
    assert_eq!(bytes, [1, 0, 0, 0, 0, 0, 0, 2, 3, 0, 4, 0]);
    assert_eq!(Le::decode(&bytes), Ok(Decoded::Frame { frame: le, consumed: 12 }));
}

/// Owned byte strings (`Vec<u8>`, `String`) need no lifetime and outlive the buffer.
#[test]
fn owned_fields() {
    #[derive(NetStruct, Debug, PartialEq, Clone)]
    struct Owned {
        id: u8,
        #[netstruct(len = u16)]
        name: String,
        #[netstruct(len = u8)]
        data: Vec<u8>,
    }
    let owned = Owned { id: 9, name: "héllo".into(), data: vec![0, 255] };
    let bytes = owned.to_bytes().expect("encode");
    assert_eq!(bytes, b"\x09\x00\x06h\xc3\xa9llo\x02\x00\xff");
    let mut framer = Framer::new(Packed::<Owned>::new());
    framer.push(&bytes);
    let frame = framer.next_frame().expect("frame").expect("a whole frame");
    drop(framer);
    assert_eq!(frame, owned);
}

/// `&str` and `String` fields must be UTF-8.
#[test]
fn invalid_utf8() {
    #[derive(NetStruct, Debug, PartialEq)]
    struct Borrowed<'a> {
        #[netstruct(len = u8)]
        text: &'a str,
    }
    #[derive(NetStruct, Debug, PartialEq)]
    struct Owned {
        n: u8,
        #[netstruct(len = u8)]
        text: String,
    }
    let error = FrameError::InvalidUtf8 { field: "text", valid_up_to: 2 };
    assert_eq!(Borrowed::decode(b"\x03ok\xff"), Err(error.clone()));
    assert_eq!(Owned::decode(b"\x01\x03ok\xc3"), Err(error.clone()));
    // Only once the whole string is there: a short buffer is still Incomplete.
    assert_eq!(Borrowed::decode(b"\x03ok"), Ok(Decoded::Incomplete(Needed::Exactly(1))));
    let mut framer = Framer::new(Packed::<Borrowed>::new());
    framer.push(b"\x03ok\xff");
    assert_eq!(framer.next_frame(), Err(error));
    assert_eq!(framer.len(), 4);
}

/// A `bool` byte must be 0 or 1 (netstruct, like `struct`, takes any non-zero
/// byte as `True`; pants is strict).
#[test]
fn invalid_bool() {
    #[derive(NetStruct, Debug, PartialEq)]
    struct Flags {
        a: bool,
        b: bool,
    }
    assert_eq!(Flags::decode(b"\x01\x00"), Ok(Decoded::Frame { frame: Flags { a: true, b: false }, consumed: 2 }));
    assert_eq!(Flags::decode(b"\x00\x02"), Err(FrameError::InvalidBool { field: "b", value: 2 }));
    assert_eq!(Flags::decode(b"\x02"), Err(FrameError::InvalidBool { field: "a", value: 2 }));
}

/// A length that cannot fit under the framer's limit is an overflow as soon as
/// the prefix is read.
#[test]
fn length_over_the_limit() {
    let mut framer = Framer::new(Packed::<LenU64>::new()).with_buffer_size(64);
    framer.push(&u64::MAX.to_be_bytes());
    assert!(matches!(framer.next_frame(), Err(FrameError::Overflow { limit: 64, .. })));
    assert_eq!(framer.len(), 8);
}

/// Raw identifiers are named without `r#` in errors.
#[test]
fn raw_identifier_field_names() {
    #[derive(NetStruct, Debug, PartialEq)]
    struct Keywords {
        r#type: bool,
    }
    assert_eq!(Keywords::decode(b"\x05"), Err(FrameError::InvalidBool { field: "type", value: 5 }));
}
