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

/// What the clients write and read: the value size and the keys.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub value_bytes: usize,
    /// Keys shared by all clients; 0: 100 keys of its own per client.
    pub keys: usize,
}

impl Shape {
    /// 16-byte values, 100 keys per client: the shape of the first benchmarks.
    pub const SMALL: Shape = Shape { value_bytes: 16, keys: 0 };

    fn key(&self, worker: usize, i: u64) -> String {
        if self.keys == 0 {
            format!("bench/{worker}/{}", i % 100)
        } else {
            format!("bench/{}", (worker as u64 * 7919 + i) % self.keys as u64)
        }
    }
}

/// Every operation of a run: when it ended (since the start) and how long it took.
pub struct Samples {
    pub errors: usize,
    pub secs: f64,
    pub ended_ms: Vec<u64>,
    pub latencies_us: Vec<u64>,
}

pub async fn step(client: Client, op: Op, clients: usize, duration: Duration) -> StepResult {
    let samples = run(client, op, clients, duration, Shape::SMALL, |_| {}).await;
    let mut latencies_us = samples.latencies_us;
    latencies_us.sort_unstable();
    StepResult { ops: latencies_us.len(), errors: samples.errors, secs: samples.secs, latencies_us }
}

/// Runs `clients` closed-loop clients for `duration`; `tick` is called once a second meanwhile
/// with the seconds elapsed (to sample the servers).
pub async fn run(
    client: Client,
    op: Op,
    clients: usize,
    duration: Duration,
    shape: Shape,
    mut tick: impl FnMut(u64),
) -> Samples {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let value = vec![b'v'; shape.value_bytes];
    let mut tasks = Vec::new();
    for worker in 0..clients {
        let (client, stop, value) = (client.clone(), stop.clone(), value.clone());
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut ended) = (Vec::new(), Vec::new());
            let mut errors = 0;
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = shape.key(worker, i);
                let t = Instant::now();
                let ok = match op {
                    Op::Put => client.kv_put(&key, &value, KvWriteOptions::default()).await.is_ok(),
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
                    ended.push(started.elapsed().as_millis() as u64);
                } else {
                    errors += 1;
                }
                i += 1;
            }
            (lat, ended, errors)
        }));
    }
    for second in 1..=duration.as_secs() {
        tokio::time::sleep_until((started + Duration::from_secs(second)).into()).await;
        tick(second);
    }
    tokio::time::sleep_until((started + duration).into()).await;
    stop.store(true, Ordering::Relaxed);
    let mut samples = Samples { errors: 0, secs: 0.0, ended_ms: Vec::new(), latencies_us: Vec::new() };
    for t in tasks {
        if let Ok((lat, ended, e)) = t.await {
            samples.latencies_us.extend(lat);
            samples.ended_ms.extend(ended);
            samples.errors += e;
        }
    }
    samples.secs = started.elapsed().as_secs_f64();
    samples
}

/// Throughput and latency of the operations that ended in one window of a run.
pub struct Window {
    pub end_s: u64,
    pub ops_s: f64,
    /// Sorted.
    pub latencies_us: Vec<u64>,
}

/// Splits a run into windows of `secs` seconds.
pub fn windows(samples: &Samples, secs: u64) -> Vec<Window> {
    let count = (samples.secs as u64 / secs.max(1)).max(1);
    let mut out: Vec<Window> =
        (1..=count).map(|i| Window { end_s: i * secs, ops_s: 0.0, latencies_us: Vec::new() }).collect();
    for (ended, lat) in samples.ended_ms.iter().zip(&samples.latencies_us) {
        let i = (*ended / 1000 / secs.max(1)) as usize;
        if let Some(w) = out.get_mut(i) {
            w.latencies_us.push(*lat);
        }
    }
    for w in &mut out {
        w.latencies_us.sort_unstable();
        w.ops_s = w.latencies_us.len() as f64 / secs as f64;
    }
    out
}
