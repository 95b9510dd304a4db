//! Starts `moto_server` (PyPI `moto[server]`) from the test venv on a free port.
//!
//! The venv is the one `scripts/test` sets up from `.ci/requirements.txt`. A test
//! that needs moto fails with a message saying how to install it, never skips.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use modelport_local::process::{log_tail, spawn_detached};

use crate::{http1, repo_root};

/// The variable naming the test venv, as in `scripts/test`.
pub const VENV_ENV: &str = "MODELPORT_VENV";

/// How long moto gets to answer after it is started.
const START_DEADLINE: Duration = Duration::from_secs(20);

/// The test venv: `$MODELPORT_VENV` (relative to the repository root when not
/// absolute), else `<repo>/.venv`; `None` when that directory does not exist.
pub fn venv() -> Option<PathBuf> {
    let root = repo_root();
    let dir = match std::env::var_os(VENV_ENV) {
        Some(v) if !v.is_empty() => root.join(PathBuf::from(v)),
        _ => root.join(".venv"),
    };
    dir.is_dir().then_some(dir)
}

/// The venv's `site-packages` directory (the first `lib/python3*/site-packages`).
pub fn site_packages() -> Option<PathBuf> {
    let lib = venv()?.join("lib");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&lib)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("python3"))
        })
        .map(|p| p.join("site-packages"))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs.pop()
}

/// A running `moto_server`, killed (by pid) on drop.
pub struct Moto {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Moto {
    /// Starts `<venv>/bin/moto_server -H 127.0.0.1 -p PORT` in its own process group,
    /// logging to a file in a temporary directory, and waits until it answers HTTP.
    pub fn start() -> io::Result<Moto> {
        let exe = venv()
            .map(|v| v.join("bin").join("moto_server"))
            .filter(|p| p.is_file())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "moto_server not found in the test venv ({}); run `scripts/test` once, \
                         or `.venv/bin/pip install -r .ci/requirements.txt` (set {VENV_ENV} for \
                         another venv)",
                        venv()
                            .unwrap_or_else(|| repo_root().join(".venv"))
                            .display()
                    ),
                )
            })?;
        let dir = tempfile::Builder::new()
            .prefix("modelport-moto-")
            .tempdir()?;
        let log = dir.path().join("moto.log");
        // Port 0: moto binds a port of its own and prints it. A free port chosen
        // first could be chosen by two worlds starting at once: one moto bound it,
        // the other exited, and both readiness checks were answered by the
        // survivor, so two worlds shared one moto.
        let mut cmd = Command::new(&exe);
        cmd.args(["-H", "127.0.0.1", "-p", "0"]);
        let child = spawn_detached(cmd, &log)?;
        let mut moto = Moto {
            child,
            port: 0,
            log,
            _dir: dir,
        };
        let started = Instant::now();
        loop {
            if moto.port == 0 {
                moto.port = bound_port(&moto.log).unwrap_or(0);
            }
            if moto.port != 0
                && let Ok((200, _)) = http1::request(moto.port, "GET", "/moto-api/data.json", b"")
            {
                tracing::debug!(port = moto.port, elapsed = ?started.elapsed(), "moto is up");
                return Ok(moto);
            }
            if let Ok(Some(status)) = moto.child.try_wait() {
                return Err(io::Error::other(format!(
                    "moto_server exited ({status}) before answering; its log:\n{}",
                    log_tail(&moto.log, 20).join("\n")
                )));
            }
            if started.elapsed() > START_DEADLINE {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "moto_server did not answer within {START_DEADLINE:?} (port {}); its log:\n{}",
                        moto.port,
                        log_tail(&moto.log, 20).join("\n")
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port moto listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The pid of the `moto_server` process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Forgets every resource moto holds (`POST /moto-api/reset`).
    pub fn reset(&self) -> io::Result<()> {
        let (status, body) = http1::request(self.port, "POST", "/moto-api/reset", b"")?;
        if status != 200 {
            return Err(io::Error::other(format!(
                "moto reset answered {status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        Ok(())
    }

    /// Creates an S3 bucket (a plain `PUT /BUCKET`; moto checks no signature).
    pub fn create_bucket(&self, bucket: &str) -> io::Result<()> {
        let (status, body) = http1::request(self.port, "PUT", &format!("/{bucket}"), b"")?;
        if status != 200 {
            return Err(io::Error::other(format!(
                "creating bucket {bucket} in moto answered {status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        Ok(())
    }

    /// The keys under `prefix` in `bucket` (ListObjectsV2, every page), sorted.
    pub fn keys(&self, bucket: &str, prefix: &str) -> io::Result<Vec<String>> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut path = format!(
                "/{bucket}?list-type=2&prefix={}",
                crate::gcs::encode(prefix)
            );
            if let Some(t) = &token {
                path.push_str(&format!("&continuation-token={}", crate::gcs::encode(t)));
            }
            let (status, body) = http1::request_with(self.port, "GET", &path, &[SIGNED_S3], b"")?;
            let text = String::from_utf8_lossy(&body);
            if status != 200 {
                return Err(io::Error::other(format!(
                    "listing s3://{bucket}/{prefix} in moto answered {status}: {text}"
                )));
            }
            let (page, next) = list_objects_page(&text);
            keys.extend(page);
            token = next;
            if token.is_none() {
                keys.sort();
                return Ok(keys);
            }
        }
    }

    /// The keys of the multipart uploads begun and neither completed nor aborted
    /// in `bucket` (ListMultipartUploads, one page of up to 1000).
    pub fn multipart_uploads(&self, bucket: &str) -> io::Result<Vec<String>> {
        let (status, body) = http1::request_with(
            self.port,
            "GET",
            &format!("/{bucket}?uploads"),
            &[SIGNED_S3],
            b"",
        )?;
        let text = String::from_utf8_lossy(&body);
        if status != 200 {
            return Err(io::Error::other(format!(
                "listing the multipart uploads of s3://{bucket} in moto answered {status}: {text}"
            )));
        }
        let mut keys = list_objects_page(&text).0;
        keys.sort();
        Ok(keys)
    }

    /// Creates an IAM role whose trust policy is `trust` (JSON), as `aws iam
    /// create-role` would; returns its ARN. moto picks the service from the
    /// credential scope of the `Authorization` header, whose signature it does not check.
    pub fn create_role(&self, name: &str, trust: &str) -> io::Result<String> {
        let body = format!(
            "Action=CreateRole&Version=2010-05-08&RoleName={}&AssumeRolePolicyDocument={}",
            crate::gcs::encode(name),
            crate::gcs::encode(trust)
        );
        let (status, answer) = http1::request_with(
            self.port,
            "POST",
            "/",
            &[
                "Content-Type: application/x-www-form-urlencoded",
                "Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
            ],
            body.as_bytes(),
        )?;
        let text = String::from_utf8_lossy(&answer);
        if status != 200 {
            return Err(io::Error::other(format!(
                "creating role {name} in moto answered {status}: {text}"
            )));
        }
        text.split("<Arn>")
            .nth(1)
            .and_then(|rest| rest.split("</Arn>").next())
            .map(str::to_string)
            .ok_or_else(|| io::Error::other(format!("moto's CreateRole answer has no Arn: {text}")))
    }

    /// The last lines of moto's log.
    pub fn log_tail(&self, lines: usize) -> Vec<String> {
        log_tail(&self.log, lines)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // Child::kill sends SIGKILL to this pid only; moto_server runs no children.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An `Authorization` header moto takes as the account's for S3: it checks no
/// signature, only refuses anonymous reads of private objects.
pub const SIGNED_S3: &str = "Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0";

/// The keys of one ListObjectsV2 page and its continuation token, if any.
pub fn list_objects_page(xml: &str) -> (Vec<String>, Option<String>) {
    let unescape = |s: &str| {
        s.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&")
    };
    let all = |tag: &str| -> Vec<String> {
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        xml.split(open.as_str())
            .skip(1)
            .filter_map(|rest| rest.split(close.as_str()).next())
            .map(unescape)
            .collect()
    };
    let token = all("NextContinuationToken").into_iter().next();
    (all("Key"), token)
}

/// The port werkzeug says it runs on (` * Running on http://127.0.0.1:PORT`).
fn bound_port(log: &Path) -> Option<u16> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines().find_map(|line| {
        let rest = line.split("Running on http://127.0.0.1:").nth(1)?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok().filter(|p| *p != 0)
    })
}
