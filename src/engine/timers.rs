//! The engine's timers: one-shot, repeating, cancellable by identity.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::Engine;

/// Identifies a timer for [`Engine::cancel`]. Unlike Pants, cancelling works
/// by identity: two timers due at the same moment are never confused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(u64);

pub(crate) enum Task {
    Once(Box<dyn FnOnce(&Engine)>),
    Cycle(Duration, Box<dyn FnMut(&Engine)>),
}

/// Due timers ordered by (deadline, creation order); `index` maps each live
/// timer to its deadline, so cancelling is a map lookup.
#[derive(Default)]
pub(crate) struct Timers {
    queue: BTreeMap<(Instant, u64), Task>,
    index: HashMap<u64, Instant>,
    next: u64,
}

impl Timers {
    pub(crate) fn add(&mut self, deadline: Instant, task: Task) -> TimerId {
        let id = self.next;
        self.next += 1;
        self.queue.insert((deadline, id), task);
        self.index.insert(id, deadline);
        TimerId(id)
    }

    pub(crate) fn cancel(&mut self, id: TimerId) -> bool {
        match self.index.remove(&id.0) {
            Some(deadline) => {
                // Absent from the queue while running: then removing the
                // index entry is what stops a cycle from being rescheduled.
                self.queue.remove(&(deadline, id.0));
                true
            }
            None => false,
        }
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.queue.keys().next().map(|(deadline, _)| *deadline)
    }

    /// Takes the first timer due at `now` that was created before `limit`
    /// (timers added while firing wait for the next iteration).
    pub(crate) fn pop_due(&mut self, now: Instant, limit: u64) -> Option<(TimerId, Task)> {
        let key = *self.queue.keys().take_while(|(deadline, _)| *deadline <= now).find(|(_, id)| *id < limit)?;
        let task = self.queue.remove(&key)?;
        Some((TimerId(key.1), task))
    }

    /// Puts a cycle back, unless it was cancelled while it ran.
    pub(crate) fn requeue(&mut self, id: TimerId, deadline: Instant, task: Task) {
        if let Some(slot) = self.index.get_mut(&id.0) {
            *slot = deadline;
            self.queue.insert((deadline, id.0), task);
        }
    }

    /// Forgets a one-shot timer that has fired.
    pub(crate) fn fired(&mut self, id: TimerId) {
        self.index.remove(&id.0);
    }

    /// Takes every pending timer (for the caller to drop outside borrows).
    pub(crate) fn drain(&mut self) -> Vec<Task> {
        self.index.clear();
        std::mem::take(&mut self.queue).into_values().collect()
    }

    pub(crate) fn limit(&self) -> u64 {
        self.next
    }

    pub(crate) fn is_live(&self, id: TimerId) -> bool {
        self.index.contains_key(&id.0)
    }
}
