//! Server processes: start detached, check, stop, read their logs.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

/// How long a server gets to finish requests after SIGTERM before SIGKILL, as on
/// SageMaker.
pub const STOP_GRACE: Duration = Duration::from_secs(30);

/// Starts `command` detached from this process: its own process group (a Ctrl-C in
/// the terminal does not reach it), no stdin, stdout and stderr appended to `log`.
pub fn spawn_detached(mut command: Command, log: &Path) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let out = OpenOptions::new().create(true).append(true).open(log)?;
    let err = out.try_clone()?;
    command
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .process_group(0);
    let child = command.spawn()?;
    modelport_core::failpoint::step("process.spawn");
    Ok(child)
}

/// True when `pid` is a live process whose command line or environment mentions
/// `marker` (the model directory), so that a recycled pid is not mistaken for our
/// server. Under the SageMaker contract the directory is an argument; under
/// Vertex's it is in `AIP_STORAGE_URI`.
pub fn is_alive(pid: u32, marker: &str) -> bool {
    let Some(raw) = Pid::from_raw(pid as i32) else {
        return false;
    };
    if rustix::process::test_kill_process(raw).is_err() {
        return false;
    }
    // An exited child not yet reaped (a zombie) has an empty command line and
    // environment.
    let mentions = |file: &str| {
        std::fs::read(format!("/proc/{pid}/{file}"))
            .map(|bytes| String::from_utf8_lossy(&bytes).contains(marker))
    };
    match mentions("cmdline") {
        Ok(true) => true,
        Ok(false) => mentions("environ").unwrap_or(false),
        // Without /proc, trust the signal test.
        Err(_) => true,
    }
}

/// The pid of the live server started with `--revision REVISION` whose command
/// line or environment mentions `marker`: the server of a revision whose pid was
/// never recorded. `None` when there is none (or no /proc to look in).
pub fn find_server(revision: &str, marker: &str) -> Option<u32> {
    if revision.is_empty() {
        return None;
    }
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let named = args
            .windows(2)
            .any(|w| w[0] == b"--revision" && w[1] == revision.as_bytes());
        if named && is_alive(pid, marker) {
            return Some(pid);
        }
    }
    None
}

/// What `stop` had to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It was not running.
    AlreadyGone,
    /// It exited after SIGTERM.
    Terminated,
    /// It ignored SIGTERM for the grace period and was killed.
    Killed,
}

/// SIGTERM, wait up to `grace`, then SIGKILL.
pub async fn stop(pid: u32, marker: &str, grace: Duration) -> Stopped {
    let Some(raw) = Pid::from_raw(pid as i32) else {
        return Stopped::AlreadyGone;
    };
    if !is_alive(pid, marker) {
        return Stopped::AlreadyGone;
    }
    let _ = rustix::process::kill_process(raw, Signal::TERM);
    modelport_core::failpoint::step("process.terminate");
    let started = Instant::now();
    while started.elapsed() < grace {
        if !is_alive(pid, marker) {
            return Stopped::Terminated;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let _ = rustix::process::kill_process(raw, Signal::KILL);
    modelport_core::failpoint::step("process.kill");
    for _ in 0..200 {
        if !is_alive(pid, marker) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Stopped::Killed
}

/// Asks a server started with `--handover-port` to take that port too (SIGUSR1).
/// False when it is not running.
pub fn hand_over(pid: u32, marker: &str) -> bool {
    let Some(raw) = Pid::from_raw(pid as i32) else {
        return false;
    };
    let sent = is_alive(pid, marker) && rustix::process::kill_process(raw, Signal::USR1).is_ok();
    if sent {
        modelport_core::failpoint::step("process.hand_over");
    }
    sent
}

/// True when nothing listens on `127.0.0.1:port`.
pub fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

/// The last `n` lines of a log file (reads at most its last 64 KiB).
pub fn log_tail(path: &Path, n: usize) -> Vec<String> {
    let Ok(mut file) = File::open(path) else {
        return Vec::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(64 * 1024);
    if file.seek(SeekFrom::Start(start)).is_err() {
        return Vec::new();
    }
    let mut lines: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0); // Probably cut in the middle.
    }
    let skip = lines.len().saturating_sub(n);
    lines.split_off(skip)
}

/// A port nobody listens on right now.
pub fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}
