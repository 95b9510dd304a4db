//! The rollout state machine against a scripted provider: every step in order,
//! the phase recorded before each step, and what an error, a failed comparison, a
//! signal or a crash at every step leaves behind. No network, no processes.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use modelport_core::predictor::{PredictError, Prediction, Predictor};
use modelport_core::provider::{
    ActionKind, ArtifactRef, DestroyOptions, DestroyReport, EndpointStatus, Plan, PlannedAction,
    Provider, ProviderError, ProviderResult, Reporter, RolloutPlan, Silent, require_revision,
};
use modelport_core::spec::{DeploymentName, DeploymentSpec, VerifySpec};
use modelport_core::state::{
    DeploymentState, EndpointRef, Phase, Protocol, Rollout, RolloutMode, Which, Workspace,
};
use modelport_core::{Batch, Signature, TargetInfo, TargetKind, Tensor};
use modelport_deploy::{Cancellation, DeployError, Deployer, Outcome, Verdict, Verifier};

/// What the scripted provider did, step by step, with the phase the state file
/// held when the step began.
#[derive(Default)]
struct Script {
    log: Vec<String>,
    fail: BTreeSet<&'static str>,
    /// Which revision production traffic reaches: "old", "new" or "none".
    traffic: String,
}

struct Scripted {
    ws: Workspace,
    script: Arc<Mutex<Script>>,
}

impl Scripted {
    fn new(ws: &Workspace) -> Scripted {
        Scripted {
            ws: ws.clone(),
            script: Arc::new(Mutex::new(Script {
                traffic: "none".into(),
                ..Script::default()
            })),
        }
    }

    fn failing(self, step: &'static str) -> Scripted {
        self.script.lock().unwrap().fail.insert(step);
        self
    }

    /// Logs `step` with the phase on disk, then fails when scripted to.
    fn step(&self, step: &'static str, name: &str) -> ProviderResult<()> {
        let phase = self
            .ws
            .load_state(name)
            .unwrap()
            .and_then(|s| s.rollout)
            .map(|r| r.phase.as_str().to_string())
            .unwrap_or_else(|| "-".into());
        let mut s = self.script.lock().unwrap();
        s.log.push(format!("{step}@{phase}"));
        if s.fail.contains(step) {
            return Err(ProviderError::other(format!("{step} failed (scripted)")));
        }
        Ok(())
    }

    fn log(&self) -> Vec<String> {
        self.script.lock().unwrap().log.clone()
    }

    fn traffic(&self) -> String {
        self.script.lock().unwrap().traffic.clone()
    }

    fn set_traffic(&self, to: &str) {
        self.script.lock().unwrap().traffic = to.into();
    }
}

fn endpoint() -> EndpointRef {
    EndpointRef {
        predict_url: "mock://endpoint".into(),
        health_url: "mock://endpoint".into(),
        protocol: Protocol::Instances,
        max_request_bytes: 1 << 20,
        timeout_s: 5,
    }
}

#[async_trait::async_trait]
impl Provider for Scripted {
    fn name(&self) -> &'static str {
        "scripted"
    }

    async fn doctor(&self, _spec: &DeploymentSpec) -> Vec<modelport_core::provider::Check> {
        Vec::new()
    }

    async fn plan(
        &self,
        spec: &DeploymentSpec,
        artifact: &ArtifactRef,
        state: Option<&DeploymentState>,
        mode: RolloutMode,
    ) -> ProviderResult<Plan> {
        Ok(Plan {
            name: spec.name.as_str().to_string(),
            provider: self.name().into(),
            actions: vec![PlannedAction {
                kind: ActionKind::Create,
                resource: "revision".into(),
                reason: "new".into(),
            }],
            spec: spec.clone(),
            spec_hash: "h".into(),
            artifact: artifact.clone(),
            rollout: RolloutPlan {
                mode,
                verify_via: "its own door".into(),
                traffic: "after".into(),
                stages: vec![],
            },
            previous: state.cloned(),
        })
    }

    async fn apply(&self, plan: &Plan, _: &dyn Reporter) -> ProviderResult<DeploymentState> {
        let mut state = plan.starting_state();
        state.pending = Some(plan.revision(endpoint(), serde_json::json!({"rev": "new"}))?);
        self.ws.save_state(&state)?;
        self.step("apply", &plan.name)?;
        if plan.mode().traffic_first() {
            self.set_traffic("new");
        }
        Ok(state)
    }

    async fn move_traffic(
        &self,
        state: DeploymentState,
        _: &dyn Reporter,
    ) -> ProviderResult<DeploymentState> {
        self.step("move_traffic", &state.name)?;
        self.set_traffic("new");
        Ok(state)
    }

    async fn retire(
        &self,
        mut state: DeploymentState,
        _: &dyn Reporter,
    ) -> ProviderResult<DeploymentState> {
        self.step("retire", &state.name)?;
        if let Some(p) = state.pending.take() {
            state.active = Some(p);
        }
        self.ws.save_state(&state)?;
        Ok(state)
    }

    async fn rollback(
        &self,
        mut state: DeploymentState,
        _: &dyn Reporter,
    ) -> ProviderResult<DeploymentState> {
        self.step("rollback", &state.name)?;
        state.pending = None;
        self.set_traffic(if state.active.is_some() {
            "old"
        } else {
            "none"
        });
        self.ws.save_state(&state)?;
        Ok(state)
    }

    async fn status(&self, state: &DeploymentState) -> ProviderResult<EndpointStatus> {
        Ok(EndpointStatus::nothing_recorded(state, "scripted"))
    }

    async fn endpoint(
        &self,
        state: &DeploymentState,
        which: Which,
    ) -> ProviderResult<Box<dyn Predictor>> {
        require_revision(state, which)?;
        self.step("endpoint", &state.name)?;
        Ok(Box::new(Echo::new(1.0)))
    }

    async fn destroy(
        &self,
        state: DeploymentState,
        _: &DestroyOptions,
        _: &dyn Reporter,
    ) -> ProviderResult<DestroyReport> {
        self.ws.remove_state(&state.name)?;
        Ok(DestroyReport::default())
    }
}

/// Answers its input times `scale`.
struct Echo {
    info: TargetInfo,
    scale: f32,
}

impl Echo {
    fn new(scale: f32) -> Echo {
        Echo {
            info: TargetInfo {
                label: format!("echo x{scale}"),
                kind: TargetKind::Url,
                location: "mock://".into(),
                served_by: Default::default(),
            },
            scale,
        }
    }
}

#[async_trait::async_trait]
impl Predictor for Echo {
    fn target(&self) -> &TargetInfo {
        &self.info
    }

    fn signature(&self) -> Option<&Signature> {
        None
    }

    async fn predict(&self, inputs: &Batch) -> Result<Prediction, PredictError> {
        let x = inputs.get("x").unwrap();
        let y: Vec<f32> = (0..x.len())
            .map(|i| x.data().get_f64(i).unwrap() as f32 * self.scale)
            .collect();
        let mut outputs = Batch::new();
        outputs
            .insert("y", Tensor::new(vec![y.len()], y).unwrap())
            .unwrap();
        Ok(Prediction {
            outputs,
            served_by: Default::default(),
        })
    }
}

/// Compares the endpoint with an echo of `scale`: 1.0 passes, anything else fails.
enum Judge {
    Scale(f32),
    Broken,
}

#[async_trait::async_trait]
impl Verifier for Judge {
    async fn verify(
        &self,
        endpoint: &dyn Predictor,
        _: &dyn Reporter,
    ) -> modelport_deploy::Result<Verdict> {
        let scale = match self {
            Judge::Scale(s) => *s,
            Judge::Broken => return Err(DeployError::other("the samples file is unreadable")),
        };
        let mut inputs = Batch::new();
        inputs
            .insert("x", Tensor::new(vec![3], vec![1.0f32, 2.0, 3.0]).unwrap())
            .unwrap();
        let reference = Echo::new(scale);
        let report = modelport_verify::run::compare(
            endpoint,
            &reference,
            &inputs,
            &VerifySpec::default(),
            3,
        )
        .await?;
        Ok(if report.passed() {
            Verdict::Passed(report)
        } else {
            Verdict::Failed {
                report: Some(report),
                reason: "mismatch".into(),
            }
        })
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    ws: Workspace,
    spec: DeploymentSpec,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path().join(".modelport"));
        let mut spec = DeploymentSpec::new(DeploymentName::new("iris").unwrap(), "model.onnx");
        spec.file = dir.path().join("modelport.yaml");
        Fixture {
            _dir: dir,
            ws,
            spec,
        }
    }

    fn artifact() -> ArtifactRef {
        ArtifactRef {
            path: PathBuf::from("model.tar.gz"),
            digest: "a".repeat(64),
            model_digest: "b".repeat(64),
            size: 1,
            layout: modelport_core::spec::ArtifactLayout::Archive,
            signature: None,
        }
    }

    /// Records an active revision, as a deploy that finished would have.
    fn with_active(&self) -> DeploymentState {
        let mut s = DeploymentState::new("iris", "scripted", &self.spec.file);
        let plan = Plan {
            name: "iris".into(),
            provider: "scripted".into(),
            actions: vec![],
            spec: self.spec.clone(),
            spec_hash: "h0".into(),
            artifact: Fixture::artifact(),
            rollout: RolloutPlan {
                mode: RolloutMode::BeforeTraffic,
                verify_via: String::new(),
                traffic: String::new(),
                stages: vec![],
            },
            previous: None,
        };
        s.active = Some(
            plan.revision(endpoint(), serde_json::json!({"rev": "old"}))
                .unwrap(),
        );
        self.ws.save_state(&s).unwrap();
        s
    }

    async fn run(
        &self,
        provider: &Scripted,
        mode: RolloutMode,
        judge: Judge,
        cancel: Cancellation,
    ) -> modelport_deploy::Result<Outcome> {
        let state = self.ws.load_state("iris").unwrap();
        let plan = provider
            .plan(&self.spec, &Fixture::artifact(), state.as_ref(), mode)
            .await
            .unwrap();
        deployer(provider, self, cancel)
            .run(plan, Some(&judge))
            .await
    }

    fn state(&self) -> Option<DeploymentState> {
        self.ws.load_state("iris").unwrap()
    }
}

fn deployer<'a>(p: &'a Scripted, f: &'a Fixture, cancel: Cancellation) -> Deployer<'a> {
    Deployer {
        provider: p,
        workspace: &f.ws,
        reporter: &Silent,
        cancel,
    }
}

async fn plan(p: &Scripted, f: &Fixture) -> Plan {
    p.plan(
        &f.spec,
        &Fixture::artifact(),
        f.state().as_ref(),
        RolloutMode::BeforeTraffic,
    )
    .await
    .unwrap()
}

fn rev(state: &DeploymentState, which: Which) -> Option<&str> {
    state
        .revision(which)
        .and_then(|r| r.resources["rev"].as_str())
}

#[tokio::test]
async fn a_passing_update_is_verified_before_its_traffic_moves() {
    let f = Fixture::new();
    f.with_active();
    let p = Scripted::new(&f.ws);
    p.set_traffic("old");
    let outcome = f
        .run(
            &p,
            RolloutMode::BeforeTraffic,
            Judge::Scale(1.0),
            Cancellation::never(),
        )
        .await
        .unwrap();
    assert!(matches!(
        outcome,
        Outcome::Deployed {
            report: Some(_),
            ..
        }
    ));
    // Each step saw its own phase on disk: recorded before the step ran.
    assert_eq!(
        p.log(),
        [
            "apply@starting",
            "endpoint@verifying",
            "move_traffic@moving_traffic",
            "retire@retiring"
        ]
    );
    let s = f.state().unwrap();
    assert_eq!(rev(&s, Which::Active), Some("new"));
    assert!(s.pending.is_none() && s.rollout.is_none(), "{s:?}");
    assert_eq!(p.traffic(), "new");
}

#[tokio::test]
async fn a_failed_comparison_removes_the_new_revision_and_never_moves_traffic() {
    let f = Fixture::new();
    f.with_active();
    let p = Scripted::new(&f.ws);
    p.set_traffic("old");
    let outcome = f
        .run(
            &p,
            RolloutMode::BeforeTraffic,
            Judge::Scale(2.0),
            Cancellation::never(),
        )
        .await
        .unwrap();
    let Outcome::Rejected { state, report, .. } = outcome else {
        panic!("{outcome:?}");
    };
    assert!(report.is_some_and(|r| !r.passed()));
    assert_eq!(
        p.log(),
        [
            "apply@starting",
            "endpoint@verifying",
            "rollback@rolling_back"
        ]
    );
    let s = state.unwrap();
    assert_eq!(rev(&s, Which::Active), Some("old"));
    assert!(s.pending.is_none() && s.rollout.is_none());
    assert_eq!(p.traffic(), "old");
    assert_eq!(f.state(), Some(s));
}

#[tokio::test]
async fn every_failing_step_before_retire_rolls_back_to_the_old_revision() {
    for (step, judge, expect) in [
        (
            "apply",
            Judge::Scale(1.0),
            vec!["apply@starting", "rollback@rolling_back"],
        ),
        (
            "endpoint",
            Judge::Scale(1.0),
            vec![
                "apply@starting",
                "endpoint@verifying",
                "rollback@rolling_back",
            ],
        ),
        (
            "-",
            Judge::Broken,
            vec![
                "apply@starting",
                "endpoint@verifying",
                "rollback@rolling_back",
            ],
        ),
        (
            "move_traffic",
            Judge::Scale(1.0),
            vec![
                "apply@starting",
                "endpoint@verifying",
                "move_traffic@moving_traffic",
                "rollback@rolling_back",
            ],
        ),
    ] {
        let f = Fixture::new();
        f.with_active();
        let p = Scripted::new(&f.ws).failing(step);
        p.set_traffic("old");
        let err = f
            .run(&p, RolloutMode::BeforeTraffic, judge, Cancellation::never())
            .await
            .unwrap_err();
        assert!(
            matches!(err, DeployError::RolledBack { .. }),
            "{step}: {err}"
        );
        assert!(
            err.to_string()
                .contains("the new revision was removed and the previous one keeps serving"),
            "{step}: {err}"
        );
        assert_eq!(p.log(), expect, "{step}");
        let s = f.state().unwrap();
        assert_eq!(rev(&s, Which::Active), Some("old"), "{step}");
        assert!(s.pending.is_none() && s.rollout.is_none(), "{step}: {s:?}");
        assert_eq!(p.traffic(), "old", "{step}");
    }
}

#[tokio::test]
async fn a_failed_first_deploy_leaves_nothing_recorded() {
    let f = Fixture::new();
    let p = Scripted::new(&f.ws).failing("endpoint");
    let err = f
        .run(
            &p,
            RolloutMode::BeforeTraffic,
            Judge::Scale(1.0),
            Cancellation::never(),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("the new revision was removed"),
        "{err}"
    );
    assert!(f.state().is_none());
}

#[tokio::test]
async fn a_failed_retire_keeps_the_new_revision_and_says_how_to_finish() {
    let f = Fixture::new();
    f.with_active();
    let p = Scripted::new(&f.ws).failing("retire");
    let err = f
        .run(
            &p,
            RolloutMode::BeforeTraffic,
            Judge::Scale(1.0),
            Cancellation::never(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, DeployError::Stranded { .. }), "{err}");
    assert!(
        err.hint().unwrap().contains("run the deploy again"),
        "{err:?}"
    );
    // The state says the rollout was retiring: a re-run finishes it.
    let s = f.state().unwrap();
    assert_eq!(s.phase(), Some(Phase::Retiring));
    assert!(s.rollout.as_ref().unwrap().should_finish());
    assert_eq!(p.traffic(), "new");

    let p = Scripted::new(&f.ws);
    let deployer = deployer(&p, &f, Cancellation::never());
    let (s, did) = deployer.recover(s).await.unwrap();
    assert!(did);
    let s = s.unwrap();
    assert_eq!(rev(&s, Which::Active), Some("new"));
    assert!(s.pending.is_none() && s.rollout.is_none());
    assert_eq!(p.log(), ["move_traffic@moving_traffic", "retire@retiring"]);
}

#[tokio::test]
async fn after_traffic_moves_first_and_a_failure_moves_it_back() {
    let f = Fixture::new();
    f.with_active();
    let p = Scripted::new(&f.ws);
    p.set_traffic("old");
    let outcome = f
        .run(
            &p,
            RolloutMode::AfterTraffic,
            Judge::Scale(1.0),
            Cancellation::never(),
        )
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Deployed { .. }));
    assert_eq!(
        p.log(),
        [
            "apply@starting",
            "move_traffic@moving_traffic",
            "endpoint@verifying",
            "retire@retiring"
        ]
    );

    let f = Fixture::new();
    f.with_active();
    let p = Scripted::new(&f.ws);
    p.set_traffic("old");
    let outcome = f
        .run(
            &p,
            RolloutMode::AfterTraffic,
            Judge::Scale(3.0),
            Cancellation::never(),
        )
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Rejected { .. }));
    assert_eq!(p.traffic(), "old");
    assert_eq!(p.log().last().unwrap(), "rollback@rolling_back");
}

#[tokio::test]
async fn unverified_never_compares() {
    let f = Fixture::new();
    let p = Scripted::new(&f.ws);
    let outcome = f
        .run(
            &p,
            RolloutMode::Unverified,
            Judge::Broken,
            Cancellation::never(),
        )
        .await
        .unwrap();
    assert!(matches!(outcome, Outcome::Deployed { report: None, .. }));
    assert!(
        !p.log().iter().any(|s| s.starts_with("endpoint")),
        "{:?}",
        p.log()
    );
}

#[tokio::test]
async fn a_signal_during_the_rollout_rolls_back() {
    let f = Fixture::new();
    f.with_active();
    let p = Scripted::new(&f.ws);
    p.set_traffic("old");
    let (handle, cancel) = Cancellation::manual();
    // A signal that arrived before `run` began is not this rollout's.
    handle.cancel("SIGINT");
    let outcome = deployer(&p, &f, cancel.clone())
        .run(plan(&p, &f).await, Some(&Judge::Scale(1.0)))
        .await;
    assert!(outcome.is_ok(), "{outcome:?}");

    let f = Fixture::new();
    f.with_active();
    let p = Scripted::new(&f.ws);
    p.set_traffic("old");
    let (handle, cancel) = Cancellation::manual();
    let run = deployer(&p, &f, cancel);
    let planned = plan(&p, &f).await;
    struct Interrupting(modelport_deploy::CancelHandle);
    #[async_trait::async_trait]
    impl Verifier for Interrupting {
        async fn verify(
            &self,
            _: &dyn Predictor,
            _: &dyn Reporter,
        ) -> modelport_deploy::Result<Verdict> {
            self.0.cancel("SIGTERM");
            std::future::pending().await
        }
    }
    let err = run
        .run(planned, Some(&Interrupting(handle)))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("interrupted (SIGTERM)"), "{err}");
    assert!(
        err.to_string().contains("previous one keeps serving"),
        "{err}"
    );
    assert_eq!(p.traffic(), "old");
    let s = f.state().unwrap();
    assert_eq!(rev(&s, Which::Active), Some("old"));
    assert!(s.pending.is_none() && s.rollout.is_none());
}

#[tokio::test]
async fn recovery_undoes_an_unproven_rollout_and_finishes_a_proven_one() {
    // A crash in each phase leaves the state as the rollout had written it.
    for (phase, verified, finish) in [
        (Phase::Starting, false, false),
        (Phase::Verifying, false, false),
        (Phase::MovingTraffic, true, true),
        (Phase::MovingTraffic, false, false),
        (Phase::Retiring, true, true),
        (Phase::RollingBack, false, false),
    ] {
        let f = Fixture::new();
        let mut s = f.with_active();
        let plan = Plan {
            previous: Some(s.clone()),
            ..Scripted::new(&f.ws)
                .plan(
                    &f.spec,
                    &Fixture::artifact(),
                    Some(&s),
                    RolloutMode::BeforeTraffic,
                )
                .await
                .unwrap()
        };
        s.pending = Some(
            plan.revision(endpoint(), serde_json::json!({"rev": "new"}))
                .unwrap(),
        );
        s.rollout = Some(Rollout {
            phase,
            verified,
            traffic_moved: matches!(phase, Phase::MovingTraffic | Phase::Retiring),
            ..Rollout::new(RolloutMode::BeforeTraffic)
        });
        f.ws.save_state(&s).unwrap();

        let p = Scripted::new(&f.ws);
        let (after, did) = deployer(&p, &f, Cancellation::never())
            .recover(s)
            .await
            .unwrap();
        assert!(did);
        let after = after.unwrap();
        assert!(
            after.pending.is_none() && after.rollout.is_none(),
            "{phase:?}"
        );
        let expect = if finish { "new" } else { "old" };
        assert_eq!(
            rev(&after, Which::Active),
            Some(expect),
            "{phase:?} {verified}"
        );
        // What recover returned is what it saved; saving stamps `updated_at`, which may
        // have crossed a second since.
        let saved = f.state().unwrap();
        assert!(saved.updated_at >= after.updated_at);
        assert_eq!(
            saved,
            DeploymentState {
                updated_at: saved.updated_at,
                ..after
            }
        );
    }
}
