//! The collection commands: lists (LPUSH, RPUSH, LPOP, RPOP, LRANGE,
//! LLEN), sets (SADD, SPOP, SCARD, SISMEMBER), hashes (HSET, HGET, HLEN)
//! and sorted sets (ZADD, ZPOPMIN, ZCARD): what `redis-benchmark` runs by
//! default, with Redis' replies and errors. A key holding another type is
//! `WRONGTYPE`; a collection left empty is removed, as in Redis.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::commands::{wrong_arity, Ctx, NOT_AN_INTEGER, SYNTAX};
use crate::db::{Value, ZSet, WRONGTYPE};
use crate::resp::{parse_i64, reply};

/// Runs `f` on `key`'s value if it is of the type `pick` selects, creating
/// it with `new` if the key does not exist; `WRONGTYPE` otherwise.
fn with_collection<T, R>(
    c: &mut Ctx<'_>,
    key: &[u8],
    new: fn() -> Value,
    pick: fn(&mut Value) -> Option<&mut T>,
    f: impl FnOnce(&mut T) -> R,
) -> Option<R> {
    let mut db = c.shared.db.borrow_mut();
    let result = pick(db.value_or_insert(key, new)).map(f);
    db.remove_if_empty(key);
    drop(db);
    if result.is_none() {
        c.error(WRONGTYPE);
    }
    result
}

/// Runs `f` on `key`'s existing value if it is of the type `pick`
/// selects: `Some(None)` for no key, `None` (after replying `WRONGTYPE`)
/// for another type.
fn with_existing<T, R>(
    c: &mut Ctx<'_>,
    key: &[u8],
    pick: fn(&mut Value) -> Option<&mut T>,
    f: impl FnOnce(&mut T) -> R,
) -> Option<Option<R>> {
    let mut db = c.shared.db.borrow_mut();
    let result = match db.value_mut(key) {
        None => Some(None),
        Some(value) => pick(value).map(|t| Some(f(t))),
    };
    db.remove_if_empty(key);
    drop(db);
    if result.is_none() {
        c.error(WRONGTYPE);
    }
    result
}

fn list(value: &mut Value) -> Option<&mut VecDeque<Vec<u8>>> {
    match value {
        Value::List(list) => Some(list),
        _ => None,
    }
}

fn set(value: &mut Value) -> Option<&mut HashSet<Vec<u8>>> {
    match value {
        Value::Set(set) => Some(set),
        _ => None,
    }
}

fn hash(value: &mut Value) -> Option<&mut HashMap<Vec<u8>, Vec<u8>>> {
    match value {
        Value::Hash(hash) => Some(hash),
        _ => None,
    }
}

fn zset(value: &mut Value) -> Option<&mut ZSet> {
    match value {
        Value::ZSet(zset) => Some(zset),
        _ => None,
    }
}

/// The optional COUNT of LPOP, RPOP, SPOP and ZPOPMIN: `None` for none,
/// `Err` (replied) for a bad one.
fn pop_count(c: &mut Ctx<'_>, a: &[&[u8]], name: &str) -> Result<Option<usize>, ()> {
    match a {
        [_, _] => Ok(None),
        [_, _, count] => match parse_i64(count).map(usize::try_from) {
            Some(Ok(n)) => Ok(Some(n)),
            Some(Err(_)) => {
                c.error("ERR value is out of range, must be positive");
                Err(())
            }
            None => {
                c.error(NOT_AN_INTEGER);
                Err(())
            }
        },
        _ => {
            wrong_arity(c, name);
            Err(())
        }
    }
}

/// Replies with popped elements: one bulk string (or nil) without a count,
/// an array (or a null array for no key) with one.
fn reply_popped(c: &mut Ctx<'_>, popped: Option<Vec<Vec<u8>>>, count: Option<usize>) {
    match (popped, count) {
        (None, None) => reply::null(c.out),
        (None, Some(_)) => c.out.extend_from_slice(b"*-1\r\n"),
        (Some(items), None) => reply::bulk_or_null(c.out, items.first().map(Vec::as_slice)),
        (Some(items), Some(_)) => {
            reply::array(c.out, items.len());
            for item in &items {
                reply::bulk(c.out, item);
            }
        }
    }
}

/// LPUSH / RPUSH key element [element ...]
pub fn push(c: &mut Ctx<'_>, a: &[&[u8]], front: bool) {
    let len = with_collection(
        c,
        a[1],
        || Value::List(VecDeque::new()),
        list,
        |list| {
            for element in &a[2..] {
                if front {
                    list.push_front(element.to_vec());
                } else {
                    list.push_back(element.to_vec());
                }
            }
            list.len()
        },
    );
    if let Some(len) = len {
        c.count(len);
    }
}

/// LPOP / RPOP key [count]
pub fn pop(c: &mut Ctx<'_>, a: &[&[u8]], front: bool, name: &str) {
    let Ok(count) = pop_count(c, a, name) else { return };
    let Some(popped) = with_existing(c, a[1], list, |list| {
        let n = count.unwrap_or(1).min(list.len());
        let take = |list: &mut VecDeque<Vec<u8>>| if front { list.pop_front() } else { list.pop_back() };
        (0..n).filter_map(|_| take(list)).collect::<Vec<_>>()
    }) else {
        return;
    };
    reply_popped(c, popped, count);
}

/// LRANGE key start stop (negative indexes count from the end).
pub fn lrange(c: &mut Ctx<'_>, a: &[&[u8]]) {
    let (Some(start), Some(stop)) = (parse_i64(a[2]), parse_i64(a[3])) else { return c.error(NOT_AN_INTEGER) };
    let mut items = Vec::new();
    let Some(_) = with_existing(c, a[1], list, |list| {
        let len = list.len() as i64;
        let start = if start < 0 { (len + start).max(0) } else { start };
        let stop = if stop < 0 { len + stop } else { stop.min(len - 1) };
        if start <= stop {
            items.extend(list.range(start as usize..=stop as usize).cloned());
        }
    }) else {
        return;
    };
    reply::array(c.out, items.len());
    for item in &items {
        reply::bulk(c.out, item);
    }
}

/// LLEN key
pub fn llen(c: &mut Ctx<'_>, a: &[&[u8]]) {
    if let Some(len) = with_existing(c, a[1], list, |list| list.len()) {
        c.count(len.unwrap_or(0));
    }
}

/// SADD key member [member ...]
pub fn sadd(c: &mut Ctx<'_>, a: &[&[u8]]) {
    let added = with_collection(
        c,
        a[1],
        || Value::Set(HashSet::new()),
        set,
        |set| a[2..].iter().filter(|member| set.insert(member.to_vec())).count(),
    );
    if let Some(added) = added {
        c.count(added);
    }
}

/// SPOP key [count]: removes members in no particular order.
pub fn spop(c: &mut Ctx<'_>, a: &[&[u8]]) {
    let Ok(count) = pop_count(c, a, "spop") else { return };
    let Some(popped) = with_existing(c, a[1], set, |set| {
        let n = count.unwrap_or(1).min(set.len());
        let members: Vec<Vec<u8>> = set.iter().take(n).cloned().collect();
        for member in &members {
            set.remove(member);
        }
        members
    }) else {
        return;
    };
    // With a count, a missing key is an empty array (LPOP's is a null one).
    let popped = popped.or_else(|| count.map(|_| Vec::new()));
    reply_popped(c, popped, count);
}

/// SCARD key
pub fn scard(c: &mut Ctx<'_>, a: &[&[u8]]) {
    if let Some(len) = with_existing(c, a[1], set, |set| set.len()) {
        c.count(len.unwrap_or(0));
    }
}

/// SISMEMBER key member
pub fn sismember(c: &mut Ctx<'_>, a: &[&[u8]]) {
    if let Some(found) = with_existing(c, a[1], set, |set| set.contains(a[2])) {
        c.int(i64::from(found.unwrap_or(false)));
    }
}

/// HSET key field value [field value ...]
pub fn hset(c: &mut Ctx<'_>, a: &[&[u8]]) {
    if a.len() % 2 != 0 {
        return wrong_arity(c, "hset");
    }
    let added = with_collection(
        c,
        a[1],
        || Value::Hash(HashMap::new()),
        hash,
        |hash| a[2..].chunks_exact(2).filter(|pair| hash.insert(pair[0].to_vec(), pair[1].to_vec()).is_none()).count(),
    );
    if let Some(added) = added {
        c.count(added);
    }
}

/// HGET key field
pub fn hget(c: &mut Ctx<'_>, a: &[&[u8]]) {
    if let Some(value) = with_existing(c, a[1], hash, |hash| hash.get(a[2]).cloned()) {
        reply::bulk_or_null(c.out, value.flatten().as_deref());
    }
}

/// HLEN key
pub fn hlen(c: &mut Ctx<'_>, a: &[&[u8]]) {
    if let Some(len) = with_existing(c, a[1], hash, |hash| hash.len()) {
        c.count(len.unwrap_or(0));
    }
}

/// Parses a score as Redis does: a float, `inf`, `+inf` or `-inf`; NaN is
/// refused.
fn parse_score(bytes: &[u8]) -> Option<f64> {
    let text = std::str::from_utf8(bytes).ok()?;
    let score = match text.to_ascii_lowercase().as_str() {
        "inf" | "+inf" => f64::INFINITY,
        "-inf" => f64::NEG_INFINITY,
        _ if text.trim() != text || text.is_empty() => return None,
        _ => text.parse::<f64>().ok()?,
    };
    (!score.is_nan()).then_some(score)
}

/// ZADD key score member [score member ...] (no option flags).
pub fn zadd(c: &mut Ctx<'_>, a: &[&[u8]]) {
    if a.len() % 2 != 0 {
        return c.error(SYNTAX);
    }
    let mut pairs = Vec::with_capacity((a.len() - 2) / 2);
    for pair in a[2..].chunks_exact(2) {
        let Some(score) = parse_score(pair[0]) else { return c.error("ERR value is not a valid float") };
        pairs.push((score, &pair[1]));
    }
    let added = with_collection(
        c,
        a[1],
        || Value::ZSet(ZSet::default()),
        zset,
        |zset| pairs.iter().filter(|(score, member)| zset.insert(member.to_vec(), *score)).count(),
    );
    if let Some(added) = added {
        c.count(added);
    }
}

/// ZPOPMIN key [count]: an array of member, score pairs.
pub fn zpopmin(c: &mut Ctx<'_>, a: &[&[u8]]) {
    let Ok(count) = pop_count(c, a, "zpopmin") else { return };
    let Some(popped) =
        with_existing(c, a[1], zset, |zset| (0..count.unwrap_or(1)).map_while(|_| zset.pop_min()).collect::<Vec<_>>())
    else {
        return;
    };
    let popped = popped.unwrap_or_default();
    reply::array(c.out, popped.len() * 2);
    for (member, score) in &popped {
        reply::bulk(c.out, member);
        reply::bulk(c.out, format_score(*score).as_bytes());
    }
}

/// ZCARD key
pub fn zcard(c: &mut Ctx<'_>, a: &[&[u8]]) {
    if let Some(len) = with_existing(c, a[1], zset, |zset| zset.len()) {
        c.count(len.unwrap_or(0));
    }
}

/// A score as Redis writes it for moderate magnitudes: `inf`, `-inf`, or
/// the shortest decimal that reads back as the same float (integers without
/// a fraction). Very large or very small scores are written in full
/// (`1000000000000000000000`), where Redis uses an exponent (`1e+21`);
/// both read back as the same float.
fn format_score(score: f64) -> String {
    if score.is_infinite() {
        return if score > 0.0 { "inf".into() } else { "-inf".into() };
    }
    format!("{score}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores() {
        assert_eq!(parse_score(b"1.5"), Some(1.5));
        assert_eq!(parse_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_score(b"nan"), None);
        assert_eq!(parse_score(b" 1"), None);
        assert_eq!(parse_score(b""), None);
        assert_eq!(format_score(3.0), "3");
        assert_eq!(format_score(0.25), "0.25");
        assert_eq!(format_score(f64::INFINITY), "inf");
    }
}
