//! Full disks and bad files: packaging, the artifact store, state writes and a
//! cloud deploy's staging on a disk that fills up (a small tmpfs each test
//! mounts), and state files that are truncated, corrupt or from a newer
//! modelport. Each gives a clear error naming the file, and nothing written
//! before is lost: the state stays the last good version, the previous revision
//! keeps serving, and once there is room again a re-run finishes.

mod common;

use std::path::Path;

use common::clouds::Aws;
use common::{Project, Run};
use modelport_testkit::disk::SmallDisk;

/// What a failed write must not leave under `dir`: files whose names mark them as
/// temporaries (`.tmp`), and anything in a `.modelport/tmp` scratch folder.
fn temporaries(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            let name = e.file_name().to_string_lossy().into_owned();
            if name.contains(".tmp") || d.file_name().is_some_and(|n| n == "tmp") {
                found.push(p.display().to_string());
            }
        }
    }
    found
}

fn says_disk_full(run: &Run, file_hint: &str) {
    let err = run.stderr();
    assert!(
        err.contains("No space left on device") && err.contains(file_hint),
        "the error should say the disk is full and name {file_hint}:\n{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn packaging_onto_a_full_disk_names_the_file_and_leaves_no_half_archive() {
    let disk = SmallDisk::mount(512 * 1024).unwrap();
    let p = Project::new().with_example("text-classifier");
    let out = disk.path().join("dist");
    let run = p.run(&[
        "package",
        "text-classifier/model.onnx",
        "--out",
        out.to_str().unwrap(),
    ]);
    let run = run.expect(1);
    says_disk_full(&run, &out.display().to_string());
    assert!(
        temporaries(disk.path()).is_empty(),
        "{:?}",
        temporaries(disk.path())
    );
    assert!(!out.join("model.tar.gz").exists());
}

/// The local provider with its `.modelport` on a small disk: a deploy that fits,
/// then an update that does not (the store and the state cannot be written).
#[test]
fn a_local_update_on_a_full_disk_keeps_the_last_good_state_and_the_old_server() {
    let disk = SmallDisk::mount(8 * 1024 * 1024).unwrap();
    let p = Project::new().with_example("iris");
    let home = disk.path().join(".modelport");
    let deploy = |p: &Project| {
        let mut cmd = p.cmd(&["deploy", "-f", "iris/modelport.yaml", "-q"]);
        cmd.env("MODELPORT_HOME", &home);
        Run(cmd.output().unwrap())
    };
    deploy(&p).expect(0);
    let state_file = home.join("state/iris.json");
    let good = std::fs::read(&state_file).unwrap();
    let served: serde_json::Value = serde_json::from_slice(&good).unwrap();
    let url = served["active"]["endpoint"]["predict_url"]
        .as_str()
        .unwrap()
        .to_string();

    // A new model and no room for it.
    std::fs::copy(
        common::root().join("examples/text-classifier/model.onnx"),
        p.path().join("iris/model.onnx"),
    )
    .unwrap();
    std::fs::copy(
        common::root().join("examples/text-classifier/samples.json"),
        p.path().join("iris/samples.json"),
    )
    .unwrap();
    let entries = |dir: &str| {
        let mut names: Vec<String> = std::fs::read_dir(home.join(dir))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let (artifacts, models) = (entries("artifacts"), entries("models"));
    // No room to package (64 KiB), then room to package the 2.1 MiB archive but
    // not to store it (3 MiB).
    for (free, names) in [(64 * 1024, "/tmp/"), (3 * 1024 * 1024, "/artifacts/")] {
        disk.drain().unwrap();
        disk.fill_leaving(free).unwrap();
        let run = deploy(&p).expect(1);
        says_disk_full(&run, &home.display().to_string());
        assert!(run.stderr().contains(names), "{free}: {}", run.stderr());
        assert!(
            run.stderr().contains("hint: free some disk space"),
            "{}",
            run.stderr()
        );
        assert_eq!(
            std::fs::read(&state_file).unwrap(),
            good,
            "the state is not the last good one"
        );
        assert!(temporaries(&home).is_empty(), "{:?}", temporaries(&home));
        assert_eq!(entries("artifacts"), artifacts, "a half-stored artifact");
        assert_eq!(entries("models"), models, "a half-stored model");
    }
    // The old server answers as before.
    let answer = reqwest::blocking::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .body(r#"{"instances": [[5.1, 3.5, 1.4, 0.2]]}"#)
        .send()
        .unwrap();
    assert_eq!(answer.status(), 200);

    // Room again: the same command finishes.
    disk.drain().unwrap();
    let run = deploy(&p).expect(0);
    assert!(run.stderr().is_empty(), "{}", run.stderr());
    let mut destroy = p.cmd(&["destroy", "iris", "--purge", "-q"]);
    destroy.env("MODELPORT_HOME", &home);
    Run(destroy.output().unwrap()).expect(0);
}

/// Each state write of a rollout fails on a full disk with the state file named,
/// and leaves the previous version of the file.
#[test]
fn a_state_write_on_a_full_disk_names_the_file_and_keeps_the_previous_version() {
    let disk = SmallDisk::mount(8 * 1024 * 1024).unwrap();
    let p = Project::new().with_example("iris");
    let home = disk.path().join(".modelport");
    let run = |args: &[&str], fail: Option<&str>| {
        let mut cmd = p.cmd(args);
        cmd.env("MODELPORT_HOME", &home);
        if let Some(point) = fail {
            // Pause where the state is about to be written, to fill the disk then.
            cmd.env("MODELPORT_FAILPOINTS", format!("{point}=sleep(1500)"));
        }
        cmd
    };
    Run(run(&["deploy", "-f", "iris/modelport.yaml", "-q"], None)
        .output()
        .unwrap())
    .expect(0);
    let state_file = home.join("state/iris.json");
    let good = std::fs::read(&state_file).unwrap();
    // An update with another serving setting (same model): the first state write
    // of the rollout meets a full disk.
    let spec = p.path().join("iris/modelport.yaml");
    let yaml = std::fs::read_to_string(&spec).unwrap();
    std::fs::write(&spec, format!("{yaml}\nserving:\n  timeout_s: 30\n")).unwrap();
    let child = run(
        &["deploy", "-f", "iris/modelport.yaml"],
        Some("rollout.record"),
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(400));
    disk.fill_leaving(0).unwrap();
    let out = Run(child.wait_with_output().unwrap()).expect(1);
    says_disk_full(&out, &state_file.display().to_string());
    assert_eq!(std::fs::read(&state_file).unwrap(), good);
    assert!(temporaries(&home).is_empty(), "{:?}", temporaries(&home));
    disk.drain().unwrap();
    Run(run(&["destroy", "iris", "--purge", "-q"], None)
        .output()
        .unwrap())
    .expect(0);
}

/// An AWS deploy whose `.modelport` has no room fails before anything is created
/// in the cloud, naming the file.
#[test]
fn an_aws_deploy_without_room_to_stage_creates_nothing() {
    let disk = SmallDisk::mount(1024 * 1024).unwrap();
    let cloud = Aws::start("text-classifier");
    let spec = cloud.spec();
    let home = disk.path().join(".modelport");
    disk.fill_leaving(32 * 1024).unwrap();
    let mut cmd = cloud.cmd(&["deploy", "--provider", "aws", "-f", &spec, "-q"]);
    cmd.env("MODELPORT_HOME", &home);
    let run = Run(cmd.output().unwrap()).expect(1);
    says_disk_full(&run, &home.display().to_string());
    assert_eq!(
        cloud.fake.resources(),
        Vec::<String>::new(),
        "a deploy that could not stage created something"
    );
    assert!(
        cloud.moto.keys("models", "").unwrap().is_empty(),
        "a deploy that could not stage uploaded something"
    );
    assert!(temporaries(&home).is_empty(), "{:?}", temporaries(&home));
}

/// A state file cut short, one that is not JSON, and one a newer modelport
/// wrote: every command that reads it names the file and says what to do, and
/// none of them changes it.
#[test]
fn bad_state_files_are_named_and_left_as_they_are() {
    let p = Project::new().with_example("iris");
    p.run(&["deploy", "-f", "iris/modelport.yaml", "-q"])
        .expect(0);
    let state_file = p.path().join(".modelport/state/iris.json");
    let good = std::fs::read_to_string(&state_file).unwrap();
    let pid = p.pid("iris");
    let cases = [
        ("truncated", good[..good.len() / 2].to_string(), "iris.json"),
        ("not JSON", "\u{0}\u{1}garbage".to_string(), "iris.json"),
        (
            "newer",
            good.replace("modelport-state/v1", "modelport-state/v9"),
            "another version of modelport",
        ),
    ];
    for (what, text, says) in cases {
        std::fs::write(&state_file, &text).unwrap();
        for args in [
            &["status", "iris"][..],
            &["deploy", "-f", "iris/modelport.yaml"][..],
            &["destroy", "iris"][..],
            &["compare", "iris"][..],
        ] {
            let run = p.run(args).expect(1);
            let err = run.stderr();
            assert!(
                err.contains(says) && err.contains(&state_file.display().to_string()),
                "{what}, {args:?}: {err}"
            );
            assert_eq!(
                std::fs::read_to_string(&state_file).unwrap(),
                text,
                "{what}, {args:?} changed the file"
            );
        }
    }
    // The server the good state recorded never stopped.
    assert!(common::alive(pid));
    std::fs::write(&state_file, good).unwrap();
    p.run(&["destroy", "iris", "--purge"]).expect(0);
}
