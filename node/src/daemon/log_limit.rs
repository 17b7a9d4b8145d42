//! Repeated log lines, limited: a peer that can make the node log on demand
//! (a refused handshake, a refused request) must not be able to fill the
//! disk or bury every other line. A few lines per window are written; the
//! rest are counted and reported with the next line that is written.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lets `per_window` lines through each `window`.
#[derive(Debug)]
pub struct LogLimit {
    window: Duration,
    per_window: u32,
    state: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    started: Option<Instant>,
    written: u32,
    suppressed: u64,
}

impl LogLimit {
    /// A limit of `per_window` lines each `window`.
    pub const fn new(per_window: u32, window: Duration) -> Self {
        Self {
            window,
            per_window,
            state: Mutex::new(Window {
                started: None,
                written: 0,
                suppressed: 0,
            }),
        }
    }

    /// Whether to write a line now; `Some(n)` says yes, and that `n` lines
    /// were suppressed since the last one written.
    pub fn allow(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let expired = state
            .started
            .is_none_or(|started| now.saturating_duration_since(started) >= self.window);
        if expired {
            state.started = Some(now);
            state.written = 0;
        }
        if state.written < self.per_window {
            state.written += 1;
            Some(std::mem::take(&mut state.suppressed))
        } else {
            state.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_over_the_limit_are_counted_and_reported_with_the_next() {
        let limit = LogLimit::new(3, Duration::from_secs(60));
        let start = Instant::now();
        let written: Vec<_> = (0..100).map(|_| limit.allow(start)).collect();
        assert_eq!(written.iter().filter(|w| w.is_some()).count(), 3);
        assert_eq!(written[..3], [Some(0), Some(0), Some(0)]);
        assert_eq!(limit.allow(start + Duration::from_secs(61)), Some(97));
        assert_eq!(limit.allow(start + Duration::from_secs(61)), Some(0));
    }
}
