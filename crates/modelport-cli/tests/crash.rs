//! A crash at every step: `deploy` (a first deploy and an update) and `destroy`
//! are killed with SIGKILL right after each distinct call they make, one run per
//! call, on every provider; then the same command runs again. Every re-run must
//! converge (a verified deployment of the new model, or nothing left), leave
//! exactly what an uninterrupted run leaves (nothing orphaned, nothing missing),
//! and while the crashed state stood no production request could reach a
//! revision that had not passed its comparison.
//!
//! The points: on AWS and Google Cloud, the calls the fakes see (the SageMaker
//! fake with its S3 pass-through; the Vertex AI fake and the Cloud Storage proxy,
//! sharing one wire), counted by `modelport_testkit::Tripwire`: every call that
//! changes something, and a read the first time it is seen since the last change.
//! The fake handles the call, then kills the CLI before the answer leaves. On the
//! local provider, which calls no cloud, the points are its side effects (state
//! written, server started or signalled, artifact stored), which the CLI marks
//! itself (`MODELPORT_STEPS`) and at which it kills itself (`MODELPORT_CRASH_AT`,
//! debug builds).
//!
//! Each walk prints `crash points: PROVIDER FLOW: N points, N converged`, the
//! figures RELIABILITY.md records.
mod common;

use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;

use common::Run;
use common::worlds::{
    AwsWorld, Flow, GcpWorld, Local, Models, NAME, World, active_digest, digest_on, flow_args,
    in_parallel, run, set_up, state,
};
use modelport_testkit::Trip;

/// What a walk found.
#[derive(Debug, Default)]
struct Walk {
    points: usize,
    converged: usize,
    /// Points past the end of a run that made fewer distinct calls.
    beyond: usize,
}

/// Runs `flow` once to learn its points and what it leaves, then once per point,
/// killed there, followed by a re-run; asserts after each.
fn walk(world: &dyn World, flow: Flow) -> Walk {
    let models = Models::load();
    let empty = world.resources();
    let args = flow_args(world, flow);
    let who = format!("{} {}", world.provider(), flow.name());

    // The uninterrupted run: its points, and the world it leaves.
    set_up(world, &models, flow, &empty);
    let mut cmd = world.cmd(&args.iter().map(String::as_str).collect::<Vec<_>>());
    world.arm(&mut cmd, None, Trip::Kill);
    Run(cmd.output().unwrap()).expect(0);
    let points = world.points();
    let reference = world.resources();
    let target = active_digest(&state(world));
    assert!(!points.is_empty(), "{who}: no points");
    eprintln!("{who}: {} points:\n  {}", points.len(), points.join("\n  "));

    let mut found = Walk {
        points: points.len(),
        converged: 0,
        beyond: 0,
    };
    for n in 1..=points.len() {
        set_up(world, &models, flow, &empty);
        let before = active_digest(&state(world));
        let mut cmd = world.cmd(&args.iter().map(String::as_str).collect::<Vec<_>>());
        world.arm(&mut cmd, Some(n), Trip::Kill);
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        world.spawned(child.id());
        let out = child.wait_with_output().unwrap();
        let at = world.tripped().unwrap_or_else(|| format!("point {n}"));
        let case = format!("{who}, killed at {n} ({at})");
        if out.status.success() && world.points().len() < n {
            // Concurrent calls (Vertex deploys to two endpoints at once) make the
            // number of distinct points vary by one or two between runs.
            found.beyond += 1;
            continue;
        }
        assert_eq!(
            out.status.signal(),
            Some(9),
            "{case}: the run was not killed there ({:?}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );

        // While the crashed state stands: production reaches the previous
        // revision, or the new one only once it passed.
        let crashed = state(world);
        let verified = crashed
            .as_ref()
            .is_some_and(|s| s["rollout"]["verified"] == true);
        let pending = crashed
            .as_ref()
            .and_then(|s| s["pending"]["model_digest"].as_str().map(str::to_string));
        // A rollout that finished before the kill made the new revision active.
        let active = active_digest(&crashed);
        // A destroy brings nothing new up: whatever still answers is the old one.
        let serving = if flow == Flow::Destroy {
            Vec::new()
        } else {
            world.serving()
        };
        for (what, port) in serving {
            // No answer (a server draining after SIGTERM) is no unproven answer.
            let digest = digest_on(port);
            let allowed = digest.is_none()
                || (digest == before
                    || digest == active
                    || (digest == pending && verified)
                    || (flow == Flow::First && world.first_deploy_serves_unverified()));
            assert!(
                allowed,
                "{case}: {what} takes production traffic with {digest:?}; the previous \
                 revision was {before:?}, the pending one {pending:?} (verified: {verified})\n\
                 state: {crashed:#?}"
            );
        }

        // The same command again finishes the job.
        let rerun = run(world, &args);
        assert_eq!(
            rerun.code(),
            0,
            "{case}: the re-run failed\n--- stdout\n{}--- stderr\n{}",
            rerun.stdout(),
            rerun.stderr()
        );
        let after = state(world);
        match flow {
            Flow::Destroy => assert!(after.is_none(), "{case}: state left: {after:?}"),
            _ => {
                let s = after.as_ref().unwrap();
                assert_eq!(active_digest(&after), target, "{case}: {s:#}");
                assert!(
                    s["pending"].is_null() && s["rollout"].is_null(),
                    "{case}: {s:#}"
                );
                let served: BTreeSet<Option<String>> = world
                    .serving()
                    .into_iter()
                    .map(|(_, p)| digest_on(p))
                    .collect();
                assert_eq!(
                    served,
                    BTreeSet::from([target.clone()]),
                    "{case}: production is not served by the new revision alone"
                );
            }
        }
        assert_eq!(
            world.resources(),
            reference,
            "{case}: the re-run left another world than an uninterrupted run"
        );
        found.converged += 1;
    }
    run(
        world,
        &["destroy".into(), NAME.into(), "--purge".into(), "-q".into()],
    )
    .expect(0);
    eprintln!(
        "crash points: {who}: {} points, {} converged, {} past the end of a shorter run",
        found.points, found.converged, found.beyond
    );
    found
}

/// Walks each flow in a world of its own, at the same time, and asserts that
/// every crash converged.
fn assert_all_converge<W: World>(make: impl Fn() -> W + Sync) {
    let make = &make;
    let walks = in_parallel(
        [Flow::First, Flow::Update, Flow::Destroy]
            .into_iter()
            .map(|flow| Box::new(move || walk(&make(), flow)) as Box<dyn FnOnce() -> Walk + Send>)
            .collect(),
    );
    for walk in walks {
        assert_eq!(walk.converged + walk.beyond, walk.points);
        assert!(walk.beyond <= 2, "{walk:?}: too many points past the end");
    }
}

#[test]
fn every_crash_of_a_local_deploy_or_destroy_converges_on_a_rerun() {
    assert_all_converge(Local::new);
}

#[test]
fn every_crash_of_an_aws_deploy_or_destroy_converges_on_a_rerun() {
    assert_all_converge(AwsWorld::new);
}

#[test]
fn every_crash_of_a_gcp_deploy_or_destroy_converges_on_a_rerun() {
    assert_all_converge(GcpWorld::new);
}
