//! The keyspace: keys to values (strings, lists, sets, hashes and sorted
//! sets), some with a time to live.
//!
//! One `Db` is shared by every connection of a worker (`Rc<RefCell<Db>>`;
//! with `--threads N`, each worker has its own, its shard of the keyspace):
//! an engine is single-threaded, so no lock is needed. Expired keys are removed lazily,
//! when a command touches them, and actively, by a timer that pops the
//! deadlines that have passed (`expire_due`).

use std::collections::{hash_map, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Instant;

/// A key's value.
#[derive(Debug)]
pub enum Value {
    Str(Vec<u8>),
    List(VecDeque<Vec<u8>>),
    Set(HashSet<Vec<u8>>),
    Hash(HashMap<Vec<u8>, Vec<u8>>),
    ZSet(ZSet),
}

impl Value {
    /// The name TYPE replies with.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::Hash(_) => "hash",
            Value::ZSet(_) => "zset",
        }
    }

    /// A collection with no elements left (its key is then removed, as in
    /// Redis); a string is never empty in that sense.
    fn is_empty_collection(&self) -> bool {
        match self {
            Value::Str(_) => false,
            Value::List(list) => list.is_empty(),
            Value::Set(set) => set.is_empty(),
            Value::Hash(hash) => hash.is_empty(),
            Value::ZSet(zset) => zset.is_empty(),
        }
    }
}

/// A sorted set: members with a score, ordered by (score, member).
#[derive(Debug, Default)]
pub struct ZSet {
    scores: HashMap<Vec<u8>, f64>,
    order: BTreeSet<(Score, Vec<u8>)>,
}

/// A score, ordered totally (`f64::total_cmp`; scores are never NaN).
#[derive(Debug, Clone, Copy)]
struct Score(f64);

impl PartialEq for Score {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl ZSet {
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// Adds `member` or changes its score (`score` must not be NaN);
    /// returns whether it is new.
    pub fn insert(&mut self, member: Vec<u8>, score: f64) -> bool {
        match self.scores.insert(member.clone(), score) {
            Some(old) => {
                self.order.remove(&(Score(old), member.clone()));
                self.order.insert((Score(score), member));
                false
            }
            None => {
                self.order.insert((Score(score), member));
                true
            }
        }
    }

    /// Removes and returns the member with the lowest score.
    pub fn pop_min(&mut self) -> Option<(Vec<u8>, f64)> {
        let (score, member) = self.order.pop_first()?;
        self.scores.remove(&member);
        Some((member, score.0))
    }
}

/// The key holds a value of another type than the command works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrongType;

/// Redis' reply to [`WrongType`].
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

#[derive(Debug)]
struct Entry {
    value: Value,
    expires_at: Option<Instant>,
}

/// The keyspace; see the [module docs](self).
#[derive(Debug, Default)]
pub struct Db {
    entries: HashMap<Vec<u8>, Entry>,
    /// The keys with a time to live, by deadline.
    deadlines: BTreeSet<(Instant, Vec<u8>)>,
}

impl Db {
    /// How many keys there are (expired keys not yet removed included, as
    /// in Redis).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// How many keys have a time to live.
    pub fn volatile_len(&self) -> usize {
        self.deadlines.len()
    }

    /// Removes every key.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.deadlines.clear();
    }

    /// Removes `key` now if its time is up.
    fn expire_if_due(&mut self, key: &[u8]) {
        if let Some(Entry { expires_at: Some(at), .. }) = self.entries.get(key) {
            if *at <= Instant::now() {
                self.remove(key);
            }
        }
    }

    /// The string value of `key`.
    pub fn get(&mut self, key: &[u8]) -> Result<Option<&[u8]>, WrongType> {
        self.expire_if_due(key);
        match self.entries.get(key).map(|e| &e.value) {
            None => Ok(None),
            Some(Value::Str(value)) => Ok(Some(value)),
            Some(_) => Err(WrongType),
        }
    }

    /// The string value of `key`, to modify in place (its time to live is
    /// kept).
    pub fn get_mut(&mut self, key: &[u8]) -> Result<Option<&mut Vec<u8>>, WrongType> {
        self.expire_if_due(key);
        match self.entries.get_mut(key).map(|e| &mut e.value) {
            None => Ok(None),
            Some(Value::Str(value)) => Ok(Some(value)),
            Some(_) => Err(WrongType),
        }
    }

    /// The type of `key`'s value.
    pub fn kind(&mut self, key: &[u8]) -> Option<&'static str> {
        self.expire_if_due(key);
        self.entries.get(key).map(|e| e.value.kind())
    }

    /// The value of `key`, of any type, to modify in place.
    pub fn value_mut(&mut self, key: &[u8]) -> Option<&mut Value> {
        self.expire_if_due(key);
        self.entries.get_mut(key).map(|e| &mut e.value)
    }

    /// The value of `key`, inserting `new()` (without a time to live) if
    /// there is none.
    pub fn value_or_insert(&mut self, key: &[u8], new: impl FnOnce() -> Value) -> &mut Value {
        self.expire_if_due(key);
        if !self.entries.contains_key(key) {
            self.entries.insert(key.to_vec(), Entry { value: new(), expires_at: None });
        }
        &mut self.entries.get_mut(key).expect("just inserted").value
    }

    /// Removes `key` if it holds a collection with no elements left.
    pub fn remove_if_empty(&mut self, key: &[u8]) {
        if self.entries.get(key).is_some_and(|e| e.value.is_empty_collection()) {
            self.remove(key);
        }
    }

    /// Whether `key` exists.
    pub fn contains(&mut self, key: &[u8]) -> bool {
        self.kind(key).is_some()
    }

    /// Sets `key` to the string `value` with a deadline (`None`: none),
    /// replacing any previous value (of any type) and deadline. Returns the
    /// previous value.
    pub fn set(&mut self, key: Vec<u8>, value: Vec<u8>, expires_at: Option<Instant>) -> Option<Value> {
        let value = Value::Str(value);
        self.expire_if_due(&key);
        if let Some(at) = expires_at {
            self.deadlines.insert((at, key.clone()));
        }
        match self.entries.entry(key) {
            hash_map::Entry::Occupied(mut slot) => {
                let old = std::mem::replace(slot.get_mut(), Entry { value, expires_at });
                if let Some(at) = old.expires_at.filter(|at| Some(*at) != expires_at) {
                    self.deadlines.remove(&(at, slot.key().clone()));
                }
                Some(old.value)
            }
            hash_map::Entry::Vacant(slot) => {
                slot.insert(Entry { value, expires_at });
                None
            }
        }
    }

    /// Sets `key` to the string `value`, keeping its time to live if it has
    /// one.
    pub fn set_keep_ttl(&mut self, key: Vec<u8>, value: Vec<u8>) -> Option<Value> {
        let value = Value::Str(value);
        self.expire_if_due(&key);
        match self.entries.get_mut(&key) {
            Some(entry) => Some(std::mem::replace(&mut entry.value, value)),
            None => {
                self.entries.insert(key, Entry { value, expires_at: None });
                None
            }
        }
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &[u8]) -> Option<Value> {
        let (key, entry) = self.entries.remove_entry(key)?;
        if let Some(at) = entry.expires_at {
            self.deadlines.remove(&(at, key));
        }
        Some(entry.value)
    }

    /// The deadline of `key`: `None` if the key does not exist,
    /// `Some(None)` if it has no time to live.
    pub fn deadline(&mut self, key: &[u8]) -> Option<Option<Instant>> {
        self.expire_if_due(key);
        self.entries.get(key).map(|e| e.expires_at)
    }

    /// Gives `key` a deadline (`None`: removes its time to live). Returns
    /// whether the key exists.
    pub fn set_deadline(&mut self, key: &[u8], expires_at: Option<Instant>) -> bool {
        self.expire_if_due(key);
        let Some((key, entry)) = self.entries.get_key_value(key) else { return false };
        let (key, old) = (key.clone(), entry.expires_at);
        if let Some(old) = old {
            self.deadlines.remove(&(old, key.clone()));
        }
        if let Some(at) = expires_at {
            self.deadlines.insert((at, key.clone()));
        }
        if let Some(entry) = self.entries.get_mut(&key) {
            entry.expires_at = expires_at;
        }
        true
    }

    /// Every key matching `pattern` (a glob), expired keys left out.
    pub fn keys(&self, pattern: &[u8]) -> Vec<Vec<u8>> {
        let now = Instant::now();
        self.entries
            .iter()
            .filter(|(key, entry)| {
                !matches!(entry.expires_at, Some(at) if at <= now) && glob_match(pattern, key, false)
            })
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// Removes up to `max` keys whose deadline has passed; returns how many.
    pub fn expire_due(&mut self, now: Instant, max: usize) -> usize {
        let mut removed = 0;
        while removed < max {
            match self.deadlines.first() {
                Some((at, _)) if *at <= now => {}
                _ => break,
            }
            let Some((_, key)) = self.deadlines.pop_first() else { break };
            self.entries.remove(&key);
            removed += 1;
        }
        removed
    }
}

/// Glob-style matching as Redis' `stringmatchlen`: `*`, `?`, `[abc]`,
/// `[^a-z]`, and `\` to escape. Iterative, so no pattern can make it recurse
/// deeply or take exponential time.
pub fn glob_match(pattern: &[u8], s: &[u8], nocase: bool) -> bool {
    let (mut p, mut i) = (0, 0);
    // Where to resume after the last `*`: (pattern index after it, string index).
    let mut resume: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pattern.len() {
            if pattern[p] == b'*' {
                p += 1;
                resume = Some((p, i));
                continue;
            }
            if let Some(used) = match_one(&pattern[p..], s[i], nocase) {
                p += used;
                i += 1;
                continue;
            }
        }
        match resume {
            Some((rp, ri)) => {
                p = rp;
                i = ri + 1;
                resume = Some((rp, ri + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// Whether the first element of `pattern` (not `*`) matches `c`; returns how
/// many pattern bytes the element used.
fn match_one(pattern: &[u8], c: u8, nocase: bool) -> Option<usize> {
    let eq = |a: u8, b: u8| if nocase { a.eq_ignore_ascii_case(&b) } else { a == b };
    match pattern {
        [b'?', ..] => Some(1),
        [b'\\', escaped, ..] => eq(*escaped, c).then_some(2),
        [b'[', rest @ ..] => {
            let (negate, body, mut used) = match rest {
                [b'^', body @ ..] => (true, body, 2),
                body => (false, body, 1),
            };
            let mut matched = false;
            let mut j = 0;
            while j < body.len() && body[j] != b']' {
                if body[j] == b'\\' && j + 1 < body.len() {
                    matched |= eq(body[j + 1], c);
                    j += 2;
                } else if j + 2 < body.len() && body[j + 1] == b'-' && body[j + 2] != b']' {
                    let (mut lo, mut hi) = (body[j], body[j + 2]);
                    if lo > hi {
                        std::mem::swap(&mut lo, &mut hi);
                    }
                    let folded = [c, c.to_ascii_lowercase(), c.to_ascii_uppercase()];
                    let candidates = if nocase { &folded[..] } else { &folded[..1] };
                    matched |= candidates.iter().any(|x| (lo..=hi).contains(x));
                    j += 3;
                } else {
                    matched |= eq(body[j], c);
                    j += 1;
                }
            }
            // Past the closing `]` (an unterminated class runs to the end).
            used += (j + 1).min(body.len());
            (matched != negate).then_some(used)
        }
        [literal, ..] => eq(*literal, c).then_some(1),
        [] => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (p, s, want) in [
            ("*", "", true),
            ("*", "abc", true),
            ("a*c", "abbbc", true),
            ("a*c", "abbb", false),
            ("h?llo", "hello", true),
            ("h[ae]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-b]llo", "hbllo", true),
            ("h\\*llo", "h*llo", true),
            ("h\\*llo", "hello", false),
            ("*a*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false),
            ("key:*", "key:__rand_int__", true),
            ("[", "x", false),
        ] {
            assert_eq!(glob_match(p.as_bytes(), s.as_bytes(), false), want, "{p} {s}");
        }
        assert!(glob_match(b"SAVE", b"save", true));
    }

    #[test]
    fn deadlines_follow_keys() {
        let mut db = Db::default();
        let past = Instant::now();
        db.set(b"a".to_vec(), b"1".to_vec(), Some(past));
        assert_eq!(db.get(b"a"), Ok(None));
        assert_eq!(db.volatile_len(), 0);
        let later = Instant::now() + std::time::Duration::from_secs(60);
        db.set(b"b".to_vec(), b"1".to_vec(), Some(later));
        db.set(b"b".to_vec(), b"2".to_vec(), None);
        assert_eq!(db.volatile_len(), 0);
        db.set(b"c".to_vec(), b"1".to_vec(), Some(past));
        assert_eq!(db.expire_due(Instant::now(), 10), 1);
        assert_eq!(db.len(), 1);
    }
}
