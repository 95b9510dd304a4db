//! Helpers shared by the end-to-end tests: a scratch project with its own
//! `.modelport`, and a guard that stops every server a test started, even when the
//! test fails.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use assert_cmd::cargo::CommandCargoExt;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A temporary project directory; dropping it stops the servers its state records.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Project {
        Project {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Copies `examples/<name>` into the project.
    pub fn with_example(self, name: &str) -> Project {
        let src = root().join("examples").join(name);
        let dst = self.path().join(name);
        std::fs::create_dir_all(&dst).unwrap();
        for entry in std::fs::read_dir(src).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dst.join(entry.file_name())).unwrap();
        }
        self
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::cargo_bin("modelport").unwrap();
        cmd.current_dir(self.path())
            .args(args)
            .env_remove("MODELPORT_ENGINE")
            .env_remove("MODELPORT_LOG")
            .env_remove("MODELPORT_HOME");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run(self.cmd(args).output().unwrap())
    }

    pub fn state(&self, name: &str) -> Option<serde_json::Value> {
        let path = self
            .path()
            .join(".modelport/state")
            .join(format!("{name}.json"));
        std::fs::read_to_string(path)
            .ok()
            .map(|t| serde_json::from_str(&t).unwrap())
    }

    /// The pid of deployment `name`'s active server.
    pub fn pid(&self, name: &str) -> u32 {
        self.state(name).unwrap()["active"]["resources"]["pid"]
            .as_u64()
            .unwrap() as u32
    }

    pub fn predict_url(&self, name: &str) -> String {
        self.state(name).unwrap()["active"]["endpoint"]["predict_url"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(self.path().join(".modelport/state")) else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(text) = std::fs::read_to_string(entry.path()) else {
                continue;
            };
            let Ok(state) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            for slot in ["active", "pending"] {
                if let Some(pid) = state[slot]["resources"]["pid"].as_u64() {
                    kill(pid as u32);
                }
            }
        }
    }
}

pub fn kill(pid: u32) {
    if let Some(p) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
    }
}

/// True while `pid` runs and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Waits up to 10 s for `pid` to exit (stopping is asynchronous for a detached server).
pub fn wait_gone(pid: u32) -> bool {
    for _ in 0..400 {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    false
}

pub struct Run(pub Output);

impl Run {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    /// Asserts the exit code, showing both streams when it is wrong.
    pub fn expect(self, code: i32) -> Run {
        assert_eq!(
            self.code(),
            code,
            "exit code\n--- stdout\n{}--- stderr\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
}
