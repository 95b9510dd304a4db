//! Paths inside a package, the files of a model directory, and temporary names
//! that are either renamed into place or removed.

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::PackageError;

/// Turns an archive entry's raw path into the `/`-separated relative path used in
/// the manifest, or says why it is unsafe.
///
/// `.` components and repeated or trailing slashes are dropped; absolute paths, `..`,
/// backslashes (a separator on Windows) and drive prefixes are refused.
pub(crate) fn normalize_entry_path(raw: &[u8]) -> Result<String, String> {
    let path = std::str::from_utf8(raw).map_err(|_| "the path is not valid UTF-8".to_string())?;
    if path.starts_with('/') {
        return Err("the path is absolute".to_string());
    }
    if path.contains('\\') {
        return Err("the path contains a backslash".to_string());
    }
    if path.contains('\0') {
        return Err("the path contains a NUL byte".to_string());
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("the path contains a `..` component".to_string()),
            _ => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err("the path is empty".to_string());
    }
    let normal = parts.join("/");
    // On Windows `C:x` is a drive prefix; let the platform's own parser have a say.
    if !Path::new(&normal)
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
    {
        return Err("the path is not a plain relative path".to_string());
    }
    Ok(normal)
}

/// A file found under a model directory.
#[derive(Debug, Clone)]
pub(crate) struct SourceFile {
    /// Relative to the root, `/`-separated.
    pub(crate) rel: String,
    pub(crate) abs: PathBuf,
}

/// Every regular file under `root`, recursively, sorted by relative path.
///
/// Symbolic links to files are followed (model caches are often made of them);
/// symbolic links to directories, sockets, FIFOs and devices are refused, as are
/// names that are not UTF-8 or contain a backslash.
pub(crate) fn walk(root: &Path) -> Result<Vec<SourceFile>, PackageError> {
    let mut files = Vec::new();
    let mut dirs = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, prefix)) = dirs.pop() {
        let entries = fs::read_dir(&dir).map_err(|e| PackageError::io(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| PackageError::io(&dir, e))?;
            let abs = entry.path();
            let Ok(name) = entry.file_name().into_string() else {
                return Err(PackageError::invalid_input(
                    &abs,
                    "the file name is not valid UTF-8",
                ));
            };
            if name.contains('\\') {
                return Err(PackageError::invalid_input(
                    &abs,
                    "the file name contains a backslash",
                ));
            }
            let rel = format!("{prefix}{name}");
            let mut file_type = entry.file_type().map_err(|e| PackageError::io(&abs, e))?;
            if file_type.is_symlink() {
                file_type = fs::metadata(&abs)
                    .map_err(|e| PackageError::io(&abs, e))?
                    .file_type();
                if file_type.is_dir() {
                    return Err(PackageError::invalid_input(
                        &abs,
                        "is a symbolic link to a directory; copy the directory instead",
                    ));
                }
            }
            if file_type.is_dir() {
                dirs.push((abs, format!("{rel}/")));
            } else if file_type.is_file() {
                files.push(SourceFile { rel, abs });
            } else {
                return Err(PackageError::invalid_input(
                    &abs,
                    "is not a regular file (a socket, FIFO or device)",
                ));
            }
        }
    }
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(files)
}

/// A temporary file or directory next to its final name, removed on drop unless
/// [`Temp::persist`] renamed it into place. A failed run therefore leaves neither a
/// half-written archive nor a half-extracted directory behind.
#[derive(Debug)]
pub(crate) struct Temp {
    path: PathBuf,
    is_dir: bool,
    armed: bool,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl Temp {
    /// Creates a new, empty file `dir/.{name}.tmp-{pid}-{n}`.
    pub(crate) fn file(dir: &Path, name: &str) -> Result<(Temp, fs::File), PackageError> {
        Self::create(dir, name, false, |p| {
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(p)
                .map(Some)
        })
        .map(|(t, f)| (t, f.expect("a file was opened")))
    }

    /// Creates a new, empty directory `dir/.{name}.tmp-{pid}-{n}`.
    pub(crate) fn dir(dir: &Path, name: &str) -> Result<Temp, PackageError> {
        Self::create(dir, name, true, |p| fs::create_dir(p).map(|()| None)).map(|(t, _)| t)
    }

    fn create(
        dir: &Path,
        name: &str,
        is_dir: bool,
        make: impl Fn(&Path) -> io::Result<Option<fs::File>>,
    ) -> Result<(Temp, Option<fs::File>), PackageError> {
        let pid = std::process::id();
        sweep(dir, name);
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(".{name}.tmp-{pid}-{n}"));
            match make(&path) {
                Ok(file) => {
                    let temp = Temp {
                        path,
                        is_dir,
                        armed: true,
                    };
                    return Ok((temp, file));
                }
                // Left over by a process that had this pid before; pick another name.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(PackageError::io(&path, e)),
            }
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the temporary into `to`, replacing a file there.
    pub(crate) fn persist(mut self, to: &Path) -> Result<(), PackageError> {
        fs::rename(&self.path, to).map_err(|e| PackageError::io(to, e))?;
        self.armed = false;
        Ok(())
    }
}

/// Removes `dir/.{name}.tmp-{pid}-{n}` entries of processes that no longer run: a
/// package or unpack that was killed runs no clean-up, and the next one into the
/// same place tidies after it.
fn sweep(dir: &Path, name: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{name}.tmp-");
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = file
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() || modelport_core::state::process_runs(pid) {
            continue;
        }
        let path = entry.path();
        let _ = if path.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: the error being returned matters more than a leftover.
            let _ = if self.is_dir {
                fs::remove_dir_all(&self.path)
            } else {
                fs::remove_file(&self.path)
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str, expected: Result<&str, &str>) {
        let got = normalize_entry_path(raw.as_bytes());
        match (&got, expected) {
            (Ok(p), Ok(e)) => assert_eq!(p, e, "{raw}"),
            (Err(reason), Err(needle)) => assert!(reason.contains(needle), "{raw}: {reason}"),
            _ => panic!("{raw}: got {got:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn entry_paths() {
        check("model.onnx", Ok("model.onnx"));
        check("./model.onnx", Ok("model.onnx"));
        check("a//b/./c/", Ok("a/b/c"));
        check("../evil", Err("`..`"));
        check("a/../../evil", Err("`..`"));
        check("a/..", Err("`..`"));
        check("/etc/passwd", Err("absolute"));
        check("a\\..\\evil", Err("backslash"));
        check("", Err("empty"));
        check("./", Err("empty"));
        check("a\0b", Err("NUL"));
        assert!(
            normalize_entry_path(b"\xff.onnx")
                .unwrap_err()
                .contains("UTF-8")
        );
    }

    #[test]
    fn temp_is_removed_unless_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let (temp, _file) = Temp::file(dir.path(), "model.tar.gz").unwrap();
        let path = temp.path().to_path_buf();
        assert!(path.exists());
        drop(temp);
        assert!(!path.exists());

        let temp = Temp::dir(dir.path(), "out").unwrap();
        fs::write(temp.path().join("f"), b"x").unwrap();
        temp.persist(&dir.path().join("out")).unwrap();
        assert!(dir.path().join("out/f").exists());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn temporaries_of_processes_that_no_longer_run_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let left = dir.path().join(format!(".model.tar.gz.tmp-{dead}-7"));
        fs::write(&left, b"half an archive").unwrap();
        let unrelated = dir.path().join(".other.tmp-1-1");
        fs::write(&unrelated, b"x").unwrap();
        let (temp, _file) = Temp::file(dir.path(), "model.tar.gz").unwrap();
        assert!(!left.exists(), "a dead process's temporary stays");
        assert!(unrelated.exists() && temp.path().exists());
    }
}
