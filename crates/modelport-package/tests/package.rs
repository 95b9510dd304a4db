//! Packaging, determinism, round trips and the checks of an unpacked directory.

mod common;

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use common::{iris, listing};
use modelport_core::{DType, Dim, Signature, TensorSpec};
use modelport_package::{
    ARCHIVE_NAME, ArtifactLayout, DIR_NAME, FORMAT, MANIFEST_NAME, PackStep, PackageError,
    PackageOptions, package, package_with_progress, read_manifest, sha256_bytes, sha256_file,
    unpack, verify_dir,
};

fn opts() -> PackageOptions {
    PackageOptions {
        created_by: "modelport 0.1.0".to_string(),
        signature: None,
        engine_hint: None,
        data_files: Vec::new(),
        layout: ArtifactLayout::Archive,
    }
}

fn iris_signature() -> Signature {
    Signature {
        inputs: vec![TensorSpec::new(
            "input",
            DType::F32,
            vec![Dim::Dynamic(Some("N".into())), Dim::Fixed(4)],
        )],
        outputs: vec![TensorSpec::new(
            "label",
            DType::I64,
            vec![Dim::Dynamic(None)],
        )],
    }
}

/// A model directory: the model, external weights and a nested file.
fn model_dir(root: &Path) -> std::path::PathBuf {
    let dir = root.join("model");
    fs::create_dir_all(dir.join("tokenizer")).unwrap();
    fs::copy(iris(), dir.join("model.onnx")).unwrap();
    fs::write(dir.join("model.onnx.data"), vec![7u8; 10_000]).unwrap();
    fs::write(dir.join("tokenizer/vocab.txt"), "a\nb\n").unwrap();
    dir
}

/// Each pass reports from 0 to the files' total, in order, at most once per MiB
/// between, and the archive is the one `package` writes.
#[test]
fn progress_covers_both_passes_once_per_mib() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = model_dir(tmp.path());
    // 3.5 MiB of weights: a few reports per pass, not one per chunk.
    fs::write(dir.join("model.onnx.data"), vec![7u8; 7 << 19]).unwrap();
    let mut seen = Vec::new();
    let artifact = package_with_progress(&dir, &tmp.path().join("a"), &opts(), &mut |s, d, t| {
        seen.push((s, d, t))
    })
    .unwrap();
    let plain = package(&dir, &tmp.path().join("b"), &opts()).unwrap();
    assert_eq!(artifact.digest, plain.digest);
    let total: u64 = artifact.manifest.files.iter().map(|f| f.size).sum();
    for step in [PackStep::Hashing, PackStep::Compressing] {
        let done: Vec<u64> = seen
            .iter()
            .filter(|(s, _, t)| *s == step && *t == total)
            .map(|(_, d, _)| *d)
            .collect();
        assert_eq!(done.first(), Some(&0), "{step:?}: {seen:?}");
        assert_eq!(done.last(), Some(&total), "{step:?}: {seen:?}");
        assert!(done.windows(2).all(|w| w[0] < w[1]), "{step:?}: {seen:?}");
        assert!((4..=6).contains(&done.len()), "{step:?}: {seen:?}");
    }
    assert_eq!(
        seen.len(),
        seen.iter().filter(|(_, _, t)| *t == total).count()
    );
    assert!(
        seen.iter()
            .position(|(s, _, _)| *s == PackStep::Compressing)
            .unwrap()
            > 0
    );
}

#[test]
fn iris_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("dist");
    let opts = PackageOptions {
        signature: Some(iris_signature()),
        engine_hint: Some("tract".to_string()),
        ..opts()
    };
    let artifact = package(&iris(), &out, &opts).unwrap();

    assert_eq!(artifact.path, out.join(ARCHIVE_NAME));
    assert_eq!(listing(&out), [ARCHIVE_NAME], "no temporary file is left");
    assert_eq!(artifact.digest, sha256_file(&artifact.path).unwrap());
    assert_eq!(artifact.size, fs::metadata(&artifact.path).unwrap().len());

    let m = &artifact.manifest;
    assert_eq!(m.format, FORMAT);
    assert_eq!(
        (m.model.file.as_str(), m.model.format.as_str()),
        ("model.onnx", "onnx")
    );
    assert_eq!(m.files.len(), 1);
    assert_eq!(m.files[0].path, "model.onnx");
    assert_eq!(m.files[0].size, fs::metadata(iris()).unwrap().len());
    assert_eq!(m.files[0].sha256, sha256_file(&iris()).unwrap());
    assert_eq!(m.signature, Some(iris_signature()));
    assert_eq!(m.engine_hint.as_deref(), Some("tract"));
    assert_eq!(m.created_by, "modelport 0.1.0");

    assert_eq!(&read_manifest(&artifact.path).unwrap(), m);

    let dest = tmp.path().join("unpacked");
    assert_eq!(&unpack(&artifact.path, &dest).unwrap(), m);
    assert_eq!(listing(&dest), ["model.onnx", MANIFEST_NAME]);
    assert_eq!(
        fs::read(dest.join("model.onnx")).unwrap(),
        fs::read(iris()).unwrap()
    );
    assert_eq!(&verify_dir(&dest).unwrap(), m);
}

#[test]
fn archive_layout_is_fixed() {
    let tmp = tempfile::tempdir().unwrap();
    let artifact = package(&model_dir(tmp.path()), &tmp.path().join("out"), &opts()).unwrap();
    let bytes = fs::read(&artifact.path).unwrap();

    // gzip: no flags (so no file name), mtime 0, OS byte 255.
    assert_eq!(&bytes[..4], &[0x1f, 0x8b, 8, 0]);
    assert_eq!(&bytes[4..8], &[0, 0, 0, 0]);
    assert_eq!(bytes[9], 255);

    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
    let mut names = Vec::new();
    for entry in ar.entries().unwrap() {
        let entry = entry.unwrap();
        let h = entry.header();
        assert!(h.as_gnu().is_some(), "GNU headers throughout");
        assert_eq!(h.entry_type(), tar::EntryType::Regular);
        assert_eq!(h.mode().unwrap(), 0o644);
        assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
        assert_eq!(h.mtime().unwrap(), 0);
        assert_eq!(h.username_bytes(), Some(&b""[..]));
        assert_eq!(h.groupname_bytes(), Some(&b""[..]));
        names.push(entry.path().unwrap().to_str().unwrap().to_string());
    }
    assert_eq!(
        names,
        [
            MANIFEST_NAME,
            "model.onnx",
            "model.onnx.data",
            "tokenizer/vocab.txt"
        ]
    );
    let paths: Vec<&str> = artifact
        .manifest
        .files
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(paths, &names[1..]);
}

#[test]
fn same_input_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let a = package(&iris(), &tmp.path().join("a"), &opts()).unwrap();
    let b = package(&iris(), &tmp.path().join("b"), &opts()).unwrap();
    assert_eq!(a.digest, b.digest);
    assert_eq!(fs::read(&a.path).unwrap(), fs::read(&b.path).unwrap());

    // A copy elsewhere, with another modification time and mode, packs the same.
    let copy_dir = tmp.path().join("elsewhere");
    fs::create_dir(&copy_dir).unwrap();
    let copy = copy_dir.join("model.onnx");
    fs::copy(iris(), &copy).unwrap();
    let f = File::options().write(true).open(&copy).unwrap();
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000))
        .unwrap();
    drop(f);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&copy, fs::Permissions::from_mode(0o700)).unwrap();
    }
    let c = package(&copy, &tmp.path().join("c"), &opts()).unwrap();
    assert_eq!(c.digest, a.digest);
    assert_eq!(fs::read(&c.path).unwrap(), fs::read(&a.path).unwrap());

    // Packaging again into the same directory replaces the archive with itself.
    let again = package(&iris(), &tmp.path().join("a"), &opts()).unwrap();
    assert_eq!(again.digest, a.digest);
    assert_eq!(listing(&tmp.path().join("a")), [ARCHIVE_NAME]);

    // The manifest is part of the bytes.
    let other = PackageOptions {
        created_by: "modelport 9.9.9".to_string(),
        ..opts()
    };
    let d = package(&iris(), &tmp.path().join("d"), &other).unwrap();
    assert_ne!(d.digest, a.digest);
}

#[test]
fn same_directory_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = model_dir(tmp.path());
    let a = package(&dir, &tmp.path().join("a"), &opts()).unwrap();
    let f = File::options()
        .write(true)
        .open(dir.join("tokenizer/vocab.txt"))
        .unwrap();
    f.set_modified(SystemTime::UNIX_EPOCH).unwrap();
    drop(f);
    let b = package(&dir, &tmp.path().join("b"), &opts()).unwrap();
    assert_eq!(a.digest, b.digest);
    assert_eq!(fs::read(&a.path).unwrap(), fs::read(&b.path).unwrap());
}

#[test]
fn directory_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = model_dir(tmp.path());
    let artifact = package(&dir, &tmp.path().join("out"), &opts()).unwrap();
    assert_eq!(artifact.manifest.model.file, "model.onnx");

    let dest = tmp.path().join("unpacked");
    fs::create_dir(&dest).unwrap(); // An empty destination is accepted.
    unpack(&artifact.path, &dest).unwrap();
    for rel in ["model.onnx", "model.onnx.data", "tokenizer/vocab.txt"] {
        assert_eq!(
            fs::read(dest.join(rel)).unwrap(),
            fs::read(dir.join(rel)).unwrap()
        );
    }
    verify_dir(&dest).unwrap();

    let err = unpack(&artifact.path, &dest).unwrap_err();
    assert!(matches!(err, PackageError::InvalidInput { .. }), "{err:?}");
    assert!(err.to_string().contains("not empty"), "{err}");
}

#[test]
fn verify_dir_names_the_changed_file() {
    let tmp = tempfile::tempdir().unwrap();
    let artifact = package(&model_dir(tmp.path()), &tmp.path().join("out"), &opts()).unwrap();
    let fresh = |name: &str| {
        let dest = tmp.path().join(name);
        unpack(&artifact.path, &dest).unwrap();
        dest
    };

    let dest = fresh("tampered");
    fs::write(dest.join("model.onnx.data"), vec![8u8; 10_000]).unwrap();
    let err = verify_dir(&dest).unwrap_err();
    assert!(
        matches!(&err, PackageError::Tampered { file, .. } if file == "model.onnx.data"),
        "{err:?}"
    );
    assert!(err.to_string().contains("`model.onnx.data`"), "{err}");

    let dest = fresh("extra");
    fs::write(dest.join("tokenizer/evil.py"), "import os").unwrap();
    let err = verify_dir(&dest).unwrap_err();
    assert!(
        matches!(&err, PackageError::UnexpectedFile { file } if file == "tokenizer/evil.py"),
        "{err:?}"
    );

    let dest = fresh("missing");
    fs::remove_file(dest.join("tokenizer/vocab.txt")).unwrap();
    let err = verify_dir(&dest).unwrap_err();
    assert!(
        matches!(&err, PackageError::MissingFile { file } if file == "tokenizer/vocab.txt"),
        "{err:?}"
    );

    let dest = fresh("no-manifest");
    fs::remove_file(dest.join(MANIFEST_NAME)).unwrap();
    let err = verify_dir(&dest).unwrap_err();
    assert!(
        matches!(err, PackageError::InvalidManifest { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(MANIFEST_NAME), "{err}");
}

#[test]
fn unusable_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");

    let err = package(&tmp.path().join("absent.onnx"), &out, &opts()).unwrap_err();
    assert!(matches!(err, PackageError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("absent.onnx"), "{err}");
    assert!(err.hint().is_some());

    let empty = tmp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    fs::write(empty.join("README.md"), "hi").unwrap();
    let err = package(&empty, &out, &opts()).unwrap_err();
    assert!(matches!(err, PackageError::NoModel { .. }), "{err:?}");

    let two = model_dir(tmp.path());
    fs::write(two.join("tokenizer/other.ONNX"), "x").unwrap();
    let err = package(&two, &out, &opts()).unwrap_err();
    let PackageError::AmbiguousModel { candidates, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(candidates, &["model.onnx", "tokenizer/other.ONNX"]);
    fs::remove_file(two.join("tokenizer/other.ONNX")).unwrap();

    let err = package(&two, &two.join("dist"), &opts()).unwrap_err();
    assert!(
        err.to_string().contains("inside the model directory"),
        "{err}"
    );

    fs::write(two.join(MANIFEST_NAME), "{}").unwrap();
    let err = package(&two, &out, &opts()).unwrap_err();
    assert!(err.to_string().contains("reserved"), "{err}");
    fs::remove_file(two.join(MANIFEST_NAME)).unwrap();

    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(two.join("tokenizer"), two.join("link")).unwrap();
        let err = package(&two, &out, &opts()).unwrap_err();
        assert!(
            err.to_string().contains("symbolic link to a directory"),
            "{err}"
        );
        fs::remove_file(two.join("link")).unwrap();

        // A symbolic link to a file is packed as the file it points to.
        std::os::unix::fs::symlink(two.join("model.onnx.data"), two.join("alias.bin")).unwrap();
        let artifact = package(&two, &out, &opts()).unwrap();
        assert_eq!(artifact.manifest.file("alias.bin").unwrap().size, 10_000);
    }

    // Nothing half-written was left in the output directory.
    let leftovers: Vec<String> = listing(&out)
        .into_iter()
        .filter(|n| n != ARCHIVE_NAME)
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Writes `len` pseudo-random bytes (xorshift, so poorly compressible like real
/// weights) in 1 MiB chunks.
fn write_generated(path: &Path, len: usize) {
    let mut out = BufWriter::new(File::create(path).unwrap());
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut chunk = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for word in chunk.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(chunk.len());
        out.write_all(&chunk[..n]).unwrap();
        left -= n;
    }
    out.flush().unwrap();
}

#[test]
fn large_model_streams() {
    const LEN: usize = 50 * 1024 * 1024;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    fs::create_dir(&dir).unwrap();
    fs::copy(iris(), dir.join("model.onnx")).unwrap();
    write_generated(&dir.join("weights.bin"), LEN);

    let start = std::time::Instant::now();
    let a = package(&dir, &tmp.path().join("a"), &opts()).unwrap();
    let elapsed = start.elapsed();
    eprintln!(
        "packaged {} MiB in {elapsed:.2?} ({:.1} MiB/s)",
        LEN >> 20,
        (LEN as f64 / (1 << 20) as f64) / elapsed.as_secs_f64()
    );
    assert_eq!(a.manifest.file("weights.bin").unwrap().size, LEN as u64);
    assert_eq!(
        a.manifest.file("weights.bin").unwrap().sha256,
        sha256_file(&dir.join("weights.bin")).unwrap()
    );
    assert_eq!(a.digest, sha256_file(&a.path).unwrap());

    let b = package(&dir, &tmp.path().join("b"), &opts()).unwrap();
    assert_eq!(a.digest, b.digest);

    let dest = tmp.path().join("unpacked");
    unpack(&a.path, &dest).unwrap();
    assert_eq!(
        fs::metadata(dest.join("weights.bin")).unwrap().len(),
        LEN as u64
    );
    verify_dir(&dest).unwrap();

    assert_eq!(read_manifest(&a.path).unwrap(), a.manifest);
}

/// The archive is compressed in blocks on several threads, yet it is one gzip
/// member that GNU gzip and tar read like any other (SageMaker unpacks with tar).
#[test]
fn gnu_tar_and_gzip_read_the_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("model");
    fs::create_dir(&dir).unwrap();
    fs::copy(iris(), dir.join("model.onnx")).unwrap();
    // 5.5 MiB: several blocks and a partial one.
    write_generated(&dir.join("weights.bin"), 11 << 19);
    let a = package(&dir, &tmp.path().join("a"), &opts()).unwrap();

    let run = |cmd: &mut std::process::Command| {
        let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    // `gzip -t` checks the stream to its trailer's CRC and length.
    run(std::process::Command::new("gzip").arg("-t").arg(&a.path));
    let dest = tmp.path().join("tar");
    fs::create_dir(&dest).unwrap();
    run(std::process::Command::new("tar")
        .arg("xzf")
        .arg(&a.path)
        .arg("-C")
        .arg(&dest));
    for file in ["model.onnx", "weights.bin"] {
        assert_eq!(
            fs::read(dest.join(file)).unwrap(),
            fs::read(dir.join(file)).unwrap(),
            "{file}"
        );
    }
    assert!(dest.join(MANIFEST_NAME).is_file());
}

/// The `dir` layout: the files copied as they are, hashed as they are copied, with
/// the manifest last; the digest is the manifest's sha256 and the same for the same
/// input; the directory verifies, holds exactly what the archive would, replaces an
/// earlier package and refuses to overwrite anything else.
#[test]
fn directory_layout_holds_the_files_and_their_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = model_dir(tmp.path());
    let dir_opts = PackageOptions {
        layout: ArtifactLayout::Dir,
        ..opts()
    };
    let mut seen = Vec::new();
    let out = tmp.path().join("out");
    let a =
        package_with_progress(&dir, &out, &dir_opts, &mut |s, d, t| seen.push((s, d, t))).unwrap();
    assert_eq!(a.layout, ArtifactLayout::Dir);
    assert_eq!(a.path, out.join(DIR_NAME));
    assert!(
        seen.iter().all(|(s, _, _)| *s == PackStep::Copying),
        "{seen:?}"
    );
    assert_eq!(seen.first().map(|s| s.1), Some(0));
    let total: u64 = a.manifest.files.iter().map(|f| f.size).sum();
    assert_eq!(seen.last().map(|s| (s.1, s.2)), Some((total, total)));
    let json = fs::read(a.path.join(MANIFEST_NAME)).unwrap();
    assert_eq!(a.digest, sha256_bytes(&json));
    assert_eq!(a.digest, a.manifest.digest());
    assert_eq!(verify_dir(&a.path).unwrap(), a.manifest);
    assert_eq!(
        listing(&a.path),
        ["model.onnx", "model.onnx.data", MANIFEST_NAME, "tokenizer"]
    );
    assert_eq!(a.size, total + json.len() as u64);
    // The archive of the same model holds the same files and manifest.
    let archived = package(&dir, &tmp.path().join("tgz"), &opts()).unwrap();
    assert_eq!(archived.manifest, a.manifest);
    assert_eq!(archived.layout, ArtifactLayout::Archive);

    // Again: the same digest, the earlier package replaced, no temporary left.
    let again = package(&dir, &out, &dir_opts).unwrap();
    assert_eq!(again.digest, a.digest);
    assert_eq!(listing(&out), [DIR_NAME]);

    // Something else under the name is not overwritten.
    let other = tmp.path().join("other");
    fs::create_dir_all(other.join(DIR_NAME)).unwrap();
    fs::write(other.join(DIR_NAME).join("notes.txt"), "mine").unwrap();
    let err = package(&dir, &other, &dir_opts).unwrap_err();
    assert!(
        err.to_string()
            .contains("is not a directory modelport packaged"),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(other.join(DIR_NAME).join("notes.txt")).unwrap(),
        "mine"
    );
}
