//! Recording what clients did, and checking it: a linearizability checker for
//! key-value histories and a checker for watch streams.
//!
//! # Linearizability
//!
//! A history is every operation the workload issued: when it was invoked, when its
//! answer came back, and the answer — or `Unknown` when the client never learned the
//! outcome (timeout, connection lost), in which case the operation may or may not have
//! taken effect, at any time after its invocation. The history is linearizable if the
//! operations can be put in one order that respects real time (an operation that
//! returned before another was invoked comes first) and in which every answer is what
//! a single register would have given.
//!
//! Linearizability is compositional, so each key is checked on its own ([`check`]
//! partitions by key). Per key the search is the Wing–Gong algorithm with Lowe's
//! memoisation, as Porcupine implements it: walk the invocations and returns in time
//! order; at an invocation, try to linearize that operation now (if the model accepts
//! its answer in the current state, and the pair (set of linearized operations,
//! state) was not already explored, go deeper); at a return of an operation not yet
//! linearized, backtrack. Operations with an unknown outcome return at "infinity", so
//! they never constrain anything, and the model accepts them in either outcome.
//!
//! Unknown outcomes make the search exponential (each such operation may take effect
//! at any later point), so [`check`] first resolves them, soundly, when every
//! observation on the key names the value it saw (reads, and failed swaps that report
//! the current value, [`Output::Unswapped`]); every write carries a unique value:
//!
//! - an unknown write whose value somebody observed did happen, and before the first
//!   observer returned: it becomes a completed write returning then;
//! - an unknown write nobody observed can be dropped: if the history is linearizable
//!   with it, removing it keeps it so (nothing observed its value, so the next
//!   operation after it overwrote it), and if linearizable without it, placing it last
//!   keeps it so.
//!
//! When a key fails, [`Violation`] names the key and gives the shortest prefix of its
//! history (by invocation time) that already fails, which is what to read first.
//!
//! # Watches
//!
//! [`check_watch`] verifies what a watcher received against the acknowledged writes:
//! events in revision order, no duplicates, and no gaps — every acknowledged write
//! after the watch's start revision arrived.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

/// What an operation asked for, on one key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Input {
    /// Write a value (`None`: delete the key).
    Put(Option<String>),
    /// Read the key.
    Get,
    /// Write `new` if the key holds `expect` (`None`: the key is absent).
    Cas { expect: Option<String>, new: Option<String> },
}

/// What came back.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Output {
    /// A write was acknowledged.
    Written,
    /// A read saw this value (`None`: absent).
    Read(Option<String>),
    /// A compare-and-swap answered whether it swapped.
    Swapped(bool),
    /// A compare-and-swap did not swap, and saw this value instead (the transaction
    /// read the key in its else branch): a failed swap that is also a read.
    Unswapped(Option<String>),
    /// No answer: the operation may or may not have happened.
    Unknown,
}

/// One operation of the history.
#[derive(Clone, Debug)]
pub struct Op {
    pub client: usize,
    pub key: String,
    pub input: Input,
    pub output: Output,
    /// Nanoseconds since the history's start, when the request was sent.
    pub call: u64,
    /// When the answer arrived; ignored for [`Output::Unknown`].
    pub ret: u64,
}

/// The states a register may be in after `op`, from `state`; empty if `op`'s answer
/// is impossible in `state`.
fn step(state: &Option<String>, op: &Op) -> Vec<Option<String>> {
    match (&op.input, &op.output) {
        (Input::Put(v), Output::Written | Output::Unknown) => vec![v.clone()],
        (Input::Get, Output::Read(seen)) => {
            if seen == state {
                vec![state.clone()]
            } else {
                vec![]
            }
        }
        (Input::Get, Output::Unknown) => vec![state.clone()],
        (Input::Cas { expect, new }, Output::Swapped(true)) => {
            if state == expect {
                vec![new.clone()]
            } else {
                vec![]
            }
        }
        (Input::Cas { expect, .. }, Output::Swapped(false)) => {
            if state != expect {
                vec![state.clone()]
            } else {
                vec![]
            }
        }
        (Input::Cas { expect, .. }, Output::Unswapped(seen)) => {
            if seen == state && state != expect {
                vec![state.clone()]
            } else {
                vec![]
            }
        }
        // Unknown: it swapped if it could, or never ran.
        (Input::Cas { expect, new }, Output::Unknown) => {
            if state == expect {
                vec![new.clone(), state.clone()]
            } else {
                vec![state.clone()]
            }
        }
        // An answer of the wrong kind for the request is never legal.
        _ => vec![],
    }
}

/// A history that is not linearizable.
#[derive(Debug)]
pub struct Violation {
    pub key: String,
    /// The shortest prefix (by invocation) of the key's operations that fails.
    pub ops: Vec<Op>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "key {:?} is not linearizable; the shortest failing prefix of its history:", self.key)?;
        for op in &self.ops {
            let ret =
                if op.output == Output::Unknown { "?".to_string() } else { format!("{:.3}", op.ret as f64 / 1e6) };
            writeln!(
                f,
                "  client {:>2}  {:>10.3} ms → {:>10} ms  {:?} → {:?}",
                op.client,
                op.call as f64 / 1e6,
                ret,
                op.input,
                op.output
            )?;
        }
        Ok(())
    }
}

/// Checks every key of `ops` (keys start absent). Returns the number of operations
/// checked, or the first violation found.
pub fn check(ops: &[Op]) -> Result<usize, Box<Violation>> {
    let mut by_key: BTreeMap<&str, Vec<Op>> = BTreeMap::new();
    for op in ops {
        by_key.entry(&op.key).or_default().push(op.clone());
    }
    for (key, key_ops) in by_key {
        let mut key_ops = resolve_unknowns(key_ops);
        key_ops.sort_by_key(|o| o.call);
        if !linearizable(&key_ops) {
            // Shrink: the shortest prefix by invocation that still fails.
            let len = (1..=key_ops.len()).find(|n| !linearizable(&key_ops[..*n])).unwrap_or(key_ops.len());
            return Err(Box::new(Violation { key: key.to_string(), ops: key_ops[..len].to_vec() }));
        }
    }
    Ok(ops.len())
}

/// The value an operation writes, if it writes one.
fn written_value(op: &Op) -> Option<&String> {
    match &op.input {
        Input::Put(v) | Input::Cas { new: v, .. } => v.as_ref(),
        Input::Get => None,
    }
}

/// Resolves unknown writes as the module docs describe, when that is sound for these
/// operations (every observation names its value); otherwise returns them unchanged.
fn resolve_unknowns(ops: Vec<Op>) -> Vec<Op> {
    let blind = ops.iter().any(|o| matches!(o.output, Output::Swapped(false)));
    if blind {
        return ops;
    }
    // When each value was first seen to be current: the earliest return of a read or
    // failed swap that saw it, or of a swap that expected it and succeeded.
    let mut first_seen: HashMap<String, u64> = HashMap::new();
    for o in &ops {
        let seen = match (&o.input, &o.output) {
            (_, Output::Read(Some(v)) | Output::Unswapped(Some(v))) => Some(v),
            (Input::Cas { expect: Some(v), .. }, Output::Swapped(true)) => Some(v),
            _ => None,
        };
        if let Some(v) = seen {
            let t = first_seen.entry(v.clone()).or_insert(o.ret);
            *t = (*t).min(o.ret);
        }
    }
    ops.into_iter()
        .filter_map(|mut o| {
            if o.output != Output::Unknown || o.input == Input::Get {
                return Some(o);
            }
            let seen = written_value(&o).and_then(|v| first_seen.get(v)).copied();
            match seen {
                Some(t) => {
                    o.output =
                        if matches!(o.input, Input::Cas { .. }) { Output::Swapped(true) } else { Output::Written };
                    o.ret = t.max(o.call);
                    Some(o)
                }
                // A delete (no value) cannot be traced; keep it unknown.
                None if written_value(&o).is_none() => Some(o),
                None => None,
            }
        })
        .collect()
}

/// One entry of the time-ordered list of invocations and returns.
#[derive(Clone, Copy, Debug)]
struct Entry {
    op: usize,
    is_call: bool,
    time: u64,
}

/// Wing–Gong search with memoisation over one register's operations.
pub fn linearizable(ops: &[Op]) -> bool {
    let n = ops.len();
    if n == 0 {
        return true;
    }
    let mut entries: Vec<Entry> = Vec::with_capacity(2 * n);
    for (i, op) in ops.iter().enumerate() {
        entries.push(Entry { op: i, is_call: true, time: op.call });
        let ret = if op.output == Output::Unknown { u64::MAX } else { op.ret.max(op.call) };
        entries.push(Entry { op: i, is_call: false, time: ret });
    }
    // Calls before returns at equal times: touching intervals overlap.
    entries.sort_by_key(|e| (e.time, !e.is_call));
    // A doubly linked list over `entries` (index len = the head sentinel).
    let head = entries.len();
    let mut next: Vec<usize> = (1..=entries.len()).collect();
    next.push(0);
    let mut prev: Vec<usize> = vec![0; entries.len() + 1];
    next[head] = 0;
    prev[0] = head;
    for (i, p) in prev.iter_mut().enumerate().take(entries.len()).skip(1) {
        *p = i - 1;
    }
    let end = usize::MAX;
    next[entries.len() - 1] = end;
    let mut ret_of = vec![0usize; n];
    for (i, e) in entries.iter().enumerate() {
        if !e.is_call {
            ret_of[e.op] = i;
        }
    }
    let unlink = |i: usize, next: &mut Vec<usize>, prev: &mut Vec<usize>| {
        let (p, nx) = (prev[i], next[i]);
        next[p] = nx;
        if nx != end {
            prev[nx] = p;
        }
    };
    let relink = |i: usize, next: &mut Vec<usize>, prev: &mut Vec<usize>| {
        let (p, nx) = (prev[i], next[i]);
        next[p] = i;
        if nx != end {
            prev[nx] = i;
        }
    };

    // The set of linearized operations, as a Zobrist hash: the XOR of a random
    // 128-bit tag per operation, updated in O(1). Two different sets collide with
    // probability about 2^-128 per pair, far below any chance of mattering.
    let tags: Vec<u128> = (0..n as u64).map(zobrist_tag).collect();
    let mut linearized: u128 = 0;
    let mut seen: HashSet<(u128, Option<String>)> = HashSet::new();
    // Stack frames: (call entry, state before, the remaining alternative states).
    struct Frame {
        call: usize,
        before: Option<String>,
        alternatives: Vec<Option<String>>,
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut state: Option<String> = None;
    let mut cur = next[head];
    loop {
        if next[head] == end {
            return true; // everything linearized
        }
        if cur != end && entries[cur].is_call {
            let op = entries[cur].op;
            let mut outcomes = step(&state, &ops[op]);
            let mut advanced = false;
            while let Some(after) = outcomes.pop() {
                let set = linearized ^ tags[op];
                if seen.insert((set, after.clone())) {
                    linearized = set;
                    stack.push(Frame { call: cur, before: state.clone(), alternatives: outcomes });
                    state = after;
                    unlink(cur, &mut next, &mut prev);
                    unlink(ret_of[op], &mut next, &mut prev);
                    cur = next[head];
                    advanced = true;
                    break;
                }
            }
            if !advanced {
                cur = next[cur];
            }
            continue;
        }
        // A return of an operation not linearized yet (or the end): backtrack.
        let Some(mut frame) = stack.pop() else { return false };
        let op = entries[frame.call].op;
        relink(ret_of[op], &mut next, &mut prev);
        relink(frame.call, &mut next, &mut prev);
        linearized ^= tags[op];
        state = frame.before.clone();
        // Another outcome of the same operation, if it had several; else the next entry.
        cur = next[frame.call];
        while let Some(after) = frame.alternatives.pop() {
            let set = linearized ^ tags[op];
            if seen.insert((set, after.clone())) {
                linearized = set;
                let call = frame.call;
                stack.push(Frame { call, before: state.clone(), alternatives: frame.alternatives });
                state = after;
                unlink(call, &mut next, &mut prev);
                unlink(ret_of[op], &mut next, &mut prev);
                cur = next[head];
                break;
            }
        }
    }
}

/// A fixed pseudo-random 128-bit tag for operation `i` (SplitMix64, twice).
fn zobrist_tag(i: u64) -> u128 {
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let a = mix(i.wrapping_mul(2).wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let b = mix(i.wrapping_mul(2).wrapping_add(2).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    (u128::from(a) << 64) | u128::from(b)
}

/// Something wrong with a watch stream.
#[derive(Debug, PartialEq, Eq)]
pub enum WatchViolation {
    /// An event came at or below the revision of the one before it.
    OutOfOrder { previous: i64, got: i64 },
    /// The same revision (and key) arrived twice.
    Duplicate { revision: i64, key: String },
    /// An acknowledged write after the start revision never arrived.
    Missing { revision: i64, key: String },
    /// An event for a write nobody made.
    Phantom { revision: i64, key: String },
}

/// Checks the events a watcher received (`(mod revision, key)` in arrival order)
/// against the acknowledged writes (`(revision, key)`) for the keys it watched, from
/// `start` (exclusive). Writes whose outcome is unknown may appear or not
/// (`maybe_writes`); anything else is a phantom.
pub fn check_watch(
    received: &[(i64, String)],
    acknowledged: &[(i64, String)],
    maybe_writes: &HashSet<String>,
    start: i64,
) -> Result<(), WatchViolation> {
    let mut previous = start;
    let mut seen: HashSet<(i64, &str)> = HashSet::new();
    for (rev, key) in received {
        if seen.contains(&(*rev, key.as_str())) {
            return Err(WatchViolation::Duplicate { revision: *rev, key: key.clone() });
        }
        // One revision may carry several keys (a transaction); never go backwards.
        if *rev < previous || (*rev == previous && previous == start) {
            return Err(WatchViolation::OutOfOrder { previous, got: *rev });
        }
        seen.insert((*rev, key.as_str()));
        previous = *rev;
    }
    let acked: HashMap<(i64, &str), ()> = acknowledged.iter().map(|(r, k)| ((*r, k.as_str()), ())).collect();
    for (rev, key) in acknowledged {
        if *rev > start && !seen.contains(&(*rev, key.as_str())) {
            return Err(WatchViolation::Missing { revision: *rev, key: key.clone() });
        }
    }
    for (rev, key) in received {
        if !acked.contains_key(&(*rev, key.as_str())) && !maybe_writes.contains(key) {
            return Err(WatchViolation::Phantom { revision: *rev, key: key.clone() });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(client: usize, input: Input, output: Output, call: u64, ret: u64) -> Op {
        Op { client, key: "k".into(), input, output, call, ret }
    }
    fn put(v: &str) -> Input {
        Input::Put(Some(v.into()))
    }
    fn read(v: Option<&str>) -> Output {
        Output::Read(v.map(String::from))
    }

    #[test]
    fn sequential_history_is_linearizable() {
        let h = [
            op(0, put("a"), Output::Written, 0, 10),
            op(0, Input::Get, read(Some("a")), 20, 30),
            op(0, put("b"), Output::Written, 40, 50),
            op(0, Input::Get, read(Some("b")), 60, 70),
        ];
        assert!(linearizable(&h));
    }

    #[test]
    fn stale_read_after_a_completed_write_is_caught() {
        let h = [
            op(0, put("a"), Output::Written, 0, 10),
            op(0, put("b"), Output::Written, 20, 30),
            // Invoked after "b" was acknowledged, yet sees "a": a stale read.
            op(1, Input::Get, read(Some("a")), 40, 50),
        ];
        assert!(!linearizable(&h));
        let v = check(&h).unwrap_err();
        assert_eq!(v.ops.len(), 3);
        assert!(v.to_string().contains("not linearizable"));
    }

    #[test]
    fn concurrent_operations_may_take_either_order() {
        let h = [
            op(0, put("a"), Output::Written, 0, 100),
            op(1, Input::Get, read(None), 10, 20),
            op(2, Input::Get, read(Some("a")), 30, 40),
            // Once someone saw "a", a later read cannot see nothing again.
        ];
        assert!(linearizable(&h));
        let mut bad = h.to_vec();
        bad.push(op(3, Input::Get, read(None), 50, 60));
        assert!(!linearizable(&bad));
    }

    #[test]
    fn unknown_writes_may_or_may_not_happen() {
        let happened = [op(0, put("a"), Output::Unknown, 0, 0), op(1, Input::Get, read(Some("a")), 50, 60)];
        assert!(linearizable(&happened));
        let did_not = [op(0, put("a"), Output::Unknown, 0, 0), op(1, Input::Get, read(None), 50, 60)];
        assert!(linearizable(&did_not));
        // But an unknown write cannot take effect before it was invoked.
        let too_early = [op(1, Input::Get, read(Some("a")), 0, 10), op(0, put("a"), Output::Unknown, 20, 0)];
        assert!(!linearizable(&too_early));
    }

    #[test]
    fn compare_and_swap_outcomes() {
        let cas =
            |expect: Option<&str>, new: &str| Input::Cas { expect: expect.map(String::from), new: Some(new.into()) };
        let h = [
            op(0, cas(None, "a"), Output::Swapped(true), 0, 10),
            op(1, cas(None, "b"), Output::Swapped(false), 20, 30),
            op(2, Input::Get, read(Some("a")), 40, 50),
        ];
        assert!(linearizable(&h));
        // Two swaps from the same expected value cannot both succeed.
        let both =
            [op(0, cas(None, "a"), Output::Swapped(true), 0, 10), op(1, cas(None, "b"), Output::Swapped(true), 5, 15)];
        assert!(!linearizable(&both));
        // An unknown swap either happened or not.
        let unknown = [
            op(0, cas(None, "a"), Output::Unknown, 0, 0),
            op(1, Input::Get, read(None), 10, 20),
            op(2, Input::Get, read(Some("a")), 30, 40),
        ];
        assert!(linearizable(&unknown));
    }

    #[test]
    fn unknown_writes_are_resolved_by_observations() {
        let cas =
            |expect: Option<&str>, new: &str| Input::Cas { expect: expect.map(String::from), new: Some(new.into()) };
        // Forty writes that timed out and were never seen: dropped, so the check stays fast.
        let mut h: Vec<Op> = (0..40).map(|i| op(i, put(&format!("lost{i}")), Output::Unknown, i as u64, 0)).collect();
        h.push(op(50, put("a"), Output::Written, 100, 110));
        // A timed-out write seen by a later read happened before that read returned…
        h.push(op(51, put("b"), Output::Unknown, 120, 0));
        h.push(op(52, Input::Get, read(Some("b")), 130, 140));
        // …and a failed swap that saw "b" is consistent with it.
        h.push(op(53, cas(Some("a"), "c"), Output::Unswapped(Some("b".into())), 150, 160));
        assert!(check(&h).is_ok());
        // But a read after the observation cannot go back to "a".
        h.push(op(54, Input::Get, read(Some("a")), 170, 180));
        assert!(check(&h).is_err());
    }

    #[test]
    fn a_failed_swap_must_see_another_value() {
        let cas = Input::Cas { expect: Some("a".into()), new: Some("b".into()) };
        let h = [op(0, put("a"), Output::Written, 0, 10), op(1, cas, Output::Unswapped(Some("a".into())), 20, 30)];
        assert!(!linearizable(&h));
    }

    #[test]
    fn keys_are_checked_independently() {
        let mut a = op(0, put("1"), Output::Written, 0, 10);
        a.key = "a".into();
        let mut b = op(1, Input::Get, read(Some("1")), 20, 30);
        b.key = "b".into();
        let v = check(&[a, b]).unwrap_err();
        assert_eq!(v.key, "b");
    }

    #[test]
    fn many_concurrent_clients_are_checked_quickly() {
        // 8 clients × 60 rounds of overlapping puts and reads of the latest write.
        let mut h = Vec::new();
        let mut t = 0;
        let mut last = None;
        for round in 0..60 {
            for c in 0..8u64 {
                let v = format!("{round}-{c}");
                h.push(op(c as usize, put(&v), Output::Written, t + c, t + 100 + c));
                last = Some(v);
            }
            t += 200;
            h.push(op(9, Input::Get, read(last.as_deref()), t, t + 10));
            t += 20;
        }
        assert!(linearizable(&h));
    }

    #[test]
    fn watch_checks() {
        let acked = vec![(5, "a".to_string()), (6, "b".to_string()), (7, "a".to_string())];
        let none = HashSet::new();
        assert_eq!(check_watch(&acked, &acked, &none, 4), Ok(()));
        assert_eq!(check_watch(&acked[1..], &acked, &none, 5), Ok(()));
        assert!(matches!(check_watch(&acked[..2], &acked, &none, 4), Err(WatchViolation::Missing { revision: 7, .. })));
        let dup = vec![acked[0].clone(), acked[0].clone()];
        assert!(matches!(check_watch(&dup, &acked[..1], &none, 4), Err(WatchViolation::Duplicate { .. })));
        let swapped = vec![acked[1].clone(), acked[0].clone()];
        assert!(matches!(check_watch(&swapped, &acked[..2], &none, 4), Err(WatchViolation::OutOfOrder { .. })));
        let phantom = vec![(9, "z".to_string())];
        assert!(matches!(check_watch(&phantom, &[], &none, 4), Err(WatchViolation::Phantom { .. })));
    }
}
