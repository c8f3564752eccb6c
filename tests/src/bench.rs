//! The load steps the benchmark binaries share: closed-loop clients doing one KV operation as
//! fast as they can for a while, with every latency kept.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use census_client::{Client, Consistency, KvWriteOptions, QueryOptions};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Put,
    GetStale,
    GetConsistent,
}

pub struct StepResult {
    pub ops: usize,
    pub errors: usize,
    pub secs: f64,
    pub latencies_us: Vec<u64>,
}

pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub async fn step(client: Client, op: Op, clients: usize, duration: Duration) -> StepResult {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..clients {
        let (client, stop) = (client.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("bench/{worker}/{}", i % 100);
                let t = Instant::now();
                let ok = match op {
                    Op::Put => {
                        client.kv_put(&key, b"0123456789abcdef", KvWriteOptions::default()).await.is_ok()
                    }
                    Op::GetStale | Op::GetConsistent => {
                        let consistency = if matches!(op, Op::GetStale) {
                            Consistency::Stale
                        } else {
                            Consistency::Consistent
                        };
                        let opts = QueryOptions { consistency, ..Default::default() };
                        client.kv_get(&key, &opts).await.is_ok()
                    }
                };
                if ok {
                    lat.push(t.elapsed().as_micros() as u64);
                } else {
                    errors += 1;
                }
                i += 1;
            }
            (lat, errors)
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies_us = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((lat, e)) = t.await {
            latencies_us.extend(lat);
            errors += e;
        }
    }
    latencies_us.sort_unstable();
    StepResult { ops: latencies_us.len(), errors, secs: started.elapsed().as_secs_f64(), latencies_us }
}
