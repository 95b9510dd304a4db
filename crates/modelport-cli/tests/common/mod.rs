//! Helpers shared by the end-to-end tests: a scratch project with its own
//! `.modelport`, and a guard that stops every server a test started, even when the
//! test fails.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;

pub mod clouds;
pub mod worlds;

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

    /// Builds a small image (`/usr/bin/true` on the tract engine, by `modelport
    /// image build`) and pushes it to `reference`, on a registry of this machine.
    pub fn push_small_image(&self, reference: &str) {
        self.run(&[
            "image",
            "build",
            "--engine",
            "tract",
            "--binary",
            "/usr/bin/true",
            "--out",
            "small-image",
        ])
        .expect(0);
        self.run(&["image", "push", reference, "--layout", "small-image"])
            .expect(0);
    }

    /// `EXAMPLE/modelport.yaml` of the one example the project holds.
    pub fn spec(&self) -> String {
        let dir = std::fs::read_dir(self.path())
            .unwrap()
            .flatten()
            .find(|e| e.path().join("modelport.yaml").exists())
            .unwrap();
        format!("{}/modelport.yaml", dir.file_name().to_string_lossy())
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

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// True while `pid` runs and is not a zombie.
pub fn alive(pid: u32) -> bool {
    modelport_testkit::running(pid)
}

/// The digest (without `sha256:`) of the server that answers one iris row posted
/// to `url`, on a new connection; `None` when nothing answers with one.
pub fn served_digest(url: &str) -> Option<String> {
    let r = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
        .post(url)
        .header("content-type", "application/json")
        .body(r#"{"instances": [[5.1, 3.5, 1.4, 0.2]]}"#)
        .send()
        .ok()?;
    r.headers()
        .get("x-modelport-digest")
        .and_then(|v| v.to_str().ok())
        .map(|d| d.trim_start_matches("sha256:").to_string())
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

    /// The checks of a `doctor --output json` run, by `SCOPE WHAT`: level, and the
    /// detail and hint in one text.
    pub fn doctor_checks(&self) -> std::collections::BTreeMap<String, (String, String)> {
        let body: serde_json::Value = serde_json::from_str(&self.stdout())
            .unwrap_or_else(|e| panic!("{e}: {}", self.stdout()));
        body["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    format!(
                        "{} {}",
                        c["scope"].as_str().unwrap(),
                        c["what"].as_str().unwrap()
                    ),
                    (
                        c["level"].as_str().unwrap().to_string(),
                        format!("{} {}", c["detail"], c["hint"]),
                    ),
                )
            })
            .collect()
    }
}

/// One production answer: when, and which revision gave it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub at: Instant,
    pub ok: bool,
    pub digest: Option<String>,
    pub revision: Option<String>,
    /// The status and the start of the body, or the transport error.
    pub detail: String,
}

/// Panics naming every production request that failed.
pub fn assert_all_answered(answers: &[Answer]) {
    let start = answers.first().map(|a| a.at);
    let failed: Vec<String> = answers
        .iter()
        .filter(|a| !a.ok)
        .map(|a| format!("at {:?}: {}", a.at - start.unwrap_or(a.at), a.detail))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} production requests failed:\n{}",
        failed.len(),
        answers.len(),
        failed.join("\n")
    );
}

/// A production client: one request every few milliseconds, each on a new
/// connection, as a fleet of callers would send them.
pub struct Traffic {
    stop: Arc<AtomicBool>,
    answers: Arc<Mutex<Vec<Answer>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Traffic {
    /// Sends `request` (a new connection each time) until stopped.
    pub fn start(
        request: impl Fn(&reqwest::blocking::Client) -> reqwest::blocking::RequestBuilder
        + Send
        + 'static,
    ) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let answers = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, answers) = (stop.clone(), answers.clone());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .pool_max_idle_per_host(0)
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                while !stop.load(Ordering::Relaxed) {
                    let r = request(&client).send();
                    let header = |r: &reqwest::blocking::Response, name: &str| {
                        r.headers()
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string)
                    };
                    let answer = match r {
                        Ok(r) => {
                            let at = Instant::now();
                            let (ok, status) = (r.status().is_success(), r.status());
                            let digest = header(&r, "x-modelport-digest");
                            let revision = header(&r, "x-modelport-revision");
                            let body = r.text().unwrap_or_else(|e| format!("(body: {e})"));
                            Answer {
                                at,
                                ok,
                                digest,
                                revision,
                                detail: format!(
                                    "{status} {}",
                                    body.chars().take(300).collect::<String>()
                                ),
                            }
                        }
                        Err(e) => Answer {
                            at: Instant::now(),
                            ok: false,
                            digest: None,
                            revision: None,
                            detail: format!("{e:?}"),
                        },
                    };
                    answers.lock().unwrap().push(answer);
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        Traffic {
            stop,
            answers,
            thread: Some(thread),
        }
    }

    pub fn stop(mut self) -> Vec<Answer> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.answers.lock().unwrap().clone()
    }
}

/// The two updates the zero-production-requests tests roll out over `yaml`: one that
/// passes (a serving setting changes, so a new revision of the same model), and one
/// that cannot (tract in the endpoint, onnxruntime as the reference, no tolerance:
/// the engines round differently).
pub fn update(yaml: &str, passes: bool, timeout_s: u32) -> String {
    let setting = format!("timeout_s: {timeout_s}");
    if passes {
        format!("{yaml}\nserving:\n  {setting}\n")
    } else {
        yaml.replace("atol: 1.0e-5", "atol: 0.0")
            .replace("rtol: 1.0e-4", "rtol: 0.0")
            .replace(&setting, &format!("{setting}\n  engine: tract"))
    }
}

/// Runs the deploy `cmd` while `traffic` sends production requests, with a long
/// comparison (the window in which an unproven revision could be answering); returns
/// the run and every production answer.
pub fn deploy_under_traffic(mut cmd: Command, traffic: Traffic) -> (Run, Vec<Answer>) {
    std::thread::sleep(Duration::from_millis(100));
    cmd.env("MODELPORT_FAILPOINTS", "rollout.verify=sleep(1500)");
    let out = Run(cmd.output().unwrap());
    std::thread::sleep(Duration::from_millis(200));
    (out, traffic.stop())
}

/// One rollout phase as the state file showed it: when a read first found it
/// (an upper bound of when it was written) and when the last read that found it
/// began (a lower bound of when the next phase was written, whatever the load).
#[derive(Debug, Clone)]
pub struct Seen {
    pub phase: String,
    pub first: Instant,
    pub last: Instant,
}

/// Records when the state file shows each rollout phase.
pub struct PhaseWatch {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PhaseWatch {
    pub fn start(state: std::path::PathBuf) -> PhaseWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::<Seen>::new()));
        let thread = {
            let (stop, seen) = (stop.clone(), seen.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let began = Instant::now();
                    if let Ok(text) = std::fs::read_to_string(&state)
                        && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
                        && let Some(phase) = v["rollout"]["phase"].as_str()
                    {
                        let mut seen = seen.lock().unwrap();
                        match seen.last_mut() {
                            Some(s) if s.phase == phase => s.last = began,
                            _ => seen.push(Seen {
                                phase: phase.to_string(),
                                first: Instant::now(),
                                last: began,
                            }),
                        }
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        PhaseWatch {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    pub fn stop(mut self) -> Vec<Seen> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.seen.lock().unwrap().clone()
    }
}

fn seen<'a>(phases: &'a [Seen], phase: &str) -> &'a Seen {
    phases
        .iter()
        .find(|s| s.phase == phase)
        .unwrap_or_else(|| panic!("no {phase} phase in {phases:?}"))
}

/// When a read first found `phase`: the state said so by then.
pub fn first(phases: &[Seen], phase: &str) -> Instant {
    seen(phases, phase).first
}

/// When the last read that found `phase` began: the state still said so then.
pub fn last(phases: &[Seen], phase: &str) -> Instant {
    seen(phases, phase).last
}

/// Waits until the deployment's state file says the rollout is in `phase`.
pub fn wait_for_phase(p: &Project, name: &str, phase: &str, child: &mut std::process::Child) {
    let start = Instant::now();
    loop {
        if p.state(name)
            .is_some_and(|s| s["rollout"]["phase"] == phase)
        {
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the deploy ended before the rollout reached {phase}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no {phase} phase: {:?}",
            p.state(name)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn signal(child: &std::process::Child, sig: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, sig).unwrap();
}

/// Starts `cmd` with its output captured.
pub fn spawn(mut cmd: Command) -> std::process::Child {
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for a command started by [`spawn`].
pub fn finish(child: std::process::Child) -> Run {
    Run(child.wait_with_output().unwrap())
}

/// One way a deploy of an update can be interrupted, the same on every provider.
#[derive(Debug, Clone)]
pub struct Interruption {
    pub what: &'static str,
    /// Fail points for the deploy (`MODELPORT_FAILPOINTS`).
    pub failpoints: &'static str,
    /// Extra arguments to the deploy.
    pub args: &'static [&'static str],
    /// Samples that do not fit the model, written and named in the spec first.
    pub bad_samples: bool,
    /// A signal sent once the rollout is in the given phase.
    pub signal: Option<(&'static str, rustix::process::Signal)>,
    /// The exit: a code, or death by a signal (`None`).
    pub code: Option<i32>,
    /// What the deploy prints (stdout or stderr).
    pub says: &'static str,
    /// True when the new revision had passed, so the next command finishes it.
    pub finished_later: bool,
    /// The fixture (under tests/fixtures/models) the update deploys.
    pub model: &'static str,
}

impl Interruption {
    /// What every provider is interrupted with; each adds its own faults.
    pub fn common() -> Vec<Interruption> {
        use rustix::process::Signal;
        let base = Interruption {
            what: "",
            failpoints: "",
            args: &[],
            bad_samples: false,
            signal: None,
            code: Some(1),
            says: "",
            finished_later: false,
            model: "svm",
        };
        vec![
            Interruption {
                what: "the reference does not load (tract cannot run Det)",
                args: &["--engine", "tract"],
                says: "Det",
                model: "det",
                ..base.clone()
            },
            Interruption {
                what: "the samples do not fit the model",
                bad_samples: true,
                says: "bad.json do not fit the model",
                ..base.clone()
            },
            Interruption {
                what: "the comparison hits an I/O error",
                failpoints: "verify.request=error",
                says: "connection reset by peer",
                ..base.clone()
            },
            Interruption {
                what: "SIGINT during the comparison",
                failpoints: "rollout.verify=sleep(20000)",
                signal: Some(("verifying", Signal::INT)),
                says: "interrupted (SIGINT)",
                ..base.clone()
            },
            Interruption {
                what: "SIGTERM while the new revision starts",
                failpoints: "rollout.apply=sleep(20000)",
                signal: Some(("starting", Signal::TERM)),
                says: "interrupted (SIGTERM)",
                ..base.clone()
            },
            Interruption {
                what: "kill -9 during the comparison",
                failpoints: "rollout.verify=sleep(20000)",
                signal: Some(("verifying", Signal::KILL)),
                code: None,
                ..base.clone()
            },
            Interruption {
                what: "a crash once the comparison passed",
                failpoints: "rollout.move_traffic=abort",
                code: None,
                says: "fail point rollout.move_traffic: aborting",
                finished_later: true,
                ..base.clone()
            },
            Interruption {
                what: "a crash while the old revision is retired",
                failpoints: "rollout.retire=abort",
                code: None,
                says: "fail point rollout.retire: aborting",
                finished_later: true,
                ..base
            },
        ]
    }

    /// Runs `cmd`, a deploy of `name` in `project` whose spec is `spec`, under this
    /// interruption, and checks how it ended.
    pub fn run(&self, project: &Project, name: &str, spec: &str, mut cmd: Command) -> Run {
        if self.bad_samples {
            let dir = project.path().join(spec).parent().unwrap().to_path_buf();
            std::fs::write(dir.join("bad.json"), r#"{"instances": [[1.0, 2.0]]}"#).unwrap();
            let yaml = std::fs::read_to_string(project.path().join(spec)).unwrap();
            std::fs::write(
                project.path().join(spec),
                yaml.replace("samples: samples.json", "samples: bad.json"),
            )
            .unwrap();
        }
        cmd.args(self.args)
            .env("MODELPORT_FAILPOINTS", self.failpoints);
        let mut child = spawn(cmd);
        if let Some((phase, sig)) = self.signal {
            wait_for_phase(project, name, phase, &mut child);
            signal(&child, sig);
        }
        let out = finish(child);
        let text = format!("{}{}", out.stdout(), out.stderr());
        assert_eq!(out.0.status.code(), self.code, "{}: {text}", self.what);
        assert!(text.contains(self.says), "{}: {text}", self.what);
        if self.code == Some(1) {
            assert!(
                text.contains("the new revision was removed and the previous one keeps serving"),
                "{}: {text}",
                self.what
            );
        }
        let state = project.state(name).unwrap();
        if self.code.is_some() {
            assert!(
                state["pending"].is_null() && state["rollout"].is_null(),
                "{}: {state}",
                self.what
            );
        } else {
            assert!(state["pending"].is_object(), "{}: {state}", self.what);
        }
        out
    }

    /// What a re-run of the deploy says it did with what this interruption left.
    pub fn rerun_says(&self) -> &'static str {
        if self.finished_later {
            "finishing the rollout an interrupted deploy left"
        } else if self.code.is_none() {
            "undoing the rollout an interrupted deploy left"
        } else {
            "PASS"
        }
    }
}

/// Adds `bytes` of incompressible weights to the model at `path`, written as its
/// external data (`path`.data), in a way that leaves every answer as it was: the
/// graph's first input becomes `x + 0 × sum(weights)`. Made by the test, so no
/// large file is committed.
pub fn add_weights(path: &std::path::Path, bytes: usize) {
    use modelport_compress::onnx::{Model, f32_tensor, node};
    let mut m = Model::read(path).unwrap();
    let n = bytes / 4;
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let values: Vec<f32> = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        })
        .collect();
    let input = m.graph().input[0].name.clone();
    let g = m.graph_mut();
    for consumer in &mut g.node {
        for i in &mut consumer.input {
            if *i == input {
                *i = "mp_x".into();
            }
        }
    }
    g.initializer
        .push(f32_tensor("mp_weights", &[n as i64], &values));
    drop(values);
    g.initializer.push(f32_tensor("mp_zero", &[1], &[0.0]));
    let front = [
        node(
            "ReduceSum",
            "mp_sum".into(),
            &["mp_weights"],
            &["mp_sum"],
            vec![],
        ),
        node(
            "Mul",
            "mp_mul".into(),
            &["mp_sum", "mp_zero"],
            &["mp_nothing"],
            vec![],
        ),
        node(
            "Add",
            "mp_add".into(),
            &[&input, "mp_nothing"],
            &["mp_x"],
            vec![],
        ),
    ];
    g.node.splice(0..0, front);
    assert!(m.externalize(1 << 20) > 0);
    assert_eq!(m.write(path).unwrap().len(), 2);
}
