//! Archives that `unpack` must refuse, each with its own error, leaving nothing
//! behind.

mod common;

use common::{Kind, Raw, file, listing, manifest_json, write_archive};
use modelport_package::{PackageError, read_manifest, unpack};

const MODEL: &[u8] = b"onnx bytes";

/// Unpacks an archive of `entries` and returns the error; checks that neither the
/// destination nor a temporary directory was left behind.
fn unpack_err(entries: &[Raw<'_>]) -> PackageError {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("model.tar.gz");
    write_archive(&archive, entries);
    let dest = dir.path().join("out");
    let err = unpack(&archive, &dest).unwrap_err();
    assert!(!dest.exists(), "{err}: the destination was created");
    assert_eq!(listing(dir.path()), ["model.tar.gz"], "{err}: leftovers");
    err
}

/// Expects `UnsafeEntry` naming `entry` with a reason containing `needle`.
fn check_unsafe(entries: &[Raw<'_>], entry: &str, needle: &str) {
    let err = unpack_err(entries);
    let msg = err.to_string();
    match &err {
        PackageError::UnsafeEntry { entry: e, reason } => {
            assert_eq!(e, entry, "{msg}");
            assert!(reason.contains(needle), "`{msg}` lacks `{needle}`");
        }
        other => panic!("expected UnsafeEntry for `{entry}`, got {other:?}"),
    }
    assert!(msg.contains(entry), "{msg}");
    assert!(err.hint().is_some());
}

#[test]
fn unsafe_entries() {
    let manifest = manifest_json(&[("model.onnx", MODEL)]);
    let m = || file("modelport.json", &manifest);
    let model = || file("model.onnx", MODEL);

    check_unsafe(&[m(), model(), file("../evil", b"x")], "../evil", "`..`");
    check_unsafe(&[m(), file("a/../../evil", b"x")], "a/../../evil", "`..`");
    check_unsafe(&[m(), file("/etc/passwd", b"x")], "/etc/passwd", "absolute");
    check_unsafe(&[m(), file("..\\evil", b"x")], "..\\evil", "backslash");
    let symlink = Raw {
        name: "model.onnx",
        kind: Kind::Symlink("/etc/passwd"),
    };
    check_unsafe(
        &[m(), symlink],
        "model.onnx",
        "symbolic link to `/etc/passwd`",
    );
    let hardlink = Raw {
        name: "model.onnx",
        kind: Kind::HardLink("/etc/passwd"),
    };
    check_unsafe(&[m(), hardlink], "model.onnx", "hard link to `/etc/passwd`");
    let device = Raw {
        name: "null",
        kind: Kind::CharDevice,
    };
    check_unsafe(&[m(), model(), device], "null", "character device");
    let fifo = Raw {
        name: "pipe",
        kind: Kind::Fifo,
    };
    check_unsafe(&[m(), model(), fifo], "pipe", "FIFO");
    let dir_up = Raw {
        name: "../",
        kind: Kind::Dir,
    };
    check_unsafe(&[dir_up, m(), model()], "../", "`..`");

    check_unsafe(&[m(), model(), model()], "model.onnx", "twice");
    check_unsafe(&[m(), model(), m()], "modelport.json", "twice");
    check_unsafe(
        &[m(), model(), file("./model.onnx", b"x")],
        "./model.onnx",
        "twice",
    );
    check_unsafe(
        &[m(), model(), file("model.onnx/x", b"x")],
        "model.onnx/x",
        "inside",
    );
    // (Listed in the manifest, so that the clash is what refuses them.)
    let both = manifest_json(&[("w", b"x"), ("w/x", b"x")]);
    check_unsafe(
        &[
            file("modelport.json", &both),
            file("w/x", b"x"),
            file("w", b"x"),
        ],
        "w",
        "directory",
    );
}

#[test]
fn tampered_file_is_named() {
    let manifest = manifest_json(&[("model.onnx", MODEL), ("weights.bin", b"weights")]);
    let err = unpack_err(&[
        file("modelport.json", &manifest),
        file("model.onnx", MODEL),
        file("weights.bin", b"WEIGHTS"),
    ]);
    let PackageError::Tampered {
        file,
        expected,
        actual,
    } = &err
    else {
        panic!("expected Tampered, got {err:?}");
    };
    assert_eq!(file, "weights.bin");
    assert_eq!(expected, &common::sha256(b"weights"));
    assert_eq!(actual, &common::sha256(b"WEIGHTS"));
    assert!(err.to_string().contains("`weights.bin`"), "{err}");
}

#[test]
fn extra_file_is_named() {
    let manifest = manifest_json(&[("model.onnx", MODEL)]);
    let err = unpack_err(&[
        file("modelport.json", &manifest),
        file("model.onnx", MODEL),
        file("sub/extra.py", b"import os"),
    ]);
    assert!(
        matches!(&err, PackageError::UnexpectedFile { file } if file == "sub/extra.py"),
        "{err:?}"
    );
    assert!(err.to_string().contains("`sub/extra.py`"), "{err}");
}

#[test]
fn missing_file_is_named() {
    let manifest = manifest_json(&[("model.onnx", MODEL), ("weights.bin", b"w")]);
    let err = unpack_err(&[file("modelport.json", &manifest), file("model.onnx", MODEL)]);
    assert!(
        matches!(&err, PackageError::MissingFile { file } if file == "weights.bin"),
        "{err:?}"
    );
    assert!(err.to_string().contains("`weights.bin`"), "{err}");
}

#[test]
fn missing_or_invalid_manifest() {
    let err = unpack_err(&[file("model.onnx", MODEL)]);
    assert!(
        matches!(err, PackageError::InvalidManifest { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("`model.onnx` comes before modelport.json"),
        "{err}"
    );
    let err = unpack_err(&[]);
    assert!(err.to_string().contains("no modelport.json"), "{err}");

    let err = unpack_err(&[file("modelport.json", b"{\"format\": \"modelport/v2\"}")]);
    assert!(err.to_string().contains("modelport/v2"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("model.tar.gz");
    write_archive(&archive, &[file("model.onnx", MODEL)]);
    let err = read_manifest(&archive).unwrap_err();
    assert!(
        matches!(err, PackageError::InvalidManifest { .. }),
        "{err:?}"
    );
}

#[test]
fn manifest_entry_must_be_a_file() {
    let link = Raw {
        name: "modelport.json",
        kind: Kind::Symlink("/etc/passwd"),
    };
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("model.tar.gz");
    write_archive(&archive, &[link]);
    let err = read_manifest(&archive).unwrap_err();
    assert!(
        matches!(&err, PackageError::UnsafeEntry { entry, .. } if entry == "modelport.json"),
        "{err:?}"
    );
}

/// Found by the `package_unpack` fuzz target: a directory entry named
/// `modelport.json` before the manifest was skipped by `unpack` but refused by
/// `read_manifest`, so the archive a deploy planned with (its manifest) and the one
/// a server unpacked disagreed; both refuse it now.
#[test]
fn manifest_named_directory_is_refused_by_unpack_too() {
    let manifest = manifest_json(&[("model.onnx", MODEL)]);
    let dir = Raw {
        name: "modelport.json",
        kind: Kind::Dir,
    };
    check_unsafe(
        &[
            dir,
            file("modelport.json", &manifest),
            file("model.onnx", MODEL),
        ],
        "modelport.json",
        "is not a regular file",
    );
}

#[test]
fn not_an_archive() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("model.tar.gz");
    std::fs::write(&archive, b"this is not gzip").unwrap();
    let dest = dir.path().join("out");
    let err = unpack(&archive, &dest).unwrap_err();
    assert!(
        matches!(err, PackageError::CorruptArchive { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("model.tar.gz"), "{err}");
    assert!(!dest.exists());
    let err = read_manifest(&archive).unwrap_err();
    assert!(
        matches!(err, PackageError::CorruptArchive { .. }),
        "{err:?}"
    );

    let err = unpack(&dir.path().join("absent.tar.gz"), &dest).unwrap_err();
    assert!(matches!(err, PackageError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("absent.tar.gz"), "{err}");
}

/// Nothing the manifest does not allow is written: an unlisted entry is refused before
/// a byte of it is written (here a 256 MiB one, which compresses to almost nothing), a
/// file larger than its listed size is cut off, and the listed sizes have a cap.
#[test]
fn unpacking_writes_only_what_the_manifest_allows() {
    let bomb = vec![0u8; 256 << 20];
    let manifest = manifest_json(&[("model.onnx", MODEL)]);
    let err = unpack_err(&[
        file("modelport.json", &manifest),
        file("zeros.bin", &bomb),
        file("model.onnx", MODEL),
    ]);
    assert!(
        matches!(&err, PackageError::UnexpectedFile { file } if file == "zeros.bin"),
        "{err:?}"
    );

    // A listed file larger than the manifest says.
    let small = manifest_json(&[("model.onnx", b"tiny")]);
    let err = unpack_err(&[file("modelport.json", &small), file("model.onnx", &bomb)]);
    let text = err.to_string();
    assert!(
        text.contains("`model.onnx` has 268435456 bytes or more but the manifest says 4"),
        "{text}"
    );

    // A manifest that claims more than the cap is refused before anything is written.
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("model.tar.gz");
    write_archive(
        &archive,
        &[file("modelport.json", &manifest), file("model.onnx", MODEL)],
    );
    let err =
        modelport_package::unpack_with_limit(&archive, &dir.path().join("out"), 4).unwrap_err();
    assert!(
        err.to_string()
            .contains("add up to 10 bytes, more than the 4"),
        "{err}"
    );
    assert_eq!(listing(dir.path()), ["model.tar.gz"]);
    modelport_package::unpack_with_limit(&archive, &dir.path().join("out"), 10).unwrap();
}

/// Found by the `package_unpack` fuzz target: sizes whose sum passes u64
/// overflowed the cap's check (a panic in a debug build; in a release build the
/// sum wrapped to a small number and passed the cap).
#[test]
fn manifest_sizes_past_u64_are_refused() {
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&manifest_json(&[("a.onnx", MODEL), ("b.bin", b"x")])).unwrap();
    manifest["files"][0]["size"] = serde_json::json!(u64::MAX);
    manifest["files"][1]["size"] = serde_json::json!(2);
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let err = unpack_err(&[file("modelport.json", &manifest), file("a.onnx", MODEL)]);
    assert!(
        err.to_string().contains(
            "its files add up to more than 18446744073709551615 bytes, more than the 68719476736"
        ),
        "{err}"
    );
}
