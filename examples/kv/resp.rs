//! RESP2, the Redis wire protocol: parsing request header lines and inline
//! commands, and encoding replies.
//!
//! Framing itself is not here: `request.rs` cuts the byte stream into whole
//! requests with a pants delimiter, using the parsers below for its header
//! lines. This module interprets lines and writes replies.

/// Largest bulk string accepted in a request (Redis' `proto-max-bulk-len`).
pub const MAX_BULK_LEN: usize = 512 * 1024 * 1024;
/// Most elements accepted in one request array.
pub const MAX_ARGS: usize = 1024 * 1024;
/// Most bulk bytes one request may hold in total (Redis'
/// `client-query-buffer-limit`).
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024 * 1024;

/// A malformed request: the reply is `-ERR Protocol error: <message>` and the
/// connection closes, as Redis does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

/// Parses a decimal integer the way Redis' `string2ll` does: an optional
/// `-`, then digits, no leading zeros, no `+`, no spaces, no overflow.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    let (negative, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    match digits {
        [] => return None,
        [b'0'] if !negative => return Some(0),
        [b'0', ..] => return None,
        _ => {}
    }
    let mut value: i64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        let d = i64::from(b - b'0');
        value = value.checked_mul(10)?;
        value = if negative { value.checked_sub(d)? } else { value.checked_add(d)? };
    }
    Some(value)
}

/// The element count of a request array header (`*<n>`, without the `*`).
/// `None` for an empty request (`*0`, or the null array `*-1`), which Redis
/// ignores.
pub fn parse_array_len(digits: &[u8]) -> Result<Option<usize>, ProtocolError> {
    let invalid = || ProtocolError("invalid multibulk length".into());
    match parse_i64(digits).ok_or_else(invalid)? {
        -1 | 0 => Ok(None),
        n if n < 0 => Err(invalid()),
        n => match usize::try_from(n) {
            Ok(n) if n <= MAX_ARGS => Ok(Some(n)),
            _ => Err(invalid()),
        },
    }
}

/// The length announced by a bulk string header line (`$<len>`).
pub fn parse_bulk_len(line: &[u8]) -> Result<usize, ProtocolError> {
    let Some(digits) = line.strip_prefix(b"$") else {
        let got = line.first().map_or(String::new(), |&b| (b as char).escape_default().to_string());
        return Err(ProtocolError(format!("expected '$', got '{got}'")));
    };
    match parse_i64(digits).map(usize::try_from) {
        Some(Ok(len)) if len <= MAX_BULK_LEN => Ok(len),
        _ => Err(ProtocolError("invalid bulk length".into())),
    }
}

/// Splits an inline command (`SET k "hello world"`) into arguments, as Redis'
/// `sdssplitargs`: whitespace separates, `"..."` takes C-like escapes
/// (`\n`, `\xHH`...), `'...'` only `\'`. A closing quote must be followed by
/// whitespace or the end of the line.
pub fn split_inline(line: &[u8]) -> Result<Vec<Vec<u8>>, ProtocolError> {
    let unbalanced = || ProtocolError("unbalanced quotes in request".into());
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && is_space(line[i]) {
            i += 1;
        }
        if i == line.len() {
            return Ok(args);
        }
        let mut arg = Vec::new();
        match line[i] {
            quote @ (b'"' | b'\'') => {
                i += 1;
                loop {
                    match (quote, line.get(i..).unwrap_or_default()) {
                        (_, []) => return Err(unbalanced()),
                        (b'"', [b'\\', b'x', h, l, ..]) if h.is_ascii_hexdigit() && l.is_ascii_hexdigit() => {
                            arg.push(hex(*h) << 4 | hex(*l));
                            i += 4;
                        }
                        (b'"', [b'\\', c, ..]) => {
                            arg.push(match c {
                                b'n' => b'\n',
                                b'r' => b'\r',
                                b't' => b'\t',
                                b'b' => 0x08,
                                b'a' => 0x07,
                                other => *other,
                            });
                            i += 2;
                        }
                        (b'\'', [b'\\', b'\'', ..]) => {
                            arg.push(b'\'');
                            i += 2;
                        }
                        (q, [c, rest @ ..]) if *c == q => {
                            if rest.first().is_some_and(|b| !is_space(*b)) {
                                return Err(unbalanced());
                            }
                            i += 1;
                            break;
                        }
                        (_, [c, ..]) => {
                            arg.push(*c);
                            i += 1;
                        }
                    }
                }
            }
            _ => {
                while i < line.len() && !is_space(line[i]) {
                    arg.push(line[i]);
                    i += 1;
                }
            }
        }
        args.push(arg);
    }
}

fn hex(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit - b'A' + 10,
    }
}

/// Reply encoders. Each appends one RESP2 value to `out`.
pub mod reply {
    use std::io::Write as _;

    /// `+OK`
    pub fn ok(out: &mut Vec<u8>) {
        out.extend_from_slice(b"+OK\r\n");
    }

    /// A simple string (`+PONG`); must not contain CR or LF.
    pub fn simple(out: &mut Vec<u8>, s: &str) {
        out.push(b'+');
        out.extend_from_slice(s.as_bytes());
        out.extend_from_slice(b"\r\n");
    }

    /// An error (`-ERR ...`). CR and LF in the message become spaces, as in
    /// Redis, so a message quoting the client's bytes cannot break framing.
    pub fn error(out: &mut Vec<u8>, message: &str) {
        out.push(b'-');
        out.extend(message.bytes().map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
        out.extend_from_slice(b"\r\n");
    }

    /// An integer (`:42`).
    pub fn int(out: &mut Vec<u8>, n: i64) {
        let _ = write!(out, ":{n}\r\n");
    }

    /// A bulk string (`$5\r\nhello`).
    pub fn bulk(out: &mut Vec<u8>, data: &[u8]) {
        let _ = write!(out, "${}\r\n", data.len());
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }

    /// A bulk string, or the null bulk string (`$-1`) for `None`.
    pub fn bulk_or_null(out: &mut Vec<u8>, data: Option<&[u8]>) {
        match data {
            Some(data) => bulk(out, data),
            None => null(out),
        }
    }

    /// The null bulk string (`$-1`).
    pub fn null(out: &mut Vec<u8>) {
        out.extend_from_slice(b"$-1\r\n");
    }

    /// The header of an array of `len` elements, which follow.
    pub fn array(out: &mut Vec<u8>, len: usize) {
        let _ = write!(out, "*{len}\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_strict() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [&b""[..], b"-", b"+1", b"01", b"-0", b" 1", b"1 ", b"1a", b"9223372036854775808"] {
            assert_eq!(parse_i64(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn headers() {
        assert_eq!(parse_array_len(b"3"), Ok(Some(3)));
        assert_eq!(parse_array_len(b"0"), Ok(None));
        assert_eq!(parse_array_len(b"-1"), Ok(None));
        assert!(parse_array_len(b"-5").is_err());
        assert!(parse_array_len(b"x").is_err());
        assert!(parse_array_len(b"99999999999").is_err());
        assert_eq!(parse_bulk_len(b"$0"), Ok(0));
        assert!(parse_bulk_len(b"$-1").is_err());
        assert!(parse_bulk_len(b"$abc").is_err());
        assert!(parse_bulk_len(b"3").is_err());
        assert!(parse_bulk_len(b"$536870913").is_err());
    }

    #[test]
    fn inline_splitting() {
        let split = |s: &[u8]| {
            split_inline(s).map(|v| v.into_iter().map(|a| String::from_utf8(a).unwrap()).collect::<Vec<_>>())
        };
        assert_eq!(split(b"  SET k  v "), Ok(vec!["SET".into(), "k".into(), "v".into()]));
        assert_eq!(
            split(br#"SET "a b" 'c\'d' "\x41\n""#),
            Ok(vec!["SET".into(), "a b".into(), "c'd".into(), "A\n".into()])
        );
        assert_eq!(split(b""), Ok(vec![]));
        assert!(split(br#"SET "a"b"#).is_err());
        assert!(split(br#"SET "a"#).is_err());
        assert!(split(b"SET 'a").is_err());
    }
}
