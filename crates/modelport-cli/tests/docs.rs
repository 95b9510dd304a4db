//! `modelport completions` and `modelport man`: generated from the same clap definitions
//! the binary parses, checked by the programs that read them (bash's completion
//! machinery, man).

use std::path::Path;
use std::process::{Command, Output};

use assert_cmd::cargo::CommandCargoExt;

fn modelport(args: &[&str]) -> Output {
    let out = Command::cargo_bin("modelport")
        .unwrap()
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "modelport {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The commands `modelport --help` lists (without `help`), with the nested ones
/// (`image build`, `catalog refresh`) from their own help.
fn commands() -> Vec<Vec<String>> {
    fn listed(args: &[&str]) -> Vec<String> {
        let help = String::from_utf8(modelport(args).stdout).unwrap();
        help.lines()
            .skip_while(|l| *l != "Commands:")
            .skip(1)
            .take_while(|l| l.starts_with("  "))
            // A wrapped description continues on a line indented further.
            .filter(|l| !l.starts_with("   "))
            .filter_map(|l| l.split_whitespace().next())
            .filter(|c| *c != "help")
            .map(String::from)
            .collect()
    }
    let mut all = Vec::new();
    for top in listed(&["--help"]) {
        all.push(vec![top.clone()]);
        for sub in listed(&[&top, "--help"]) {
            all.push(vec![top.clone(), sub]);
        }
    }
    assert!(
        all.len() > 15,
        "too few commands parsed from --help: {all:?}"
    );
    all
}

fn tool(program: &str, package: &str) {
    let found = Command::new(program).arg("--version").output().is_ok();
    assert!(
        found,
        "{program} is not installed; this test needs it: `apt-get install {package}` (.ci/run installs it)"
    );
}

/// Runs the bash script's completion function on a command line ending in `word`
/// and returns what it offers.
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cword = words.len() - 1;
    let prev = if cword > 0 { words[cword - 1] } else { "" };
    let program = format!(
        "source '{}'\nCOMP_WORDS=({})\nCOMP_CWORD={cword}\nCOMP_LINE='{}'\nCOMP_POINT=${{#COMP_LINE}}\n\
         _modelport modelport '{}' '{prev}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        script.display(),
        quoted.join(" "),
        words.join(" "),
        words[cword],
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(program)
        .current_dir(script.parent().unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn bash_completes_commands_flags_and_provider_names() {
    tool("bash", "bash");
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("modelport.bash");
    std::fs::write(&script, modelport(&["completions", "bash"]).stdout).unwrap();

    assert_eq!(bash_complete(&script, &["modelport", "dep"]), ["deploy"]);
    let top = bash_complete(&script, &["modelport", ""]);
    for command in commands().iter().filter(|c| c.len() == 1) {
        assert!(top.contains(&command[0]), "{command:?} not in {top:?}");
    }
    assert_eq!(
        bash_complete(&script, &["modelport", "deploy", "--no-"]),
        ["--no-verify"]
    );
    assert_eq!(
        bash_complete(&script, &["modelport", "deploy", "--provider", ""]),
        ["local", "aws", "gcp"]
    );
    assert_eq!(
        bash_complete(&script, &["modelport", "catalog", "--provider", ""]),
        ["aws", "gcp"]
    );
    assert_eq!(
        bash_complete(&script, &["modelport", "image", "b"]),
        ["build"]
    );
    assert_eq!(
        bash_complete(&script, &["modelport", "compress", "m.onnx", "--to", ""]),
        ["fp16", "int8", "int8-dynamic"]
    );
}

#[test]
fn every_shell_gets_a_script_that_knows_every_command() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let script = String::from_utf8(modelport(&["completions", shell]).stdout).unwrap();
        for command in commands() {
            let last = command.last().unwrap();
            assert!(
                script.contains(last.as_str()),
                "{shell}: `{}` is not in the script",
                command.join(" ")
            );
        }
        // fish names long flags without their dashes (`-l no-verify`).
        assert!(script.contains("no-verify"), "{shell}");
    }
    let bad = Command::cargo_bin("modelport")
        .unwrap()
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("bash") && stderr.contains("powershell"),
        "{stderr}"
    );
}

#[test]
fn man_writes_a_page_per_command_that_man_renders() {
    tool("man", "man-db");
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man/man1");
    let out = modelport(&["man", "--out", pages.to_str().unwrap(), "--output", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed: Vec<&str> = report["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();

    let mut expected = vec!["modelport.1".to_string()];
    expected.extend(
        commands()
            .iter()
            .map(|c| format!("modelport-{}.1", c.join("-"))),
    );
    let mut on_disk: Vec<String> = std::fs::read_dir(&pages)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    on_disk.sort();
    expected.sort();
    assert_eq!(on_disk, expected);
    assert_eq!(listed.len(), expected.len());

    // man reads every page, and each says what its --help says.
    for page in &expected {
        let rendered = Command::new("man")
            .arg("-l")
            .arg(pages.join(page))
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "200")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&rendered.stdout);
        assert!(
            rendered.status.success() && text.contains("SYNOPSIS"),
            "{page}: {}{}",
            text,
            String::from_utf8_lossy(&rendered.stderr)
        );
    }
    let deploy = Command::new("man")
        .arg("-l")
        .arg(pages.join("modelport-deploy.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "200")
        .output()
        .unwrap();
    let deploy = String::from_utf8_lossy(&deploy.stdout);
    for words in [
        "--no-verify",
        "--provider",
        "before any production request can reach it",
    ] {
        assert!(deploy.contains(words), "{words:?} not in\n{deploy}");
    }

    // Without --out, the page of `modelport` itself goes to stdout.
    let top = String::from_utf8(modelport(&["man"]).stdout).unwrap();
    assert!(top.contains(".TH modelport 1"), "{top}");
}

/// examples/ci: both pipelines are YAML, and every `modelport` command in them (the
/// steps and the comments) names a command and flags this binary has.
#[test]
fn the_ci_examples_use_commands_and_flags_that_exist() {
    let known: Vec<Vec<String>> = commands();
    let dir = common_root().join("examples/ci");
    let mut checked = 0;
    for file in ["github-actions.yml", "gitlab-ci.yml"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        serde_yaml::from_str::<serde_yaml::Value>(&text)
            .unwrap_or_else(|e| panic!("{file} is not YAML: {e}"));
        for line in text.lines() {
            let mut rest = line;
            while let Some(at) = rest.find("modelport ") {
                let tail = &rest[at + "modelport ".len()..];
                rest = tail;
                let words: Vec<&str> = tail
                    .split(|c: char| c.is_whitespace() || c == '`')
                    .take_while(|w| !["||", "#", "&&"].contains(w))
                    .filter(|w| !w.is_empty())
                    .collect();
                let Some(command) = words.first() else {
                    continue;
                };
                if !known.iter().any(|k| k.len() == 1 && k[0] == *command) {
                    continue;
                }
                let help = String::from_utf8(modelport(&[command, "--help"]).stdout).unwrap();
                for flag in words.iter().filter(|w| w.starts_with('-')) {
                    let flag = flag.split('=').next().unwrap();
                    let listed = if flag.starts_with("--") {
                        help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n"))
                    } else {
                        help.contains(&format!("{flag}, "))
                    };
                    assert!(
                        listed,
                        "{file}: `modelport {command}` has no {flag}: {line}"
                    );
                }
                checked += 1;
            }
        }
        for needed in ["plan", "deploy", "--junit", "--report"] {
            assert!(text.contains(needed), "{file} does not use {needed}");
        }
    }
    assert!(checked >= 6, "only {checked} commands found");
}

fn common_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}
