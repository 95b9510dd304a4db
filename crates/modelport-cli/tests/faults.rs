//! Faults from the far end at every call: each distinct call of an update and of
//! a destroy, on AWS and on Google Cloud, meets in turn a throttling error, a
//! server error (both refused before anything is done), a dropped connection and
//! an answer that never comes (both after the call took effect, so a retry meets
//! what the first attempt did). Every fault must be retried by the documented
//! rule (the run succeeds), or reported with a clear error and a state from which
//! the same command, run again, converges. Either way the world ends as an
//! undisturbed run leaves it.
//!
//! Each walk prints `faults: PROVIDER FLOW KIND: N points, R retried, E reported`,
//! the figures RELIABILITY.md records.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Run;
use common::worlds::{
    AwsWorld, Flow, GcpWorld, Models, World, active_digest, flow_args, in_parallel, run, set_up,
    state,
};
use modelport_testkit::Trip;

/// How long one attempt of a cloud call may take in these runs
/// (`MODELPORT_REQUEST_TIMEOUT_S`), and how long a held answer is held.
const REQUEST_TIMEOUT_S: u64 = 3;
const HELD: Duration = Duration::from_secs(20);
/// A run that takes longer than this hangs.
const HANG: Duration = Duration::from_secs(240);

#[derive(Debug, Default)]
struct Tally {
    points: usize,
    retried: usize,
    reported: usize,
    /// Points past the end of a run that made fewer distinct calls.
    beyond: usize,
}

/// Runs `args` with the wire armed; kills it (and fails) when it hangs.
fn run_bounded(world: &dyn World, args: &[String], n: usize, trip: Trip) -> Run {
    let mut cmd = world.cmd(&args.iter().map(String::as_str).collect::<Vec<_>>());
    cmd.env("MODELPORT_REQUEST_TIMEOUT_S", REQUEST_TIMEOUT_S.to_string());
    world.arm(&mut cmd, Some(n), trip);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    world.spawned(child.id());
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > HANG {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{} at point {n} with a {}: the run hung for {HANG:?}\n{}",
                world.provider(),
                trip.name(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Run(child.wait_with_output().unwrap())
}

fn walk(world: &dyn World, flow: Flow, trip: Trip) -> Tally {
    let models = Models::load();
    let empty = world.resources();
    let args = flow_args(world, flow);
    let who = format!("{} {} {}", world.provider(), flow.name(), trip.name());

    set_up(world, &models, flow, &empty);
    let mut cmd = world.cmd(&args.iter().map(String::as_str).collect::<Vec<_>>());
    world.arm(&mut cmd, None, trip);
    Run(cmd.output().unwrap()).expect(0);
    let points = world.points();
    let reference = world.resources();
    let target = active_digest(&state(world));

    let mut tally = Tally {
        points: points.len(),
        ..Tally::default()
    };
    for n in 1..=points.len() {
        set_up(world, &models, flow, &empty);
        let out = run_bounded(world, &args, n, trip);
        let at = world.tripped();
        let case = format!("{who} at {n} ({at:?})");
        if at.is_none() {
            // Concurrent calls (Vertex deploys to two endpoints at once) make the
            // number of distinct points vary by one or two between runs.
            let had = world.points().len();
            assert!(
                n > had && out.code() == 0,
                "{case}: the run never reached the point (it had {had})\n{}",
                out.stderr()
            );
            tally.beyond += 1;
            continue;
        }
        if out.code() == 0 {
            tally.retried += 1;
        } else {
            // Reported: one clear error, then the same command finishes the job.
            let err = out.stderr();
            assert!(
                err.contains("error:") && !err.contains("panicked"),
                "{case}: no clear error\n{err}"
            );
            let rerun = run(world, &args);
            assert_eq!(
                rerun.code(),
                0,
                "{case}: reported\n{err}\nand the re-run failed\n{}",
                rerun.stderr()
            );
            tally.reported += 1;
            eprintln!("{case}: reported: {}", err.lines().next().unwrap_or(""));
        }
        match flow {
            Flow::Destroy => assert!(state(world).is_none(), "{case}: state left"),
            _ => assert_eq!(active_digest(&state(world)), target, "{case}"),
        }
        assert_eq!(world.resources(), reference, "{case}: another world");
    }
    run(
        world,
        &[
            "destroy".into(),
            "iris".into(),
            "--purge".into(),
            "-q".into(),
        ],
    )
    .expect(0);
    eprintln!(
        "faults: {who}: {} points, {} retried, {} reported, {} past the end of a shorter run",
        tally.points, tally.retried, tally.reported, tally.beyond
    );
    tally
}

/// Walks every fault over an update and a destroy, each walk in a world of its
/// own, all at the same time.
fn walk_all<W: World>(make: impl Fn() -> W + Sync) {
    let trips = [
        Trip::Throttle,
        Trip::ServerError,
        Trip::Reset,
        Trip::Timeout(HELD),
    ];
    let make = &make;
    let mut jobs: Vec<Box<dyn FnOnce() -> (Trip, Tally) + Send>> = Vec::new();
    for flow in [Flow::Update, Flow::Destroy] {
        for trip in trips {
            jobs.push(Box::new(move || (trip, walk(&make(), flow, trip))));
        }
    }
    for (trip, tally) in in_parallel(jobs) {
        assert_eq!(tally.retried + tally.reported + tally.beyond, tally.points);
        assert!(tally.beyond <= 2, "{tally:?}: too many points past the end");
        if trip.refuses() {
            // Throttling and server errors are what the SDKs' retry rules are for.
            assert_eq!(tally.reported, 0, "{} was not retried", trip.name());
        }
    }
}

#[test]
fn every_fault_of_aws_is_retried_or_reported_with_a_state_that_resumes() {
    walk_all(AwsWorld::new);
}

#[test]
fn every_fault_of_gcp_is_retried_or_reported_with_a_state_that_resumes() {
    walk_all(GcpWorld::new);
}

/// A comparison whose endpoint dies part-way reports the samples it compared and
/// the ones it could not, and does not pass: text, JSON and JUnit say so, and the
/// exit code is an error's (1), not a pass and not a mismatch.
#[test]
fn a_compare_against_an_endpoint_that_dies_mid_run_reports_what_it_could_not_check() {
    use modelport_testkit::cutoff::Cutoff;
    let project = common::Project::new().with_example("iris");
    let port = common::free_port();
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_modelport"))
        .current_dir(project.path())
        .args(["serve", "iris/model.onnx", "--host", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while reqwest::blocking::get(format!("{base}/ping")).map_or(true, |r| r.status() != 200) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "serve never answered"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    // Five requests answered, then nothing: about 200 of 2000 samples.
    let junit = project.path().join("junit.xml");
    let compare = |extra: &[&str]| {
        let proxy = Cutoff::start(&base, 5).unwrap();
        let url = format!("{}/invocations", proxy.url());
        let args = [
            "compare",
            url.as_str(),
            "iris/model.onnx",
            "--count",
            "2000",
            "--max-request-bytes",
            "2500",
            "--concurrency",
            "1",
        ];
        project.run(&[&args[..], extra].concat())
    };
    let text = compare(&["--junit", junit.to_str().unwrap()]);
    let json = compare(&["--output", "json"]);
    let _ = server.kill();
    let _ = server.wait();

    let text = text.expect(1);
    let out = text.stdout();
    assert!(out.contains("INCOMPLETE"), "{out}");
    assert!(!out.contains("PASS"), "{out}");
    let err = text.stderr();
    assert!(
        err.contains("of 2000 samples, then failed") && err.contains("hint:"),
        "{err}"
    );
    let report: serde_json::Value = serde_json::from_str(&json.expect(1).stdout()).unwrap();
    let unchecked = &report["unchecked"];
    let compared = report["samples"].as_u64().unwrap();
    assert!(compared > 0, "{report:#}");
    eprintln!(
        "{compared} samples compared, {} unchecked",
        unchecked["samples"]
    );
    assert_eq!(unchecked["total"], 2000, "{report:#}");
    assert_eq!(
        unchecked["samples"].as_u64().unwrap() + compared,
        2000,
        "{report:#}"
    );
    assert_eq!(report["passed"], false);
    let junit = std::fs::read_to_string(junit).unwrap();
    assert!(
        junit.contains("failures=\"1\"") && junit.contains("could not be compared"),
        "{junit}"
    );
}
