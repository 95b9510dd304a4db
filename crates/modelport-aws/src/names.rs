//! Resource names and S3 keys, derived from the deployment name and content
//! digests, so that a re-run computes the same names and converges instead of
//! creating duplicates.

/// SageMaker's limit for model, endpoint configuration and endpoint names.
pub const MAX_NAME_LEN: usize = 63;

/// The production variant of endpoints deployed before variants were named after
/// their revision (and SageMaker's default name).
pub const VARIANT: &str = "AllTraffic";

/// Tag keys on every resource, by which deployments are found without local state.
pub const TAG_DEPLOYMENT: &str = "modelport-deployment";
pub const TAG_DIGEST: &str = "modelport-digest";

/// The hex part of `sha256:...`.
pub fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// The endpoint keeps the deployment's name across updates: clients call it by name.
pub fn endpoint_name(deployment: &str) -> String {
    deployment.chars().take(MAX_NAME_LEN).collect()
}

/// The length of a revision name's digest tail, `-ARTIFACT8-SPEC6`.
const REVISION_TAIL_LEN: usize = 16;
/// `-verify`, before the revision tail of a verification endpoint.
const VERIFY_INFIX: &str = "-verify";

/// The model and its endpoint configuration of one revision:
/// `NAME-ARTIFACT8-SPEC6`, the name cut so that the whole fits 63 characters.
pub fn revision_name(deployment: &str, artifact_digest: &str, resource_hash: &str) -> String {
    let suffix = format!(
        "-{}-{}",
        &hex(artifact_digest)[..8.min(hex(artifact_digest).len())],
        &hex(resource_hash)[..6.min(hex(resource_hash).len())]
    );
    fit(deployment, &suffix)
}

/// `base` cut so that `base` + `suffix` fits SageMaker's 63 characters, without a
/// trailing hyphen.
fn fit(base: &str, suffix: &str) -> String {
    let room = MAX_NAME_LEN - suffix.len();
    let base: String = base.chars().take(room).collect();
    format!("{}{suffix}", base.trim_end_matches('-'))
}

fn short_hash(text: &str) -> String {
    modelport_package::sha256_bytes(text.as_bytes())[..6].to_string()
}

/// The two-variant endpoint configuration that holds a new revision at weight 0
/// beside the serving one while it is compared: `NAME-ARTIFACT8-SPEC6-from-OLD6`,
/// where OLD6 hashes the serving configuration's name.
pub fn transition_config_name(revision: &str, serving_config: &str) -> String {
    transition_with(revision, &short_hash(serving_config))
}

fn transition_with(revision: &str, old6: &str) -> String {
    // The revision name already fits; keep its tail (the digests) whole.
    let tail_len = REVISION_TAIL_LEN.min(revision.len());
    let (head, tail) = revision.split_at(revision.len() - tail_len);
    fit(head, &format!("{tail}-from-{old6}"))
}

/// The short-lived endpoint a revision is compared on when it cannot sit beside the
/// serving one as a second variant (serverless endpoints take one variant only):
/// `NAME-verify-ARTIFACT8-SPEC6`.
pub fn verification_endpoint_name(revision: &str) -> String {
    let tail_len = REVISION_TAIL_LEN.min(revision.len());
    let (head, tail) = revision.split_at(revision.len() - tail_len);
    fit(head, &format!("{VERIFY_INFIX}{tail}"))
}

/// IAM resource-name patterns for everything one deployment creates, by kind. They are
/// the naming functions above applied to `?` wildcards (one character each) in place
/// of the digests, so they follow the cuts of long names, and a deployment whose name
/// merely starts like this one's (`iris-v2` beside `iris`) matches none of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePatterns {
    /// Models: `NAME-????????-??????`.
    pub models: Vec<String>,
    /// Endpoint configurations: the revisions' and the transition ones'.
    pub configs: Vec<String>,
    /// The endpoint (clients call it by name) and the verification endpoints.
    pub endpoints: Vec<String>,
}

pub fn resource_patterns(deployment: &str) -> ResourcePatterns {
    let revision = revision_name(deployment, "????????", "??????");
    ResourcePatterns {
        models: vec![revision.clone()],
        configs: vec![revision.clone(), transition_with(&revision, "??????")],
        endpoints: vec![
            endpoint_name(deployment),
            verification_endpoint_name(&revision),
        ],
    }
}

/// `PREFIX/NAME/DIGEST/model.tar.gz`: content-addressed, so an object that exists
/// under the key is the artifact.
pub fn artifact_key(prefix: &str, deployment: &str, artifact_digest: &str) -> String {
    artifact_prefix(prefix, deployment, artifact_digest) + "model.tar.gz"
}

/// The prefix under which every revision of a deployment keeps its artifact
/// (`PREFIX/DEPLOYMENT/`, what `destroy --purge` empties), from one revision's
/// artifact key or prefix: the part before its digest's folder. `None` when the
/// key has no such folder or nothing before it (never the whole bucket).
pub fn deployment_prefix<'a>(artifact_key: &'a str, artifact_digest: &str) -> Option<&'a str> {
    let folder = format!("/{}/", hex(artifact_digest));
    let at = artifact_key.find(&folder)?;
    Some(&artifact_key[..at + 1]).filter(|p| p.len() > 1)
}

/// The key prefix of a directory artifact: `PREFIX/DEPLOYMENT/SHA256/`, ending in
/// `/` as SageMaker's `S3Prefix` model data requires.
pub fn artifact_prefix(prefix: &str, deployment: &str, artifact_digest: &str) -> String {
    let prefix = prefix.trim_matches('/');
    let key = format!("{deployment}/{}/", hex(artifact_digest));
    if prefix.is_empty() {
        key
    } else {
        format!("{prefix}/{key}")
    }
}

/// The longest S3 key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// The longest file or directory name SageMaker accepts under `/opt/ml/model`.
pub const MAX_MODEL_NAME_BYTES: usize = 255;

/// Checks the files of uncompressed model data under `prefix` against what
/// SageMaker applies when it lays them out under `/opt/ml/model` (botocore's
/// documentation of `S3ModelDataSource.CompressionType`): no name empty or blank,
/// with a NUL byte, longer than 255 bytes, `.` or `..`; no key ending in `/`; no
/// file whose path is also another file's directory; and every key within S3's
/// 1024 bytes. Refused before CreateModel, with the file named.
pub fn check_model_files<'a>(
    prefix: &str,
    files: impl IntoIterator<Item = &'a str>,
) -> Result<(), modelport_core::provider::ProviderError> {
    let refuse = |file: &str, why: String| modelport_core::provider::ProviderError::InvalidInput {
        message: format!("the model's file {file:?} cannot be SageMaker model data: {why}"),
        hint: Some(
            "rename it in the model directory, or package with `model.layout: archive`".into(),
        ),
    };
    let files: std::collections::BTreeSet<&str> = files.into_iter().collect();
    for file in &files {
        if file.ends_with('/') {
            return Err(refuse(file, "its key would end in `/`".into()));
        }
        for part in file.split('/') {
            let why = if part.trim().is_empty() {
                Some("a name in its path is empty or blank".to_string())
            } else if part.contains('\0') {
                Some("a name in its path holds a NUL byte".into())
            } else if part.len() > MAX_MODEL_NAME_BYTES {
                Some(format!(
                    "a name in its path is {} bytes long, over {MAX_MODEL_NAME_BYTES}",
                    part.len()
                ))
            } else if part == "." || part == ".." {
                Some(format!("its path holds `{part}`"))
            } else {
                None
            };
            if let Some(why) = why {
                return Err(refuse(file, why));
            }
        }
        let key = prefix.len() + file.len();
        if key > MAX_KEY_BYTES {
            return Err(refuse(
                file,
                format!("its key would be {key} bytes long, over S3's {MAX_KEY_BYTES}"),
            ));
        }
        let dir = format!("{file}/");
        if let Some(inner) = files
            .range(dir.as_str()..)
            .next()
            .filter(|f| f.starts_with(&dir))
        {
            return Err(refuse(
                file,
                format!("it is a file and also the directory of {inner:?}"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_deployment_prefix_holds_every_revision_and_never_the_bucket() {
        let digest = "sha256:".to_string() + &"ab".repeat(32);
        let key = artifact_key("mp", "iris", &digest);
        assert_eq!(deployment_prefix(&key, &digest), Some("mp/iris/"));
        let dir = artifact_prefix("", "iris", &digest);
        assert_eq!(deployment_prefix(&dir, &digest), Some("iris/"), "{dir}");
        assert_eq!(deployment_prefix("mp/iris/model.tar.gz", &digest), None);
        let bare = format!("{}/model.tar.gz", hex(&digest));
        assert_eq!(deployment_prefix(&bare, &digest), None);
    }

    use super::*;

    #[test]
    fn model_files_follow_sagemakers_rules() {
        let p = "models/iris/ab/";
        assert!(check_model_files(p, ["model.onnx", "weights/w.bin", "modelport.json"]).is_ok());
        for (files, needle) in [
            (vec!["a//b"], "empty or blank"),
            (vec!["a/ /b"], "empty or blank"),
            (vec!["a/./b"], "`.`"),
            (vec!["../b"], "`..`"),
            (vec!["dir/"], "end in `/`"),
            (vec!["a\0b"], "NUL"),
            (
                vec!["weights", "weights/part1"],
                "also the directory of \"weights/part1\"",
            ),
        ] {
            let err = check_model_files(p, files.iter().copied())
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{files:?}: {err}");
        }
        let long = "x".repeat(256);
        let err = check_model_files(p, [long.as_str()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("256 bytes long, over 255"), "{err}");
        let deep = vec!["d".repeat(200); 6].join("/");
        let err = check_model_files(p, [deep.as_str()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("over S3's 1024"), "{err}");
        assert_eq!(
            artifact_prefix("/models/", "iris", "sha256:ab"),
            "models/iris/ab/"
        );
        assert_eq!(artifact_prefix("", "iris", "ab"), "iris/ab/");
    }

    #[test]
    fn names_fit_sagemaker_limits() {
        let check = |deployment: &str, expected: &str| {
            let name = revision_name(deployment, "sha256:0123456789abcdef", "sha256:fedcba98");
            assert_eq!(name, expected);
            assert!(name.len() <= MAX_NAME_LEN);
        };
        check("iris", "iris-01234567-fedcba");
        let long = "a".repeat(63);
        check(&long, &format!("{}-01234567-fedcba", "a".repeat(47)));
        // A cut that would end in a hyphen drops it.
        let hyphen = format!("{}-b", "a".repeat(46));
        check(&hyphen, &format!("{}-01234567-fedcba", "a".repeat(46)));
    }

    #[test]
    fn rollout_names_fit_and_keep_the_revision_digests() {
        let rev = revision_name("iris", "sha256:0123456789abcdef", "sha256:fedcba98");
        let t = transition_config_name(&rev, "iris-aaaaaaaa-bbbbbb");
        assert!(t.starts_with("iris-01234567-fedcba-from-"), "{t}");
        assert_ne!(t, transition_config_name(&rev, "iris-cccccccc-bbbbbb"));
        assert_eq!(
            verification_endpoint_name(&rev),
            "iris-verify-01234567-fedcba"
        );
        let long = revision_name(
            &"a".repeat(63),
            "sha256:0123456789abcdef",
            "sha256:fedcba98",
        );
        for name in [
            transition_config_name(&long, &long),
            verification_endpoint_name(&long),
        ] {
            assert!(name.len() <= MAX_NAME_LEN, "{name}");
            assert!(
                name.ends_with("01234567-fedcba") || name.contains("-01234567-fedcba-from-"),
                "{name}"
            );
        }
    }

    /// IAM's glob: `*` any run of characters, `?` exactly one.
    fn glob(pattern: &str, name: &str) -> bool {
        fn go(p: &[u8], n: &[u8]) -> bool {
            match (p.first(), n.first()) {
                (None, None) => true,
                (Some(b'*'), _) => go(&p[1..], n) || (!n.is_empty() && go(p, &n[1..])),
                (Some(b'?'), Some(_)) => go(&p[1..], &n[1..]),
                (Some(a), Some(b)) if a == b => go(&p[1..], &n[1..]),
                _ => false,
            }
        }
        go(pattern.as_bytes(), name.as_bytes())
    }

    /// Every name a deployment creates matches its IAM pattern of that kind, however
    /// long its name (issue 13 #5: names over 47 characters are cut, and `NAME-*`
    /// missed them), and no other deployment's names do.
    #[test]
    fn resource_patterns_match_every_name_and_no_other_deployment() {
        let any = |patterns: &[String], name: &str| patterns.iter().any(|p| glob(p, name));
        let made = |deployment: &str| {
            let rev = revision_name(deployment, "sha256:0123456789abcdef", "sha256:fedcba98");
            let transition = transition_config_name(&rev, "iris-aaaaaaaa-bbbbbb");
            let verify = verification_endpoint_name(&rev);
            (rev, transition, verify, endpoint_name(deployment))
        };
        for len in [4, 35, 40, 47, 48, 55, 63] {
            for deployment in ["a".repeat(len), format!("{}-b", "a".repeat(len - 2))] {
                let p = resource_patterns(&deployment);
                let (rev, transition, verify, endpoint) = made(&deployment);
                assert!(any(&p.models, &rev), "{rev} vs {p:?}");
                assert!(any(&p.configs, &rev), "{rev} vs {p:?}");
                assert!(any(&p.configs, &transition), "{transition} vs {p:?}");
                assert!(any(&p.endpoints, &verify), "{verify} vs {p:?}");
                assert!(any(&p.endpoints, &endpoint), "{endpoint} vs {p:?}");
            }
        }
        assert_eq!(resource_patterns("iris").models, ["iris-????????-??????"]);
        let iris = resource_patterns("iris");
        for other in ["iris-v2", "irish", "iris-01234567"] {
            let (rev, transition, verify, endpoint) = made(other);
            for name in [&rev, &transition, &verify, &endpoint] {
                assert!(
                    !any(&iris.models, name)
                        && !any(&iris.configs, name)
                        && !any(&iris.endpoints, name),
                    "{other}'s {name} matches iris's {iris:?}"
                );
            }
        }
    }

    #[test]
    fn keys_are_content_addressed() {
        assert_eq!(
            artifact_key("modelport/", "iris", "sha256:abc"),
            "modelport/iris/abc/model.tar.gz"
        );
        assert_eq!(artifact_key("", "iris", "abc"), "iris/abc/model.tar.gz");
    }
}
