//! Vertex AI's discovery document (`aiplatform.v1.json`, shipped in
//! google-api-python-client) and a checker of request bodies against it.
//!
//! The checks follow what Google's JSON front end does with a proto3 message:
//! unknown names and values of the wrong JSON type are refused while parsing
//! ("Invalid JSON payload received. ..."), both the lowerCamel JSON name and the
//! original snake_case name of a field are accepted, enums come as names or as
//! integers, 64-bit integers may be strings, and fields whose description starts
//! with "Required." must be set (an empty string or list counts as unset). Field
//! paths in messages are snake_case, as Google prints them.
//!
//! Not checked: integer enum values against the enum's numbers (the discovery
//! document lists names only, not their proto numbers), `oneof` exclusivity, and
//! the value formats inside strings (timestamps, durations, base64).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::Context;
use serde_json::{Map, Value};

/// Where the discovery document lives inside site-packages.
pub const DISCOVERY_PATH: &str = "googleapiclient/discovery_cache/documents/aiplatform.v1.json";

/// One method of the document.
#[derive(Debug, Clone)]
pub struct Method {
    pub http_method: String,
    /// The request schema, when the method takes a body.
    pub request: Option<String>,
    pub response: Option<String>,
}

/// The parts of the discovery document the fake uses.
#[derive(Debug)]
pub struct Discovery {
    revision: String,
    schemas: Map<String, Value>,
    /// `models.upload`, `endpoints.deployModel`, `operations.get`, ... (the
    /// resources under `projects.locations`).
    methods: HashMap<String, Method>,
}

/// One thing wrong with a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// A name the message does not have, at `path` (snake_case, dotted).
    Unknown { name: String, path: String },
    /// A value of the wrong type or outside an enum.
    Invalid {
        path: String,
        kind: String,
        value: String,
    },
    /// A `Required.` field that is not set.
    Required { path: String },
}

impl Discovery {
    /// The document at `path`, or found in the test venv; loaded once per path.
    pub fn shared(path: Option<&Path>) -> anyhow::Result<Arc<Discovery>> {
        static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<Discovery>>>> = OnceLock::new();
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => Discovery::locate().with_context(|| {
                format!(
                    "Vertex AI's discovery document ({DISCOVERY_PATH}, PyPI \
                     google-api-python-client) is not in the test venv; run `scripts/test` \
                     once, or `.venv/bin/pip install -r .ci/requirements.txt`"
                )
            })?,
        };
        let cache = CACHE.get_or_init(Default::default);
        let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(d) = cache.get(&path) {
            return Ok(d.clone());
        }
        let d = Arc::new(Discovery::load(&path)?);
        cache.insert(path, d.clone());
        Ok(d)
    }

    /// The document in the test venv's site-packages.
    pub fn locate() -> Option<PathBuf> {
        let path = crate::moto::site_packages()?.join(DISCOVERY_PATH);
        path.is_file().then_some(path)
    }

    /// Reads a discovery document.
    pub fn load(path: &Path) -> anyhow::Result<Discovery> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut doc: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        let revision = doc
            .get("revision")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string();
        let Some(Value::Object(schemas)) = doc.get_mut("schemas").map(Value::take) else {
            anyhow::bail!("{} has no `schemas` object", path.display());
        };
        let resources = doc
            .pointer("/resources/projects/resources/locations/resources")
            .and_then(Value::as_object)
            .with_context(|| format!("{} has no projects.locations resources", path.display()))?;
        let mut methods = HashMap::new();
        for (resource, body) in resources {
            for (name, m) in body
                .get("methods")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                let r = |k: &str| {
                    m.pointer(&format!("/{k}/$ref"))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                };
                methods.insert(
                    format!("{resource}.{name}"),
                    Method {
                        http_method: m
                            .get("httpMethod")
                            .and_then(Value::as_str)
                            .unwrap_or("GET")
                            .to_string(),
                        request: r("request"),
                        response: r("response"),
                    },
                );
            }
        }
        for needed in [
            "models.upload",
            "endpoints.deployModel",
            "endpoints.predict",
            "operations.get",
        ] {
            anyhow::ensure!(
                methods.contains_key(needed),
                "{} has no method {needed}",
                path.display()
            );
        }
        Ok(Discovery {
            revision,
            schemas,
            methods,
        })
    }

    /// The document's revision (a date such as `20261106`).
    pub fn revision(&self) -> &str {
        &self.revision
    }

    /// A method under `projects.locations` (`endpoints.deployModel`).
    pub fn method(&self, name: &str) -> Option<&Method> {
        self.methods.get(name)
    }

    /// True when the document has the schema.
    pub fn has_schema(&self, name: &str) -> bool {
        self.schemas.contains_key(name)
    }

    /// Everything wrong with `value` as an instance of `schema`: parse-stage
    /// problems (unknown names, wrong types) first, then missing required fields.
    pub fn validate(&self, schema: &str, value: &Value) -> Vec<Violation> {
        let mut errors = Vec::new();
        self.check_ref(schema, value, "", &mut errors, 0);
        errors.sort_by_key(|v| matches!(v, Violation::Required { .. }));
        errors
    }

    /// `value` with every field of a message under its lowerCamel JSON name
    /// (`container_spec` → `containerSpec`); map keys (labels, traffic splits)
    /// are left as they are.
    pub fn normalize(&self, schema: &str, value: Value) -> Value {
        match self.schemas.get(schema) {
            Some(def) => self.normalize_def(def, value, 0),
            None => value,
        }
    }

    fn normalize_def(&self, def: &Value, value: Value, depth: usize) -> Value {
        if depth > 64 {
            return value;
        }
        if let Some(r) = def.get("$ref").and_then(Value::as_str) {
            return match self.schemas.get(r) {
                Some(d) => self.normalize_def(d, value, depth + 1),
                None => value,
            };
        }
        match value {
            Value::Object(obj) => {
                if let Some(props) = def.get("properties").and_then(Value::as_object) {
                    obj.into_iter()
                        .map(|(k, v)| {
                            let k = if props.contains_key(&k) { k } else { camel(&k) };
                            let v = match props.get(&k) {
                                Some(d) => self.normalize_def(d, v, depth + 1),
                                None => v,
                            };
                            (k, v)
                        })
                        .collect()
                } else if let Some(values) = def.get("additionalProperties") {
                    obj.into_iter()
                        .map(|(k, v)| (k, self.normalize_def(values, v, depth + 1)))
                        .collect()
                } else {
                    Value::Object(obj)
                }
            }
            Value::Array(items) => match def.get("items") {
                Some(item) => items
                    .into_iter()
                    .map(|v| self.normalize_def(item, v, depth + 1))
                    .collect(),
                None => Value::Array(items),
            },
            other => other,
        }
    }

    fn check_ref(
        &self,
        schema: &str,
        value: &Value,
        path: &str,
        errors: &mut Vec<Violation>,
        depth: usize,
    ) {
        // Recursive schemas (Struct, Value) end in `any` fields well before this.
        if depth > 64 {
            return;
        }
        let Some(def) = self.schemas.get(schema) else {
            return;
        };
        self.check(def, value, path, errors, depth);
    }

    fn check(
        &self,
        def: &Value,
        value: &Value,
        path: &str,
        errors: &mut Vec<Violation>,
        depth: usize,
    ) {
        if let Some(r) = def.get("$ref").and_then(Value::as_str) {
            return self.check_ref(r, value, path, errors, depth + 1);
        }
        let ty = def.get("type").and_then(Value::as_str).unwrap_or("any");
        let format = def.get("format").and_then(Value::as_str);
        let invalid = |kind: &str| Violation::Invalid {
            path: path.to_string(),
            kind: kind.to_string(),
            value: value.to_string(),
        };
        match ty {
            "any" => {}
            "object" => {
                let Value::Object(obj) = value else {
                    errors.push(invalid("TYPE_MESSAGE"));
                    return;
                };
                if let Some(props) = def.get("properties").and_then(Value::as_object) {
                    self.check_message(props, obj, path, errors, depth);
                } else if let Some(values) = def.get("additionalProperties") {
                    for (k, v) in obj {
                        let p = join(path, &format!("[{k}]"));
                        self.check(values, v, &p, errors, depth + 1);
                    }
                }
                // An object with neither (google.protobuf.Struct, Any) takes anything.
            }
            "array" => {
                let Value::Array(items) = value else {
                    errors.push(invalid("TYPE_REPEATED"));
                    return;
                };
                if let Some(item) = def.get("items") {
                    for (i, v) in items.iter().enumerate() {
                        self.check(item, v, &format!("{path}[{i}]"), errors, depth + 1);
                    }
                }
            }
            "string" => {
                if let Some(names) = def.get("enum").and_then(Value::as_array) {
                    let ok = match value {
                        Value::String(s) => names.iter().any(|n| n.as_str() == Some(s)),
                        // Proto numbers are not in the document: any non-negative
                        // integer is taken.
                        Value::Number(n) => n.as_u64().is_some(),
                        _ => false,
                    };
                    if !ok {
                        errors.push(invalid("TYPE_ENUM"));
                    }
                    return;
                }
                let ok = match (format, value) {
                    (_, Value::String(_)) => true,
                    (Some("int64"), Value::Number(n)) => n.as_i64().is_some(),
                    (Some("uint64"), Value::Number(n)) => n.as_u64().is_some(),
                    _ => false,
                };
                if !ok {
                    let kind = match format {
                        Some("int64") => "TYPE_INT64",
                        Some("uint64") => "TYPE_UINT64",
                        Some("byte") => "TYPE_BYTES",
                        _ => "TYPE_STRING",
                    };
                    errors.push(invalid(kind));
                }
            }
            "integer" => {
                let n = match value {
                    Value::Number(n) => n.as_i64().or_else(|| {
                        n.as_f64()
                            .filter(|f| f.fract() == 0.0 && f.abs() < 9e15)
                            .map(|f| f as i64)
                    }),
                    Value::String(s) => s.trim().parse::<i64>().ok(),
                    _ => None,
                };
                let (kind, range) = match format {
                    Some("uint32") => ("TYPE_UINT32", 0..=i64::from(u32::MAX)),
                    _ => ("TYPE_INT32", i64::from(i32::MIN)..=i64::from(i32::MAX)),
                };
                if !n.is_some_and(|n| range.contains(&n)) {
                    errors.push(invalid(kind));
                }
            }
            "number" => {
                let ok = match value {
                    Value::Number(_) => true,
                    Value::String(s) => {
                        matches!(s.as_str(), "NaN" | "Infinity" | "-Infinity")
                            || s.parse::<f64>().is_ok()
                    }
                    _ => false,
                };
                if !ok {
                    let kind = if format == Some("float") {
                        "TYPE_FLOAT"
                    } else {
                        "TYPE_DOUBLE"
                    };
                    errors.push(invalid(kind));
                }
            }
            "boolean" if !value.is_boolean() => errors.push(invalid("TYPE_BOOL")),
            _ => {}
        }
    }

    fn check_message(
        &self,
        props: &Map<String, Value>,
        obj: &Map<String, Value>,
        path: &str,
        errors: &mut Vec<Violation>,
        depth: usize,
    ) {
        for (key, v) in obj {
            let field = if props.contains_key(key) {
                Some(key.clone())
            } else {
                Some(camel(key)).filter(|c| props.contains_key(c))
            };
            let Some(field) = field else {
                errors.push(Violation::Unknown {
                    name: key.clone(),
                    path: path.to_string(),
                });
                continue;
            };
            // A JSON null means "not set" for every field.
            if v.is_null() {
                continue;
            }
            let p = join(path, &snake(&field));
            self.check(&props[&field], v, &p, errors, depth + 1);
        }
        for (field, def) in props {
            let required = def
                .get("description")
                .and_then(Value::as_str)
                .is_some_and(|d| d.trim_start().starts_with("Required."));
            if !required {
                continue;
            }
            let given = obj.get(field).or_else(|| obj.get(&snake(field)));
            let set = match given {
                None | Some(Value::Null) => false,
                Some(Value::String(s)) => !s.is_empty(),
                Some(Value::Array(a)) => !a.is_empty(),
                Some(_) => true,
            };
            if !set {
                errors.push(Violation::Required {
                    path: join(path, &snake(field)),
                });
            }
        }
    }
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_string()
    } else if field.starts_with('[') {
        format!("{path}{field}")
    } else {
        format!("{path}.{field}")
    }
}

/// `container_spec` → `containerSpec`.
pub(crate) fn camel(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut upper = false;
    for c in s.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `containerSpec` → `container_spec`.
pub(crate) fn snake(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Google's message for a refused body: parse errors as the JSON front end words
/// them, else the list of unset required fields as Vertex words it.
pub fn validation_message(errors: &[Violation]) -> String {
    let parse: Vec<String> = errors
        .iter()
        .filter_map(|v| match v {
            Violation::Unknown { name, path } if path.is_empty() => {
                Some(format!("Unknown name \"{name}\": Cannot find field."))
            }
            Violation::Unknown { name, path } => Some(format!(
                "Unknown name \"{name}\" at '{path}': Cannot find field."
            )),
            Violation::Invalid { path, kind, value } => {
                Some(format!("Invalid value at '{path}' ({kind}), {value}"))
            }
            Violation::Required { .. } => None,
        })
        .collect();
    if !parse.is_empty() {
        return format!("Invalid JSON payload received. {}", parse.join("\n"));
    }
    let mut out = String::from("List of found errors:\t");
    for (i, v) in errors.iter().enumerate() {
        if let Violation::Required { path } = v {
            out.push_str(&format!(
                "{}.Field: {path}; Message: Required field is not set.\t",
                i + 1
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_convert_both_ways() {
        assert_eq!(camel("container_spec"), "containerSpec");
        assert_eq!(snake("containerSpec"), "container_spec");
        assert_eq!(snake("artifactUri"), "artifact_uri");
    }

    #[test]
    fn messages_read_like_googles() {
        let m = validation_message(&[Violation::Unknown {
            name: "x".into(),
            path: "model".into(),
        }]);
        assert_eq!(
            m,
            "Invalid JSON payload received. Unknown name \"x\" at 'model': Cannot find field."
        );
        let m = validation_message(&[Violation::Required {
            path: "model.display_name".into(),
        }]);
        assert_eq!(
            m,
            "List of found errors:\t1.Field: model.display_name; Message: Required field is not set.\t"
        );
    }
}
