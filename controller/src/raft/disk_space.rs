//! Free space under the Raft log: the leader refuses new writes while the filesystem holding its
//! data dir has less free than a reserve, so a filling disk turns writes away with a clear error
//! (503) instead of failing a log write halfway, which stops the server (see `wal.rs`). Reads,
//! and writes already acknowledged, are not affected; writes are taken again once space returns.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The default reserve: four WAL segments.
pub const DEFAULT_MIN_FREE_BYTES: u64 = 64 << 20;
/// How long one look at the filesystem is trusted.
const RECHECK: Duration = Duration::from_millis(250);

pub struct DiskSpace {
    /// `None`: the log lives in memory (`-dev`).
    dir: Option<PathBuf>,
    min_free: AtomicU64,
    /// The last look: when, and the bytes free then.
    last: Mutex<Option<(Instant, u64)>>,
}

/// Too little room for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Short {
    pub free: u64,
    pub needed: u64,
}

impl DiskSpace {
    pub fn new(dir: Option<PathBuf>) -> DiskSpace {
        DiskSpace { dir, min_free: AtomicU64::new(DEFAULT_MIN_FREE_BYTES), last: Mutex::new(None) }
    }

    pub fn set_min_free(&self, bytes: u64) {
        self.min_free.store(bytes, Ordering::Relaxed);
    }

    /// Refuses when the data dir's filesystem has less than the reserve free. A filesystem that
    /// cannot be asked is not refused here (the write itself will tell).
    pub fn check(&self) -> Result<(), Short> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let needed = self.min_free.load(Ordering::Relaxed);
        if needed == 0 {
            return Ok(());
        }
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let free = match *last {
            Some((at, free)) if at.elapsed() < RECHECK => free,
            _ => {
                let Ok(stat) = nix::sys::statvfs::statvfs(dir.as_path()) else { return Ok(()) };
                let free = stat.blocks_available().saturating_mul(stat.fragment_size());
                *last = Some((Instant::now(), free));
                free
            }
        };
        if free < needed { Err(Short { free, needed }) } else { Ok(()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reserve_larger_than_the_disk_refuses_and_none_takes_everything() {
        let dir = tempfile::tempdir().expect("tempdir");
        let space = DiskSpace::new(Some(dir.path().to_path_buf()));
        space.set_min_free(u64::MAX);
        let short = space.check().expect_err("no disk has u64::MAX bytes free");
        assert!(short.free < short.needed);
        space.set_min_free(0);
        assert_eq!(space.check(), Ok(()));
        assert_eq!(DiskSpace::new(None).check(), Ok(()));
    }
}
