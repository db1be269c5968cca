//! Idle and read timeouts.

use super::core::{Close, Core, State};
use super::Handler;
use crate::error::StreamError;

/// (Re)arms the idle/read timeout timer of the stream.
pub(super) fn arm_timeouts<H: Handler>(core: &mut Core) {
    if let Some(timer) = core.timeout_timer.take() {
        core.engine.cancel(timer);
    }
    // Only a connected stream (or one flushing before it closes) times out:
    // a deadline armed before connecting would already be past, and a timer
    // re-armed in the past fires on every iteration.
    if !core.is_connected() {
        return;
    }
    let deadline = [core.idle_timeout.map(|t| core.last_activity + t), core.read_timeout.map(|t| core.last_read + t)]
        .into_iter()
        .flatten()
        .min();
    if let Some(deadline) = deadline {
        let id = core.id;
        let delay = deadline.saturating_duration_since(core.engine.now());
        core.timeout_timer = Some(core.engine.defer(delay, move |engine| {
            let _ = engine.with_stream::<H, _>(id, |handler, stream| {
                stream.core.timeout_timer = None;
                let now = engine.now();
                let expired = if stream.core.read_timeout.is_some_and(|t| now >= stream.core.last_read + t) {
                    Some("read")
                } else if stream.core.idle_timeout.is_some_and(|t| now >= stream.core.last_activity + t) {
                    Some("idle")
                } else {
                    None
                };
                match expired {
                    Some(which) if matches!(stream.core.state, State::Open) => {
                        let error = StreamError::Timeout(which);
                        super::trace::error("timeout", &error);
                        handler.on_error(stream, error);
                        if stream.core.close == Some(Close::Flush) && !stream.core.out.is_empty() {
                            // close() waits to flush: one more period, then it
                            // is given up (below) if the peer stays silent.
                            stream.core.last_read = now;
                            stream.core.last_activity = now;
                            arm_timeouts::<H>(&mut stream.core);
                        }
                    }
                    Some(which) if matches!(stream.core.state, State::Closing) => {
                        // close() has waited this long for a silent peer
                        // (Pants waited forever): drop what is queued.
                        let error = StreamError::Timeout(which);
                        super::trace::error("timeout", &error);
                        handler.on_error(stream, error);
                        stream.close_now();
                    }
                    Some(_) => {}
                    None => arm_timeouts::<H>(&mut stream.core),
                }
            });
        }));
    }
}
