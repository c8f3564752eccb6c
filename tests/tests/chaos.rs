//! Consistency under faults, checked for linearizability (tests/src/linearizability.rs): three
//! servers in network namespaces; ten clients put, compare-and-set and read (default mode and
//! `?consistent`) four keys through random servers while a nemesis SIGKILLs, SIGSTOPs and
//! partitions the leader and followers. And the checker must fail when it should: the same
//! workload with `?stale` reads (not linearizable by design) while a follower is cut off is
//! flagged. `CENSUS_CHAOS_SECS` sets the run's length (60 s by default; docs/reliability.md has
//! the long runs). Needs root, iproute2 and nftables.

use std::time::Duration;

use census_e2e::chaos::{ALL_FAULTS, Fault, Reads, Run};
use census_e2e::linearizability::{Verdict, check, shortest_violating_prefix};
use census_e2e::write_gaps;

/// The checker's search budget per key (states explored) before it gives up.
const BUDGET: usize = 50_000_000;

fn seconds() -> u64 {
    std::env::var("CENSUS_CHAOS_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60)
}

#[tokio::test(flavor = "multi_thread")]
async fn default_and_consistent_reads_cas_and_writes_are_linearizable_under_faults() {
    let mut run = Run::start().await;
    run.workload(10, Duration::from_secs(seconds()), Reads::DefaultAndConsistent, &ALL_FAULTS).await;
    let history = run.history.lock().expect("history").clone();
    let answered = run.answered();
    println!("{} operations, {answered} answered", history.len());
    assert!(answered > 1000, "too few answered operations to say anything: {answered}");
    let started = std::time::Instant::now();
    let verdicts = check(&history, BUDGET);
    println!("checked in {:?}", started.elapsed());
    println!(
        "write gaps (ms) around each fault:\n{}",
        write_gaps::report(&write_gaps::gaps(&run.probe_acks.lock().expect("acks"), &run.faults))
    );
    for (key, verdict) in &verdicts {
        match verdict {
            Verdict::Linearizable => {}
            Verdict::Unknown => panic!("{key}: the checker gave up (budget {BUDGET})"),
            Verdict::Violation(ops) => {
                let prefix = shortest_violating_prefix(ops, BUDGET);
                for op in prefix.iter().rev().take(40).rev() {
                    let ms = |t: u64| {
                        if t == u64::MAX { "∞".to_string() } else { format!("{:.3}", t as f64 / 1e9) }
                    };
                    println!(
                        "  c{:<2} {:>9}s .. {:>9}s {:?} -> {:?} via {}",
                        op.client,
                        ms(op.call),
                        ms(op.ret),
                        op.input,
                        op.output,
                        op.via
                    );
                }
                panic!(
                    "{key}: not linearizable ({} operations); the last of its shortest violating prefix above",
                    ops.len()
                )
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_checker_flags_stale_reads_from_a_cut_off_follower() {
    let mut run = Run::start().await;
    // Stale reads everywhere; a follower cut off for a while, twice, while writes go on.
    run.workload(10, Duration::from_secs(20), Reads::Stale, &[Fault::IsolateFollower]).await;
    let history = run.history.lock().expect("history").clone();
    let verdicts = check(&history, BUDGET);
    let flagged: Vec<&String> =
        verdicts.iter().filter(|(_, v)| matches!(v, Verdict::Violation(_))).map(|(k, _)| k).collect();
    println!("stale reads: violations on {flagged:?}");
    assert!(!flagged.is_empty(), "stale reads from a cut-off follower must be caught: {verdicts:?}");
}
