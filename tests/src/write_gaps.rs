//! Write availability around each fault of a chaos run: the longest time in which no write was
//! acknowledged through the servers the fault did not hit, while it was held and after it was
//! repaired. Probes (one writer per server, short timeouts, keys of their own) measure it, not
//! the checked clients: those block on a hung server for their whole timeout. A measurement for
//! the reliability report, never asserted on (timings depend on the machine).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::chaos::Fault;

/// One fault as the nemesis injected it, in nanoseconds since the run started.
#[derive(Debug, Clone, Copy)]
pub struct Injected {
    pub fault: Fault,
    /// The server it hit.
    pub target: usize,
    pub at: u64,
    pub repaired: u64,
}

/// When each probe write was acknowledged: (server, nanoseconds since the run started).
pub type Acks = Arc<Mutex<Vec<(usize, u64)>>>;

/// A probe's own timeout: longer than an election, short enough to notice recovery quickly.
const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

/// Writes `probe-<server>` through `addr` in a loop until `deadline`, recording each
/// acknowledgement.
pub async fn probe(server: usize, addr: String, started: Instant, deadline: Instant, acks: Acks) {
    let http = reqwest::Client::builder().timeout(PROBE_TIMEOUT).build().unwrap_or_default();
    let url = format!("http://{addr}/v1/kv/probe-{server}");
    let mut n = 0u64;
    while Instant::now() < deadline {
        n += 1;
        let answer = http.put(&url).body(n.to_string()).send().await;
        if answer.is_ok_and(|r| r.status().is_success()) {
            let at = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            acks.lock().unwrap_or_else(|p| p.into_inner()).push((server, at));
        } else {
            // Refused at once (a killed server): do not spin.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The longest write gaps around one fault.
#[derive(Debug, Clone, Copy)]
pub struct Gaps {
    pub fault: Fault,
    /// The longest gap that overlaps the time the fault was held.
    pub during: Duration,
    /// The longest gap that ends after the repair and starts within `AFTER` of it.
    pub after: Duration,
}

/// How long after a repair its effects are looked for (less than the quiet time between faults,
/// so the next fault does not count).
pub const AFTER: u64 = 1_500_000_000;

/// When probes through servers other than `target` were acknowledged, in order.
fn acks_except(acks: &[(usize, u64)], target: usize) -> Vec<u64> {
    let mut times: Vec<u64> = acks.iter().filter(|(s, _)| *s != target).map(|(_, t)| *t).collect();
    times.sort_unstable();
    times
}

/// The longest time within `[from, to]` with no acknowledgement (`acks` in order).
fn longest_gap(acks: &[u64], from: u64, to: u64) -> Duration {
    let mut longest = 0;
    let mut previous = from;
    for t in acks.iter().copied().filter(|t| *t > from && *t <= to) {
        longest = longest.max(t - previous);
        previous = t;
    }
    Duration::from_nanos(longest.max(to - previous))
}

/// The gaps around every fault of a run.
pub fn gaps(acks: &[(usize, u64)], faults: &[Injected]) -> Vec<Gaps> {
    faults
        .iter()
        .map(|f| {
            let acks = acks_except(acks, f.target);
            Gaps {
                fault: f.fault,
                during: longest_gap(&acks, f.at, f.repaired),
                after: longest_gap(&acks, f.repaired, f.repaired + AFTER),
            }
        })
        .collect()
}

/// A table of median and longest gaps per kind of fault.
pub fn report(gaps: &[Gaps]) -> String {
    let mut out = String::from("fault            n  during: median   max   after repair: median   max\n");
    for kind in crate::chaos::ALL_FAULTS {
        let mut during: Vec<Duration> = gaps.iter().filter(|g| g.fault == kind).map(|g| g.during).collect();
        let mut after: Vec<Duration> = gaps.iter().filter(|g| g.fault == kind).map(|g| g.after).collect();
        if during.is_empty() {
            continue;
        }
        during.sort();
        after.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        out.push_str(&format!(
            "{:<15} {:>2}  {:>14.0} {:>5.0}  {:>20.0} {:>5.0}\n",
            format!("{kind:?}"),
            during.len(),
            ms(during[during.len() / 2]),
            ms(during[during.len() - 1]),
            ms(after[after.len() / 2]),
            ms(after[after.len() - 1]),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn gaps_are_counted_inside_the_window_only() {
        let acks = [100 * MS, 200 * MS, 1_500 * MS, 1_600 * MS, 1_650 * MS];
        assert_eq!(longest_gap(&acks, 300 * MS, 2_000 * MS), Duration::from_millis(1_200));
        assert_eq!(longest_gap(&acks, 1_550 * MS, 1_660 * MS), Duration::from_millis(50));
        assert_eq!(longest_gap(&acks, 300 * MS, 400 * MS), Duration::from_millis(100));
    }

    #[test]
    fn no_ack_in_the_window_is_a_gap_as_long_as_the_window() {
        assert_eq!(longest_gap(&[100 * MS], 500 * MS, 900 * MS), Duration::from_millis(400));
        assert_eq!(longest_gap(&[], 500 * MS, 900 * MS), Duration::from_millis(400));
    }
}
