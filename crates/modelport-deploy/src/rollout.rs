//! The rollout: one state machine for every provider.
//!
//! ```text
//!            record (phase: starting)
//!                     │ apply: the pending revision comes up, no production traffic
//!                     ▼
//!              verifying ──── mismatch, error, signal ────┐
//!                     │ passed                            │
//!                     ▼                                   ▼
//!            moving_traffic ──── error, signal ───▶ rolling_back ──▶ previous revision serves
//!                     │ all traffic on the new revision   ▲
//!                     ▼                                   │
//!                 retiring ─── (a signal is held until it is done)
//!                     │ previous revision removed
//!                     ▼
//!               active = new, rollout cleared
//! ```
//!
//! With `verify.mode: after-traffic` the traffic moves right after apply and the
//! comparison runs after it; a failure then moves it back. With `--no-verify` nothing
//! is compared.
//!
//! Every transition is written to the state file before the step it names, so a
//! process that dies anywhere (a crash, `kill -9`) leaves a state that says where it
//! stopped: [`Deployer::recover`] finishes a rollout whose revision had passed and
//! whose traffic was moving, and undoes any other one. Errors, failed comparisons
//! and the first SIGINT or SIGTERM roll back at once; a second signal during the
//! roll-back stops it, and the state says what is left.

use std::future::Future;
use std::time::Duration;

use modelport_core::failpoint::{self, Action};
use modelport_core::provider::{Plan, Provider, ProviderResult, Reporter};
use modelport_core::state::{DeploymentState, Phase, Rollout, RolloutMode, Which, Workspace};
use modelport_verify::CompareReport;

use crate::cancel::Cancellation;
use crate::error::{DeployError, Result};
use crate::prepare::record_deployed;
use crate::verify::{Verdict, Verifier};

/// How a deploy ended, when it did not fail.
#[derive(Debug)]
pub enum Outcome {
    /// Nothing had to change: the planned revision already serves.
    UpToDate { state: DeploymentState },
    /// The new revision passed (or was not compared) and serves all the traffic.
    Deployed {
        state: DeploymentState,
        report: Option<CompareReport>,
    },
    /// The new revision failed its comparison and was removed; the previous one
    /// (if any) never stopped serving. `state` is `None` when nothing is left.
    Rejected {
        state: Option<DeploymentState>,
        report: Option<CompareReport>,
        reason: String,
    },
}

/// What a comparison during a rollout led to. Made once per deploy and
/// matched at once, so its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Checked {
    Passed(CompareReport),
    /// It failed and the new revision was removed.
    Rejected(Outcome),
}

/// A roll-back that did not finish: what failed, and how to finish it.
struct RollBackFailed {
    error: DeployError,
    hint: String,
}

impl RollBackFailed {
    const OUTCOME: &str = "removing the new revision did not finish";

    /// The error of a rollout stopped by `source` whose roll-back did not finish.
    fn stranded(self, source: DeployError) -> DeployError {
        DeployError::Stranded {
            source: Box::new(source),
            outcome: format!("{} ({})", Self::OUTCOME, self.error),
            hint: self.hint,
        }
    }
}

/// Runs rollouts of one provider's deployments.
pub struct Deployer<'a> {
    pub provider: &'a dyn Provider,
    pub workspace: &'a Workspace,
    pub reporter: &'a dyn Reporter,
    pub cancel: Cancellation,
}

impl Deployer<'_> {
    fn save(&self, state: &DeploymentState) -> Result<()> {
        Ok(self.workspace.save_state(state)?)
    }

    /// Writes `phase` (and what `change` sets) into the state before the step.
    fn enter(
        &self,
        state: &mut DeploymentState,
        phase: Phase,
        change: impl FnOnce(&mut Rollout),
    ) -> Result<()> {
        let rollout = state
            .rollout
            .get_or_insert_with(|| Rollout::new(RolloutMode::BeforeTraffic));
        rollout.phase = phase;
        change(rollout);
        tracing::debug!(deployment = %state.name, phase = phase.as_str(), "rollout");
        self.save(state)
    }

    /// The state as the provider last recorded it (after a step that failed).
    fn reload(&self, fallback: &DeploymentState) -> Result<DeploymentState> {
        Ok(self
            .workspace
            .load_state(&fallback.name)?
            .unwrap_or_else(|| fallback.clone()))
    }

    /// Runs one step unless a stop request arrives first (after `seen` ones).
    async fn step<T>(
        &self,
        name: &str,
        seen: u32,
        fut: impl Future<Output = ProviderResult<T>>,
    ) -> Result<T> {
        let work = async {
            fail_point(&format!("rollout.{name}")).await?;
            Ok(fut.await?)
        };
        tokio::select! {
            biased;
            _ = self.cancel.after(seen) => Err(DeployError::Interrupted(self.cancel.last().to_string())),
            r = work => r,
        }
    }

    /// Rolls out `plan`: see the module docs. The caller holds the deployment's lock
    /// and has [`recover`](Deployer::recover)ed what an earlier command left.
    pub async fn run(&self, mut plan: Plan, verifier: Option<&dyn Verifier>) -> Result<Outcome> {
        let provider = self.provider;
        let reporter = self.reporter;
        // Signals that arrive from here on stop the rollout.
        let seen = self.cancel.count();
        if plan.is_noop() {
            let state = self
                .step("apply", seen, provider.apply(&plan, reporter))
                .await?;
            record_deployed(self.workspace, &state, &plan.spec);
            return Ok(Outcome::UpToDate { state });
        }
        let mode = plan.mode();
        let mut state = plan.starting_state();
        state.rollout = Some(Rollout::new(mode));
        // Recorded before anything is created.
        fail_point("rollout.record").await?;
        self.save(&state)?;
        plan.previous = Some(state.clone());

        let applied = self
            .step("apply", seen, provider.apply(&plan, reporter))
            .await;
        let mut state = match applied {
            Ok(s) => s,
            Err(e) => return Err(self.abandon(&state, e).await),
        };
        if state.pending.is_none() {
            // The planned revision was found serving already (a lost state file).
            state.rollout = None;
            self.save(&state)?;
            record_deployed(self.workspace, &state, &plan.spec);
            return Ok(Outcome::UpToDate { state });
        }

        let mut report = None;
        if mode == RolloutMode::BeforeTraffic {
            match self.checked(&mut state, seen, verifier).await? {
                Checked::Passed(r) => report = Some(r),
                Checked::Rejected(outcome) => return Ok(outcome),
            }
        }

        if let Err(e) = self.enter(&mut state, Phase::MovingTraffic, |r| {
            r.traffic_moved = true;
            r.verified = mode != RolloutMode::AfterTraffic;
        }) {
            return Err(self.abandon(&state, e).await);
        }
        let moved = self
            .step(
                "move_traffic",
                seen,
                provider.move_traffic(state.clone(), reporter),
            )
            .await;
        state = match moved {
            Ok(s) => s,
            Err(e) => return Err(self.abandon(&state, e).await),
        };

        if mode == RolloutMode::AfterTraffic {
            match self.checked(&mut state, seen, verifier).await? {
                Checked::Passed(r) => report = Some(r),
                Checked::Rejected(outcome) => return Ok(outcome),
            }
        }

        self.enter(&mut state, Phase::Retiring, |r| r.verified = true)?;
        let state = self.retire(state).await?;
        record_deployed(self.workspace, &state, &plan.spec);
        Ok(Outcome::Deployed { state, report })
    }

    /// The comparison of the pending revision; a failed one is rolled back and
    /// reported, an error rolled back and returned.
    async fn checked(
        &self,
        state: &mut DeploymentState,
        seen: u32,
        verifier: Option<&dyn Verifier>,
    ) -> Result<Checked> {
        match self.verify(state, seen, verifier).await {
            Ok(Verdict::Passed(r)) => Ok(Checked::Passed(r)),
            Ok(Verdict::Failed { report, reason }) => Ok(Checked::Rejected(
                self.reject(state.clone(), report, reason).await?,
            )),
            Err(e) => Err(self.abandon(state, e).await),
        }
    }

    /// The comparison of the pending revision, with its phase recorded first.
    async fn verify(
        &self,
        state: &mut DeploymentState,
        seen: u32,
        verifier: Option<&dyn Verifier>,
    ) -> Result<Verdict> {
        let Some(verifier) = verifier else {
            return Err(DeployError::other(
                "this rollout compares the new revision, but no comparison was given",
            ));
        };
        self.enter(state, Phase::Verifying, |_| {})?;
        self.reporter
            .on_start("comparing the new revision with the local runtime");
        let endpoint = self
            .step(
                "verify",
                seen,
                self.provider.endpoint(state, Which::Pending),
            )
            .await?;
        let verdict = async { verifier.verify(endpoint.as_ref(), self.reporter).await };
        tokio::select! {
            biased;
            _ = self.cancel.after(seen) => Err(DeployError::Interrupted(self.cancel.last().to_string())),
            r = verdict => r,
        }
    }

    /// Retires the previous revision. A stop request waits until it is done: the
    /// traffic is already on the new revision, and stopping half-way would only
    /// leave the old one running and billed.
    async fn retire(&self, state: DeploymentState) -> Result<DeploymentState> {
        fail_point("rollout.retire").await?;
        match self.provider.retire(state.clone(), self.reporter).await {
            Ok(mut s) => {
                s.rollout = None;
                self.save(&s)?;
                Ok(s)
            }
            Err(e) => {
                let outcome = "the new revision serves all the traffic, but the previous one \
                               could not be removed";
                Err(DeployError::Stranded {
                    source: Box::new(e.into()),
                    outcome: outcome.into(),
                    hint: format!(
                        "run the deploy again to finish removing it, or `modelport destroy {}`",
                        state.name
                    ),
                })
            }
        }
    }

    /// A failed comparison: the new revision is removed, then the outcome is reported.
    async fn reject(
        &self,
        state: DeploymentState,
        report: Option<CompareReport>,
        reason: String,
    ) -> Result<Outcome> {
        self.reporter
            .on_start("the comparison failed: removing the new revision");
        let state = self
            .roll_back(state)
            .await
            .map_err(|f| f.stranded(DeployError::other(reason.clone())))?;
        Ok(Outcome::Rejected {
            state,
            report,
            reason,
        })
    }

    /// Rolls back after `cause`; the error says what the roll-back achieved.
    async fn abandon(&self, last: &DeploymentState, cause: DeployError) -> DeployError {
        let interrupted = cause.is_interrupt();
        self.reporter.on_start(&if interrupted {
            format!(
                "{}: removing the new revision (interrupt again to stop the clean-up)",
                cause
            )
        } else {
            "removing the new revision".to_string()
        });
        let state = match self.reload(last) {
            Ok(s) => s,
            Err(e) => {
                return DeployError::Stranded {
                    source: Box::new(cause),
                    outcome: format!("the state could not be read back ({e})"),
                    hint: format!("`modelport destroy {}` removes what is left", last.name),
                };
            }
        };
        let had_active = state.active.is_some();
        match self.roll_back(state).await {
            Ok(_) => DeployError::RolledBack {
                source: Box::new(cause),
                outcome: if had_active {
                    "the new revision was removed and the previous one keeps serving".into()
                } else {
                    "the new revision was removed".into()
                },
            },
            Err(f) => f.stranded(cause),
        }
    }

    /// Removes the pending revision; the traffic goes (back) to the active one.
    /// `Ok(None)` when nothing of the deployment is left.
    async fn roll_back(
        &self,
        mut state: DeploymentState,
    ) -> std::result::Result<Option<DeploymentState>, RollBackFailed> {
        let name = state.name.clone();
        let failed = |error: DeployError| RollBackFailed {
            error,
            hint: format!(
                "run the deploy again, or `modelport destroy {name}`: both finish the clean-up from the state"
            ),
        };
        self.enter(&mut state, Phase::RollingBack, |_| {})
            .map_err(failed)?;
        // The first signal started (or did not touch) this roll-back; a second stops it.
        let seen = self.cancel.count().max(1);
        let result = self
            .step(
                "rollback",
                seen,
                self.provider.rollback(state, self.reporter),
            )
            .await;
        let mut state = result.map_err(failed)?;
        state.rollout = None;
        if state.active.is_none() && state.pending.is_none() {
            self.workspace
                .remove_state(&state.name)
                .map_err(|e| failed(e.into()))?;
            return Ok(None);
        }
        self.save(&state).map_err(failed)?;
        Ok(Some(state))
    }

    /// Finishes or undoes the rollout an earlier command left in `state`: finished
    /// when its revision had passed and its traffic was moving, undone otherwise.
    /// Returns the state afterwards (`None` when nothing is left) and whether
    /// anything was done.
    pub async fn recover(&self, state: DeploymentState) -> Result<(Option<DeploymentState>, bool)> {
        let mut state = state;
        if state.pending.is_none() {
            if state.rollout.take().is_some() {
                self.save(&state)?;
            }
            return Ok((Some(state), false));
        }
        let finish = state.rollout.as_ref().is_some_and(Rollout::should_finish);
        if finish {
            self.reporter.on_start(
                "finishing the rollout an interrupted deploy left (its revision had passed its comparison)",
            );
            self.enter(&mut state, Phase::MovingTraffic, |r| r.traffic_moved = true)?;
            let seen = self.cancel.count();
            let mut state = self
                .step(
                    "move_traffic",
                    seen,
                    self.provider.move_traffic(state, self.reporter),
                )
                .await?;
            self.enter(&mut state, Phase::Retiring, |_| {})?;
            let state = self.retire(state).await?;
            Ok((Some(state), true))
        } else {
            self.reporter.on_start(
                "undoing the rollout an interrupted deploy left (the previous revision keeps serving)",
            );
            let state = self
                .roll_back(state)
                .await
                .map_err(|f| DeployError::Stranded {
                    source: Box::new(f.error),
                    outcome: RollBackFailed::OUTCOME.into(),
                    hint: f.hint,
                })?;
            Ok((state, true))
        }
    }
}

/// Acts on the fail point `name` when a test armed it (debug builds only).
async fn fail_point(name: &str) -> Result<()> {
    match failpoint::hit(name) {
        Some(Action::Error) => Err(DeployError::FailPoint(name.to_string())),
        Some(Action::Sleep(ms)) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok(())
        }
        _ => Ok(()),
    }
}
