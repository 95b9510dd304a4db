//! Resource ids, object names and labels, derived from the deployment name and
//! content digests, so that a re-run computes the same ids and converges instead of
//! creating duplicates.

use sha2::{Digest, Sha256};

/// Vertex AI's limit for user-chosen model and endpoint ids, and GCP's for labels.
pub const MAX_ID_LEN: usize = 63;

/// Label keys on every model and endpoint, by which deployments are found without
/// local state.
pub const LABEL_DEPLOYMENT: &str = "modelport-deployment";
pub const LABEL_DIGEST: &str = "modelport-digest";

/// Label values hold at most 63 characters: the digest label keeps 32 hex digits
/// (128 bits) of the artifact's sha256.
pub const DIGEST_LABEL_LEN: usize = 32;

/// The hex part of `sha256:...`.
pub fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// A deployment name as a Vertex AI id and label value: lowercase letters, digits
/// and hyphens, starting with a letter (`m-` is put in front of a leading digit).
pub fn id_of(deployment: &str) -> String {
    let lower: String = deployment
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let id = if lower.starts_with(|c: char| c.is_ascii_digit()) {
        format!("m-{lower}")
    } else {
        lower
    };
    let id: String = id.chars().take(MAX_ID_LEN).collect();
    id.trim_end_matches('-').to_string()
}

/// The endpoint keeps one id across updates: clients call it by that id.
pub fn endpoint_id(deployment: &str) -> String {
    id_of(deployment)
}

/// The model of one revision: `NAME-ARTIFACT8-SPEC6`, cut to fit 63 characters.
pub fn model_id(deployment: &str, artifact_digest: &str, resource_hash: &str) -> String {
    let suffix = format!(
        "-{}-{}",
        &hex(artifact_digest)[..8.min(hex(artifact_digest).len())],
        &hex(resource_hash)[..6.min(hex(resource_hash).len())]
    );
    let base: String = id_of(deployment)
        .chars()
        .take(MAX_ID_LEN - suffix.len())
        .collect();
    format!("{}{suffix}", base.trim_end_matches('-'))
}

/// The DeployedModel id of a revision: Vertex wants 1 to 10 digits, so it is ten
/// digits drawn from the model id's hash (no leading zero).
pub fn deployed_model_id(model_id: &str) -> String {
    let hash = Sha256::digest(model_id.as_bytes());
    let mut n = 0u64;
    for b in &hash[..8] {
        n = (n << 8) | u64::from(*b);
    }
    (1_000_000_000 + n % 9_000_000_000).to_string()
}

/// The short-lived endpoint a revision is compared on before any production request
/// can reach it: `MODEL_ID` with `-verify` before its digests, cut to 63 characters.
pub fn verification_endpoint_id(model_id: &str) -> String {
    let tail_len = 16.min(model_id.len());
    let (head, tail) = model_id.split_at(model_id.len() - tail_len);
    let suffix = format!("-verify{tail}");
    let base: String = head.chars().take(MAX_ID_LEN - suffix.len()).collect();
    format!("{}{suffix}", base.trim_end_matches('-'))
}

/// The DeployedModel id of a revision's copy on its verification endpoint.
pub fn verification_deployed_model_id(model_id: &str) -> String {
    deployed_model_id(&format!("{model_id}/verify"))
}

/// `PREFIX/NAME/DIGEST`: the directory a revision's files go to, content-addressed.
pub fn artifact_dir(prefix: &str, deployment: &str, artifact_digest: &str) -> String {
    let prefix = prefix.trim_matches('/');
    let dir = format!("{deployment}/{}", hex(artifact_digest));
    if prefix.is_empty() {
        dir
    } else {
        format!("{prefix}/{dir}")
    }
}

/// The digest label's value.
pub fn digest_label(artifact_digest: &str) -> String {
    hex(artifact_digest)
        .chars()
        .take(DIGEST_LABEL_LEN)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_fit_vertex_rules() {
        assert_eq!(id_of("Iris_v2"), "iris-v2");
        assert_eq!(id_of("3d-model"), "m-3d-model");
        let long = "a".repeat(80);
        assert_eq!(id_of(&long).len(), 63);
        let m = model_id("iris", "sha256:0123456789abcdef", "sha256:fedcba98");
        assert_eq!(m, "iris-01234567-fedcba");
        let m = model_id(&format!("{}-b", "a".repeat(46)), "0123456789", "fedcba98");
        assert_eq!(m, format!("{}-01234567-fedcba", "a".repeat(46)));
        assert!(m.len() <= MAX_ID_LEN);
    }

    #[test]
    fn deployed_model_ids_are_ten_stable_digits() {
        let a = deployed_model_id("iris-01234567-fedcba");
        assert_eq!(a, deployed_model_id("iris-01234567-fedcba"));
        assert_eq!(a.len(), 10);
        assert!(a.chars().all(|c| c.is_ascii_digit()) && !a.starts_with('0'));
        assert_ne!(a, deployed_model_id("iris-89abcdef-fedcba"));
    }

    #[test]
    fn verification_ids_differ_from_the_serving_ones() {
        let m = model_id("iris", "sha256:0123456789abcdef", "sha256:fedcba98");
        assert_eq!(verification_endpoint_id(&m), "iris-verify-01234567-fedcba");
        assert_ne!(verification_deployed_model_id(&m), deployed_model_id(&m));
        let long = model_id(
            &"a".repeat(63),
            "sha256:0123456789abcdef",
            "sha256:fedcba98",
        );
        let v = verification_endpoint_id(&long);
        assert!(
            v.len() <= MAX_ID_LEN && v.ends_with("-verify-01234567-fedcba"),
            "{v}"
        );
    }

    #[test]
    fn directories_are_content_addressed() {
        assert_eq!(
            artifact_dir("modelport/", "iris", "sha256:abc"),
            "modelport/iris/abc"
        );
        assert_eq!(artifact_dir("", "iris", "abc"), "iris/abc");
        assert_eq!(
            digest_label(&format!("sha256:{}", "f".repeat(64))).len(),
            32
        );
    }
}
