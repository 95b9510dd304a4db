//! Botocore's SageMaker service model and a validator that checks a JSON value
//! against one of its shapes the way the service does: required members, unknown
//! members, types, enums, lengths, ranges and regular-expression patterns.
//!
//! Patterns are Java regular expressions matched against the whole value. Those
//! that Rust's `regex` cannot compile (look-around, POSIX classes like
//! `\p{Alnum}`) are skipped and counted in [`ServiceModel::skipped_patterns`].

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::Context;
use regex::Regex;
use serde_json::{Map, Value};

/// Where botocore keeps the model, relative to `site-packages`.
pub const MODEL_PATH: &str = "botocore/data/sagemaker/2017-07-24/service-2.json.gz";

/// A loaded service model.
pub struct ServiceModel {
    path: PathBuf,
    operations: Map<String, Value>,
    shapes: Map<String, Value>,
    patterns: HashMap<String, Regex>,
    skipped: Vec<String>,
}

impl std::fmt::Debug for ServiceModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceModel")
            .field("path", &self.path)
            .field("operations", &self.operations.len())
            .field("shapes", &self.shapes.len())
            .field("skipped_patterns", &self.skipped.len())
            .finish()
    }
}

impl ServiceModel {
    /// The model in the test venv's botocore, when it is installed.
    pub fn locate() -> Option<PathBuf> {
        let path = crate::moto::site_packages()?.join(MODEL_PATH);
        path.is_file().then_some(path)
    }

    /// Loads (once per process and path) the model at `path`, or the one found by
    /// [`ServiceModel::locate`].
    pub fn shared(path: Option<&Path>) -> anyhow::Result<Arc<ServiceModel>> {
        static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<ServiceModel>>>> = OnceLock::new();
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => ServiceModel::locate().with_context(|| {
                format!(
                    "botocore's SageMaker service model ({MODEL_PATH}) is not in the test venv; \
                     run `scripts/test` once, or `.venv/bin/pip install -r .ci/requirements.txt`"
                )
            })?,
        };
        let cache = CACHE.get_or_init(Default::default);
        let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(model) = cache.get(&path) {
            return Ok(model.clone());
        }
        let model = Arc::new(ServiceModel::load(&path)?);
        cache.insert(path, model.clone());
        Ok(model)
    }

    /// Reads a `service-2.json` or `service-2.json.gz`.
    pub fn load(path: &Path) -> anyhow::Result<ServiceModel> {
        let raw = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let text = if raw.starts_with(&[0x1f, 0x8b]) {
            let mut out = String::new();
            flate2::read::GzDecoder::new(&raw[..])
                .read_to_string(&mut out)
                .with_context(|| format!("cannot gunzip {}", path.display()))?;
            out
        } else {
            String::from_utf8(raw).with_context(|| format!("{} is not UTF-8", path.display()))?
        };
        let mut doc: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        let take = |doc: &mut Value, key: &str| match doc.get_mut(key).map(Value::take) {
            Some(Value::Object(m)) => Ok(m),
            _ => Err(anyhow::anyhow!("{} has no `{key}` object", path.display())),
        };
        let operations = take(&mut doc, "operations")?;
        let shapes = take(&mut doc, "shapes")?;
        let mut patterns = HashMap::new();
        let mut skipped = Vec::new();
        for shape in shapes.values() {
            let Some(p) = shape.get("pattern").and_then(Value::as_str) else {
                continue;
            };
            if patterns.contains_key(p) || skipped.iter().any(|s| s == p) {
                continue;
            }
            match Regex::new(&format!("^(?:{p})$")) {
                Ok(re) => {
                    patterns.insert(p.to_string(), re);
                }
                Err(_) => skipped.push(p.to_string()),
            }
        }
        skipped.sort();
        Ok(ServiceModel {
            path: path.to_path_buf(),
            operations,
            shapes,
            patterns,
            skipped,
        })
    }

    /// The file the model was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Patterns that Rust's `regex` cannot compile, which are not checked.
    pub fn skipped_patterns(&self) -> &[String] {
        &self.skipped
    }

    /// How many distinct patterns are checked.
    pub fn checked_patterns(&self) -> usize {
        self.patterns.len()
    }

    /// Whether the service has this operation.
    pub fn has_operation(&self, operation: &str) -> bool {
        self.operations.contains_key(operation)
    }

    /// The name of an operation's input shape.
    pub fn input_shape(&self, operation: &str) -> Option<&str> {
        self.operations
            .get(operation)?
            .get("input")?
            .get("shape")?
            .as_str()
    }

    /// The name of an operation's output shape.
    pub fn output_shape(&self, operation: &str) -> Option<&str> {
        self.operations
            .get(operation)?
            .get("output")?
            .get("shape")?
            .as_str()
    }

    /// The member names of a structure shape.
    pub fn members(&self, shape: &str) -> Vec<String> {
        self.shapes
            .get(shape)
            .and_then(|s| s.get("members"))
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Checks `value` against `shape`; an empty list means it conforms.
    pub fn validate(&self, shape: &str, value: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        self.check(shape, value, "", &mut errors);
        errors
    }

    fn check(&self, shape_name: &str, value: &Value, at: &str, errors: &mut Vec<String>) {
        let Some(shape) = self.shapes.get(shape_name) else {
            errors.push(format!("unknown shape {shape_name} at '{at}'"));
            return;
        };
        let kind = shape.get("type").and_then(Value::as_str).unwrap_or("");
        let fail = |errors: &mut Vec<String>, constraint: String| {
            errors.push(format!(
                "Value {} at '{at}' failed to satisfy constraint: {constraint}",
                show(value)
            ));
        };
        match kind {
            "structure" => {
                let Some(obj) = value.as_object() else {
                    return fail(errors, "Member must be a structure".into());
                };
                let members = shape
                    .get("members")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                let required: Vec<&str> = shape
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                for name in &required {
                    if obj.get(*name).is_none_or(Value::is_null) {
                        errors.push(format!(
                            "Value null at '{}' failed to satisfy constraint: Member must not be null",
                            join(at, name)
                        ));
                    }
                }
                for (name, member_value) in obj {
                    let Some(member) = members.get(name) else {
                        let mut known: Vec<&String> = members.keys().collect();
                        known.sort();
                        errors.push(format!(
                            "Unknown parameter '{}' at '{}': must be one of: {}",
                            name,
                            join(at, name),
                            known
                                .iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                        continue;
                    };
                    if member_value.is_null() {
                        continue;
                    }
                    if let Some(target) = member.get("shape").and_then(Value::as_str) {
                        self.check(target, member_value, &join(at, name), errors);
                    }
                }
                if shape.get("union").and_then(Value::as_bool) == Some(true) {
                    let set = obj.values().filter(|v| !v.is_null()).count();
                    if set != 1 {
                        fail(errors, "Member must have exactly one member set".into());
                    }
                }
            }
            "list" => {
                let Some(items) = value.as_array() else {
                    return fail(errors, "Member must be a list".into());
                };
                self.check_len(items.len(), shape, value, at, errors);
                if let Some(target) = shape
                    .get("member")
                    .and_then(|m| m.get("shape"))
                    .and_then(Value::as_str)
                {
                    for (i, item) in items.iter().enumerate() {
                        self.check(target, item, &format!("{at}.{}.member", i + 1), errors);
                    }
                }
            }
            "map" => {
                let Some(entries) = value.as_object() else {
                    return fail(errors, "Member must be a map".into());
                };
                self.check_len(entries.len(), shape, value, at, errors);
                let target = |key: &str| {
                    shape
                        .get(key)
                        .and_then(|m| m.get("shape"))
                        .and_then(Value::as_str)
                };
                for (k, v) in entries {
                    if let Some(key_shape) = target("key") {
                        self.check(
                            key_shape,
                            &Value::String(k.clone()),
                            &format!("{at}.{k}.key"),
                            errors,
                        );
                    }
                    if let Some(value_shape) = target("value") {
                        self.check(value_shape, v, &format!("{at}.{k}.value"), errors);
                    }
                }
            }
            "string" => {
                let Some(s) = value.as_str() else {
                    return fail(errors, "Member must be a string".into());
                };
                if let Some(values) = shape.get("enum").and_then(Value::as_array)
                    && !values.iter().any(|v| v.as_str() == Some(s))
                {
                    let set: Vec<&str> = values.iter().filter_map(Value::as_str).collect();
                    fail(
                        errors,
                        format!("Member must satisfy enum value set: [{}]", set.join(", ")),
                    );
                }
                self.check_len(s.chars().count(), shape, value, at, errors);
                if let Some(p) = shape.get("pattern").and_then(Value::as_str)
                    && let Some(re) = self.patterns.get(p)
                    && !re.is_match(s)
                {
                    fail(
                        errors,
                        format!("Member must satisfy regular expression pattern: {p}"),
                    );
                }
            }
            "integer" | "long" => {
                let Some(n) = value.as_i64() else {
                    return fail(errors, format!("Member must be of type {kind}"));
                };
                if kind == "integer" && i32::try_from(n).is_err() {
                    return fail(errors, "Member must be of type integer".into());
                }
                for constraint in range(shape, n as f64) {
                    fail(errors, constraint);
                }
            }
            "float" | "double" => {
                let n = match value {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) if ["NaN", "Infinity", "-Infinity"].contains(&s.as_str()) => {
                        None
                    }
                    _ => return fail(errors, format!("Member must be of type {kind}")),
                };
                for constraint in n.map(|n| range(shape, n)).unwrap_or_default() {
                    fail(errors, constraint);
                }
            }
            "boolean" => {
                if !value.is_boolean() {
                    fail(errors, "Member must be of type boolean".into());
                }
            }
            // awsJson sends timestamps as epoch seconds.
            "timestamp" => {
                if !value.is_number() {
                    fail(
                        errors,
                        "Member must be a timestamp in epoch seconds (a number)".into(),
                    );
                }
            }
            "blob" => {
                if !value.is_string() {
                    fail(errors, "Member must be base64-encoded binary data".into());
                }
            }
            other => errors.push(format!("shape {shape_name} has unknown type {other}")),
        }
    }

    fn check_len(
        &self,
        len: usize,
        shape: &Value,
        value: &Value,
        at: &str,
        errors: &mut Vec<String>,
    ) {
        let len = len as f64;
        let bound = |key: &str| shape.get(key).and_then(Value::as_f64);
        let mut broken = Vec::new();
        if let Some(min) = bound("min").filter(|min| len < *min) {
            broken.push(format!("greater than or equal to {min}"));
        }
        if let Some(max) = bound("max").filter(|max| len > *max) {
            broken.push(format!("less than or equal to {max}"));
        }
        for what in broken {
            errors.push(format!(
                "Value {} at '{at}' failed to satisfy constraint: Member must have length {what}",
                show(value)
            ));
        }
    }
}

/// The range constraints (`min`, `max`) that `n` breaks.
fn range(shape: &Value, n: f64) -> Vec<String> {
    let bound = |key: &str| shape.get(key).and_then(Value::as_f64);
    let mut broken = Vec::new();
    if let Some(min) = bound("min").filter(|min| n < *min) {
        broken.push(format!(
            "Member must have value greater than or equal to {min}"
        ));
    }
    if let Some(max) = bound("max").filter(|max| n > *max) {
        broken.push(format!(
            "Member must have value less than or equal to {max}"
        ));
    }
    broken
}

/// The service's summary line: `1 validation error detected: ...; ...`.
pub fn validation_message(errors: &[String]) -> String {
    let n = errors.len();
    let noun = if n == 1 { "error" } else { "errors" };
    format!("{n} validation {noun} detected: {}", errors.join("; "))
}

/// `parent.memberName`, with the member name's first letter lower-cased as the
/// service writes it.
fn join(at: &str, member: &str) -> String {
    let mut chars = member.chars();
    let camel = match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect::<String>(),
        None => String::new(),
    };
    if at.is_empty() {
        camel
    } else {
        format!("{at}.{camel}")
    }
}

/// A value as the service quotes it: `'text'`, `'5'`, or `null`.
fn show(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::String(s) => format!("'{s}'"),
        other => {
            let text = other.to_string();
            if text.len() > 200 {
                format!("'{}...'", &text[..text.floor_char_boundary(200)])
            } else {
                format!("'{text}'")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn model() -> ServiceModel {
        let doc = json!({
            "operations": {"Op": {"input": {"shape": "In"}}},
            "shapes": {
                "In": {"type": "structure", "required": ["Name"], "members": {
                    "Name": {"shape": "Name"}, "Count": {"shape": "Count"},
                    "Items": {"shape": "Items"}, "Kind": {"shape": "Kind"},
                    "Env": {"shape": "Env"}, "When": {"shape": "When"}}},
                "Name": {"type": "string", "min": 1, "max": 5, "pattern": "[a-z](-*[a-z])*"},
                "Count": {"type": "integer", "min": 1, "max": 10},
                "Items": {"type": "list", "member": {"shape": "Name"}, "max": 2},
                "Kind": {"type": "string", "enum": ["A", "B"]},
                "Env": {"type": "map", "key": {"shape": "Name"}, "value": {"shape": "Kind"}},
                "When": {"type": "timestamp"},
                "Odd": {"type": "string", "pattern": "(?!x).*"}
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("service-2.json");
        std::fs::write(&path, doc.to_string()).unwrap();
        ServiceModel::load(&path).unwrap()
    }

    fn check(value: Value, expected: &[&str]) {
        let errors = model().validate("In", &value);
        assert_eq!(errors, expected, "for {value}");
    }

    #[test]
    fn validates_like_the_service() {
        check(json!({"Name": "ab-c"}), &[]);
        check(
            json!({}),
            &["Value null at 'name' failed to satisfy constraint: Member must not be null"],
        );
        check(
            json!({"Name": "a_b"}),
            &[
                "Value 'a_b' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-z](-*[a-z])*",
            ],
        );
        check(
            json!({"Name": "a", "Count": 11}),
            &[
                "Value '11' at 'count' failed to satisfy constraint: Member must have value less than or equal to 10",
            ],
        );
        check(
            json!({"Name": "a", "Count": "1"}),
            &["Value '1' at 'count' failed to satisfy constraint: Member must be of type integer"],
        );
        check(
            json!({"Name": "a", "Kind": "C"}),
            &[
                "Value 'C' at 'kind' failed to satisfy constraint: Member must satisfy enum value set: [A, B]",
            ],
        );
        check(
            json!({"Name": "a", "Items": ["a", "B"]}),
            &[
                "Value 'B' at 'items.2.member' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-z](-*[a-z])*",
            ],
        );
        check(
            json!({"Name": "a", "Items": ["a", "b", "c"]}),
            &[
                "Value '[\"a\",\"b\",\"c\"]' at 'items' failed to satisfy constraint: Member must have length less than or equal to 2",
            ],
        );
        check(
            json!({"Name": "a", "Env": {"k": "Z"}}),
            &[
                "Value 'Z' at 'env.k.value' failed to satisfy constraint: Member must satisfy enum value set: [A, B]",
            ],
        );
        check(
            json!({"Name": "a", "When": "2020-01-01"}),
            &[
                "Value '2020-01-01' at 'when' failed to satisfy constraint: Member must be a timestamp in epoch seconds (a number)",
            ],
        );
        check(
            json!({"Name": "a", "Extra": 1}),
            &[
                "Unknown parameter 'Extra' at 'extra': must be one of: Count, Env, Items, Kind, Name, When",
            ],
        );
        check(
            json!({"Name": "toolong"}),
            &[
                "Value 'toolong' at 'name' failed to satisfy constraint: Member must have length less than or equal to 5",
            ],
        );
    }

    #[test]
    fn uncompilable_patterns_are_counted() {
        assert_eq!(model().skipped_patterns(), ["(?!x).*"]);
    }

    #[test]
    fn summary_line() {
        assert_eq!(
            validation_message(&["a".into(), "b".into()]),
            "2 validation errors detected: a; b"
        );
    }
}
