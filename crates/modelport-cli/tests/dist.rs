//! The release archive: scripts/dist packages a binary under the names that
//! `[package.metadata.binstall]` points `cargo binstall` at, and the binary in it runs.

mod common;

use std::path::Path;
use std::process::Command;

use common::root;

/// The value of `key = "..."` in the binstall section of the CLI's Cargo.toml.
fn binstall(key: &str) -> String {
    let manifest = std::fs::read_to_string(root().join("crates/modelport-cli/Cargo.toml")).unwrap();
    let section = manifest
        .split("[package.metadata.binstall]")
        .nth(1)
        .expect("no [package.metadata.binstall] in crates/modelport-cli/Cargo.toml");
    section
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {key} in [package.metadata.binstall]"))
        .trim_matches('"')
        .to_string()
}

fn expand(template: &str, target: &str) -> String {
    let repository = env!("CARGO_PKG_REPOSITORY");
    template
        .replace("{ repo }", repository)
        .replace("{ version }", env!("CARGO_PKG_VERSION"))
        .replace("{ target }", target)
        .replace("{ bin }", "modelport")
        .replace("{ binary-ext }", "")
}

/// scripts/dist packaging the test build into `dir`.
fn dist(dir: &Path) -> std::process::Output {
    let run = Command::new(root().join("scripts/dist"))
        .env("MODELPORT_DIST_BINARY", env!("CARGO_BIN_EXE_modelport"))
        .env("MODELPORT_DIST_DIR", dir)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "scripts/dist: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    run
}

#[test]
fn the_release_archive_is_where_cargo_binstall_looks_and_its_binary_runs() {
    let host = String::from_utf8(Command::new("rustc").arg("-vV").output().unwrap().stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(String::from))
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let run = dist(out.path());

    // The archive is the file the pkg-url template names for this target and version.
    assert_eq!(binstall("pkg-fmt"), "tgz");
    let url = expand(&binstall("pkg-url"), &host);
    assert!(url.starts_with(&format!(
        "{}/releases/download/v{}/",
        env!("CARGO_PKG_REPOSITORY"),
        env!("CARGO_PKG_VERSION")
    )));
    let file = url.rsplit('/').next().unwrap();
    let archive = out.path().join(file);
    assert_eq!(
        String::from_utf8(run.stdout).unwrap().trim(),
        archive.to_str().unwrap()
    );

    // Its checksum file is sha256sum's, for `sha256sum -c`.
    let check = Command::new("sha256sum")
        .arg("-c")
        .arg(format!("{file}.sha256"))
        .current_dir(out.path())
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    // The binary is at bin-dir inside it, executable, and runs.
    let unpacked = tempfile::tempdir().unwrap();
    let tar = Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(unpacked.path())
        .status()
        .unwrap();
    assert!(tar.success());
    let binary = unpacked.path().join(expand(&binstall("bin-dir"), &host));
    let version = Command::new(&binary).arg("--version").output().unwrap();
    assert!(version.status.success(), "{}", binary.display());
    assert_eq!(
        String::from_utf8(version.stdout).unwrap().trim(),
        format!("modelport {}", env!("CARGO_PKG_VERSION"))
    );
    assert!(Path::new(&binary).with_file_name("README.md").exists());

    // The same binary gives the same bytes.
    let again = tempfile::tempdir().unwrap();
    dist(again.path());
    assert_eq!(
        std::fs::read(&archive).unwrap(),
        std::fs::read(again.path().join(file)).unwrap()
    );
}
