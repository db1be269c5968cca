//! The commands: a table of names and arities, and one function each.
//!
//! A command sees its arguments (the name first) and appends its reply to
//! `ctx.out`; errors are replies too (`-ERR ...`), and the connection goes on.
//! Names and messages follow Redis 7 so that clients behave as with Redis.

use std::cell::{Cell, RefCell};
use std::io::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::collections;
use crate::db::{glob_match, Db, Value, WrongType, WRONGTYPE};
use crate::resp::{parse_i64, reply, MAX_BULK_LEN};
use crate::shard::Router;

pub const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";
pub const SYNTAX: &str = "ERR syntax error";
const OVERFLOW: &str = "ERR increment or decrement would overflow";

/// What every connection of one worker shares: its shard of the keyspace
/// and its counters (with `--threads 1`, the whole keyspace and the
/// server's counters).
#[derive(Debug)]
pub struct Shared {
    pub db: RefCell<Db>,
    pub started: Instant,
    /// The address the server listens on, for INFO and CONFIG GET.
    pub address: RefCell<String>,
    pub connections_received: Cell<u64>,
    pub connected: Cell<u64>,
    pub commands_processed: Cell<u64>,
    next_client_id: Cell<u64>,
    /// Client ids go up by this much: with several workers, worker `i`
    /// hands out `i + 1`, `i + 1 + workers`... so that ids are unique.
    client_id_step: u64,
    /// With several workers: where keys live and how requests get there.
    pub router: Option<Router>,
}

impl Shared {
    /// The state of a server of one engine.
    pub fn new() -> Self {
        Self::for_worker(0, 1, None)
    }

    /// The state of worker `worker` of `workers`.
    pub fn for_worker(worker: usize, workers: usize, router: Option<Router>) -> Self {
        Shared {
            db: RefCell::default(),
            started: Instant::now(),
            address: RefCell::default(),
            connections_received: Cell::new(0),
            connected: Cell::new(0),
            commands_processed: Cell::new(0),
            next_client_id: Cell::new(worker as u64 + 1),
            client_id_step: workers as u64,
            router,
        }
    }

    /// A new client id (CLIENT ID), counting the connection.
    pub fn connect(&self) -> u64 {
        let id = self.next_client_id.get();
        self.next_client_id.set(id + self.client_id_step);
        self.connections_received.set(self.connections_received.get() + 1);
        self.connected.set(self.connected.get() + 1);
        id
    }

    pub fn disconnect(&self) {
        self.connected.set(self.connected.get().saturating_sub(1));
    }

    /// Counts a request that is being answered.
    pub fn count_command(&self) {
        self.commands_processed.set(self.commands_processed.get() + 1);
    }

    /// This worker's counters, for INFO: `[connections received, connected,
    /// commands processed, keys, keys with a time to live]`, then the
    /// router's (see [`Router::counters`]) with several workers.
    pub fn counters(&self) -> Vec<u64> {
        let db = self.db.borrow();
        let mut counters = vec![
            self.connections_received.get(),
            self.connected.get(),
            self.commands_processed.get(),
            db.len() as u64,
            db.volatile_len() as u64,
        ];
        if let Some(router) = &self.router {
            counters.extend(router.counters());
        }
        counters
    }
}

/// One connection's view: its id and name (CLIENT SETNAME).
#[derive(Debug)]
pub struct Session {
    pub id: u64,
    pub name: Option<Vec<u8>>,
    pub peer: String,
}

/// What a command runs with.
pub struct Ctx<'a> {
    pub shared: &'a Shared,
    pub session: &'a mut Session,
    /// The reply goes here.
    pub out: &'a mut Vec<u8>,
    /// Set by QUIT: close the connection once the reply is sent.
    pub close: bool,
}

impl Ctx<'_> {
    fn db(&self) -> std::cell::RefMut<'_, Db> {
        self.shared.db.borrow_mut()
    }

    fn ok(&mut self) {
        reply::ok(self.out);
    }

    pub fn error(&mut self, message: &str) {
        reply::error(self.out, message);
    }

    pub fn int(&mut self, n: i64) {
        reply::int(self.out, n);
    }

    pub fn count(&mut self, n: usize) {
        reply::int(self.out, i64::try_from(n).unwrap_or(i64::MAX));
    }
}

type Run = fn(&mut Ctx<'_>, &[&[u8]]);

/// Which arguments of a command are keys: with several workers, this says
/// where a request runs (see `shard.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keys {
    /// None: it runs on the connection's worker.
    None,
    /// The first argument: it runs on the worker that owns it.
    First,
    /// Every argument: split by owner, the parts' replies gathered.
    All(Gather),
    /// Every other argument from the first (key value key value...): split
    /// by owner, the parts' replies gathered.
    Pairs(Gather),
    /// The whole keyspace: it runs on every worker, the replies gathered.
    Every(Gather),
    /// CONFIG: RESETSTAT runs on every worker, the rest on the
    /// connection's.
    Config,
}

/// How the replies of a request's parts make its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gather {
    /// Integers, added up (DEL, EXISTS, DBSIZE).
    Sum,
    /// `+OK` if every part says so (MSET, FLUSHALL).
    AllOk,
    /// Arrays of values, put back in the order of the keys (MGET).
    Mget,
    /// Arrays of keys, joined (KEYS).
    Keys,
    /// SCAN replies, their keys joined.
    Scan,
    /// Counters, added up and shown as INFO.
    Info,
    /// Not split: keys on several workers are Redis Cluster's CROSSSLOT
    /// error (MSETNX, which must set all or none).
    CrossSlot,
}

/// A command: its name, its arity as Redis counts it (the name included;
/// negative: at least that many), its function and its keys.
pub struct Command {
    pub name: &'static str,
    arity: i32,
    run: Run,
    pub keys: Keys,
}

/// A command without keys.
const fn cmd(name: &'static str, arity: i32, run: Run) -> Command {
    Command { name, arity, run, keys: Keys::None }
}

/// A command on one key, its first argument.
const fn key(name: &'static str, arity: i32, run: Run) -> Command {
    Command { name, arity, run, keys: Keys::First }
}

impl Command {
    const fn keys(self, keys: Keys) -> Command {
        Command { keys, ..self }
    }
}

/// Every command, the busiest first. HELLO is deliberately missing: clients
/// that try RESP3 get "unknown command", as from Redis 5, and fall back to
/// RESP2.
static COMMANDS: &[Command] = &[
    key("get", 2, get),
    key("set", -3, set),
    key("incr", 2, |c, a| incr_by(c, a[1], 1)),
    cmd("ping", -1, ping),
    cmd("mset", -3, mset).keys(Keys::Pairs(Gather::AllOk)),
    cmd("mget", -2, mget).keys(Keys::All(Gather::Mget)),
    key("lpush", -3, |c, a| collections::push(c, a, true)),
    key("rpush", -3, |c, a| collections::push(c, a, false)),
    key("lpop", -2, |c, a| collections::pop(c, a, true, "lpop")),
    key("rpop", -2, |c, a| collections::pop(c, a, false, "rpop")),
    key("lrange", 4, collections::lrange),
    key("llen", 2, collections::llen),
    key("sadd", -3, collections::sadd),
    key("spop", -2, collections::spop),
    key("scard", 2, collections::scard),
    key("sismember", 3, collections::sismember),
    key("hset", -4, collections::hset),
    key("hget", 3, collections::hget),
    key("hlen", 2, collections::hlen),
    key("zadd", -4, collections::zadd),
    key("zpopmin", -2, collections::zpopmin),
    key("zcard", 2, collections::zcard),
    cmd("del", -2, del).keys(Keys::All(Gather::Sum)),
    cmd("unlink", -2, del).keys(Keys::All(Gather::Sum)),
    cmd("exists", -2, exists).keys(Keys::All(Gather::Sum)),
    key("decr", 2, |c, a| incr_by(c, a[1], -1)),
    key("incrby", 3, |c, a| match parse_i64(a[2]) {
        Some(by) => incr_by(c, a[1], by),
        None => c.error(NOT_AN_INTEGER),
    }),
    key("decrby", 3, |c, a| match parse_i64(a[2]).and_then(i64::checked_neg) {
        Some(by) => incr_by(c, a[1], by),
        None if parse_i64(a[2]).is_some() => c.error("ERR decrement would overflow"),
        None => c.error(NOT_AN_INTEGER),
    }),
    cmd("echo", 2, |c, a| reply::bulk(c.out, a[1])),
    key("setnx", 3, setnx),
    key("setex", 4, |c, a| setex(c, a, "setex", 1000)),
    key("psetex", 4, |c, a| setex(c, a, "psetex", 1)),
    key("getset", 3, getset),
    key("getdel", 2, getdel),
    cmd("msetnx", -3, msetnx).keys(Keys::Pairs(Gather::CrossSlot)),
    key("append", 3, append),
    key("strlen", 2, |c, a| {
        let len = c.db().get(a[1]).map(|value| value.map_or(0, <[u8]>::len));
        let Ok(len) = len else { return c.error(WRONGTYPE) };
        c.count(len)
    }),
    key("expire", -3, |c, a| expire(c, a, "expire", 1000)),
    key("pexpire", -3, |c, a| expire(c, a, "pexpire", 1)),
    key("ttl", 2, |c, a| ttl(c, a, 1000)),
    key("pttl", 2, |c, a| ttl(c, a, 1)),
    key("persist", 2, |c, a| {
        let had_ttl = matches!(c.db().deadline(a[1]), Some(Some(_)));
        if had_ttl {
            c.db().set_deadline(a[1], None);
        }
        c.int(i64::from(had_ttl))
    }),
    key("type", 2, |c, a| {
        let kind = c.db().kind(a[1]).unwrap_or("none");
        reply::simple(c.out, kind)
    }),
    cmd("keys", 2, |c, a| {
        let keys = c.shared.db.borrow().keys(a[1]);
        bulk_array(c.out, &keys)
    })
    .keys(Keys::Every(Gather::Keys)),
    cmd("scan", -2, scan).keys(Keys::Every(Gather::Scan)),
    cmd("dbsize", 1, |c, _| {
        let len = c.db().len();
        c.count(len)
    })
    .keys(Keys::Every(Gather::Sum)),
    cmd("flushall", -1, flush).keys(Keys::Every(Gather::AllOk)),
    cmd("flushdb", -1, flush).keys(Keys::Every(Gather::AllOk)),
    cmd("select", 2, |c, a| match parse_i64(a[1]) {
        Some(0) => c.ok(),
        Some(_) => c.error("ERR DB index is out of range"),
        None => c.error(NOT_AN_INTEGER),
    }),
    cmd("info", -1, info).keys(Keys::Every(Gather::Info)),
    cmd("config", -2, config).keys(Keys::Config),
    cmd("command", -1, command),
    cmd("client", -2, client),
    cmd("time", 1, |c, _| {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        reply::array(c.out, 2);
        reply::bulk(c.out, now.as_secs().to_string().as_bytes());
        reply::bulk(c.out, now.subsec_micros().to_string().as_bytes());
    }),
    cmd("quit", -1, |c, _| {
        c.close = true;
        c.ok()
    }),
];

/// Runs one request (`args[0]` is the command name, `args` is not empty).
pub fn execute(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    match find(args) {
        Ok(index) => run(ctx, index, args),
        Err(Refused::Unknown) => unknown_command(ctx, args),
        Err(Refused::Arity(name)) => wrong_arity(ctx, name),
    }
}

/// Why [`find`] found no command to run.
pub enum Refused {
    Unknown,
    /// The command's name: the number of arguments is wrong.
    Arity(&'static str),
}

/// The index of the command `args` names, if its number of arguments is
/// right.
#[inline(always)]
pub fn find(args: &[&[u8]]) -> Result<usize, Refused> {
    let name = &args[0];
    let Some(index) = COMMANDS.iter().position(|c| c.name.as_bytes().eq_ignore_ascii_case(name)) else {
        return Err(Refused::Unknown);
    };
    let command = &COMMANDS[index];
    let argc = args.len();
    let arity = command.arity.unsigned_abs() as usize;
    if (command.arity > 0 && argc != arity) || argc < arity {
        return Err(Refused::Arity(command.name));
    }
    Ok(index)
}

/// The command at `index` (from [`find`]).
pub fn command_at(index: usize) -> &'static Command {
    &COMMANDS[index]
}

/// Runs the command at `index` (from [`find`]), counting it.
#[inline(always)]
pub fn run(ctx: &mut Ctx<'_>, index: usize, args: &[&[u8]]) {
    ctx.shared.count_command();
    (COMMANDS[index].run)(ctx, args);
}

/// Runs the command at `index` without counting it: the part of a request
/// that another worker received (and counted).
pub fn run_part(ctx: &mut Ctx<'_>, index: usize, args: &[&[u8]]) {
    (COMMANDS[index].run)(ctx, args);
}

/// Replies to a request whose keys are on several workers, for a command
/// that cannot be split.
pub fn cross_slot(ctx: &mut Ctx<'_>) {
    ctx.shared.count_command();
    ctx.error("CROSSSLOT Keys in request don't hash to the same slot");
}

/// Redis 7's message, quoting (at most about 128 bytes of) the arguments.
fn unknown_command(ctx: &mut Ctx<'_>, args: &[&[u8]]) {
    let mut quoted = String::new();
    for arg in &args[1..] {
        if quoted.len() >= 128 {
            break;
        }
        let room = 128 - quoted.len();
        quoted.push_str(&format!("'{}' ", lossy(&arg[..arg.len().min(room)])));
    }
    let name = lossy(&args[0][..args[0].len().min(128)]);
    ctx.error(&format!("ERR unknown command '{name}', with args beginning with: {quoted}"));
}

pub fn wrong_arity(ctx: &mut Ctx<'_>, name: &str) {
    ctx.error(&format!("ERR wrong number of arguments for '{name}' command"));
}

fn unknown_subcommand(ctx: &mut Ctx<'_>, sub: &[u8], command: &str) {
    let sub = lossy(&sub[..sub.len().min(128)]);
    ctx.error(&format!("ERR unknown subcommand '{sub}'. Try {command} HELP."));
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn bulk_array(out: &mut Vec<u8>, items: &[Vec<u8>]) {
    reply::array(out, items.len());
    for item in items {
        reply::bulk(out, item);
    }
}

/// `now + amount * unit_ms` milliseconds, or `None` if that overflows.
fn deadline_in(amount: i64, unit_ms: i64) -> Option<Instant> {
    let ms = amount.checked_mul(unit_ms)?;
    match u64::try_from(ms) {
        Ok(ms) => Instant::now().checked_add(Duration::from_millis(ms)),
        // In the past: due at once.
        Err(_) => Some(Instant::now()),
    }
}

/// The instant of a Unix time in milliseconds (in the past: now).
fn deadline_at_unix_ms(unix_ms: i64) -> Option<Instant> {
    let now_ms = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()?;
    deadline_in(unix_ms.checked_sub(now_ms)?.max(0), 1)
}

fn ping(c: &mut Ctx<'_>, a: &[&[u8]]) {
    match a {
        [_] => reply::simple(c.out, "PONG"),
        [_, message] => reply::bulk(c.out, message),
        _ => wrong_arity(c, "ping"),
    }
}

fn get(c: &mut Ctx<'_>, a: &[&[u8]]) {
    let mut db = c.shared.db.borrow_mut();
    match db.get(a[1]) {
        Ok(value) => reply::bulk_or_null(c.out, value),
        Err(WrongType) => reply::error(c.out, WRONGTYPE),
    }
}

/// SET key value [NX | XX] [GET] [EX s | PX ms | EXAT unix-s | PXAT unix-ms | KEEPTTL]
fn set(c: &mut Ctx<'_>, a: &[&[u8]]) {
    #[derive(PartialEq)]
    enum Expiry {
        None,
        KeepTtl,
        At(Instant),
    }
    let (mut nx, mut xx, mut get, mut keep_ttl) = (false, false, false, false);
    let mut expire: Option<(&[u8], i64, bool)> = None; // (value, unit ms, absolute)
    let mut j = 3;
    while j < a.len() {
        let option = a[j].to_ascii_uppercase();
        let next = a.get(j + 1);
        match (option.as_slice(), next) {
            (b"NX", _) if !xx => nx = true,
            (b"XX", _) if !nx => xx = true,
            (b"GET", _) => get = true,
            (b"KEEPTTL", _) if expire.is_none() => keep_ttl = true,
            (b"EX" | b"PX" | b"EXAT" | b"PXAT", Some(value)) if !keep_ttl && expire.is_none() => {
                let unit = if option.starts_with(b"P") { 1 } else { 1000 };
                expire = Some((*value, unit, option.ends_with(b"AT")));
                j += 1;
            }
            _ => return c.error(SYNTAX),
        }
        j += 1;
    }
    let expiry = match expire {
        None if keep_ttl => Expiry::KeepTtl,
        None => Expiry::None,
        Some((value, unit, absolute)) => {
            let Some(n) = parse_i64(value) else { return c.error(NOT_AN_INTEGER) };
            let at = if n <= 0 {
                None
            } else if absolute {
                n.checked_mul(unit).and_then(deadline_at_unix_ms)
            } else {
                deadline_in(n, unit)
            };
            match at {
                Some(at) => Expiry::At(at),
                None => return c.error("ERR invalid expire time in 'set' command"),
            }
        }
    };

    let mut db = c.shared.db.borrow_mut();
    let key = &a[1];
    let old = match db.get(key) {
        Ok(value) if get => value.map(<[u8]>::to_vec),
        Err(WrongType) if get => {
            drop(db);
            return c.error(WRONGTYPE);
        }
        _ => None,
    };
    let exists = if get { old.is_some() } else { (nx || xx) && db.contains(key) };
    if (nx && exists) || (xx && !exists) {
        drop(db);
        // Not set: nil, or with GET the current value.
        return reply::bulk_or_null(c.out, old.as_deref().filter(|_| get));
    }
    let value = a[2].to_vec();
    match expiry {
        Expiry::KeepTtl => db.set_keep_ttl(key.to_vec(), value),
        Expiry::None => db.set(key.to_vec(), value, None),
        Expiry::At(at) => db.set(key.to_vec(), value, Some(at)),
    };
    drop(db);
    if get {
        reply::bulk_or_null(c.out, old.as_deref())
    } else {
        c.ok()
    }
}

fn setnx(c: &mut Ctx<'_>, a: &[&[u8]]) {
    let mut db = c.db();
    let done = !db.contains(a[1]);
    if done {
        db.set(a[1].to_vec(), a[2].to_vec(), None);
    }
    drop(db);
    c.int(i64::from(done))
}

/// SETEX key seconds value / PSETEX key ms value.
fn setex(c: &mut Ctx<'_>, a: &[&[u8]], name: &str, unit: i64) {
    let Some(n) = parse_i64(a[2]) else { return c.error(NOT_AN_INTEGER) };
    let Some(at) = deadline_in(n, unit).filter(|_| n > 0) else {
        return c.error(&format!("ERR invalid expire time in '{name}' command"));
    };
    c.db().set(a[1].to_vec(), a[3].to_vec(), Some(at));
    c.ok()
}

fn getset(c: &mut Ctx<'_>, a: &[&[u8]]) {
    if c.db().get(a[1]).is_err() {
        return c.error(WRONGTYPE);
    }
    let old = c.db().set(a[1].to_vec(), a[2].to_vec(), None);
    reply::bulk_or_null(c.out, string(old.as_ref()))
}

fn getdel(c: &mut Ctx<'_>, a: &[&[u8]]) {
    let mut db = c.db();
    let old = match db.get(a[1]) {
        Ok(Some(_)) => db.remove(a[1]),
        Ok(None) => None,
        Err(WrongType) => {
            drop(db);
            return c.error(WRONGTYPE);
        }
    };
    drop(db);
    reply::bulk_or_null(c.out, string(old.as_ref()))
}

/// The bytes of a string value.
fn string(value: Option<&Value>) -> Option<&[u8]> {
    match value {
        Some(Value::Str(bytes)) => Some(bytes),
        _ => None,
    }
}

fn append(c: &mut Ctx<'_>, a: &[&[u8]]) {
    let mut db = c.db();
    let len = match db.get_mut(a[1]) {
        Ok(Some(value)) if value.len() + a[2].len() > MAX_BULK_LEN => None,
        Ok(Some(value)) => {
            value.extend_from_slice(a[2]);
            Some(Ok(value.len()))
        }
        Ok(None) => {
            db.set(a[1].to_vec(), a[2].to_vec(), None);
            Some(Ok(a[2].len()))
        }
        Err(WrongType) => Some(Err(WrongType)),
    };
    drop(db);
    match len {
        Some(Ok(len)) => c.count(len),
        Some(Err(WrongType)) => c.error(WRONGTYPE),
        None => c.error("ERR string exceeds maximum allowed size (proto-max-bulk-len)"),
    }
}

fn del(c: &mut Ctx<'_>, a: &[&[u8]]) {
    let mut db = c.db();
    let removed = a[1..].iter().filter(|key| db.contains(key) && db.remove(key).is_some()).count();
    drop(db);
    c.count(removed)
}

fn exists(c: &mut Ctx<'_>, a: &[&[u8]]) {
    let mut db = c.db();
    let found = a[1..].iter().filter(|key| db.contains(key)).count();
    drop(db);
    c.count(found)
}

/// INCR, DECR, INCRBY, DECRBY: the value must be a decimal 64-bit integer;
/// a missing key counts as 0. The key keeps its time to live.
fn incr_by(c: &mut Ctx<'_>, key: &[u8], by: i64) {
    let mut db = c.db();
    let result = match db.get_mut(key) {
        Err(WrongType) => Err(WRONGTYPE),
        Ok(Some(value)) => match parse_i64(value) {
            None => Err(NOT_AN_INTEGER),
            Some(n) => match n.checked_add(by) {
                None => Err(OVERFLOW),
                Some(n) => {
                    value.clear();
                    let _ = write!(value, "{n}");
                    Ok(n)
                }
            },
        },
        Ok(None) => {
            db.set(key.to_vec(), by.to_string().into_bytes(), None);
            Ok(by)
        }
    };
    drop(db);
    match result {
        Ok(n) => c.int(n),
        Err(e) => c.error(e),
    }
}

fn mget(c: &mut Ctx<'_>, a: &[&[u8]]) {
    let mut db = c.shared.db.borrow_mut();
    reply::array(c.out, a.len() - 1);
    for key in &a[1..] {
        // A key of another type reads as nil, as in Redis.
        reply::bulk_or_null(c.out, db.get(key).ok().flatten());
    }
}

fn mset(c: &mut Ctx<'_>, a: &[&[u8]]) {
    if a.len() % 2 == 0 {
        return wrong_arity(c, "mset");
    }
    let mut db = c.db();
    for pair in a[1..].chunks_exact(2) {
        db.set(pair[0].to_vec(), pair[1].to_vec(), None);
    }
    drop(db);
    c.ok()
}

fn msetnx(c: &mut Ctx<'_>, a: &[&[u8]]) {
    if a.len() % 2 == 0 {
        return wrong_arity(c, "msetnx");
    }
    let mut db = c.db();
    let none_exists = a[1..].chunks_exact(2).all(|pair| !db.contains(pair[0]));
    if none_exists {
        for pair in a[1..].chunks_exact(2) {
            db.set(pair[0].to_vec(), pair[1].to_vec(), None);
        }
    }
    drop(db);
    c.int(i64::from(none_exists))
}

/// EXPIRE key seconds [NX | XX | GT | LT], PEXPIRE key ms [...].
fn expire(c: &mut Ctx<'_>, a: &[&[u8]], name: &str, unit: i64) {
    let Some(n) = parse_i64(a[2]) else { return c.error(NOT_AN_INTEGER) };
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for option in &a[3..] {
        match option.to_ascii_uppercase().as_slice() {
            b"NX" => nx = true,
            b"XX" => xx = true,
            b"GT" => gt = true,
            b"LT" => lt = true,
            _ => return c.error(&format!("ERR Unsupported option {}", lossy(option))),
        }
    }
    if nx && (xx || gt || lt) {
        return c.error("ERR NX and XX, GT or LT options at the same time are not compatible");
    }
    if gt && lt {
        return c.error("ERR GT and LT options at the same time are not compatible");
    }
    let Some(at) = deadline_in(n, unit) else {
        return c.error(&format!("ERR invalid expire time in '{name}' command"));
    };
    let mut db = c.db();
    let Some(current) = db.deadline(a[1]) else {
        drop(db);
        return c.int(0);
    };
    // No time to live counts as an infinite one for GT and LT.
    let allowed = match current {
        None => !xx && !gt,
        Some(old) => !nx && (!gt || at > old) && (!lt || at < old),
    };
    if allowed {
        if n <= 0 {
            db.remove(a[1]);
        } else {
            db.set_deadline(a[1], Some(at));
        }
    }
    drop(db);
    c.int(i64::from(allowed))
}

/// TTL (seconds, rounded) or PTTL: -2 for no key, -1 for no time to live.
fn ttl(c: &mut Ctx<'_>, a: &[&[u8]], unit: u128) {
    let deadline = c.db().deadline(a[1]);
    let n = match deadline {
        None => -2,
        Some(None) => -1,
        Some(Some(at)) => {
            let ms = at.saturating_duration_since(Instant::now()).as_millis();
            i64::try_from((ms + unit / 2) / unit).unwrap_or(i64::MAX)
        }
    };
    c.int(n)
}

/// SCAN cursor [MATCH pattern] [COUNT n] [TYPE type]: everything in one
/// step, cursor 0 (allowed: COUNT is only a hint).
fn scan(c: &mut Ctx<'_>, a: &[&[u8]]) {
    let Some(cursor) = std::str::from_utf8(a[1]).ok().and_then(|s| s.parse::<u64>().ok()) else {
        return c.error("ERR invalid cursor");
    };
    let (mut pattern, mut kind): (&[u8], &[u8]) = (b"*", b"string");
    for option in a[2..].chunks(2) {
        match (option[0].to_ascii_uppercase().as_slice(), option.get(1)) {
            (b"MATCH", Some(p)) => pattern = p,
            (b"COUNT", Some(n)) => match parse_i64(n) {
                Some(n) if n >= 1 => {}
                Some(_) => return c.error(SYNTAX),
                None => return c.error(NOT_AN_INTEGER),
            },
            (b"TYPE", Some(t)) => kind = t,
            _ => return c.error(SYNTAX),
        }
    }
    let keys = if cursor == 0 && kind.eq_ignore_ascii_case(b"string") {
        c.shared.db.borrow().keys(pattern)
    } else {
        Vec::new()
    };
    reply::array(c.out, 2);
    reply::bulk(c.out, b"0");
    bulk_array(c.out, &keys);
}

fn flush(c: &mut Ctx<'_>, a: &[&[u8]]) {
    match a {
        [_] => {}
        [_, mode] if mode.eq_ignore_ascii_case(b"sync") || mode.eq_ignore_ascii_case(b"async") => {}
        _ => return c.error(SYNTAX),
    }
    c.db().clear();
    c.ok()
}

fn info(c: &mut Ctx<'_>, a: &[&[u8]]) {
    let counters = c.shared.counters();
    info_reply(c.out, c.shared, a, &[counters]);
}

/// INFO's reply: the sections `a` asks for, with every worker's
/// [`Shared::counters`] (one list per worker) added up.
pub fn info_reply(out: &mut Vec<u8>, shared: &Shared, a: &[&[u8]], workers: &[Vec<u64>]) {
    let wanted = |section: &str| {
        a.len() == 1
            || a[1..].iter().any(|s| {
                s.eq_ignore_ascii_case(section.as_bytes())
                    || [&b"all"[..], b"everything", b"default"].iter().any(|w| s.eq_ignore_ascii_case(w))
            })
    };
    let total = |i: usize| workers.iter().map(|w| w.get(i).copied().unwrap_or(0)).sum::<u64>();
    let mut text = String::new();
    if wanted("server") {
        let port = shared.address.borrow().rsplit_once(':').map_or("0", |(_, p)| p).to_string();
        text.push_str(&format!(
            "# Server\r\nredis_version:7.0.0\r\npants_kv_version:{}\r\nredis_mode:standalone\r\n\
             process_id:{}\r\ntcp_port:{port}\r\nuptime_in_seconds:{}\r\n",
            env!("CARGO_PKG_VERSION"),
            std::process::id(),
            shared.started.elapsed().as_secs(),
        ));
        if shared.router.is_some() {
            text.push_str(&format!("pants_kv_threads:{}\r\n", workers.len()));
        }
        text.push_str("\r\n");
    }
    if wanted("clients") {
        text.push_str(&format!("# Clients\r\nconnected_clients:{}\r\n\r\n", total(1)));
    }
    if wanted("stats") {
        text.push_str(&format!(
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n",
            total(0),
            total(2),
        ));
        if shared.router.is_some() {
            text.push_str(&crate::shard::info_stats(workers));
        }
        text.push_str("\r\n");
    }
    if wanted("keyspace") {
        text.push_str("# Keyspace\r\n");
        if total(3) > 0 {
            text.push_str(&format!("db0:keys={},expires={},avg_ttl=0\r\n", total(3), total(4)));
        }
    }
    let text = format!("{}\r\n", text.trim_end());
    reply::bulk(out, text.as_bytes());
}

/// CONFIG GET pattern... answers from a small table of read-only settings
/// (redis-benchmark asks for `save` and `appendonly` before it starts).
fn config(c: &mut Ctx<'_>, a: &[&[u8]]) {
    let sub = a[1].to_ascii_lowercase();
    match sub.as_slice() {
        b"get" if a.len() < 3 => wrong_arity(c, "config|get"),
        b"get" => {
            let address = c.shared.address.borrow().clone();
            let (bind, port) = address.rsplit_once(':').unwrap_or(("", "0"));
            let bind = bind.trim_start_matches('[').trim_end_matches(']');
            let max_bulk = MAX_BULK_LEN.to_string();
            let table: [(&str, &str); 10] = [
                ("appendonly", "no"),
                ("bind", bind),
                ("databases", "1"),
                ("maxclients", "10000"),
                ("maxmemory", "0"),
                ("maxmemory-policy", "noeviction"),
                ("port", port),
                ("proto-max-bulk-len", &max_bulk),
                ("save", ""),
                ("timeout", "0"),
            ];
            let found: Vec<_> =
                table.iter().filter(|(name, _)| a[2..].iter().any(|p| glob_match(p, name.as_bytes(), true))).collect();
            reply::array(c.out, 2 * found.len());
            for (name, value) in found {
                reply::bulk(c.out, name.as_bytes());
                reply::bulk(c.out, value.as_bytes());
            }
        }
        b"set" if a.len() < 4 || a.len() % 2 != 0 => wrong_arity(c, "config|set"),
        b"set" => c.error(&format!("ERR Unsupported CONFIG parameter: {}", lossy(a[2]))),
        b"resetstat" => {
            c.shared.commands_processed.set(0);
            c.shared.connections_received.set(0);
            if let Some(router) = &c.shared.router {
                router.reset_counters();
            }
            c.ok()
        }
        _ => unknown_subcommand(c, a[1], "CONFIG"),
    }
}

/// COMMAND and its subcommands: no command documentation is served (an
/// empty array is what redis-cli copes with best).
fn command(c: &mut Ctx<'_>, a: &[&[u8]]) {
    let Some(sub) = a.get(1) else { return reply::array(c.out, 0) };
    match sub.to_ascii_lowercase().as_slice() {
        b"docs" | b"info" => reply::array(c.out, 0),
        b"count" => c.count(COMMANDS.len()),
        b"list" => {
            reply::array(c.out, COMMANDS.len());
            for command in COMMANDS {
                reply::bulk(c.out, command.name.as_bytes());
            }
        }
        _ => unknown_subcommand(c, sub, "COMMAND"),
    }
}

fn client(c: &mut Ctx<'_>, a: &[&[u8]]) {
    let describe = |session: &Session| {
        let name = session.name.as_deref().map(lossy).unwrap_or_default();
        format!("id={} addr={} name={} db=0\n", session.id, session.peer, name)
    };
    match (a[1].to_ascii_lowercase().as_slice(), a.len()) {
        (b"setname", 3) => {
            if a[2].iter().any(|b| !(b'!'..=b'~').contains(b)) {
                return c.error("ERR Client names cannot contain spaces, newlines or special characters.");
            }
            c.session.name = if a[2].is_empty() { None } else { Some(a[2].to_vec()) };
            c.ok()
        }
        (b"getname", 2) => reply::bulk_or_null(c.out, c.session.name.as_deref()),
        (b"id", 2) => c.int(i64::try_from(c.session.id).unwrap_or(i64::MAX)),
        (b"setinfo", 4) | (b"no-evict" | b"no-touch", 3) => c.ok(),
        (b"list" | b"info", 2) => {
            let line = describe(c.session);
            reply::bulk(c.out, line.as_bytes())
        }
        (sub @ (b"setname" | b"getname" | b"id" | b"setinfo" | b"no-evict" | b"no-touch" | b"list" | b"info"), _) => {
            wrong_arity(c, &format!("client|{}", lossy(sub)))
        }
        _ => unknown_subcommand(c, a[1], "CLIENT"),
    }
}
