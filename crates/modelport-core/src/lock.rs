//! One writer per deployment: an advisory lock file per deployment beside its state
//! file (`.modelport/state/NAME.lock`).
//!
//! Commands that change a deployment (`deploy`, `destroy`) hold it exclusively for
//! their whole run; commands that read a deployment and send it requests (`compare`)
//! hold it shared, so they never run while a rollout moves its traffic. The lock is
//! the operating system's (`flock` on Linux): it goes away with the process that
//! held it, however that process ends, so a crash never leaves a stale lock. The
//! holder writes who it is into the file, so that a waiting command can say.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::state::{Workspace, unix_now};

/// How long a command waits for another one's lock by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(5);

/// Exclusive for commands that change a deployment, shared for ones that only use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    Exclusive,
    Shared,
}

/// What the holder of an exclusive lock writes into the lock file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    pub pid: u32,
    /// The command, for example `deploy`.
    pub command: String,
    /// Unix seconds when it took the lock.
    pub since: u64,
}

impl Holder {
    fn describe(&self) -> String {
        let age = unix_now().saturating_sub(self.since);
        format!(
            "`modelport {}` (pid {}, for {age} s)",
            self.command, self.pid
        )
    }
}

/// A held lock; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct DeploymentLock {
    file: File,
    path: PathBuf,
    kind: LockKind,
}

impl DeploymentLock {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn kind(&self) -> LockKind {
        self.kind
    }
}

impl Drop for DeploymentLock {
    fn drop(&mut self) {
        if self.kind == LockKind::Exclusive {
            // The next holder overwrites it anyway; an empty file says nobody holds it.
            let _ = self.file.set_len(0);
        }
        let _ = self.file.unlock();
    }
}

impl Workspace {
    /// The lock file of deployment `name`.
    pub fn lock_path(&self, name: &str) -> PathBuf {
        self.state_dir().join(format!("{name}.lock"))
    }

    /// Takes deployment `name`'s lock, waiting up to `wait` for another command to
    /// release it. `on_wait` is called once, with a sentence saying who holds it,
    /// when the lock is not free at once.
    pub fn lock(
        &self,
        name: &str,
        kind: LockKind,
        command: &str,
        wait: Duration,
        mut on_wait: impl FnMut(&str),
    ) -> Result<DeploymentLock> {
        let dir = self.state_dir();
        fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let path = self.lock_path(name);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let started = Instant::now();
        let mut told = false;
        loop {
            let attempt = match kind {
                LockKind::Exclusive => file.try_lock(),
                LockKind::Shared => file.try_lock_shared(),
            };
            match attempt {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => return Err(Error::io(&path, e)),
            }
            let holder = read_holder(&mut file);
            let who = holder
                .as_ref()
                .map(Holder::describe)
                .unwrap_or_else(|| "another modelport command".to_string());
            if started.elapsed() >= wait {
                return Err(Error::Locked {
                    message: format!(
                        "deployment {name:?} is in use by {who}; gave up after {} s",
                        wait.as_secs()
                    ),
                    hint: "wait for it to finish, or pass --wait-lock SECONDS to wait longer; \
                           the lock goes away with the process that holds it"
                        .to_string(),
                });
            }
            if !told {
                on_wait(&format!(
                    "deployment {name:?} is in use by {who}: waiting up to {} s for it",
                    wait.as_secs()
                ));
                told = true;
            }
            std::thread::sleep(
                Duration::from_millis(50).min(wait.saturating_sub(started.elapsed())),
            );
        }
        if kind == LockKind::Exclusive {
            let holder = Holder {
                pid: std::process::id(),
                command: command.to_string(),
                since: unix_now(),
            };
            let text = serde_json::to_string(&holder).expect("a holder always serializes");
            let write = file
                .set_len(0)
                .and_then(|()| file.seek(SeekFrom::Start(0)))
                .and_then(|_| file.write_all(text.as_bytes()))
                .and_then(|()| file.flush());
            write.map_err(|e| Error::io(&path, e))?;
        }
        Ok(DeploymentLock { file, path, kind })
    }
}

fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes `name`'s lock without waiting, for `command`.
    fn take(ws: &Workspace, name: &str, kind: LockKind, command: &str) -> Result<DeploymentLock> {
        ws.lock(name, kind, command, Duration::ZERO, |_| {})
    }

    #[test]
    fn exclusive_excludes_everyone_and_shared_share() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path());
        let held = take(&ws, "iris", LockKind::Exclusive, "deploy").unwrap();
        // A second open file description is a second holder, as another process is.
        let mut waited = Vec::new();
        let err = ws
            .lock(
                "iris",
                LockKind::Exclusive,
                "destroy",
                Duration::from_millis(120),
                |m| waited.push(m.to_string()),
            )
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`modelport deploy`"), "{text}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        assert_eq!(waited.len(), 1, "{waited:?}");
        assert!(waited[0].contains("waiting up to 0 s"), "{waited:?}");
        assert!(take(&ws, "iris", LockKind::Shared, "compare").is_err());
        // Other deployments are independent.
        take(&ws, "zeta", LockKind::Exclusive, "deploy").unwrap();
        drop(held);
        let a = take(&ws, "iris", LockKind::Shared, "compare").unwrap();
        let b = take(&ws, "iris", LockKind::Shared, "compare").unwrap();
        assert!(take(&ws, "iris", LockKind::Exclusive, "deploy").is_err());
        drop((a, b));
        take(&ws, "iris", LockKind::Exclusive, "deploy").unwrap();
        // Lock files are not states.
        assert!(ws.list_states().unwrap().is_empty());
    }

    #[test]
    fn a_waiter_gets_the_lock_when_it_is_released() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path());
        let held = take(&ws, "iris", LockKind::Exclusive, "deploy").unwrap();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            drop(held);
        });
        let got = ws.lock(
            "iris",
            LockKind::Exclusive,
            "destroy",
            Duration::from_secs(10),
            |_| {},
        );
        releaser.join().unwrap();
        assert!(got.is_ok());
    }
}
