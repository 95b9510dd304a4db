//! What an ELF file runs on and what it needs: its machine, its program
//! interpreter and the shared libraries it names, resolved on this machine to the
//! closure the image must carry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use goblin::elf::Elf;
use goblin::elf::header::{EM_AARCH64, EM_X86_64};

use crate::ImageError;

/// The platforms an image can be built for: the ones SageMaker and Vertex AI run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Amd64,
    Arm64,
}

impl Platform {
    pub const ALL: [Platform; 2] = [Platform::Amd64, Platform::Arm64];

    /// `linux/amd64`, as OCI and `docker --platform` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Platform::Amd64 => "linux/amd64",
            Platform::Arm64 => "linux/arm64",
        }
    }

    /// The OCI `architecture` field.
    pub fn architecture(self) -> &'static str {
        match self {
            Platform::Amd64 => "amd64",
            Platform::Arm64 => "arm64",
        }
    }

    fn machine(self) -> u16 {
        match self {
            Platform::Amd64 => EM_X86_64,
            Platform::Arm64 => EM_AARCH64,
        }
    }

    /// Debian's multiarch triplet, the first place its libraries live.
    fn triplet(self) -> &'static str {
        match self {
            Platform::Amd64 => "x86_64-linux-gnu",
            Platform::Arm64 => "aarch64-linux-gnu",
        }
    }

    /// Where this platform's shared libraries are looked for, in order: the
    /// multiarch folders (Debian, Ubuntu), then `lib64` (Fedora, Amazon Linux on
    /// amd64), then the plain ones.
    fn library_dirs(self) -> Vec<PathBuf> {
        let t = self.triplet();
        let mut dirs = vec![
            PathBuf::from(format!("/lib/{t}")),
            PathBuf::from(format!("/usr/lib/{t}")),
        ];
        if self == Platform::Amd64 {
            dirs.push("/lib64".into());
            dirs.push("/usr/lib64".into());
        }
        dirs.extend(["/lib", "/usr/lib", "/usr/local/lib"].map(PathBuf::from));
        dirs
    }

    /// The platform of the machine this runs on, if it is one of [`Platform::ALL`].
    pub fn host() -> Option<Platform> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Platform::Amd64),
            "aarch64" => Some(Platform::Arm64),
            _ => None,
        }
    }
}

impl serde::Serialize for Platform {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Platform {
    type Err = ImageError;

    fn from_str(s: &str) -> Result<Platform, ImageError> {
        Platform::ALL
            .into_iter()
            .find(|p| p.name() == s || p.architecture() == s)
            .ok_or_else(|| {
                ImageError::new(
                    format!("unknown platform `{s}`"),
                    "use linux/amd64 (x86 instances) or linux/arm64 (Graviton instances)",
                )
            })
    }
}

/// The facts about one ELF file an image needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    /// `None` for a machine that is neither amd64 nor arm64.
    pub platform: Option<Platform>,
    /// `e_machine`, for the message when `platform` is `None`.
    pub machine: u16,
    /// The program interpreter (`PT_INTERP`), for an executable linked dynamically.
    pub interpreter: Option<String>,
    /// The libraries it names (`DT_NEEDED`), in order.
    pub needed: Vec<String>,
    /// `DT_RUNPATH` and `DT_RPATH` folders, `$ORIGIN` already replaced.
    pub search: Vec<PathBuf>,
}

/// Reads the ELF facts of `path`; anything but a 64-bit ELF file is refused.
pub fn inspect(path: &Path) -> Result<ElfInfo, ImageError> {
    let bytes = std::fs::read(path).map_err(|e| ImageError::io(path, e))?;
    let elf = Elf::parse(&bytes).map_err(|e| {
        ImageError::new(
            format!("{}: not an ELF file ({e})", path.display()),
            "an image runs Linux executables and libraries: pass a Linux build \
             (`cargo build --release --target x86_64-unknown-linux-gnu`)",
        )
    })?;
    if !elf.is_64 {
        return Err(ImageError::new(
            format!("{}: a 32-bit ELF file", path.display()),
            "SageMaker and Vertex AI run 64-bit Linux: pass an x86_64 or aarch64 build",
        ));
    }
    let machine = elf.header.e_machine;
    let origin = path.parent().unwrap_or(Path::new("/"));
    let search = elf
        .runpaths
        .iter()
        .chain(elf.rpaths.iter())
        .flat_map(|p| p.split(':'))
        .filter(|p| !p.is_empty())
        .map(|p| {
            PathBuf::from(
                p.replace("$ORIGIN", &origin.to_string_lossy())
                    .replace("${ORIGIN}", &origin.to_string_lossy()),
            )
        })
        .collect();
    Ok(ElfInfo {
        platform: Platform::ALL.into_iter().find(|p| p.machine() == machine),
        machine,
        interpreter: elf.interpreter.map(str::to_string),
        needed: elf.libraries.iter().map(|s| s.to_string()).collect(),
        search,
    })
}

/// Checks that `path` runs on `platform`, with a hint when it does not.
pub fn check_platform(path: &Path, info: &ElfInfo, platform: Platform) -> Result<(), ImageError> {
    if info.platform == Some(platform) {
        return Ok(());
    }
    let built_for = info
        .platform
        .map(|p| p.name().to_string())
        .unwrap_or_else(|| format!("ELF machine {}", info.machine));
    let target = match platform {
        Platform::Amd64 => "x86_64-unknown-linux-gnu",
        Platform::Arm64 => "aarch64-unknown-linux-gnu",
    };
    Err(ImageError::new(
        format!(
            "{} is built for {built_for} and cannot run on {platform}",
            path.display()
        ),
        format!(
            "pass a build for {platform} (`cargo build --release --target {target}`), \
             or `--platform {built_for}` to build an image for the file's own platform"
        ),
    ))
}

/// The shared libraries `roots` need, transitively: soname → the file on this
/// machine, plus the program interpreter (path in the image → file on this machine).
#[derive(Debug, Default)]
pub struct Closure {
    pub libraries: BTreeMap<String, PathBuf>,
    pub interpreters: BTreeMap<String, PathBuf>,
}

/// Resolves every library `roots` need, as the dynamic loader would: `DT_RUNPATH`
/// and `DT_RPATH` first, then the platform's library folders; a candidate built
/// for another machine is passed over. A library that is nowhere is an error.
pub fn closure(roots: &[(PathBuf, ElfInfo)], platform: Platform) -> Result<Closure, ImageError> {
    closure_in(roots, platform, &platform.library_dirs())
}

fn closure_in(
    roots: &[(PathBuf, ElfInfo)],
    platform: Platform,
    dirs: &[PathBuf],
) -> Result<Closure, ImageError> {
    let mut out = Closure::default();
    let mut queue: Vec<(PathBuf, ElfInfo)> = roots.to_vec();
    let provided: Vec<String> = roots
        .iter()
        .filter_map(|(p, _)| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    // The interpreters first: a library that names the loader is then known to
    // be served by it, whatever the order of the queue.
    for (path, info) in roots {
        if let Some(interp) = &info.interpreter
            && !out.interpreters.contains_key(interp)
        {
            let host = PathBuf::from(interp);
            if !host.is_file() {
                return Err(ImageError::new(
                    format!(
                        "{} needs the program interpreter {interp}, which this machine does not have",
                        path.display()
                    ),
                    "build the image on a machine of the binary's platform, or link the binary statically",
                ));
            }
            out.interpreters.insert(interp.clone(), host);
        }
    }
    while let Some((path, info)) = queue.pop() {
        for name in &info.needed {
            // A library may name the loader itself (libonnxruntime does): it is in
            // the image already, at the interpreter's path.
            let is_loader = out
                .interpreters
                .keys()
                .any(|i| Path::new(i).file_name().is_some_and(|f| f == name.as_str()));
            if out.libraries.contains_key(name) || provided.contains(name) || is_loader {
                continue;
            }
            let found = find_library(name, &info.search, dirs, platform)?.ok_or_else(|| {
                ImageError::new(
                    format!(
                        "{} needs {name}, which was not found for {platform} (looked in its \
                         run path and {})",
                        path.display(),
                        dirs.iter()
                            .map(|d| d.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    format!(
                        "install the library for {platform} on this machine, or build the \
                         image where the binary was built"
                    ),
                )
            })?;
            let found_info = inspect(&found)?;
            out.libraries.insert(name.clone(), found.clone());
            queue.push((found, found_info));
        }
    }
    Ok(out)
}

fn find_library(
    name: &str,
    search: &[PathBuf],
    dirs: &[PathBuf],
    platform: Platform,
) -> Result<Option<PathBuf>, ImageError> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return Ok(p.is_file().then_some(p));
    }
    for dir in search.iter().chain(dirs) {
        let candidate = dir.join(name);
        if !candidate.is_file() {
            continue;
        }
        // A folder may hold another machine's build (a cross toolchain's sysroot).
        if let Ok(info) = inspect(&candidate)
            && info.platform == Some(platform)
        {
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_exe() -> (PathBuf, ElfInfo) {
        let exe = std::env::current_exe().unwrap();
        let info = inspect(&exe).unwrap();
        (exe, info)
    }

    #[test]
    fn the_running_test_binary_is_a_host_executable_with_libc() {
        let (_, info) = host_exe();
        assert_eq!(info.platform, Platform::host());
        assert!(info.interpreter.is_some(), "{info:?}");
        assert!(
            info.needed.iter().any(|n| n.starts_with("libc.so")),
            "{info:?}"
        );
    }

    #[test]
    fn the_closure_holds_libc_and_the_interpreter() {
        let (exe, info) = host_exe();
        let platform = info.platform.unwrap();
        let c = closure(&[(exe, info)], platform).unwrap();
        assert!(
            c.libraries.keys().any(|n| n.starts_with("libc.so")),
            "{c:?}"
        );
        assert_eq!(c.interpreters.len(), 1, "{c:?}");
    }

    #[test]
    fn a_missing_library_names_the_file_and_the_folders() {
        let (exe, mut info) = host_exe();
        info.needed = vec!["libmodelport-nowhere.so.9".into()];
        let platform = info.platform.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let err = closure_in(&[(exe, info)], platform, &[dir.path().to_path_buf()]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("libmodelport-nowhere.so.9"), "{text}");
        assert!(text.contains(&dir.path().display().to_string()), "{text}");
    }

    #[test]
    fn another_machines_build_is_refused_with_the_target_to_build() {
        let (exe, info) = host_exe();
        let other = Platform::ALL
            .into_iter()
            .find(|p| Some(*p) != info.platform)
            .unwrap();
        let err = check_platform(&exe, &info, other).unwrap_err();
        assert!(err.to_string().contains("cannot run on"), "{err}");
        assert!(err.hint().unwrap().contains("--target"), "{err:?}");
    }

    #[test]
    fn a_text_file_is_not_an_elf_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("modelport");
        std::fs::write(&p, "#!/bin/sh\necho hi\n").unwrap();
        let err = inspect(&p).unwrap_err();
        assert!(err.to_string().contains("not an ELF file"), "{err}");
    }

    #[test]
    fn platforms_parse_by_either_name() {
        assert_eq!("linux/arm64".parse::<Platform>().unwrap(), Platform::Arm64);
        assert_eq!("amd64".parse::<Platform>().unwrap(), Platform::Amd64);
        assert!("linux/riscv64".parse::<Platform>().is_err());
    }
}
