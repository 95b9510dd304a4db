//! Starts a real OCI registry on 127.0.0.1: CNCF distribution, from Debian's
//! `docker-registry` package (`/usr/bin/docker-registry serve CONFIG`), with its
//! storage in a temporary folder. `.ci/run` installs the package; a test that
//! needs it fails with the install line when it is missing, never skips.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::Context;
use modelport_local::process::{free_port, log_tail, spawn_detached};

use crate::http1;

/// A variable naming a registry binary to use instead of `docker-registry` on `PATH`.
pub const REGISTRY_EXE_ENV: &str = "MODELPORT_REGISTRY_EXE";

const START_DEADLINE: Duration = Duration::from_secs(20);

/// The tools the image tests run, each from its Debian package.
pub const IMAGE_TOOLS: &[(&str, &str)] = &[
    ("docker-registry", "docker-registry"),
    ("skopeo", "skopeo"),
    ("umoci", "umoci"),
    ("runc", "runc"),
];

/// The path of `program` on `PATH` (or in the sbin folders, where Debian puts
/// runc), or an error with the `apt-get install` line.
pub fn system_tool(program: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(program);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    let package = IMAGE_TOOLS
        .iter()
        .find(|(p, _)| *p == program)
        .map_or(program, |(_, pkg)| pkg);
    anyhow::bail!(
        "{program} is not installed; the image tests need it: `apt-get install {package}` \
         (.ci/run installs it)"
    )
}

pub struct Registry {
    child: Child,
    port: u16,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> anyhow::Result<Registry> {
        let exe = match std::env::var_os(REGISTRY_EXE_ENV) {
            Some(p) => PathBuf::from(p),
            None => system_tool("docker-registry")?,
        };
        let dir = tempfile::Builder::new()
            .prefix("modelport-registry-")
            .tempdir()?;
        let port = free_port()?;
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  \
                 delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )?;
        let log = dir.path().join("registry.log");
        let mut cmd = Command::new(&exe);
        cmd.arg("serve").arg(&config);
        let child =
            spawn_detached(cmd, &log).with_context(|| format!("cannot start {}", exe.display()))?;
        let mut registry = Registry {
            child,
            port,
            log,
            dir,
        };
        let started = Instant::now();
        loop {
            if let Ok((200, _)) = http1::request(port, "GET", "/v2/", b"") {
                break;
            }
            if let Ok(Some(status)) = registry.child.try_wait() {
                anyhow::bail!(
                    "docker-registry exited ({status}) before answering; its log:\n{}",
                    registry.log_tail(20).join("\n")
                );
            }
            if started.elapsed() > START_DEADLINE {
                anyhow::bail!(
                    "docker-registry did not answer on port {port} within {START_DEADLINE:?}; its log:\n{}",
                    registry.log_tail(20).join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(registry)
    }

    /// `127.0.0.1:PORT`: the registry part of an image reference.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The bytes the registry stores (its blobs and manifests).
    pub fn stored_bytes(&self) -> u64 {
        fn walk(p: &std::path::Path) -> u64 {
            std::fs::read_dir(p)
                .map(|rd| {
                    rd.flatten()
                        .map(|e| match e.file_type() {
                            Ok(t) if t.is_dir() => walk(&e.path()),
                            _ => e.metadata().map(|m| m.len()).unwrap_or(0),
                        })
                        .sum()
                })
                .unwrap_or(0)
        }
        walk(&self.dir.path().join("data"))
    }

    pub fn log_tail(&self, n: usize) -> Vec<String> {
        log_tail(&self.log, n)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // SIGKILL to this pid only; the registry runs no children.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
