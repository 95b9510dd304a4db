//! `modelport image build`: an OCI image layout with one layer holding the
//! modelport binary, onnxruntime (unless the image runs tract), their shared
//! libraries and CA certificates. Byte-reproducible: entries are sorted, owned by
//! 0:0, dated `SOURCE_DATE_EPOCH` (else 0), and gzip carries no timestamp or name.
//!
//! The manifest and config use Docker's image manifest v2 schema 2 media types
//! inside the OCI layout: SageMaker refuses `application/vnd.oci.image.manifest.v1+json`
//! ("Unsupported manifest media type", CreateModel), Vertex AI and every registry
//! take either, so one manifest serves both clouds and its digest is the one the
//! endpoint pulls.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::ImageError;
use crate::elf::{self, Platform};

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.docker.container.image.v1+json";
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Where things are in the image. `templates/Dockerfile` puts them in the same places.
pub const BINARY_PATH: &str = "/usr/local/bin/modelport";
pub const LIBRARY_DIR: &str = "/usr/local/lib";
pub const CA_CERTIFICATES_PATH: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The port SageMaker sends requests to; Vertex AI's `AIP_HTTP_PORT` defaults to it too.
pub const PORT: u16 = 8080;

/// The CA bundles looked for when `--ca-certificates` is not given: Debian and
/// Ubuntu, Fedora and Amazon Linux, Alpine and macOS-style.
const CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// The engine the image serves with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    /// onnxruntime from this shared library.
    Onnxruntime(PathBuf),
    /// The embedded pure-Rust engine: nothing but the binary.
    Tract,
}

#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The `modelport` executable to put in the image.
    pub binary: PathBuf,
    pub engine: Engine,
    /// `None`: the binary's own platform.
    pub platform: Option<Platform>,
    /// `None`: the first of [`CA_BUNDLES`] this machine has.
    pub ca_certificates: Option<PathBuf>,
    /// Every date in the image (tar entries, config), in seconds since 1970.
    pub epoch: u64,
    /// modelport's version, for the `org.opencontainers.image.version` label.
    pub version: String,
    /// The source repository, for the `org.opencontainers.image.source` label.
    pub source: String,
}

/// A content descriptor: what a manifest or index says about a blob.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Blob {
    pub media_type: &'static str,
    pub digest: String,
    pub size: u64,
}

/// What `build` wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Built {
    pub dir: PathBuf,
    pub platform: Platform,
    pub manifest: Blob,
    pub config: Blob,
    pub layer: Blob,
    /// The files in the layer (not counting folders) and their total size.
    pub files: Vec<String>,
    /// Where each file of the layer was taken from on this machine.
    pub sources: BTreeMap<String, PathBuf>,
    pub uncompressed_bytes: u64,
    pub onnxruntime_version: Option<String>,
}

/// One file of the layer: its path in the image, where it comes from, its mode.
struct Entry {
    from: PathBuf,
    mode: u32,
}

/// Builds the image layout in `out` (created; an earlier layout there is replaced).
pub fn build(options: &BuildOptions, out: &Path) -> Result<Built, ImageError> {
    let binary_info = elf::inspect(&options.binary)?;
    let platform = match options.platform {
        Some(p) => p,
        None => binary_info.platform.ok_or_else(|| {
            ImageError::new(
                format!(
                    "{} is built for ELF machine {}, which SageMaker and Vertex AI do not run",
                    options.binary.display(),
                    binary_info.machine
                ),
                "pass an x86_64 or aarch64 Linux build with --binary",
            )
        })?,
    };
    elf::check_platform(&options.binary, &binary_info, platform)?;

    let mut files: BTreeMap<String, Entry> = BTreeMap::new();
    files.insert(
        BINARY_PATH.to_string(),
        Entry {
            from: options.binary.clone(),
            mode: 0o755,
        },
    );
    let mut roots = vec![(options.binary.clone(), binary_info)];
    let mut ort_version = None;
    let mut env = vec![
        "PATH=/usr/local/bin:/usr/bin:/bin".to_string(),
        format!("LD_LIBRARY_PATH={LIBRARY_DIR}"),
        format!("SSL_CERT_FILE={CA_CERTIFICATES_PATH}"),
    ];
    match &options.engine {
        Engine::Onnxruntime(lib) => {
            let info = elf::inspect(lib)?;
            elf::check_platform(lib, &info, platform)?;
            let name = file_name(lib)?;
            ort_version = onnxruntime_version(&name);
            let in_image = format!("{LIBRARY_DIR}/{name}");
            env.push(format!("ORT_DYLIB_PATH={in_image}"));
            env.push("MODELPORT_ENGINE=onnxruntime".into());
            files.insert(
                in_image,
                Entry {
                    from: lib.clone(),
                    mode: 0o755,
                },
            );
            roots.push((lib.clone(), info));
        }
        Engine::Tract => env.push("MODELPORT_ENGINE=tract".into()),
    }
    let closure = elf::closure(&roots, platform)?;
    for (soname, from) in &closure.libraries {
        files
            .entry(format!("{LIBRARY_DIR}/{soname}"))
            .or_insert(Entry {
                from: from.clone(),
                mode: 0o755,
            });
    }
    for (path, from) in &closure.interpreters {
        files.insert(
            path.clone(),
            Entry {
                from: from.clone(),
                mode: 0o755,
            },
        );
    }
    let ca = match &options.ca_certificates {
        Some(p) => p.clone(),
        None => CA_BUNDLES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or_else(|| {
                ImageError::new(
                    format!(
                        "no CA certificates found (looked at {})",
                        CA_BUNDLES.join(", ")
                    ),
                    "install them (`apt-get install ca-certificates`) or pass --ca-certificates FILE",
                )
            })?,
    };
    files.insert(
        CA_CERTIFICATES_PATH.to_string(),
        Entry {
            from: ca,
            mode: 0o644,
        },
    );

    if out.exists() {
        std::fs::remove_dir_all(out).map_err(|e| ImageError::io(out, e))?;
    }
    let blobs = out.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).map_err(|e| ImageError::io(&blobs, e))?;

    let (layer, diff_id, uncompressed) = write_layer(&files, options.epoch, &blobs)?;
    let created = rfc3339(options.epoch);
    let mut labels = serde_json::Map::new();
    for (k, v) in [
        ("org.opencontainers.image.title", Some("modelport")),
        ("org.opencontainers.image.version", Some(&*options.version)),
        ("org.opencontainers.image.source", Some(&*options.source)),
        ("org.opencontainers.image.created", Some(&*created)),
        (
            "io.modelport.engine",
            Some(match options.engine {
                Engine::Onnxruntime(_) => "onnxruntime",
                Engine::Tract => "tract",
            }),
        ),
        ("io.modelport.onnxruntime.version", ort_version.as_deref()),
    ] {
        if let Some(v) = v {
            labels.insert(k.into(), Value::String(v.into()));
        }
    }
    let config = json!({
        "architecture": platform.architecture(),
        "os": "linux",
        "created": created,
        "config": {
            "Env": env,
            "Entrypoint": ["modelport"],
            "Cmd": ["serve"],
            "ExposedPorts": { format!("{PORT}/tcp"): {} },
            "WorkingDir": "/",
            "Labels": labels,
        },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        "history": [{ "created": created, "created_by": "modelport image build" }],
    });
    let config = write_json_blob(&config, CONFIG_MEDIA_TYPE, &blobs)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": descriptor(&config),
        "layers": [descriptor(&layer)],
    });
    let manifest = write_json_blob(&manifest, MANIFEST_MEDIA_TYPE, &blobs)?;
    let mut index_entry = descriptor(&manifest);
    index_entry["platform"] = json!({ "architecture": platform.architecture(), "os": "linux" });
    index_entry["annotations"] =
        json!({ "org.opencontainers.image.ref.name": options.version.clone() });
    let index = json!({ "schemaVersion": 2, "manifests": [index_entry] });
    write_file(&out.join("index.json"), &to_bytes(&index))?;
    write_file(
        &out.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    Ok(Built {
        dir: out.to_path_buf(),
        platform,
        manifest,
        config,
        layer,
        files: files.keys().cloned().collect(),
        sources: files
            .iter()
            .map(|(k, e)| (k.clone(), e.from.clone()))
            .collect(),
        uncompressed_bytes: uncompressed,
        onnxruntime_version: ort_version,
    })
}

pub(crate) fn descriptor(b: &Blob) -> Value {
    json!({ "mediaType": b.media_type, "digest": b.digest, "size": b.size })
}

fn file_name(p: &Path) -> Result<String, ImageError> {
    p.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| {
            ImageError::new(
                format!("{}: not a file name", p.display()),
                "pass the library file itself",
            )
        })
}

/// `1.32.0` from `libonnxruntime.so.1.32.0`.
fn onnxruntime_version(name: &str) -> Option<String> {
    let v = name.strip_prefix("libonnxruntime.so.")?;
    v.split('.')
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        .then(|| v.to_string())
}

/// Writes the layer's tar.gz into `blobs`: (descriptor, diff id, uncompressed bytes).
fn write_layer(
    files: &BTreeMap<String, Entry>,
    epoch: u64,
    blobs: &Path,
) -> Result<(Blob, String, u64), ImageError> {
    let partial = blobs.join(".layer.partial");
    let file = File::create(&partial).map_err(|e| ImageError::io(&partial, e))?;
    let compressed = HashingWriter::new(std::io::BufWriter::with_capacity(1 << 20, file));
    let gz = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(compressed, Compression::default());
    let mut tar = tar::Builder::new(HashingWriter::new(gz));

    // Every folder above a file, then the files, in path order: a folder comes
    // before what it holds because `a` sorts before `a/b`.
    let mut dirs: BTreeMap<String, u32> = BTreeMap::new();
    for path in files.keys() {
        let mut p = Path::new(path.trim_start_matches('/'));
        while let Some(parent) = p.parent() {
            if parent.as_os_str().is_empty() {
                break;
            }
            dirs.insert(format!("{}/", parent.display()), 0o755);
            p = parent;
        }
    }
    dirs.insert("tmp/".into(), 0o1777);
    let mut entries: Vec<(String, Option<&Entry>, u32)> = dirs
        .into_iter()
        .map(|(d, mode)| (d, None, mode))
        .chain(
            files
                .iter()
                .map(|(p, e)| (p.trim_start_matches('/').to_string(), Some(e), e.mode)),
        )
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));

    let mut uncompressed = 0u64;
    for (path, entry, mode) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(epoch);
        let io = |e| ImageError::io(Path::new(&path), e);
        match entry {
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                tar.append_data(&mut header, &path, std::io::empty())
                    .map_err(io)?;
            }
            Some(e) => {
                let f = File::open(&e.from).map_err(|err| ImageError::io(&e.from, err))?;
                let len = f
                    .metadata()
                    .map_err(|err| ImageError::io(&e.from, err))?
                    .len();
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(len);
                uncompressed += len;
                tar.append_data(&mut header, &path, BufReader::with_capacity(1 << 20, f))
                    .map_err(|err| ImageError::io(&e.from, err))?;
            }
        }
    }
    let io = |e| ImageError::io(&partial, e);
    let hashed_tar = tar.into_inner().map_err(io)?;
    let diff_id = hashed_tar.digest();
    let compressed = hashed_tar.into_inner().finish().map_err(io)?;
    let (digest, size) = (compressed.digest(), compressed.written);
    let mut inner = compressed.into_inner();
    inner.flush().map_err(io)?;
    drop(inner);
    let blob = blobs.join(digest.trim_start_matches("sha256:"));
    std::fs::rename(&partial, &blob).map_err(io)?;
    Ok((
        Blob {
            media_type: LAYER_MEDIA_TYPE,
            digest,
            size,
        },
        diff_id,
        uncompressed,
    ))
}

/// Canonical bytes of a JSON document: compact, in the order it was built.
pub(crate) fn to_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("a JSON value always serializes")
}

fn write_json_blob(v: &Value, media_type: &'static str, blobs: &Path) -> Result<Blob, ImageError> {
    let bytes = to_bytes(v);
    let digest = sha256_digest(&bytes);
    write_file(&blobs.join(digest.trim_start_matches("sha256:")), &bytes)?;
    Ok(Blob {
        media_type,
        digest,
        size: bytes.len() as u64,
    })
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
    std::fs::write(path, bytes).map_err(|e| ImageError::io(path, e))
}

pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// A writer that hashes and counts what passes through it.
struct HashingWriter<W> {
    inner: W,
    hash: Sha256,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hash: Sha256::new(),
            written: 0,
        }
    }

    fn digest(&self) -> String {
        format!("sha256:{:x}", self.hash.clone().finalize())
    }

    fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

pub use modelport_core::time::rfc3339;

/// The dates of the image: `SOURCE_DATE_EPOCH` (reproducible-builds.org), else 0.
pub fn source_date_epoch() -> Result<u64, ImageError> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Err(_) => Ok(0),
        Ok(v) => v.trim().parse().map_err(|_| {
            ImageError::new(
                format!("SOURCE_DATE_EPOCH is `{v}`, not a number of seconds"),
                "set it to a Unix time such as `$(git log -1 --format=%ct)`, or unset it",
            )
        }),
    }
}

/// Reads a blob of the layout in `dir` (for push and tests).
pub fn read_blob(dir: &Path, digest: &str) -> Result<Vec<u8>, ImageError> {
    let p = blob_path(dir, digest);
    let mut bytes = Vec::new();
    File::open(&p)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| ImageError::io(&p, e))?;
    Ok(bytes)
}

pub fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    dir.join("blobs")
        .join("sha256")
        .join(digest.trim_start_matches("sha256:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onnxruntime_versions_come_from_the_file_name() {
        assert_eq!(
            onnxruntime_version("libonnxruntime.so.1.32.0").as_deref(),
            Some("1.32.0")
        );
        assert_eq!(onnxruntime_version("libonnxruntime.so"), None);
        assert_eq!(onnxruntime_version("libonnxruntime.so.1.x"), None);
    }
}
