//! Crash points for fault-injection tests.
//!
//! With the `failpoints` cargo feature, `RK_FAILPOINTS="NAME=N[,NAME=N…]"` makes rk-server
//! end abruptly the N-th time it passes point NAME (N = 1 when left out), the way `kill -9`
//! would: no destructor runs, nothing more is written, exit code [`CRASH_EXIT_CODE`]. The
//! points sit where a crash is most likely to corrupt or lose something (see [`POINTS`]);
//! `tests/tests/chaos.rs` crashes replicas at each and checks that no acknowledged write is
//! lost and the history stays linearizable.
//!
//! `RK_PLANTED_BUGS=lazy-sync` plants a bug instead (see [`BUGS`]), so a test can show that
//! the checks catch it: the crash tests are only worth something if they fail on a server
//! that acknowledges what it has not made durable.
//!
//! Without the feature (every release build, and the `rk-server` that `make build` makes)
//! [`hit`] compiles to nothing, [`planted_skip`] is always false, and the environment
//! variables are ignored. `make build` also builds `rk-server-failpoints` with the
//! feature, for the tests only.

/// Every crash point and where it is.
pub const POINTS: &[(&str, &str)] = &[
    ("log-before-sync", "raft entries and hard state written to the log, not yet fsync'd"),
    ("log-after-sync", "the log fsync'd, the acknowledgements not yet sent"),
    ("apply-before", "entries known committed, not yet applied to the state machine"),
    ("snapshot-save", "half of a local snapshot file written (the temporary file)"),
    ("snapshot-install", "a leader's snapshot on disk and the log reset, the hard state not yet synced"),
    ("log-compact", "old log segments dropped after a snapshot, old snapshot files not yet pruned"),
];

/// Bugs a test can plant, and what they break.
pub const BUGS: &[(&str, &str)] = &[(
    "lazy-sync",
    "the raft log is written and fsync'd on one sync (with something to write) in 1000 only, yet every sync acknowledges",
)];

/// The exit code of a crash at a failpoint (distinct from signals' 128+n).
pub const CRASH_EXIT_CODE: i32 = 86;

/// Checks `RK_FAILPOINTS` at startup: an unknown point or a bad count is one clear error,
/// not a test that silently never crashes. Always `Ok` without the feature.
pub fn init() -> Result<(), String> {
    #[cfg(feature = "failpoints")]
    {
        armed::init()?;
        armed::init_bugs()
    }
    #[cfg(not(feature = "failpoints"))]
    {
        Ok(())
    }
}

/// Passes point `name`: with the feature, and when it is armed, ends the process on its
/// N-th pass.
#[inline(always)]
pub fn hit(name: &'static str) {
    #[cfg(feature = "failpoints")]
    armed::hit(name);
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}

/// Whether planted bug `bug` is on and this call is one it skips: true on every call but
/// each `every`-th. Always false without the feature.
#[inline(always)]
pub fn planted_skip(bug: &'static str, every: u64) -> bool {
    #[cfg(feature = "failpoints")]
    {
        armed::planted_skip(bug, every)
    }
    #[cfg(not(feature = "failpoints"))]
    {
        let _ = (bug, every);
        false
    }
}

/// Parses `RK_PLANTED_BUGS` (`bug,bug`) against [`BUGS`].
pub fn parse_bugs(spec: &str) -> Result<Vec<&'static str>, String> {
    let mut out = Vec::new();
    for name in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((known, _)) = BUGS.iter().find(|(b, _)| *b == name) else {
            let names: Vec<&str> = BUGS.iter().map(|(b, _)| *b).collect();
            return Err(format!("RK_PLANTED_BUGS: unknown bug {name:?}; known bugs: {}", names.join(", ")));
        };
        out.push(*known);
    }
    Ok(out)
}

/// Parses `NAME=N,…` against [`POINTS`].
pub fn parse(spec: &str) -> Result<Vec<(&'static str, u64)>, String> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, count) = match part.split_once('=') {
            Some((n, c)) => {
                let c = c.trim().parse::<u64>().ok().filter(|c| *c > 0).ok_or_else(|| {
                    format!("RK_FAILPOINTS: {part:?}: the count must be a whole number from 1 (the pass that crashes)")
                })?;
                (n.trim(), c)
            }
            None => (part, 1),
        };
        let Some((known, _)) = POINTS.iter().find(|(p, _)| *p == name) else {
            let names: Vec<&str> = POINTS.iter().map(|(p, _)| *p).collect();
            return Err(format!("RK_FAILPOINTS: unknown point {name:?}; known points: {}", names.join(", ")));
        };
        out.push((*known, count));
    }
    Ok(out)
}

#[cfg(feature = "failpoints")]
mod armed {
    use parking_lot::Mutex;
    use std::collections::HashMap;
    use std::sync::LazyLock;

    /// Armed points and the passes left before each crashes.
    static ARMED: LazyLock<Mutex<HashMap<&'static str, u64>>> = LazyLock::new(|| {
        let spec = std::env::var("RK_FAILPOINTS").unwrap_or_default();
        Mutex::new(super::parse(&spec).unwrap_or_default().into_iter().collect())
    });

    pub fn init() -> Result<(), String> {
        super::parse(&std::env::var("RK_FAILPOINTS").unwrap_or_default())?;
        let armed = ARMED.lock();
        if !armed.is_empty() {
            tracing::warn!(points = ?*armed, "failpoints armed: this process will crash on purpose");
        }
        Ok(())
    }

    /// Planted bugs and how often each was consulted.
    static BUGS: LazyLock<Mutex<HashMap<&'static str, u64>>> = LazyLock::new(|| {
        let spec = std::env::var("RK_PLANTED_BUGS").unwrap_or_default();
        Mutex::new(super::parse_bugs(&spec).unwrap_or_default().into_iter().map(|b| (b, 0)).collect())
    });

    pub fn init_bugs() -> Result<(), String> {
        super::parse_bugs(&std::env::var("RK_PLANTED_BUGS").unwrap_or_default())?;
        let bugs = BUGS.lock();
        if !bugs.is_empty() {
            tracing::warn!(bugs = ?bugs.keys().collect::<Vec<_>>(), "bugs planted: this process is broken on purpose");
        }
        Ok(())
    }

    pub fn planted_skip(bug: &'static str, every: u64) -> bool {
        let mut bugs = BUGS.lock();
        let Some(calls) = bugs.get_mut(bug) else { return false };
        *calls += 1;
        *calls % every.max(1) != 0
    }

    pub fn hit(name: &'static str) {
        let mut armed = ARMED.lock();
        let Some(left) = armed.get_mut(name) else { return };
        *left -= 1;
        if *left == 0 {
            // Straight to the exit: no destructor, no flush of anything buffered in this
            // process (what the kernel already has stays, as after kill -9).
            eprintln!("rk-server: failpoint {name}: crashing on purpose");
            std::process::exit(super::CRASH_EXIT_CODE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(parse("log-after-sync=3, apply-before").unwrap(), vec![("log-after-sync", 3), ("apply-before", 1)]);
        assert!(parse("nope=1").unwrap_err().contains("known points: log-before-sync"));
        assert!(parse("log-after-sync=0").unwrap_err().contains("from 1"));
        assert!(parse("log-after-sync=x").is_err());
        assert_eq!(parse_bugs("lazy-sync").unwrap(), vec!["lazy-sync"]);
        assert!(parse_bugs("fast-and-loose").unwrap_err().contains("known bugs: lazy-sync"));
    }
}
