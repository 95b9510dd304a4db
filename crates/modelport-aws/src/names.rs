//! Resource names and S3 keys, derived from the deployment name and content
//! digests, so that a re-run computes the same names and converges instead of
//! creating duplicates.

/// SageMaker's limit for model, endpoint configuration and endpoint names.
pub const MAX_NAME_LEN: usize = 63;

/// The one production variant modelport creates.
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

/// The model and its endpoint configuration of one revision:
/// `NAME-ARTIFACT8-SPEC6`, the name cut so that the whole fits 63 characters.
pub fn revision_name(deployment: &str, artifact_digest: &str, resource_hash: &str) -> String {
    let suffix = format!(
        "-{}-{}",
        &hex(artifact_digest)[..8.min(hex(artifact_digest).len())],
        &hex(resource_hash)[..6.min(hex(resource_hash).len())]
    );
    let room = MAX_NAME_LEN - suffix.len();
    let base: String = deployment.chars().take(room).collect();
    format!("{}{suffix}", base.trim_end_matches('-'))
}

/// `PREFIX/NAME/DIGEST/model.tar.gz`: content-addressed, so an object that exists
/// under the key is the artifact.
pub fn artifact_key(prefix: &str, deployment: &str, artifact_digest: &str) -> String {
    let prefix = prefix.trim_matches('/');
    let key = format!("{deployment}/{}/model.tar.gz", hex(artifact_digest));
    if prefix.is_empty() {
        key
    } else {
        format!("{prefix}/{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn keys_are_content_addressed() {
        assert_eq!(
            artifact_key("modelport/", "iris", "sha256:abc"),
            "modelport/iris/abc/model.tar.gz"
        );
        assert_eq!(artifact_key("", "iris", "abc"), "iris/abc/model.tar.gz");
    }
}
