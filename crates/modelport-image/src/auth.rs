//! Registry credentials from the user's Docker configuration
//! (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`): a credential
//! helper named for the registry (`credHelpers`), else the default store
//! (`credsStore`), else the inline `auths` entry, else anonymous.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde_json::Value;

use crate::ImageError;
use crate::push::RegistryAuth;

/// The Docker configuration file this machine's user has, if any.
pub fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// The credentials for `registry` in the Docker configuration at `path`
/// (anonymous when the file or the registry's entry is missing).
pub fn docker_credentials(path: &Path, registry: &str) -> Result<RegistryAuth, ImageError> {
    let Ok(bytes) = std::fs::read(path) else {
        return Ok(RegistryAuth::Anonymous);
    };
    let config: Value = serde_json::from_slice(&bytes).map_err(|e| {
        ImageError::new(
            format!("{}: not JSON ({e})", path.display()),
            "fix the file or point DOCKER_CONFIG at another folder",
        )
    })?;
    let keys = registry_keys(registry);
    if let Some(helper) = keys
        .iter()
        .find_map(|k| config["credHelpers"][k.as_str()].as_str())
        .or_else(|| config["credsStore"].as_str())
        && let Some(auth) = from_helper(helper, registry)?
    {
        return Ok(auth);
    }
    let Some(entry) = keys
        .iter()
        .map(|k| &config["auths"][k.as_str()])
        .find(|e| e.is_object())
    else {
        return Ok(RegistryAuth::Anonymous);
    };
    if let Some(token) = entry["identitytoken"].as_str() {
        return Ok(RegistryAuth::Bearer(token.to_string()));
    }
    if let Some(encoded) = entry["auth"].as_str() {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
        let Some((user, password)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
            return Err(ImageError::new(
                format!(
                    "{}: the `auth` of {registry} is not base64 of USER:PASSWORD",
                    path.display()
                ),
                format!("log in again: `docker login {registry}`"),
            ));
        };
        return Ok(RegistryAuth::Basic(user.to_string(), password.to_string()));
    }
    Ok(RegistryAuth::Anonymous)
}

/// The spellings a registry has in `auths`: as is, and with a scheme (Docker Hub's
/// `https://index.docker.io/v1/` is the classic one).
fn registry_keys(registry: &str) -> Vec<String> {
    let mut keys = vec![
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ];
    if registry == "docker.io" || registry == "index.docker.io" {
        keys.push("https://index.docker.io/v1/".into());
    }
    keys
}

/// Asks `docker-credential-HELPER get`, as Docker does; `None` when the helper
/// has nothing for the registry.
fn from_helper(helper: &str, registry: &str) -> Result<Option<RegistryAuth>, ImageError> {
    let program = format!("docker-credential-{helper}");
    let child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            return Err(ImageError::new(
                format!("the Docker credential helper {program} could not run: {e}"),
                "install it, or remove it from ~/.docker/config.json (`credsStore`, `credHelpers`)",
            ));
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(registry.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| ImageError::io(Path::new(&program), e))?;
    if !out.status.success() {
        // "credentials not found in native keychain": nothing stored for it.
        return Ok(None);
    }
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let (Some(user), Some(secret)) = (answer["Username"].as_str(), answer["Secret"].as_str())
    else {
        return Ok(None);
    };
    Ok(Some(if user == "<token>" {
        RegistryAuth::Bearer(secret.to_string())
    } else {
        RegistryAuth::Basic(user.to_string(), secret.to_string())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    #[test]
    fn inline_auths_are_base64_user_and_password() {
        // base64("user:pa:ss")
        let (_d, p) =
            config(r#"{"auths": {"registry.example.com": {"auth": "dXNlcjpwYTpzcw=="}}}"#);
        match docker_credentials(&p, "registry.example.com").unwrap() {
            RegistryAuth::Basic(u, pw) => assert_eq!((u.as_str(), pw.as_str()), ("user", "pa:ss")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            docker_credentials(&p, "other.example.com").unwrap(),
            RegistryAuth::Anonymous
        ));
    }

    #[test]
    fn an_entry_with_a_scheme_counts_and_a_bad_one_names_the_registry() {
        let (_d, p) = config(r#"{"auths": {"https://r.example.com": {"auth": "bm9jb2xvbg=="}}}"#);
        let err = docker_credentials(&p, "r.example.com").unwrap_err();
        assert!(err.to_string().contains("r.example.com"), "{err}");
        assert!(err.hint().unwrap().contains("docker login r.example.com"));
    }

    #[test]
    fn a_missing_helper_is_an_error_that_names_it() {
        let (_d, p) = config(r#"{"credsStore": "modelport-test-nothing"}"#);
        let err = docker_credentials(&p, "r.example.com").unwrap_err();
        assert!(
            err.to_string()
                .contains("docker-credential-modelport-test-nothing"),
            "{err}"
        );
    }

    #[test]
    fn no_file_is_anonymous() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            docker_credentials(&dir.path().join("config.json"), "r.example.com").unwrap(),
            RegistryAuth::Anonymous
        ));
    }
}
