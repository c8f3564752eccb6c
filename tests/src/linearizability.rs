//! A linearizability checker for histories of key/value operations (Wing & Gong's search with
//! Lowe's memoization, as porcupine does it), checked key by key (a history is linearizable when
//! each key's sub-history is, since keys are independent registers).
//!
//! Each key is a register holding `Option<String>` (absent or a value). Written values are unique
//! per run, so a compare-and-set by modify index is a compare-and-set by value. An operation with
//! no answer (a timeout, a dropped connection) may or may not have taken effect: it returns "at the
//! end of time", and a compare-and-set without answer may have succeeded or not.

use std::collections::{BTreeMap, HashSet};

pub type Value = Option<String>;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Input {
    Read,
    Write(String),
    /// Set `to` if the key holds `from` (absent when `None`).
    Cas {
        from: Value,
        to: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Output {
    Read(Value),
    Written,
    Cas(bool),
    /// No answer: the operation may or may not have happened.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub client: usize,
    pub key: String,
    pub input: Input,
    pub output: Output,
    /// Nanoseconds since the run started: when it was sent and when its answer came.
    pub call: u64,
    pub ret: u64,
    /// Where and how it was sent (for the report; the check ignores it).
    pub via: String,
}

/// The states `input` can leave the register in when it answered `output` from `state`.
fn step(state: &Value, input: &Input, output: &Output) -> Vec<Value> {
    match (input, output) {
        (Input::Read, Output::Read(seen)) if seen == state => vec![state.clone()],
        (Input::Read, Output::Unknown) => vec![state.clone()],
        (Input::Read, _) => vec![],
        (Input::Write(v), Output::Written | Output::Unknown) => vec![Some(v.clone())],
        (Input::Write(_), _) => vec![],
        (Input::Cas { from, to }, Output::Cas(true)) if from == state => vec![Some(to.clone())],
        (Input::Cas { from, .. }, Output::Cas(false)) if from != state => vec![state.clone()],
        (Input::Cas { from, to }, Output::Unknown) if from == state => vec![Some(to.clone()), state.clone()],
        (Input::Cas { .. }, Output::Unknown) => vec![state.clone()],
        (Input::Cas { .. }, _) => vec![],
    }
}

/// What the check found for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    /// No order explains the history; the operations are the key's.
    Violation(Vec<Op>),
    /// The search gave up (too many states); says nothing either way.
    Unknown,
}

/// Checks every key.
pub fn check(history: &[Op], budget: usize) -> BTreeMap<String, Verdict> {
    let mut by_key: BTreeMap<String, Vec<Op>> = BTreeMap::new();
    for op in history {
        by_key.entry(op.key.clone()).or_default().push(op.clone());
    }
    by_key.into_iter().map(|(key, ops)| (key, check_key(&ops, budget))).collect()
}

/// Unanswered writes whose value nobody ever saw are left out first: they can always be placed
/// after everything else (they never returned), so if the rest is linearizable, so is the whole.
/// Each one kept multiplies the search. Only when the rest is not linearizable is the whole
/// history searched (a failed compare-and-set may need such a write to explain it).
fn check_key(ops: &[Op], budget: usize) -> Verdict {
    let observed: HashSet<&str> = ops
        .iter()
        .flat_map(|o| {
            let read = match &o.output {
                Output::Read(Some(v)) => Some(v.as_str()),
                _ => None,
            };
            let from = match &o.input {
                Input::Cas { from: Some(v), .. } => Some(v.as_str()),
                _ => None,
            };
            read.into_iter().chain(from)
        })
        .collect();
    let unseen_unknown = |o: &Op| {
        o.output == Output::Unknown
            && match &o.input {
                Input::Write(v) | Input::Cas { to: v, .. } => !observed.contains(v.as_str()),
                Input::Read => true,
            }
    };
    let reduced: Vec<Op> = ops.iter().filter(|o| !unseen_unknown(o)).cloned().collect();
    match check_register(&reduced, budget) {
        Verdict::Linearizable => Verdict::Linearizable,
        _ if reduced.len() == ops.len() => check_register(ops, budget),
        _ => match check_register(ops, budget) {
            Verdict::Linearizable => Verdict::Linearizable,
            other => other,
        },
    }
}

/// One entry of the event list: the call or the return of operation `op`.
#[derive(Debug, Clone, Copy)]
struct Entry {
    op: usize,
    is_call: bool,
    /// For a call: its return's entry index.
    partner: usize,
    prev: usize,
    next: usize,
}

const NONE: usize = usize::MAX;

struct Events {
    entries: Vec<Entry>,
    head: usize,
}

impl Events {
    fn new(ops: &[Op]) -> Events {
        let mut order: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            // Calls sort before returns at the same instant (the lenient reading).
            order.push((op.call, false, i));
            order.push((op.ret.max(op.call), true, i));
        }
        order.sort();
        let mut entries: Vec<Entry> = order
            .iter()
            .map(|&(_, is_return, op)| Entry {
                op,
                is_call: !is_return,
                partner: NONE,
                prev: NONE,
                next: NONE,
            })
            .collect();
        let mut return_of = vec![NONE; ops.len()];
        for (i, e) in entries.iter().enumerate() {
            if !e.is_call {
                return_of[e.op] = i;
            }
        }
        let n = entries.len();
        for i in 0..n {
            if entries[i].is_call {
                entries[i].partner = return_of[entries[i].op];
            }
            entries[i].prev = if i == 0 { NONE } else { i - 1 };
            entries[i].next = if i + 1 == n { NONE } else { i + 1 };
        }
        Events { entries, head: if n == 0 { NONE } else { 0 } }
    }

    fn unlink(&mut self, i: usize) {
        let Entry { prev, next, .. } = self.entries[i];
        if prev == NONE {
            self.head = next
        } else {
            self.entries[prev].next = next
        }
        if next != NONE {
            self.entries[next].prev = prev;
        }
    }

    /// Puts back an entry removed by `unlink`, whose neighbours are as they were then.
    fn relink(&mut self, i: usize) {
        let Entry { prev, next, .. } = self.entries[i];
        if prev == NONE {
            self.head = i
        } else {
            self.entries[prev].next = i
        }
        if next != NONE {
            self.entries[next].prev = i;
        }
    }

    /// Takes a call and its return out of the list (the operation is linearized).
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        self.unlink(self.entries[call].partner);
    }

    fn unlift(&mut self, call: usize) {
        self.relink(self.entries[call].partner);
        self.relink(call);
    }
}

struct Choice {
    call: usize,
    before: Value,
    untried: Vec<Value>,
}

fn check_register(ops: &[Op], budget: usize) -> Verdict {
    let mut events = Events::new(ops);
    let mut linearized = vec![0u64; ops.len().div_ceil(64)];
    let mut seen: HashSet<(Vec<u64>, Value)> = HashSet::new();
    let mut stack: Vec<Choice> = Vec::new();
    let mut state: Value = None;
    let mut entry = events.head;
    let mut steps = 0usize;
    // Tries the candidate states of the call at `entry` in turn; on success the call is lifted.
    let mut take = |events: &mut Events,
                    linearized: &mut Vec<u64>,
                    state: &mut Value,
                    stack: &mut Vec<Choice>,
                    call: usize,
                    before: Value,
                    mut candidates: Vec<Value>|
     -> bool {
        let op = events.entries[call].op;
        linearized[op / 64] |= 1 << (op % 64);
        while let Some(next) = candidates.pop() {
            if seen.insert((linearized.clone(), next.clone())) {
                stack.push(Choice { call, before, untried: candidates });
                *state = next;
                events.lift(call);
                return true;
            }
        }
        linearized[op / 64] &= !(1 << (op % 64));
        false
    };
    while events.head != NONE {
        steps += 1;
        if steps > budget {
            return Verdict::Unknown;
        }
        let e = events.entries[entry];
        if e.is_call {
            let o = &ops[e.op];
            let candidates = step(&state, &o.input, &o.output);
            let before = state.clone();
            if take(&mut events, &mut linearized, &mut state, &mut stack, entry, before, candidates) {
                entry = events.head;
            } else {
                entry = e.next;
            }
            continue;
        }
        // A return whose call is not linearized yet: undo the last choice.
        loop {
            let Some(choice) = stack.pop() else {
                return Verdict::Violation(ops.to_vec());
            };
            let op = events.entries[choice.call].op;
            events.unlift(choice.call);
            linearized[op / 64] &= !(1 << (op % 64));
            state = choice.before.clone();
            if take(
                &mut events,
                &mut linearized,
                &mut state,
                &mut stack,
                choice.call,
                choice.before,
                choice.untried,
            ) {
                entry = events.head;
                break;
            }
            entry = events.entries[choice.call].next;
            if entry != NONE {
                break;
            }
        }
    }
    Verdict::Linearizable
}

/// The shortest prefix (by call time) of a key's history that is not linearizable, for a report:
/// its last operations are where the violation shows.
pub fn shortest_violating_prefix(ops: &[Op], budget: usize) -> Vec<Op> {
    let mut sorted = ops.to_vec();
    sorted.sort_by_key(|o| o.call);
    let (mut lo, mut hi) = (0, sorted.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if matches!(check_key(&sorted[..=mid], budget), Verdict::Violation(_)) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    sorted.truncate((lo + 1).min(sorted.len()));
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(client: usize, input: Input, output: Output, call: u64, ret: u64) -> Op {
        Op { client, key: "k".into(), input, output, call, ret, via: String::new() }
    }

    fn w(v: &str) -> Input {
        Input::Write(v.into())
    }

    fn r(v: Option<&str>) -> Output {
        Output::Read(v.map(str::to_string))
    }

    fn verdict(ops: &[Op]) -> Verdict {
        check(ops, 1_000_000).remove("k").expect("one key")
    }

    #[test]
    fn concurrent_operations_may_take_effect_in_any_order() {
        let ops = [
            op(0, w("a"), Output::Written, 0, 10),
            op(1, w("b"), Output::Written, 1, 9),
            op(2, Input::Read, r(Some("a")), 11, 12),
            op(3, Input::Read, r(Some("a")), 13, 14),
        ];
        assert_eq!(verdict(&ops), Verdict::Linearizable, "b then a");
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_a_violation() {
        let ops = [
            op(0, w("a"), Output::Written, 0, 1),
            op(0, w("b"), Output::Written, 2, 3),
            op(1, Input::Read, r(Some("a")), 4, 5),
        ];
        assert!(matches!(verdict(&ops), Verdict::Violation(_)));
    }

    #[test]
    fn reads_cannot_go_back_in_time() {
        let ops = [
            op(0, w("a"), Output::Written, 0, 1),
            op(1, w("b"), Output::Written, 2, 20),
            op(2, Input::Read, r(Some("b")), 3, 4),
            op(3, Input::Read, r(Some("a")), 5, 6),
        ];
        assert!(matches!(verdict(&ops), Verdict::Violation(_)), "b was seen, then a again");
    }

    #[test]
    fn an_unanswered_write_may_or_may_not_have_happened() {
        let lost = [op(0, w("a"), Output::Written, 0, 1), op(1, w("x"), Output::Unknown, 2, u64::MAX)];
        let seen_a = op(2, Input::Read, r(Some("a")), 5, 6);
        let seen_x = op(2, Input::Read, r(Some("x")), 7, 8);
        assert_eq!(verdict(&[lost[0].clone(), lost[1].clone(), seen_a.clone()]), Verdict::Linearizable);
        assert_eq!(verdict(&[lost[0].clone(), lost[1].clone(), seen_x.clone()]), Verdict::Linearizable);
        let x_then_a = [op(2, Input::Read, r(Some("x")), 5, 6), op(2, Input::Read, r(Some("a")), 7, 8)];
        let history = [lost[0].clone(), lost[1].clone(), x_then_a[0].clone(), x_then_a[1].clone()];
        assert!(matches!(verdict(&history), Verdict::Violation(_)), "x took effect, then a came back");
        let history = [lost[0].clone(), lost[1].clone(), seen_a, seen_x];
        assert_eq!(verdict(&history), Verdict::Linearizable, "a, then x took effect late");
    }

    #[test]
    fn compare_and_set_succeeds_only_from_the_expected_value() {
        let cas = |from: Option<&str>, to: &str| Input::Cas { from: from.map(str::to_string), to: to.into() };
        let ok = [
            op(0, w("a"), Output::Written, 0, 1),
            op(1, cas(Some("a"), "b"), Output::Cas(true), 2, 3),
            op(2, cas(Some("a"), "c"), Output::Cas(false), 4, 5),
            op(3, Input::Read, r(Some("b")), 6, 7),
        ];
        assert_eq!(verdict(&ok), Verdict::Linearizable);
        let double = [
            op(0, w("a"), Output::Written, 0, 1),
            op(1, cas(Some("a"), "b"), Output::Cas(true), 2, 3),
            op(2, cas(Some("a"), "c"), Output::Cas(true), 4, 5),
        ];
        assert!(matches!(verdict(&double), Verdict::Violation(_)), "two CAS from a, one after the other");
        let unknown = [
            op(1, cas(None, "b"), Output::Unknown, 2, u64::MAX),
            op(3, Input::Read, r(None), 6, 7),
            op(3, Input::Read, r(Some("b")), 8, 9),
        ];
        assert_eq!(verdict(&unknown), Verdict::Linearizable, "an unanswered CAS took effect late");
    }

    #[test]
    fn many_concurrent_clients_are_checked_quickly() {
        // 10 clients, 300 rounds each of overlapping writes and reads that see the last value.
        let mut ops = Vec::new();
        for round in 0..300u64 {
            let t = round * 100;
            for c in 0..10usize {
                ops.push(op(c, w(&format!("{round}-{c}")), Output::Written, t, t + 50));
            }
            ops.push(op(10, Input::Read, r(Some(&format!("{round}-9"))), t + 60, t + 70));
        }
        assert_eq!(verdict(&ops), Verdict::Linearizable);
    }
}
