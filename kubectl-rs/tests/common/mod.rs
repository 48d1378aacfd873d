//! What the CLI test files share.

use std::time::{Duration, Instant};

/// Polls `check` every 50 ms until it returns `Some`, failing the test after `timeout`.
#[track_caller]
pub fn wait_until<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
