//! A small disk for tests of what happens when one fills up: a tmpfs of a given
//! size mounted on a fresh temporary directory, unmounted on drop.
//!
//! Mounting needs root (or CAP_SYS_ADMIN), as `.ci/run` runs. Where it cannot
//! mount, [`SmallDisk::mount`] fails with the reason; a test that needs one fails
//! rather than skips.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

/// A tmpfs mounted for one test.
pub struct SmallDisk {
    dir: tempfile::TempDir,
    mounted: bool,
}

impl SmallDisk {
    /// Mounts a tmpfs of `bytes` (rounded up to whole pages by the kernel).
    pub fn mount(bytes: u64) -> anyhow::Result<SmallDisk> {
        let dir = tempfile::Builder::new()
            .prefix("modelport-small-disk-")
            .tempdir()?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={bytes},mode=0755"))
            .arg("modelport-test")
            .arg(dir.path())
            .output()
            .context("cannot run mount (util-linux)")?;
        anyhow::ensure!(
            out.status.success(),
            "cannot mount a {bytes}-byte tmpfs on {} ({}): the full-disk tests need root, as \
             `.ci/run` runs them: {}",
            dir.path().display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(SmallDisk { dir, mounted: true })
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the disk up to `free` bytes of room with the file `filler` (written
    /// until the disk is full, then cut back), and returns its path.
    pub fn fill_leaving(&self, free: u64) -> anyhow::Result<PathBuf> {
        let path = self.path().join("filler");
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let block = vec![0u8; 64 * 1024];
        loop {
            match f.write(&block) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => return Err(e).with_context(|| format!("filling {}", path.display())),
            }
        }
        // A short write may have filled the last page without an error.
        let _ = f.write_all(&block);
        let len = f.metadata()?.len();
        f.set_len(len.saturating_sub(free))?;
        Ok(path)
    }

    /// Frees the room [`SmallDisk::fill_leaving`] took.
    pub fn drain(&self) -> anyhow::Result<()> {
        let path = self.path().join("filler");
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        if self.mounted {
            // Lazily, so that a process still holding a file (a server the test
            // forgot) does not keep the mount.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
            self.mounted = false;
        }
    }
}
