//! The rollout's promise on the local provider, through the CLI: no production
//! request reaches a new revision before its comparison passed, and every way a
//! deploy can stop (a failed comparison, a reference that does not load, bad
//! samples, an I/O error, SIGINT, SIGTERM, kill -9, a crash at any step) leaves the
//! old revision serving and a state that a re-run or `destroy` finishes from.
//! Deployments are locked: two commands never change one at once.
//!
//! Fail points (`MODELPORT_FAILPOINTS`, debug builds only) pause or crash the CLI
//! at a named step; the state file says which step the rollout is in.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    Answer, Interruption, PhaseWatch, Project, Traffic, alive, finish, first, free_port, last,
    root, served_digest, spawn, wait_for_phase, wait_gone,
};

const SPEC: &str = "iris/modelport.yaml";

/// A project with the iris example, served on a fixed port.
fn fixed_port_project() -> (Project, u16) {
    fixed_port_example("iris")
}

fn fixed_port_example(example: &str) -> (Project, u16) {
    let p = Project::new().with_example(example);
    let port = free_port();
    let path = p.path().join(format!("{example}/modelport.yaml"));
    let yaml = std::fs::read_to_string(&path).unwrap().replace(
        "    flavour: sagemaker\n",
        &format!("    flavour: sagemaker\n    port: {port}\n"),
    );
    std::fs::write(&path, yaml).unwrap();
    (p, port)
}

/// Puts the svm model (same inputs, other answers) in place of iris's: the next
/// deploy is an update to a new artifact.
fn change_model(p: &Project) {
    change_model_to(p, "svm");
}

/// Puts the fixture `name` in place of iris's model.
fn change_model_to(p: &Project, name: &str) {
    std::fs::copy(
        root()
            .join("tests/fixtures/models")
            .join(name)
            .join("model.onnx"),
        p.path().join("iris/model.onnx"),
    )
    .unwrap();
}

fn deploy(p: &Project, extra: &[&str]) -> Command {
    let mut args = vec!["deploy", "-f", SPEC];
    args.extend_from_slice(extra);
    p.cmd(&args)
}

fn active_digest(p: &Project) -> String {
    p.state("iris").unwrap()["active"]["model_digest"]
        .as_str()
        .unwrap()
        .to_string()
}

fn active_revision(p: &Project, name: &str) -> String {
    p.state(name).unwrap()["active"]["resources"]["revision"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn no_production_request_reaches_the_new_revision_before_it_passes() {
    let (p, port) = fixed_port_example("mlp");
    let spec = "mlp/modelport.yaml";
    let url = format!("http://127.0.0.1:{port}/invocations");
    let samples: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p.path().join("mlp/samples.json")).unwrap())
            .unwrap();
    let row = serde_json::json!({"instances": [samples["instances"][0]]}).to_string();
    p.run(&["deploy", "-f", spec]).expect(0);
    let old_pid = p.pid("mlp");

    // An update that passes (a new revision of the same model, told apart by the
    // revision each server names), then one that cannot: tract in the server,
    // onnxruntime as the reference, and no tolerance (the engines round differently).
    for passes in [true, false] {
        let path = p.path().join(spec);
        let yaml = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, common::update(&yaml, passes, 61)).unwrap();
        let before = active_revision(&p, "mlp");
        let traffic = {
            let (url, row) = (url.clone(), row.clone());
            Traffic::start(move |c| {
                c.post(&url)
                    .header("content-type", "application/json")
                    .body(row.clone())
            })
        };
        let watch = PhaseWatch::start(p.path().join(".modelport/state/mlp.json"));
        let cmd = p.cmd(&["deploy", "-f", spec, "--engine", "onnxruntime"]);
        let (out, answers) = common::deploy_under_traffic(cmd, traffic);
        let phases = watch.stop();
        let verifying = first(&phases, "verifying");

        let failed: Vec<_> = answers.iter().filter(|a| !a.ok).collect();
        assert!(
            failed.is_empty(),
            "{} of {} production requests failed: {failed:?}",
            failed.len(),
            answers.len()
        );
        let during = answers.iter().filter(|a| a.at > verifying).count();
        assert!(during > 50, "only {during} requests during the rollout");
        let by_old = |a: &&Answer| a.revision.as_deref() == Some(before.as_str());
        if passes {
            out.expect(0);
            // An answer received before a read that still found the comparison
            // under way came from a revision that had traffic before it passed.
            // (The first read that finds moving_traffic can come after the first
            // answers from the new revision: the state is written, then the
            // traffic moves, and the watcher reads every few milliseconds.)
            let still_verifying = last(&phases, "verifying");
            assert!(
                first(&phases, "moving_traffic") > still_verifying,
                "{phases:?}"
            );
            let after = active_revision(&p, "mlp");
            assert_ne!(after, before);
            let early: Vec<_> = answers
                .iter()
                .filter(|a| a.at < still_verifying && !by_old(a))
                .collect();
            assert!(
                early.is_empty(),
                "{} production requests were answered by another revision before the comparison passed: {:?}",
                early.len(),
                early.first()
            );
            let late = answers
                .iter()
                .filter(|a| a.revision.as_deref() == Some(after.as_str()))
                .count();
            assert!(late > 0, "the new revision never answered on port {port}");
            assert!(wait_gone(old_pid), "the old server still runs");
        } else {
            let out = out.expect(3);
            assert!(
                out.stdout().contains("previous one keeps serving"),
                "{}",
                out.stdout()
            );
            // Not one production request reached the rejected revision.
            let foreign: Vec<_> = answers.iter().filter(|a| !by_old(a)).collect();
            assert!(
                foreign.is_empty(),
                "{} foreign answers: {:?}",
                foreign.len(),
                foreign.first()
            );
            assert_eq!(active_revision(&p, "mlp"), before);
        }
    }
    p.run(&["destroy", "mlp"]).expect(0);
}

#[test]
fn every_interruption_leaves_the_old_revision_serving_and_a_state_to_finish_from() {
    for (i, case) in Interruption::common().into_iter().enumerate() {
        let (p, port) = fixed_port_project();
        let url = format!("http://127.0.0.1:{port}/invocations");
        p.run(&["deploy", "-f", SPEC]).expect(0);
        let old = active_digest(&p);
        let old_pid = p.pid("iris");
        change_model_to(&p, case.model);
        case.run(&p, "iris", SPEC, deploy(&p, &[]));

        // Whatever happened, the old revision answers production requests (beside
        // the new one, when the crash came after the port was handed over to it).
        assert!(alive(old_pid), "{}: the old server stopped", case.what);
        let served = served_digest(&url).unwrap();
        if !case.finished_later {
            assert_eq!(served, old, "{}", case.what);
        }
        assert_eq!(
            p.state("iris").unwrap()["active"]["model_digest"],
            old.as_str(),
            "{}",
            case.what
        );

        // A re-run finishes (or undoes and redoes) the rollout; destroy removes it all.
        if i % 2 == 0 || case.finished_later {
            let rerun = p.run(&["deploy", "-f", SPEC]).expect(0);
            let text = format!("{}{}", rerun.stdout(), rerun.stderr());
            assert!(text.contains(case.rerun_says()), "{}: {text}", case.what);
            let new = active_digest(&p);
            assert_ne!(new, old, "{}", case.what);
            assert_eq!(served_digest(&url), Some(new), "{}", case.what);
            assert!(
                wait_gone(old_pid),
                "{}: the old server still runs",
                case.what
            );
            let state = p.state("iris").unwrap();
            assert!(
                state["pending"].is_null() && state["rollout"].is_null(),
                "{state}"
            );
        }
        let pending_pid = p.state("iris").unwrap()["pending"]["resources"]["pid"].as_u64();
        p.run(&["destroy", "iris"]).expect(0);
        assert!(p.state("iris").is_none());
        assert!(
            wait_gone(old_pid),
            "{}: destroy left the old server",
            case.what
        );
        if let Some(pid) = pending_pid {
            assert!(
                wait_gone(pid as u32),
                "{}: destroy left the new server",
                case.what
            );
        }
    }
}

#[test]
fn bad_samples_are_refused_with_the_file_named_and_the_old_revision_kept() {
    let (p, port) = fixed_port_project();
    p.run(&["deploy", "-f", SPEC]).expect(0);
    let old = active_digest(&p);
    std::fs::write(
        p.path().join("iris/bad.json"),
        r#"{"instances": [[1.0, 2.0]]}"#,
    )
    .unwrap();
    let path = p.path().join(SPEC);
    let yaml = std::fs::read_to_string(&path)
        .unwrap()
        .replace("samples: samples.json", "samples: bad.json");
    std::fs::write(&path, yaml).unwrap();
    let out = p.run(&["deploy", "-f", SPEC]).expect(1);
    let err = out.stderr();
    assert!(
        err.contains("bad.json") && err.contains("do not fit the model"),
        "{err}"
    );
    assert!(err.contains("previous one keeps serving"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    assert_eq!(
        served_digest(&format!("http://127.0.0.1:{port}/invocations")),
        Some(old.clone())
    );
    assert_eq!(active_digest(&p), old);
    p.run(&["destroy", "iris"]).expect(0);
}

#[test]
fn an_answer_from_another_server_fails_the_verification() {
    let p = Project::new().with_example("iris");
    p.run(&["deploy", "-f", SPEC]).expect(0);
    let old = active_digest(&p);
    change_model(&p);
    let mut cmd = deploy(&p, &[]);
    cmd.env("MODELPORT_FAILPOINTS", "rollout.verify=sleep(3000)");
    let mut child = spawn(cmd);
    wait_for_phase(&p, "iris", "verifying", &mut child);
    // Something else takes the new server's port: the old model, under another name.
    let state = p.state("iris").unwrap();
    let pending = &state["pending"]["resources"];
    let port = pending["port"].as_u64().unwrap().to_string();
    common::kill(pending["pid"].as_u64().unwrap() as u32);
    assert!(wait_gone(pending["pid"].as_u64().unwrap() as u32));
    let impostor_model = p.path().join(".modelport/models").join(&old);
    let mut impostor = std::process::Command::new(env!("CARGO_BIN_EXE_modelport"))
        .args([
            "serve",
            impostor_model.to_str().unwrap(),
            "--host",
            "127.0.0.1",
        ])
        .args(["--port", &port, "--revision", "impostor"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = Instant::now();
    while served_digest(&format!("http://127.0.0.1:{port}/invocations")).is_none() {
        assert!(
            ready.elapsed() < Duration::from_secs(30),
            "the impostor never answered"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = finish(child);
    let _ = impostor.kill();
    let _ = impostor.wait();
    let out = out.expect(3);
    assert!(
        out.stdout()
            .contains("an answer came from server revision impostor"),
        "{}",
        out.stdout()
    );
    assert_eq!(active_digest(&p), old);
    p.run(&["destroy", "iris"]).expect(0);
}

#[test]
fn one_writer_per_deployment() {
    let (p, _port) = fixed_port_project();
    p.run(&["deploy", "-f", SPEC]).expect(0);
    change_model(&p);
    let mut cmd = deploy(&p, &[]);
    cmd.env("MODELPORT_FAILPOINTS", "rollout.verify=sleep(8000)");
    let mut first = spawn(cmd);
    wait_for_phase(&p, "iris", "verifying", &mut first);
    let holder = first.id();

    // A second deploy and a destroy give up with the holder named...
    for args in [
        vec!["deploy", "-f", SPEC, "--wait-lock", "1"],
        vec!["destroy", "iris", "--wait-lock", "1"],
        vec!["compare", "iris", "--wait-lock", "1"],
    ] {
        let out = p.run(&args).expect(1);
        let err = out.stderr();
        assert!(
            err.contains(&format!("is in use by `modelport deploy` (pid {holder}")),
            "{args:?}: {err}"
        );
        assert!(err.contains("--wait-lock"), "{args:?}: {err}");
    }
    // ... or wait for it: the destroy runs once the deploy is done.
    let destroy = spawn(p.cmd(&["destroy", "iris", "--wait-lock", "60"]));
    let deployed = finish(first).expect(0);
    assert!(deployed.stdout().contains("PASS"), "{}", deployed.stdout());
    let destroyed = finish(destroy).expect(0);
    assert!(
        destroyed.stderr().contains("waiting up to 60 s"),
        "{}",
        destroyed.stderr()
    );
    assert!(
        destroyed.stdout().contains("destroyed iris"),
        "{}",
        destroyed.stdout()
    );
    assert!(p.state("iris").is_none());

    // Two deploys at once: one waits for the other, and both end deployed.
    let a = spawn(deploy(&p, &["--wait-lock", "60"]));
    let b = spawn(deploy(&p, &["--wait-lock", "60"]));
    let (a, b) = (finish(a).expect(0), finish(b).expect(0));
    let texts = [
        format!("{}{}", a.stdout(), a.stderr()),
        format!("{}{}", b.stdout(), b.stderr()),
    ];
    assert_eq!(
        texts.iter().filter(|t| t.contains("PASS")).count(),
        1,
        "{texts:?}"
    );
    assert_eq!(
        texts.iter().filter(|t| t.contains("up to date")).count(),
        1,
        "{texts:?}"
    );
    let states = std::fs::read_dir(p.path().join(".modelport/state"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count();
    assert_eq!(states, 1);
    p.run(&["destroy", "iris"]).expect(0);
}

/// The reference is the packaged artifact, the bytes the endpoint serves: a model
/// file changed on disk once packaging is done does not change what the endpoint
/// is compared with.
#[test]
fn the_reference_is_the_packaged_model_not_the_file_beside_the_spec() {
    let p = Project::new().with_example("iris");
    let mut cmd = deploy(&p, &[]);
    cmd.env("MODELPORT_FAILPOINTS", "rollout.verify=sleep(2000)");
    let mut child = spawn(cmd);
    wait_for_phase(&p, "iris", "verifying", &mut child);
    change_model(&p);
    let out = finish(child).expect(0);
    assert!(out.stdout().contains("PASS"), "{}", out.stdout());
    let digest = active_digest(&p);
    assert!(
        out.stdout().contains(&format!("sha256:{}", &digest[..12])),
        "{}",
        out.stdout()
    );
    p.run(&["destroy", "iris"]).expect(0);
}
