//! The worlds the crash and fault harnesses walk: one per provider, each a
//! project deploying the iris example and everything it deploys to, with a way to
//! stop a command at any one of its calls ([`World::arm`]) and to list everything
//! that exists ([`World::resources`]) and what takes production traffic
//! ([`World::serving`]).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use super::clouds::{Aws, BUCKET, Gcp};
use super::{Project, Run, free_port, root};
use modelport_testkit::{Serving, Trip, Tripwire};

pub const NAME: &str = "iris";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// A first deploy, into an empty world.
    First,
    /// An update from model A (deployed) to model B.
    Update,
    /// `destroy --purge` of a deployment of model A.
    Destroy,
}

impl Flow {
    pub fn name(self) -> &'static str {
        match self {
            Flow::First => "first deploy",
            Flow::Update => "update",
            Flow::Destroy => "destroy",
        }
    }
}

/// One provider's world, as the harness sees it.
pub trait World {
    fn provider(&self) -> &'static str;
    fn project(&self) -> &Project;
    /// The CLI, with the environment that points it at this world.
    fn cmd(&self, args: &[&str]) -> Command;
    /// Prepares the next run to record its points (`None`), or to meet `trip` at
    /// point `n`. The local provider, which calls no cloud, knows only
    /// [`Trip::Kill`].
    fn arm(&self, cmd: &mut Command, n: Option<usize>, trip: Trip);
    /// The run's process, once spawned.
    fn spawned(&self, _pid: u32) {}
    /// The points the last run went through, as `N CALL`.
    fn points(&self) -> Vec<String>;
    /// Where the last armed run was killed.
    fn tripped(&self) -> Option<String>;
    /// Everything that exists in this world, one line each, sorted.
    fn resources(&self) -> Vec<String>;
    /// The ports of the servers that take production traffic now.
    fn serving(&self) -> Vec<(String, u16)>;
    /// True where a first deploy's endpoint answers anyone who calls it before
    /// its comparison (SageMaker: a new endpoint has no older revision to keep
    /// serving; documented in ARCHITECTURE.md).
    fn first_deploy_serves_unverified(&self) -> bool {
        false
    }
}

pub fn deploy_args(world: &dyn World) -> Vec<String> {
    let mut args = vec!["deploy".to_string()];
    if world.provider() != "local" {
        args.extend(["--provider".into(), world.provider().into()]);
    }
    args.extend(["-f".into(), format!("{NAME}/modelport.yaml"), "-q".into()]);
    args
}

pub fn flow_args(world: &dyn World, flow: Flow) -> Vec<String> {
    match flow {
        Flow::First | Flow::Update => deploy_args(world),
        Flow::Destroy => vec!["destroy".into(), NAME.into(), "--purge".into(), "-q".into()],
    }
}

pub fn run(world: &dyn World, args: &[String]) -> Run {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Run(world.cmd(&args).output().unwrap())
}

/// The two models the walks deploy: A (iris) and B (an SVM with the same inputs
/// that answers otherwise).
pub struct Models {
    a: Vec<u8>,
    b: Vec<u8>,
}

impl Models {
    pub fn load() -> Models {
        Models {
            a: std::fs::read(root().join("examples/iris/model.onnx")).unwrap(),
            b: std::fs::read(root().join("tests/fixtures/models/svm/model.onnx")).unwrap(),
        }
    }

    pub fn use_model(&self, world: &dyn World, b: bool) {
        let path = world.project().path().join(NAME).join("model.onnx");
        std::fs::write(path, if b { &self.b } else { &self.a }).unwrap();
    }
}

pub fn state(world: &dyn World) -> Option<serde_json::Value> {
    world.project().state(NAME)
}

pub fn active_digest(state: &Option<serde_json::Value>) -> Option<String> {
    state.as_ref()?["active"]["model_digest"]
        .as_str()
        .map(str::to_string)
}

/// The digest the server on `port` answers a prediction with.
pub fn digest_on(port: u16) -> Option<String> {
    super::served_digest(&format!("http://127.0.0.1:{port}/invocations"))
}

/// Puts `world` where `flow` starts: nothing, or model A deployed; model B in
/// place for an update.
pub fn set_up(world: &dyn World, models: &Models, flow: Flow, empty: &[String]) {
    run(
        world,
        &["destroy".into(), NAME.into(), "--purge".into(), "-q".into()],
    )
    .expect(0);
    assert_eq!(
        world.resources(),
        empty,
        "{} {}: destroy --purge left something",
        world.provider(),
        flow.name()
    );
    models.use_model(world, false);
    if flow != Flow::First {
        run(world, &deploy_args(world)).expect(0);
    }
    if flow == Flow::Update {
        models.use_model(world, true);
    }
}

// ---- local ----------------------------------------------------------------

/// The local provider with a fixed port: production is whatever answers there.
pub struct Local {
    project: Project,
    port: u16,
    steps: PathBuf,
}

impl Local {
    pub fn new() -> Local {
        let project = Project::new().with_example(NAME);
        let port = free_port();
        let spec = project.path().join(NAME).join("modelport.yaml");
        let yaml = std::fs::read_to_string(&spec).unwrap().replace(
            "    flavour: sagemaker\n",
            &format!("    flavour: sagemaker\n    port: {port}\n"),
        );
        std::fs::write(&spec, yaml).unwrap();
        let steps = project.path().join("steps.log");
        Local {
            project,
            port,
            steps,
        }
    }

    pub fn home(&self) -> PathBuf {
        self.project.path().join(".modelport")
    }
}

/// The names in `dir`, as `LABEL NAME`.
pub fn listing(dir: PathBuf, label: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| format!("{label} {}", e.file_name().to_string_lossy()))
                .collect()
        })
        .unwrap_or_default()
}

impl World for Local {
    fn provider(&self) -> &'static str {
        "local"
    }

    fn project(&self) -> &Project {
        &self.project
    }

    fn cmd(&self, args: &[&str]) -> Command {
        self.project.cmd(args)
    }

    fn arm(&self, cmd: &mut Command, n: Option<usize>, trip: Trip) {
        assert_eq!(
            trip,
            Trip::Kill,
            "the local provider calls no cloud to fail"
        );
        let _ = std::fs::remove_file(&self.steps);
        cmd.env("MODELPORT_STEPS", &self.steps);
        if let Some(n) = n {
            cmd.env("MODELPORT_CRASH_AT", n.to_string());
        }
    }

    fn points(&self) -> Vec<String> {
        std::fs::read_to_string(&self.steps)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn tripped(&self) -> Option<String> {
        self.points().pop()
    }

    fn resources(&self) -> Vec<String> {
        let home = self.home();
        let mut out = Vec::new();
        // Lock files stay (empty, and deleting one another command may be
        // waiting on would break the lock); they hold nothing.
        out.extend(
            listing(home.join("state"), "state")
                .into_iter()
                .filter(|f| !f.ends_with(".lock")),
        );
        out.extend(listing(home.join("artifacts"), "artifact"));
        out.extend(listing(home.join("models"), "model"));
        out.extend(listing(home.join("tmp"), "scratch"));
        // The servers of this project that run, by the model directory they serve.
        let marker = home.to_string_lossy().into_owned();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                continue;
            };
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if super::alive(pid)
                && args.get(1).is_some_and(|a| a == "serve")
                && args.iter().any(|a| a.contains(&marker))
            {
                let model = args
                    .iter()
                    .find(|a| a.contains(&marker))
                    .map(|a| a.replace(&marker, ".modelport"))
                    .unwrap_or_default();
                out.push(format!("server {model}"));
            }
        }
        out.sort();
        out
    }

    fn serving(&self) -> Vec<(String, u16)> {
        // Two servers may share the port (SO_REUSEPORT) while traffic moves: ask
        // a few times on new connections.
        (0..6)
            .map(|i| (format!("port {} (ask {i})", self.port), self.port))
            .filter(|_| !modelport_local::process::port_is_free(self.port))
            .collect()
    }
}

// ---- the clouds -----------------------------------------------------------

/// What a cloud's world needs from its fakes beyond the CLI.
pub trait Fakes {
    const PROVIDER: &'static str;
    /// Whether a first deploy's endpoint answers before its comparison.
    const FIRST_DEPLOY_SERVES_UNVERIFIED: bool = false;
    fn project(&self) -> &Project;
    fn cmd(&self, args: &[&str]) -> Command;
    /// Everything the fakes hold, one line each.
    fn inventory(&self) -> Vec<String>;
    fn serving(&self) -> Vec<Serving>;
}

/// A cloud whose fakes count the CLI's calls on `wire`.
pub struct Wired<C> {
    cloud: C,
    wire: Tripwire,
}

pub type AwsWorld = Wired<Aws>;
pub type GcpWorld = Wired<Gcp>;

impl Wired<Aws> {
    pub fn new() -> AwsWorld {
        let wire = Tripwire::default();
        let cloud = Aws::with_config(NAME, |c| {
            c.tripwire = wire.clone();
            c.create_delay = Duration::from_millis(100);
            c.delete_delay = Duration::from_millis(100);
        });
        Wired { cloud, wire }
    }
}

impl Wired<Gcp> {
    pub fn new() -> GcpWorld {
        let wire = Tripwire::default();
        let cloud = Gcp::wired(NAME, wire.clone(), |c| {
            c.operation_delay = Duration::from_millis(100);
        });
        Wired { cloud, wire }
    }
}

impl Fakes for Aws {
    const PROVIDER: &'static str = "aws";
    const FIRST_DEPLOY_SERVES_UNVERIFIED: bool = true;

    fn project(&self) -> &Project {
        &self.project
    }

    fn cmd(&self, args: &[&str]) -> Command {
        Aws::cmd(self, args)
    }

    fn inventory(&self) -> Vec<String> {
        let mut out = self.fake.resources();
        let keys = self.moto.keys("models", "").unwrap();
        out.extend(keys.into_iter().map(|k| format!("s3 {k}")));
        let uploads = self.moto.multipart_uploads("models").unwrap();
        out.extend(
            uploads
                .into_iter()
                .map(|k| format!("s3 upload in progress {k}")),
        );
        out.push(format!("servers {}", self.fake.server_pids().len()));
        out
    }

    fn serving(&self) -> Vec<Serving> {
        self.fake.serving()
    }
}

impl Fakes for Gcp {
    const PROVIDER: &'static str = "gcp";

    fn project(&self) -> &Project {
        &self.project
    }

    fn cmd(&self, args: &[&str]) -> Command {
        Gcp::cmd(self, args)
    }

    fn inventory(&self) -> Vec<String> {
        let mut out = self.fake.resources();
        let objects = self.gcs.list_objects(BUCKET, "").unwrap();
        out.extend(objects.into_iter().map(|k| format!("gcs {k}")));
        out.push(format!("servers {}", self.fake.server_pids().len()));
        out
    }

    fn serving(&self) -> Vec<Serving> {
        self.fake.serving()
    }
}

impl<C: Fakes> World for Wired<C> {
    fn provider(&self) -> &'static str {
        C::PROVIDER
    }

    fn project(&self) -> &Project {
        self.cloud.project()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        self.cloud.cmd(args)
    }

    fn arm(&self, _cmd: &mut Command, n: Option<usize>, trip: Trip) {
        match n {
            Some(n) => self.wire.arm(n, trip),
            None => self.wire.reset(),
        }
    }

    fn spawned(&self, pid: u32) {
        self.wire.client(pid);
    }

    fn points(&self) -> Vec<String> {
        self.wire
            .points()
            .into_iter()
            .map(|p| format!("{} {}", p.index, p.call))
            .collect()
    }

    fn tripped(&self) -> Option<String> {
        self.wire.tripped().map(|(p, _)| p.call)
    }

    fn resources(&self) -> Vec<String> {
        let mut out = self.cloud.inventory();
        out.sort();
        out
    }

    /// The servers of the production endpoint (the one named after the
    /// deployment, which clients call); a short-lived verification endpoint is
    /// no client's.
    fn serving(&self) -> Vec<(String, u16)> {
        self.cloud
            .serving()
            .into_iter()
            .filter(|s| s.endpoint == NAME || s.endpoint.ends_with(&format!("/endpoints/{NAME}")))
            .map(|s| {
                (
                    format!("{} {} ({})", s.endpoint, s.target, s.weight),
                    s.port,
                )
            })
            .collect()
    }

    fn first_deploy_serves_unverified(&self) -> bool {
        C::FIRST_DEPLOY_SERVES_UNVERIFIED
    }
}

/// How many worlds (an emulator, a fake, the CLI and its servers each) run at once
/// per harness: more only share the two cores thinner, and the fault walks run the
/// CLI with a 3 s attempt timeout.
const WORLDS_AT_ONCE: usize = 4;

/// Runs `jobs` on up to [`WORLDS_AT_ONCE`] threads (the walks mostly wait on the
/// fakes) and returns their results in order; a job that panics fails the caller.
pub fn in_parallel<T: Send>(jobs: Vec<Box<dyn FnOnce() -> T + Send + '_>>) -> Vec<T> {
    let n = jobs.len();
    let queue = Mutex::new(jobs.into_iter().enumerate());
    let results: Mutex<Vec<Option<T>>> = Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..WORLDS_AT_ONCE.min(n))
            .map(|_| {
                scope.spawn(|| {
                    loop {
                        let next = queue.lock().unwrap().next();
                        let Some((i, job)) = next else { break };
                        let out = job();
                        results.lock().unwrap()[i] = Some(out);
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().expect("a walk failed");
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every job ran"))
        .collect()
}
