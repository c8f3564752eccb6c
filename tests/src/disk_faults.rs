//! Disks that fail on purpose, for the tests of what a server does then: a small tmpfs mounted
//! under a server's data dir (a real filesystem that really fills: ENOSPC), and a preloaded
//! library that makes `fsync`/`fdatasync` fail with EIO while a trigger file exists (the kernel
//! here has no device-mapper for dm-error, so this is the one faked part: the call's result, not
//! the disk). Both need root (mount) and gcc.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs of a fixed size, mounted at a path until dropped.
pub struct SmallDisk {
    pub path: PathBuf,
}

impl SmallDisk {
    pub fn mount(path: &Path, bytes: u64) -> SmallDisk {
        std::fs::create_dir_all(path).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "census-small-disk"])
            .arg(path)
            .status()
            .expect("mount");
        assert!(status.success(), "mount a tmpfs at {} (needs root)", path.display());
        SmallDisk { path: path.to_path_buf() }
    }

    /// Bytes free.
    pub fn free(&self) -> u64 {
        let stat = nix::sys::statvfs::statvfs(&self.path).expect("statvfs");
        stat.blocks_available() * stat.fragment_size()
    }

    fn filler(&self) -> PathBuf {
        self.path.join("filler")
    }

    /// Takes space until only about `leave` bytes are free.
    pub fn fill_leaving(&self, leave: u64) {
        let take = self.free().saturating_sub(leave);
        let file = std::fs::OpenOptions::new().create(true).append(true).open(self.filler()).expect("filler");
        let have = file.metadata().expect("filler size").len();
        nix::fcntl::fallocate(
            std::os::fd::AsRawFd::as_raw_fd(&file),
            nix::fcntl::FallocateFlags::empty(),
            i64::try_from(have).expect("size"),
            i64::try_from(take).expect("size"),
        )
        .expect("fallocate the filler");
    }

    /// Gives back what `fill_leaving` took.
    pub fn free_up(&self) {
        std::fs::remove_file(self.filler()).expect("remove the filler");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazily: a server still running there keeps its files until it exits.
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

const SHIM: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static int failing(void) {
    const char *trigger = getenv("CENSUS_FAIL_SYNC_IF");
    return trigger && access(trigger, F_OK) == 0;
}

int fdatasync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    if (failing()) { errno = EIO; return -1; }
    return real(fd);
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    if (failing()) { errno = EIO; return -1; }
    return real(fd);
}
"#;

/// A library for `LD_PRELOAD` whose `fsync` and `fdatasync` fail with EIO while the file named by
/// `CENSUS_FAIL_SYNC_IF` exists; built into `dir` with gcc.
pub fn failing_sync_library(dir: &Path) -> PathBuf {
    let source = dir.join("failing_sync.c");
    let library = dir.join("libfailing_sync.so");
    std::fs::write(&source, SHIM).expect("write the shim");
    let status = Command::new("gcc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&library)
        .arg(&source)
        .arg("-ldl")
        .status()
        .expect("gcc");
    assert!(status.success(), "gcc built the sync shim");
    library
}
