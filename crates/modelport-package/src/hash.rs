//! Streaming sha256: files are hashed in fixed-size chunks, and the adapters hash
//! bytes as they pass through a reader or writer so that no file is read twice
//! just to learn its digest.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::PackageError;

/// The chunk size for streaming reads and buffered writes.
pub(crate) const CHUNK: usize = 256 * 1024;

/// The sha256 of a file's content as 64 lowercase hex digits, read in chunks so that
/// a model of any size costs only a fixed amount of memory.
pub fn sha256_file(path: &Path) -> Result<String, PackageError> {
    hash_file(path).map(|(_, sha)| sha)
}

/// The sha256 of `bytes` as 64 lowercase hex digits.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(bytes);
    to_hex(h)
}

/// The sha256 of a spec's canonical JSON: any change to what the spec says changes it.
/// Every provider records it as a revision's `spec_hash`.
pub fn spec_hash(spec: &modelport_core::spec::DeploymentSpec) -> String {
    sha256_bytes(spec.canonical_json().as_bytes())
}

/// The size and sha256 of a file's content.
pub(crate) fn hash_file(path: &Path) -> Result<(u64, String), PackageError> {
    hash_file_counted(path, &mut |_| {})
}

/// [`hash_file`], calling `read` with the number of bytes of each chunk read.
pub(crate) fn hash_file_counted(
    path: &Path,
    read: &mut dyn FnMut(u64),
) -> Result<(u64, String), PackageError> {
    let mut file = File::open(path).map_err(|e| PackageError::io(path, e))?;
    let mut reader = HashingReader::new(&mut file);
    let mut buf = vec![0u8; CHUNK];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => read(n as u64),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(PackageError::io(path, e)),
        }
    }
    Ok(reader.finish())
}

/// Formats a finished digest as lowercase hex.
pub(crate) fn to_hex(hasher: Sha256) -> String {
    format!("{:x}", hasher.finalize())
}

/// Whether `s` looks like a sha256 as this crate writes it.
pub(crate) fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A reader that hashes and counts every byte read through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    len: u64,
    /// Set when the inner reader failed, so that a caller copying from this reader
    /// into a writer can tell which side an error came from.
    pub(crate) failed: bool,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            len: 0,
            failed: false,
        }
    }

    pub(crate) fn inner_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// The number of bytes read and their sha256.
    pub(crate) fn finish(self) -> (u64, String) {
        (self.len, to_hex(self.hasher))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                self.len += n as u64;
                Ok(n)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.failed = true;
                }
                Err(e)
            }
        }
    }
}

/// A writer that hashes and counts every byte written through it, so the digest of
/// an output file is known the moment the file is complete.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    /// The inner writer, the number of bytes written and their sha256.
    pub(crate) fn finish(self) -> (W, u64, String) {
        (self.inner, self.len, to_hex(self.hasher))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Only the bytes the inner writer accepted are hashed.
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn known_digests() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, b"").unwrap();
        assert_eq!(sha256_file(&empty).unwrap(), EMPTY);
        let abc = dir.path().join("abc");
        std::fs::write(&abc, b"abc").unwrap();
        assert_eq!(hash_file(&abc).unwrap(), (3, ABC.to_string()));
    }

    #[test]
    fn writer_hashes_what_it_writes() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"a").unwrap();
        w.write_all(b"bc").unwrap();
        let (inner, len, sha) = w.finish();
        assert_eq!((inner.as_slice(), len, sha.as_str()), (&b"abc"[..], 3, ABC));
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = sha256_file(Path::new("/nonexistent/model.onnx")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/model.onnx"), "{err}");
        assert!(matches!(err, PackageError::Io { .. }));
    }

    #[test]
    fn hex_check() {
        assert!(is_sha256_hex(EMPTY));
        assert!(!is_sha256_hex(&EMPTY.to_uppercase()));
        assert!(!is_sha256_hex(&EMPTY[1..]));
    }
}
