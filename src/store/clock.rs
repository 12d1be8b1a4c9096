//! The time records are stamped with: wall-clock time since the Unix epoch (0 on a clock set
//! before it). One place, so that every record reads the clock the same way.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
}

/// Seconds since the epoch now.
pub fn now_secs() -> u64 {
    since_epoch().as_secs()
}

/// Milliseconds since the epoch now.
pub fn now_ms() -> u64 {
    since_epoch().as_millis() as u64
}
