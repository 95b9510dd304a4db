//! `model.tar.gz` unpacking with its manifest: what a server (SageMaker's
//! `/opt/ml/model`, Vertex AI's `AIP_STORAGE_URI`, the local store) unpacks from
//! storage anyone with write access to the bucket could have replaced.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use modelport_package::{MANIFEST_NAME, read_manifest, unpack, verify_dir};

/// A gzip stream starts with these two bytes.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Unpacks the bytes as a `model.tar.gz` into a fresh directory and checks what
/// it left.
///
/// Bytes that are not gzip are taken as the tar inside and wrapped in a gzip
/// stream of stored blocks first: a mutation of compressed bytes almost never
/// decompresses, so the corpus holds plain tars and the fuzzer mutates the entries
/// and the manifest; inputs that
/// start with the gzip magic still exercise the decompressor.
///
/// Invariants: after a success the destination passes `verify_dir` with the same
/// manifest, `read_manifest` of the archive agrees, the directory holds exactly the
/// listed files (plus the manifest) and no link, and nothing but the destination
/// appeared beside it; after a failure nothing appeared at all (no destination,
/// no staging directory).
pub fn package_unpack(data: &[u8]) {
    let scratch = scratch_dir();
    let root = scratch.path();
    let archive = root.join("model.tar.gz");
    if data.starts_with(&GZIP_MAGIC) {
        fs::write(&archive, data).expect("write the archive");
    } else {
        let mut gz = GzEncoder::new(Vec::new(), Compression::none());
        gz.write_all(data).expect("gzip in memory");
        fs::write(&archive, gz.finish().expect("gzip in memory")).expect("write the archive");
    }
    let out = root.join("out");
    fs::create_dir(&out).expect("create the parent of the destination");
    let dest = out.join("model");

    let result = unpack(&archive, &dest);
    assert_eq!(
        names(root),
        ["model.tar.gz", "out"],
        "unpacking wrote beside its parent directory"
    );
    let Ok(manifest) = result else {
        assert!(
            names(&out).is_empty(),
            "a failed unpack left {:?} behind",
            names(&out)
        );
        return;
    };
    assert_eq!(names(&out), ["model"], "unpacking left a staging directory");
    let verified =
        verify_dir(&dest).unwrap_or_else(|e| panic!("unpacked dir fails verify_dir: {e}"));
    assert_eq!(verified, manifest, "verify_dir read another manifest");
    let first = read_manifest(&archive)
        .unwrap_or_else(|e| panic!("unpack succeeded but read_manifest fails: {e}"));
    assert_eq!(first, manifest, "read_manifest and unpack disagree");
    let mut expected: BTreeSet<String> = manifest.files.iter().map(|f| f.path.clone()).collect();
    expected.insert(MANIFEST_NAME.to_string());
    assert_eq!(
        files_under(&dest),
        expected,
        "the unpacked files are not the listed ones"
    );
}

/// A directory for one input, on a memory file system when there is one (each
/// input writes an archive and a model directory), removed when dropped.
pub(crate) fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let builder = tempfile::Builder::new()
        .prefix("modelport-fuzz-")
        .to_owned();
    if shm.is_dir()
        && let Ok(dir) = builder.tempdir_in(shm)
    {
        return dir;
    }
    builder.tempdir().expect("create a temporary directory")
}

/// The sorted names in `dir`.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("list a directory")
        .map(|e| {
            e.expect("read a directory entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Every file under `dir` by `/`-separated relative path; panics on anything but
/// directories and regular files.
fn files_under(dir: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut todo = vec![(dir.to_path_buf(), String::new())];
    while let Some((d, prefix)) = todo.pop() {
        for entry in fs::read_dir(&d).expect("list a directory") {
            let entry = entry.expect("read a directory entry");
            let rel = format!("{prefix}{}", entry.file_name().to_string_lossy());
            let kind = entry.file_type().expect("file type");
            if kind.is_dir() {
                todo.push((entry.path(), format!("{rel}/")));
            } else {
                assert!(
                    kind.is_file(),
                    "unpacking created `{rel}`, which is not a regular file"
                );
                found.insert(rel);
            }
        }
    }
    found
}
