//! An emulated watchdog device behind Patroni's `testing` watchdog driver.
//!
//! Patroni's documented answer to "Patroni dies while its PostgreSQL keeps running as primary" is
//! the watchdog: Patroni arms it before it promotes and feeds it every loop; when Patroni stops
//! feeding it, the machine is reset `ttl - safety_margin` seconds after the last feed, before the
//! leader key can expire, so a new primary never runs next to the old one. A real /dev/watchdog
//! would reset the test machine, so each member gets a FIFO that the `testing` driver writes to
//! (`Ctimeout=N\n` when armed, `1` per keepalive, `V` before a clean close), and "reset" means
//! SIGKILL to every process of that member.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Written by the test itself: ends the reader thread.
const STOP: u8 = b'Q';

/// Which members act as primary: Patroni arms its watchdog just before it promotes and disarms it
/// when it demotes; a watchdog that fires has reset its member. Two armed at once means two
/// members each believed they held the leader key, however briefly.
pub struct Leaders {
    began: Instant,
    state: Mutex<(BTreeMap<String, Instant>, Vec<String>)>,
}

impl Leaders {
    pub fn new() -> Arc<Leaders> {
        Arc::new(Leaders { began: Instant::now(), state: Mutex::default() })
    }

    /// Every time a member armed its watchdog while another's was armed.
    pub fn overlaps(&self) -> Vec<String> {
        self.lock().1.clone()
    }

    fn arm(&self, name: &str) {
        let now = Instant::now();
        let (armed, overlaps) = &mut *self.lock();
        for (other, since) in armed.iter().filter(|(other, _)| *other != name) {
            overlaps.push(format!(
                "{:.1} s after the members started, {name} armed its watchdog to lead while {other}'s \
                 was still armed (since {:.1} s)",
                (now - self.began).as_secs_f64(),
                (*since - self.began).as_secs_f64()
            ));
        }
        armed.entry(name.to_string()).or_insert(now);
    }

    fn disarm(&self, name: &str) {
        self.lock().0.remove(name);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (BTreeMap<String, Instant>, Vec<String>)> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[derive(Default)]
struct State {
    /// Armed: the timeout and the last feed.
    armed: Option<(Duration, Instant)>,
    fired: Vec<Instant>,
}

struct Shared {
    name: String,
    leaders: Arc<Leaders>,
    state: Mutex<State>,
    stop: AtomicBool,
}

pub struct Watchdog {
    path: PathBuf,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Watchdog {
    /// Creates the FIFO at `path`, owned by `owner` (the uid and gid Patroni runs as), and watches it;
    /// `reset` runs when the armed watchdog goes unfed for its timeout.
    pub fn create(
        name: &str,
        path: &Path,
        owner: (u32, u32),
        leaders: Arc<Leaders>,
        reset: impl Fn() + Send + 'static,
    ) -> Watchdog {
        let status = std::process::Command::new("mkfifo").arg(path).status().expect("run mkfifo");
        assert!(status.success(), "mkfifo {}: {status}", path.display());
        std::os::unix::fs::chown(path, Some(owner.0), Some(owner.1)).expect("chown the watchdog FIFO");
        // Opened for reading and writing, the FIFO always has a writer: reading never sees EOF
        // between Patroni's opens, and Patroni's open for writing never waits for a reader.
        let mut fifo =
            std::fs::OpenOptions::new().read(true).write(true).open(path).expect("open the watchdog FIFO");
        let shared = Arc::new(Shared {
            name: name.into(),
            leaders,
            state: Mutex::default(),
            stop: AtomicBool::new(false),
        });
        let reader = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                let mut command: Option<Vec<u8>> = None;
                let mut buf = [0u8; 256];
                while let Ok(n) = fifo.read(&mut buf) {
                    for &byte in &buf[..n] {
                        if byte == STOP {
                            return;
                        }
                        if let Some(line) = command.as_mut() {
                            if byte == b'\n' {
                                shared.configure(&String::from_utf8_lossy(line));
                                command = None;
                            } else {
                                line.push(byte);
                            }
                            continue;
                        }
                        match byte {
                            b'C' => command = Some(Vec::new()),
                            b'V' => {
                                eprintln!("watchdog {}: disarmed", shared.name);
                                shared.lock().armed = None;
                                shared.leaders.disarm(&shared.name);
                            }
                            b'1' => shared.feed(),
                            _ => {}
                        }
                    }
                }
            })
        };
        let ticker = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                while !shared.stop.load(Ordering::Relaxed) {
                    if shared.expired() {
                        eprintln!("watchdog {}: not fed in time, resetting the member", shared.name);
                        reset();
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        Watchdog { path: path.to_path_buf(), shared, threads: vec![reader, ticker] }
    }

    /// When it reset its member.
    pub fn fired(&self) -> Vec<Instant> {
        self.shared.lock().fired.clone()
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `Ctimeout=N`: arms the watchdog with N seconds (a Linux watchdog runs from its open).
    fn configure(&self, command: &str) {
        if let Some(secs) = command.strip_prefix("timeout=").and_then(|s| s.trim().parse::<u64>().ok()) {
            eprintln!("watchdog {}: armed, {secs} s", self.name);
            self.lock().armed = Some((Duration::from_secs(secs), Instant::now()));
            self.leaders.arm(&self.name);
        }
    }

    fn feed(&self) {
        if let Some((_, last)) = self.lock().armed.as_mut() {
            *last = Instant::now();
        }
    }

    /// Disarms and records the reset when the timeout has passed since the last feed.
    fn expired(&self) -> bool {
        let mut state = self.lock();
        match state.armed {
            Some((timeout, last)) if last.elapsed() > timeout => {
                state.armed = None;
                state.fired.push(Instant::now());
                self.leaders.disarm(&self.name);
                true
            }
            _ => false,
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        // Read-write open never blocks on a FIFO; the reader sees STOP and returns.
        if let Ok(mut fifo) = std::fs::OpenOptions::new().read(true).write(true).open(&self.path) {
            let _ = fifo.write_all(&[STOP]);
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
