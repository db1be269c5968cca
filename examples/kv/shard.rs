//! The keyspace sharded over workers (`--threads N`, `N` > 1).
//!
//! Each worker (one engine, one thread) owns one shard: its own [`Db`](crate::db::Db),
//! still an `Rc<RefCell<..>>` used by that thread alone. A key belongs to
//! the worker `slot(key) % N`, where `slot` is Redis Cluster's: CRC16 of the
//! key modulo 16384, and if the key holds a hash tag (a `{...}` with
//! something inside; the first `{` and the first `}` after it), of the tag
//! alone, so that `{user1}:name` and `{user1}:mail` live together.
//!
//! A connection is served by the worker the kernel gave it (every worker
//! listens, `SO_REUSEPORT`). A request whose keys are that worker's, or that
//! has none (PING, ECHO, CLIENT...), runs there as with one thread. A request
//! for another worker's key is *forwarded*: its arguments are copied into
//! that worker's outbox, and once the loop iteration has dispatched its
//! events (an [`Engine::callback`]), each outbox goes to its worker in one
//! post through its [`Remote`]: the requests of every connection of the
//! iteration, in the order they came. The owner runs them on its shard and
//! posts the replies back in one post. Posts from one thread to a worker
//! run in order, so a connection's requests to one shard run in the order
//! it sent them.
//!
//! Replies go out in request order however many workers answer: a
//! connection that owes replies keeps a queue of slots ([`Pending`]), one
//! per forwarded request, and a reply made at once waits in a slot behind
//! them; each answer fills its slot, and the ready slots at the front are
//! written. A connection with nothing owed writes at once, as with one
//! thread. A connection that closes while it is owed replies just drops
//! them when they arrive ([`Engine::with_stream`] finds no stream: an id is
//! reused only after its slot's generation counter wraps). QUIT, a protocol error or the peer's end of stream while
//! replies are owed close the connection once they are written; requests
//! after QUIT or a protocol error are ignored, as Redis ignores them.
//!
//! Commands with several keys are split by owner, as a cluster proxy splits
//! them: MGET, MSET, DEL, UNLINK and EXISTS run one part per worker
//! involved and the replies are gathered (values back in key order, counts
//! added up). They are not atomic across workers (MSET is atomic per
//! worker). MSETNX, which must set all or none, is not split: keys on
//! several workers get Redis Cluster's `CROSSSLOT` error (hash tags put
//! them together). Commands on the whole keyspace run on every worker and
//! gather: DBSIZE and the INFO counters add up, KEYS and SCAN join (SCAN
//! still answers in one step), FLUSHALL and FLUSHDB clear every shard,
//! CONFIG RESETSTAT resets every worker's counters.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use pants::{Engine, Remote, Stream, StreamId};

use crate::commands::{self, Ctx, Gather, Keys, Session, Shared};
use crate::resp::reply;
use crate::{Client, LARGE_REPLY};

/// Redis Cluster's number of hash slots.
const SLOTS: u16 = 16384;

/// A connection that owes this many forwarded replies stops reading until
/// it owes half as many ([`Stream::pause_reading`]): a client pipelining
/// without reading its replies cannot make a worker hold more than this
/// many replies (and [`MAX_HELD`] bytes of local ones). `redis-benchmark
/// -P 16` has 16 in flight per connection.
const MAX_OWED: usize = 128;

/// Likewise for the bytes of replies made but waiting behind one owed: the
/// stream's default write limit, which bounds what one thread queues.
const MAX_HELD: usize = 1 << 20;

/// What a new outbox or reply buffer reserves at most.
const PREALLOCATE_JOBS: usize = 4096;
const PREALLOCATE_BYTES: usize = 1 << 20;

/// The slot of `key`, as Redis Cluster computes it (`CLUSTER KEYSLOT`).
pub fn key_slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key)) % SLOTS
}

/// What of `key` is hashed: the inside of its first `{...}` if that is not
/// empty, otherwise the whole key.
fn hash_tag(key: &[u8]) -> &[u8] {
    if let Some(open) = memchr::memchr(b'{', key) {
        let rest = &key[open + 1..];
        if let Some(len) = memchr::memchr(b'}', rest) {
            if len > 0 {
                return &rest[..len];
            }
        }
    }
    key
}

/// CRC16-CCITT (XMODEM), Redis Cluster's key hash.
fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |crc, &b| (crc << 8) ^ CRC16[usize::from((crc >> 8) as u8 ^ b)])
}

const CRC16: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// The op of a part that asks a worker for its counters (INFO), instead of
/// a command's index.
const COUNTERS: u32 = u32::MAX;

/// One forwarded request (or part of one): who asked, and what to run.
struct Job {
    stream: StreamId,
    seq: u64,
    part: u32,
    /// The command's index (see [`commands::find`]), or [`COUNTERS`].
    op: u32,
    argc: u32,
}

/// Requests bound for one worker: their arguments one after another in
/// `args`, each ending where `ends` says.
#[derive(Default)]
struct Batch {
    jobs: Vec<Job>,
    args: Vec<u8>,
    ends: Vec<usize>,
}

/// One answer: the reply to a [`Job`], ending at `end` in [`Replies::data`].
struct Answer {
    stream: StreamId,
    seq: u64,
    part: u32,
    end: usize,
}

/// The answers to a [`Batch`], their bytes one after another.
struct Replies {
    answers: Vec<Answer>,
    data: Vec<u8>,
}

/// A worker's view of the group: who owns which key, the outboxes, and
/// counters of what was forwarded.
pub struct Router {
    me: usize,
    remotes: Vec<Remote>,
    /// Requests bound for each worker (this one's stays empty), sent once
    /// the iteration's events have been dispatched.
    outbox: RefCell<Vec<Batch>>,
    /// Whether sending the outboxes is scheduled.
    scheduled: Cell<bool>,
    /// Requests received here that ran, at least in part, elsewhere.
    forwarded: Cell<u64>,
    /// Jobs (requests or parts) sent to other workers, and posts they took.
    jobs_out: Cell<u64>,
    posts_out: Cell<u64>,
    /// Jobs run here for other workers.
    jobs_in: Cell<u64>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router").field("worker", &self.me).field("workers", &self.remotes.len()).finish()
    }
}

impl Router {
    /// The router of `engine`, a worker of a group (every worker exists).
    pub fn new(engine: &Engine) -> Router {
        let workers = engine.workers();
        let remotes = (0..workers).map(|i| engine.worker_remote(i).expect("every worker exists")).collect();
        Router {
            me: engine.worker().unwrap_or(0),
            remotes,
            outbox: RefCell::new((0..workers).map(|_| Batch::default()).collect()),
            scheduled: Cell::new(false),
            forwarded: Cell::new(0),
            jobs_out: Cell::new(0),
            posts_out: Cell::new(0),
            jobs_in: Cell::new(0),
        }
    }

    /// How many workers there are.
    pub fn workers(&self) -> usize {
        self.remotes.len()
    }

    /// The worker that owns `key`.
    pub fn owner(&self, key: &[u8]) -> usize {
        usize::from(key_slot(key)) % self.remotes.len()
    }

    /// The counters INFO shows: `[forwarded, jobs out, posts out, jobs in]`.
    pub fn counters(&self) -> [u64; 4] {
        [self.forwarded.get(), self.jobs_out.get(), self.posts_out.get(), self.jobs_in.get()]
    }

    /// Sets the counters to 0 (CONFIG RESETSTAT).
    pub fn reset_counters(&self) {
        for counter in [&self.forwarded, &self.jobs_out, &self.posts_out, &self.jobs_in] {
            counter.set(0);
        }
    }

    /// Queues a job for worker `owner`, and schedules sending the outboxes.
    #[allow(clippy::too_many_arguments)]
    fn send<'a>(
        &self,
        engine: &Engine,
        owner: usize,
        stream: StreamId,
        seq: u64,
        part: u32,
        op: u32,
        args: impl IntoIterator<Item = &'a [u8]>,
    ) {
        let mut outbox = self.outbox.borrow_mut();
        let batch = &mut outbox[owner];
        let mut argc = 0;
        for arg in args {
            batch.args.extend_from_slice(arg);
            batch.ends.push(batch.args.len());
            argc += 1;
        }
        batch.jobs.push(Job { stream, seq, part, op, argc });
        self.jobs_out.set(self.jobs_out.get() + 1);
        if !self.scheduled.replace(true) {
            // Timers run after the iteration's events: by then every
            // connection has had its say.
            engine.callback(|_| {
                if let Some(router) = local().as_ref().and_then(|shared| shared.router.as_ref()) {
                    router.flush();
                }
            });
        }
    }

    /// Posts each outbox to its worker.
    fn flush(&self) {
        self.scheduled.set(false);
        let mut outbox = self.outbox.borrow_mut();
        for (owner, batch) in outbox.iter_mut().enumerate() {
            if batch.jobs.is_empty() {
                continue;
            }
            // The next batch starts as large as this one (no regrowing),
            // but not as large as one huge request made it.
            let next = Batch {
                jobs: Vec::with_capacity(batch.jobs.len().min(PREALLOCATE_JOBS)),
                args: Vec::with_capacity(batch.args.len().min(PREALLOCATE_BYTES)),
                ends: Vec::with_capacity(batch.ends.len().min(PREALLOCATE_JOBS)),
            };
            let batch = std::mem::replace(batch, next);
            let origin = self.me;
            self.posts_out.set(self.posts_out.get() + 1);
            self.remotes[owner].post(move |engine| serve(engine, origin, batch));
        }
    }
}

thread_local! {
    /// This worker's state, for what other workers post here.
    static WORKER: RefCell<Option<Rc<Shared>>> = const { RefCell::new(None) };
}

/// Makes `shared` this thread's worker state.
pub fn install(shared: &Rc<Shared>) {
    WORKER.with(|worker| *worker.borrow_mut() = Some(Rc::clone(shared)));
}

/// This thread's worker state.
pub fn local() -> Option<Rc<Shared>> {
    WORKER.with(|worker| worker.borrow().clone())
}

/// On the owner: runs the jobs of worker `origin`'s batch on this shard, and
/// posts the replies back.
fn serve(_engine: &Engine, origin: usize, batch: Batch) {
    let Some(shared) = local() else { return };
    let Some(router) = &shared.router else { return };
    let mut replies = Replies {
        answers: Vec::with_capacity(batch.jobs.len()),
        data: Vec::with_capacity(batch.args.len().min(PREALLOCATE_BYTES)),
    };
    // Forwarded commands never use the session (CLIENT runs where the
    // connection is).
    let mut session = Session { id: 0, name: None, peer: String::new() };
    let mut args: Vec<&[u8]> = Vec::new();
    let (mut ends, mut start) = (batch.ends.iter(), 0);
    for job in &batch.jobs {
        args.clear();
        for &end in ends.by_ref().take(job.argc as usize) {
            args.push(&batch.args[start..end]);
            start = end;
        }
        if job.op == COUNTERS {
            counters_reply(&mut replies.data, &shared.counters());
        } else {
            // Every job gets its answer, or its connection would wait for
            // it forever: a command that panics answers an error (as the
            // stream that sent it would be closed with one thread).
            let before = replies.data.len();
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut ctx = Ctx { shared: &shared, session: &mut session, out: &mut replies.data, close: false };
                commands::run_part(&mut ctx, job.op as usize, &args);
            }));
            if ran.is_err() {
                replies.data.truncate(before);
                reply::error(&mut replies.data, "ERR internal error");
            }
        }
        replies.answers.push(Answer { stream: job.stream, seq: job.seq, part: job.part, end: replies.data.len() });
    }
    router.jobs_in.set(router.jobs_in.get() + batch.jobs.len() as u64);
    router.remotes[origin].post(move |engine| deliver(engine, replies));
}

/// Back on the connections' worker: hands each answer to its connection
/// (one that has closed since is gone, and its answers with it).
fn deliver(engine: &Engine, replies: Replies) {
    let answers = &replies.answers;
    let (mut i, mut start) = (0, 0);
    while i < answers.len() {
        // A connection's answers come one after another: one visit each.
        let id = answers[i].stream;
        let run = answers[i..].iter().take_while(|a| a.stream == id).count();
        let mine = &answers[i..i + run];
        let data = &replies.data;
        let _ = engine.with_stream::<Client, _>(id, |client, stream| {
            let mut from = start;
            for answer in mine {
                client.answer(stream, answer.seq, answer.part, &data[from..answer.end]);
                from = answer.end;
            }
        });
        start = mine[run - 1].end;
        i += run;
    }
}

/// A worker's counters as a RESP array of integers.
fn counters_reply(out: &mut Vec<u8>, counters: &[u64]) {
    reply::array(out, counters.len());
    for &n in counters {
        reply::int(out, i64::try_from(n).unwrap_or(i64::MAX));
    }
}

/// The lines INFO's Stats section adds with several workers: the totals of
/// the router counters, then each worker's.
pub fn info_stats(workers: &[Vec<u64>]) -> String {
    let field = |w: &Vec<u64>, i: usize| w.get(i).copied().unwrap_or(0);
    let total = |i: usize| workers.iter().map(|w| field(w, i)).sum::<u64>();
    let mut text = format!(
        "pants_kv_forwarded_commands:{}\r\npants_kv_forwarded_jobs:{}\r\npants_kv_forward_posts:{}\r\n",
        total(5),
        total(6),
        total(7),
    );
    for (i, w) in workers.iter().enumerate() {
        text.push_str(&format!(
            "pants_kv_worker{i}:connections={},commands={},keys={},forwarded={},jobs_out={},posts_out={},jobs_in={}\r\n",
            field(w, 1),
            field(w, 2),
            field(w, 3),
            field(w, 5),
            field(w, 6),
            field(w, 7),
            field(w, 8),
        ));
    }
    text
}

/// The replies a connection owes, in request order: see the module docs.
#[derive(Debug, Default)]
pub struct Pending {
    slots: VecDeque<Slot>,
    /// The bytes of the ready slots.
    held: usize,
    /// The sequence number of `slots[0]`.
    base: u64,
    /// Close once every slot is written; ignore requests until then.
    pub closing: bool,
}

#[derive(Debug)]
enum Slot {
    /// Replies to write (several local ones share a slot).
    Ready(Vec<u8>),
    /// The reply of a forwarded request, to come.
    Waiting,
    /// The replies of a request's parts, to come and to gather.
    Parts(Box<Parts>),
}

#[derive(Debug)]
struct Parts {
    gather: Gather,
    /// By part: the reply, once it came.
    replies: Vec<Option<Vec<u8>>>,
    missing: usize,
    /// MGET: the part that holds each key's value.
    order: Vec<u32>,
    /// INFO: the request (which sections).
    request: Vec<Vec<u8>>,
}

impl Parts {
    fn new(gather: Gather, parts: usize) -> Parts {
        Parts { gather, replies: vec![None; parts], missing: parts, order: Vec::new(), request: Vec::new() }
    }

    fn fill(&mut self, part: usize, reply: Vec<u8>) {
        if let Some(slot @ None) = self.replies.get_mut(part) {
            *slot = Some(reply);
            self.missing -= 1;
        }
    }
}

impl Pending {
    /// Whether nothing is owed.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The sequence number the next slot gets.
    fn next_seq(&self) -> u64 {
        self.base + self.slots.len() as u64
    }

    /// Whether the connection owes so much that it should stop reading.
    fn over_bound(&self) -> bool {
        self.slots.len() >= MAX_OWED || self.held >= MAX_HELD
    }

    /// Whether it owes little enough again to read on.
    fn under_half(&self) -> bool {
        self.slots.len() <= MAX_OWED / 2 && self.held <= MAX_HELD / 2
    }

    /// Queues the replies in `out` behind those owed (emptying `out`).
    pub fn push_ready(&mut self, out: &mut Vec<u8>) {
        self.held += out.len();
        match self.slots.back_mut() {
            Some(Slot::Ready(tail)) => tail.extend_from_slice(out),
            _ => self.slots.push_back(Slot::Ready(out.clone())),
        }
        out.clear();
    }
}

impl Client {
    /// Runs a request with several workers: here, on its key's owner, or
    /// split. See the module docs.
    pub(crate) fn run_routed<D>(&mut self, stream: &mut Stream<Self, D>, args: &[&[u8]]) {
        self.route(stream, args);
        self.bound_owed(stream);
    }

    fn route<D>(&mut self, stream: &mut Stream<Self, D>, args: &[&[u8]]) {
        if self.pending.closing {
            return;
        }
        let shared = Rc::clone(&self.shared);
        let Some(router) = shared.router.as_ref() else { return self.run_here(stream, args, None) };
        // Unknown, or the wrong number of arguments: the error is made here.
        let Ok(index) = commands::find(args) else { return self.run_here(stream, args, None) };
        match commands::command_at(index).keys {
            Keys::None => self.run_here(stream, args, Some(index)),
            Keys::First => match router.owner(args[1]) {
                owner if owner == router.me => self.run_here(stream, args, Some(index)),
                owner => self.forward(stream, router, owner, index, args),
            },
            // MSET's own error for a key without a value.
            Keys::Pairs(_) if args.len() % 2 == 0 => self.run_here(stream, args, Some(index)),
            keys @ (Keys::All(gather) | Keys::Pairs(gather)) => {
                let step = if matches!(keys, Keys::Pairs(_)) { 2 } else { 1 };
                let first = router.owner(args[1]);
                if args[1..].iter().step_by(step).skip(1).all(|key| router.owner(key) == first) {
                    if first == router.me {
                        self.run_here(stream, args, Some(index));
                    } else {
                        self.forward(stream, router, first, index, args);
                    }
                } else if gather == Gather::CrossSlot {
                    let mut ctx = self.ctx();
                    commands::cross_slot(&mut ctx);
                    self.reply_here(stream);
                } else {
                    self.split(stream, router, index, gather, args, step);
                }
            }
            Keys::Every(gather) => self.everywhere(stream, router, index, gather, args),
            Keys::Config if args[1].eq_ignore_ascii_case(b"resetstat") => {
                self.everywhere(stream, router, index, Gather::AllOk, args)
            }
            Keys::Config => self.run_here(stream, args, Some(index)),
        }
    }

    fn ctx(&mut self) -> Ctx<'_> {
        Ctx { shared: &self.shared, session: &mut self.session, out: &mut self.out, close: false }
    }

    /// Runs a request on this worker (`index`: the command, if known to be
    /// runnable) and queues its reply.
    fn run_here<D>(&mut self, stream: &mut Stream<Self, D>, args: &[&[u8]], index: Option<usize>) {
        let mut ctx = self.ctx();
        match index {
            Some(index) => commands::run(&mut ctx, index, args),
            None => commands::execute(&mut ctx, args),
        }
        let close = ctx.close;
        self.reply_here(stream);
        if close {
            self.pending.closing = true;
            self.close_after_replies(stream);
        }
    }

    /// Sends the whole request to worker `owner`.
    fn forward<D>(
        &mut self,
        stream: &mut Stream<Self, D>,
        router: &Router,
        owner: usize,
        index: usize,
        args: &[&[u8]],
    ) {
        self.shared.count_command();
        let seq = self.pending.next_seq();
        self.pending.slots.push_back(Slot::Waiting);
        router.send(stream.engine(), owner, stream.id(), seq, 0, index as u32, args.iter().copied());
        router.forwarded.set(router.forwarded.get() + 1);
    }

    /// Splits a request by the owners of its keys (every `step`-th argument
    /// from the first), one part per owner, with the command's name and
    /// that owner's keys (and values).
    fn split<D>(
        &mut self,
        stream: &mut Stream<Self, D>,
        router: &Router,
        index: usize,
        gather: Gather,
        args: &[&[u8]],
        step: usize,
    ) {
        self.shared.count_command();
        let items = &args[1..];
        let owners: Vec<usize> = items.chunks(step).map(|item| router.owner(item[0])).collect();
        let mut involved = owners.clone();
        involved.sort_unstable();
        involved.dedup();
        let part_of = |owner: usize| involved.binary_search(&owner).unwrap_or(0);
        let mut parts = Parts::new(gather, involved.len());
        if gather == Gather::Mget {
            parts.order = owners.iter().map(|&owner| part_of(owner) as u32).collect();
        }
        let seq = self.pending.next_seq();
        for (part, &worker) in involved.iter().enumerate() {
            let mine = items.chunks(step).zip(&owners).filter(|(_, owner)| **owner == worker);
            let part_args = std::iter::once(args[0]).chain(mine.flat_map(|(item, _)| item.iter().copied()));
            if worker == router.me {
                let part_args: Vec<&[u8]> = part_args.collect();
                parts.fill(part, self.run_part(index, &part_args));
            } else {
                router.send(stream.engine(), worker, stream.id(), seq, part as u32, index as u32, part_args);
            }
        }
        self.pending.slots.push_back(Slot::Parts(Box::new(parts)));
        router.forwarded.set(router.forwarded.get() + 1);
    }

    /// Runs a request on every worker, part `i` on worker `i`.
    fn everywhere<D>(
        &mut self,
        stream: &mut Stream<Self, D>,
        router: &Router,
        index: usize,
        gather: Gather,
        args: &[&[u8]],
    ) {
        self.shared.count_command();
        let mut parts = Parts::new(gather, router.workers());
        let op = if gather == Gather::Info {
            parts.request = args.iter().map(|arg| arg.to_vec()).collect();
            COUNTERS
        } else {
            index as u32
        };
        let seq = self.pending.next_seq();
        for worker in 0..router.workers() {
            let part_args = if op == COUNTERS { &[][..] } else { args };
            if worker != router.me {
                router.send(stream.engine(), worker, stream.id(), seq, worker as u32, op, part_args.iter().copied());
            } else if op == COUNTERS {
                let mut out = Vec::new();
                counters_reply(&mut out, &self.shared.counters());
                parts.fill(worker, out);
            } else {
                parts.fill(worker, self.run_part(index, args));
            }
        }
        self.pending.slots.push_back(Slot::Parts(Box::new(parts)));
        router.forwarded.set(router.forwarded.get() + 1);
    }

    /// This worker's part of a split request: its reply.
    fn run_part(&mut self, index: usize, args: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut ctx = Ctx { shared: &self.shared, session: &mut self.session, out: &mut out, close: false };
        commands::run_part(&mut ctx, index, args);
        out
    }

    /// An answer from another worker: fills its slot, then writes what is
    /// ready at the front.
    fn answer(&mut self, stream: &mut Stream<Self>, seq: u64, part: u32, reply: &[u8]) {
        let Some(at) = seq.checked_sub(self.pending.base).and_then(|at| usize::try_from(at).ok()) else { return };
        match self.pending.slots.get_mut(at) {
            Some(Slot::Waiting) if at == 0 => {
                // The usual case: written from the batch, without a copy.
                let _ = stream.write(reply);
                self.pending.slots.pop_front();
                self.pending.base += 1;
            }
            Some(slot @ Slot::Waiting) => {
                self.pending.held += reply.len();
                *slot = Slot::Ready(reply.to_vec());
            }
            Some(slot @ Slot::Parts(_)) => {
                let Slot::Parts(parts) = slot else { return };
                parts.fill(part as usize, reply.to_vec());
                if parts.missing == 0 {
                    let reply = gather(parts, &self.shared);
                    self.pending.held += reply.len();
                    *slot = Slot::Ready(reply);
                }
            }
            Some(Slot::Ready(_)) | None => return,
        }
        self.write_ready(stream);
    }

    /// Writes the ready slots at the front; closes once nothing is owed, if
    /// asked to.
    fn write_ready<D>(&mut self, stream: &mut Stream<Self, D>) {
        while let Some(Slot::Ready(_)) = self.pending.slots.front() {
            let Some(Slot::Ready(bytes)) = self.pending.slots.pop_front() else { break };
            self.pending.base += 1;
            self.pending.held -= bytes.len();
            // A write fails only on a closing stream, whose peer is gone.
            if bytes.len() > LARGE_REPLY {
                let _ = stream.write_vec(bytes);
            } else {
                let _ = stream.write(&bytes);
            }
        }
        if self.pending.is_empty() && self.pending.closing {
            stream.close();
        } else if stream.is_reading_paused() && self.pending.under_half() {
            stream.resume_reading();
        }
    }

    /// Stops reading while the connection owes too much (see [`MAX_OWED`]).
    fn bound_owed<D>(&mut self, stream: &mut Stream<Self, D>) {
        if self.pending.over_bound() {
            stream.pause_reading();
        }
    }
}

/// The reply of a request from its parts' replies: the first error if a
/// part failed, otherwise as `gather` says.
fn gather(parts: &Parts, shared: &Shared) -> Vec<u8> {
    let replies: Vec<&[u8]> = parts.replies.iter().map(|r| r.as_deref().unwrap_or_default()).collect();
    let mut out = Vec::new();
    if let Some(error) = replies.iter().find(|r| r.first() == Some(&b'-')) {
        out.extend_from_slice(error);
        return out;
    }
    if gather_into(&mut out, parts, &replies, shared).is_none() {
        out.clear();
        reply::error(&mut out, "ERR a worker's reply could not be read");
    }
    out
}

fn gather_into(out: &mut Vec<u8>, parts: &Parts, replies: &[&[u8]], shared: &Shared) -> Option<()> {
    match parts.gather {
        Gather::Sum => {
            let mut sum = 0i64;
            for reply in replies {
                sum = sum.saturating_add(integer(reply)?);
            }
            reply::int(out, sum);
        }
        Gather::AllOk => reply::ok(out),
        Gather::Keys => join(out, replies.iter().map(|r| elements(r)).collect::<Option<_>>()?),
        Gather::Scan => {
            // `*2`, the cursor (always 0: one step), the keys.
            let keys = replies.iter().map(|r| elements(elements(r)?.get(1)?)).collect::<Option<_>>()?;
            reply::array(out, 2);
            reply::bulk(out, b"0");
            join(out, keys);
        }
        Gather::Mget => {
            let lists: Vec<Vec<&[u8]>> = replies.iter().map(|r| elements(r)).collect::<Option<_>>()?;
            let mut values: Vec<std::slice::Iter<'_, &[u8]>> = lists.iter().map(|list| list.iter()).collect();
            reply::array(out, parts.order.len());
            for &part in &parts.order {
                out.extend_from_slice(values.get_mut(part as usize)?.next()?);
            }
        }
        Gather::Info => {
            let mut workers = Vec::with_capacity(replies.len());
            for reply in replies {
                let counters = elements(reply)?;
                let counters = counters.iter().map(|n| integer(n).and_then(|n| u64::try_from(n).ok()));
                workers.push(counters.collect::<Option<Vec<u64>>>()?);
            }
            let request: Vec<&[u8]> = parts.request.iter().map(Vec::as_slice).collect();
            commands::info_reply(out, shared, &request, &workers);
        }
        Gather::CrossSlot => return None,
    }
    Some(())
}

/// One array of the elements of several.
fn join(out: &mut Vec<u8>, lists: Vec<Vec<&[u8]>>) {
    reply::array(out, lists.iter().map(Vec::len).sum());
    for element in lists.iter().flatten() {
        out.extend_from_slice(element);
    }
}

/// The value of an integer reply (`:42`).
fn integer(reply: &[u8]) -> Option<i64> {
    let line = reply.strip_prefix(b":")?.strip_suffix(b"\r\n")?;
    crate::resp::parse_i64(line)
}

/// The elements of an array reply, each whole (header and CRLF included).
fn elements(reply: &[u8]) -> Option<Vec<&[u8]>> {
    let (count, mut rest) = header(reply.strip_prefix(b"*")?)?;
    let mut items = Vec::with_capacity(usize::try_from(count).ok()?.min(1 << 16));
    for _ in 0..count {
        let len = value_len(rest, 0)?;
        items.push(&rest[..len]);
        rest = &rest[len..];
    }
    Some(items)
}

/// A header line's number, and what follows the line.
fn header(bytes: &[u8]) -> Option<(i64, &[u8])> {
    let end = memchr::memchr(b'\n', bytes)?;
    let n = crate::resp::parse_i64(bytes[..end].strip_suffix(b"\r")?)?;
    Some((n, &bytes[end + 1..]))
}

/// The length of the RESP value at the start of `bytes`.
fn value_len(bytes: &[u8], depth: usize) -> Option<usize> {
    let line_len = memchr::memchr(b'\n', bytes)? + 1;
    match bytes.first()? {
        b'+' | b'-' | b':' => Some(line_len),
        b'$' => match header(&bytes[1..])?.0 {
            -1 => Some(line_len),
            n => Some(line_len + usize::try_from(n).ok()? + 2).filter(|&len| len <= bytes.len()),
        },
        b'*' if depth < 4 => {
            let (count, _) = header(&bytes[1..])?;
            let mut len = line_len;
            for _ in 0..count.max(0) {
                len += value_len(bytes.get(len..)?, depth + 1)?;
            }
            Some(len)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_redis_clusters() {
        assert_eq!(crc16(b"123456789"), 0x31c3);
        // CLUSTER KEYSLOT, from a real Redis.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"somekey"), 11058);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"{user1000}.followers"));
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        // An empty tag, or none, hashes the whole key.
        assert_eq!(key_slot(b"foo{}{bar}"), crc16(b"foo{}{bar}") % SLOTS);
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"no{tag"), crc16(b"no{tag") % SLOTS);
    }

    #[test]
    fn replies_are_read_back() {
        assert_eq!(integer(b":42\r\n"), Some(42));
        assert_eq!(integer(b"+OK\r\n"), None);
        let array = b"*3\r\n$1\r\na\r\n$-1\r\n$3\r\nb\nc\r\n";
        assert_eq!(elements(array), Some(vec![&b"$1\r\na\r\n"[..], b"$-1\r\n", b"$3\r\nb\nc\r\n"]));
        let scan = b"*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n";
        assert_eq!(elements(elements(scan).unwrap()[1]), Some(vec![&b"$1\r\nk\r\n"[..]]));
        assert_eq!(elements(b"*2\r\n$1\r\na\r\n"), None, "truncated");
        assert_eq!(elements(b"*1\r\n$5\r\na\r\n"), None, "short bulk");
    }
}
