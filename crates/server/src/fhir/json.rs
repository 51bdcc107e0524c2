//! Reading and writing FHIR JSON. The reader walks a submitted resource with
//! the FHIRPath of every element in hand, so each problem names its element;
//! an object accepts only the elements Carefront stores (anything else would
//! be silently lost), which is exactly what the writers emit.

use super::outcome::Issue;
use carefront_domain::directory::Address;
use serde_json::{Map, Value, json};

/// Problems found while reading a resource.
pub type Issues = Vec<Issue>;

/// A JSON object of the resource being read, at `path`.
pub struct Obj<'a> {
    pub path: String,
    map: &'a Map<String, Value>,
}

impl<'a> Obj<'a> {
    /// Reads `value` as an object at `path` with the given known elements;
    /// unknown elements are reported.
    pub fn new(
        path: String,
        value: &'a Value,
        known: &[&str],
        issues: &mut Issues,
    ) -> Option<Self> {
        let Some(map) = value.as_object() else {
            issues.push(Issue::at(
                "structure",
                &path,
                format!("{path} must be a JSON object"),
            ));
            return None;
        };
        for key in map.keys().filter(|k| !known.contains(&k.as_str())) {
            issues.push(Issue::at(
                "structure",
                format!("{path}.{key}"),
                format!("{path}.{key} is not an element this server stores"),
            ));
        }
        Some(Self { path, map })
    }

    pub fn child(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    fn get(&self, key: &str, issues: &mut Issues) -> Option<&'a Value> {
        match self.map.get(key) {
            Some(Value::Null) => {
                let path = self.child(key);
                issues.push(Issue::at(
                    "structure",
                    &path,
                    format!("{path} must not be null"),
                ));
                None
            }
            other => other,
        }
    }

    pub fn string(&self, key: &str, issues: &mut Issues) -> Option<String> {
        as_string(self.get(key, issues)?, &self.child(key), issues)
    }

    pub fn boolean(&self, key: &str, issues: &mut Issues) -> Option<bool> {
        let v = self.get(key, issues)?;
        if v.is_boolean() {
            return v.as_bool();
        }
        let path = self.child(key);
        issues.push(Issue::at(
            "structure",
            &path,
            format!("{path} must be true or false"),
        ));
        None
    }

    /// A whole-number element (`integer`, `positiveInt`, `unsignedInt`).
    pub fn integer(&self, key: &str, issues: &mut Issues) -> Option<i64> {
        let v = self.get(key, issues)?;
        if let Some(n) = v.as_i64() {
            return Some(n);
        }
        let path = self.child(key);
        issues.push(Issue::at(
            "structure",
            &path,
            format!("{path} must be a whole number"),
        ));
        None
    }

    pub fn object(&self, key: &str, known: &[&str], issues: &mut Issues) -> Option<Obj<'a>> {
        Obj::new(self.child(key), self.get(key, issues)?, known, issues)
    }

    /// The items of an array element, each with its path (`telecom[1]`).
    pub fn list(&self, key: &str, issues: &mut Issues) -> Vec<(String, &'a Value)> {
        let path = self.child(key);
        match self.get(key, issues) {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("{path}[{i}]"), v))
                .collect(),
            Some(_) => {
                issues.push(Issue::at(
                    "structure",
                    &path,
                    format!("{path} must be an array"),
                ));
                Vec::new()
            }
        }
    }

    pub fn objects(&self, key: &str, known: &[&str], issues: &mut Issues) -> Vec<Obj<'a>> {
        self.list(key, issues)
            .into_iter()
            .filter_map(|(path, v)| Obj::new(path, v, known, issues))
            .collect()
    }

    /// An array element of which Carefront keeps at most one item.
    pub fn single(&self, key: &str, known: &[&str], issues: &mut Issues) -> Option<Obj<'a>> {
        let mut items = self.objects(key, known, issues).into_iter();
        let first = items.next();
        if let Some(extra) = items.next() {
            issues.push(Issue::at(
                "not-supported",
                &extra.path,
                format!(
                    "{} has more than one item; this server keeps one",
                    self.child(key)
                ),
            ));
        }
        first
    }

    pub fn strings(&self, key: &str, issues: &mut Issues) -> Vec<String> {
        self.list(key, issues)
            .into_iter()
            .filter_map(|(path, v)| as_string(v, &path, issues))
            .collect()
    }
}

fn as_string(v: &Value, path: &str, issues: &mut Issues) -> Option<String> {
    match v.as_str() {
        Some(s) => Some(s.to_string()),
        None => {
            issues.push(Issue::at(
                "structure",
                path,
                format!("{path} must be a string"),
            ));
            None
        }
    }
}

/// The element names of a JSON object, for reading one leniently.
pub fn known_keys(value: &Value) -> Vec<&str> {
    value
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

/// Removes nulls, empty arrays and empty objects, which FHIR JSON forbids,
/// so writers can use `json!` with optional values.
pub fn compact(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, compact(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(compact)
                .filter(|v| !is_empty(v))
                .collect(),
        ),
        other => other,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// A FHIR `instant` from microseconds since the epoch.
pub fn instant(us: i64) -> String {
    jiff::Timestamp::from_microsecond(us)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// `Kind/id` of a relative reference to a resource of `kind`.
pub fn reference_id<'v>(reference: &'v str, kind: &str) -> Option<&'v str> {
    reference
        .strip_prefix(kind)?
        .strip_prefix('/')
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

/// Reads `{ "reference": "Kind/id" }` at `obj.key`; returns the id.
pub fn read_reference(obj: &Obj, issues: &mut Issues, kind: &str) -> Option<String> {
    let reference = obj.string("reference", issues)?;
    match reference_id(&reference, kind) {
        Some(id) => Some(id.to_string()),
        None => {
            let path = obj.child("reference");
            issues.push(Issue::at(
                "value",
                &path,
                format!("{path} must be a reference such as '{kind}/123'"),
            ));
            None
        }
    }
}

pub const REFERENCE_ELEMENTS: &[&str] = &["reference", "display"];

pub fn address_to_fhir(a: &Address) -> Value {
    json!({
        "line": [a.line1, a.line2],
        "city": a.city,
        "state": a.state,
        "postalCode": a.postal_code,
        "country": a.country,
    })
}

pub fn address_from_fhir(obj: &Obj, issues: &mut Issues) -> Address {
    let mut lines = obj.strings("line", issues).into_iter();
    let address = Address {
        line1: lines.next().unwrap_or_default(),
        line2: lines.next(),
        city: obj.string("city", issues).unwrap_or_default(),
        state: obj.string("state", issues).unwrap_or_default(),
        postal_code: obj.string("postalCode", issues).unwrap_or_default(),
        country: obj.string("country", issues).unwrap_or_default(),
    };
    if lines.next().is_some() {
        let path = format!("{}[2]", obj.child("line"));
        issues.push(Issue::at(
            "not-supported",
            &path,
            "an address keeps at most two lines",
        ));
    }
    address
}

pub const ADDRESS_ELEMENTS: &[&str] = &["line", "city", "state", "postalCode", "country"];

/// The FHIRPath of a domain address field (`postal_code`) under `base`.
pub fn address_expression(base: &str, field: &str) -> String {
    let element = match field {
        "line1" => "line[0]",
        "line2" => "line[1]",
        "postal_code" => "postalCode",
        other => other,
    };
    format!("{base}.{element}")
}

/// Contact points: at most one phone and one email.
#[derive(Debug, Default)]
pub struct Telecom {
    pub phone: Option<String>,
    pub email: Option<String>,
}

pub fn telecom_to_fhir(phone: &Option<String>, email: &Option<String>) -> Value {
    json!([
        phone
            .as_ref()
            .map(|p| json!({ "system": "phone", "value": p })),
        email
            .as_ref()
            .map(|e| json!({ "system": "email", "value": e })),
    ])
}

/// Reads `telecom`, accepting the contact systems in `systems`.
pub fn telecom_from_fhir(obj: &Obj, issues: &mut Issues, systems: &[&str]) -> Telecom {
    let mut t = Telecom::default();
    for item in obj.objects("telecom", &["system", "value"], issues) {
        let system = item.string("system", issues).unwrap_or_default();
        let value = item.string("value", issues);
        let slot = match system.as_str() {
            "phone" if systems.contains(&"phone") => &mut t.phone,
            "email" if systems.contains(&"email") => &mut t.email,
            _ => {
                let path = item.child("system");
                issues.push(Issue::at(
                    "not-supported",
                    &path,
                    format!("{path} must be one of: {}", systems.join(", ")),
                ));
                continue;
            }
        };
        if slot.is_some() {
            issues.push(Issue::at(
                "not-supported",
                &item.path,
                format!("only one {system} contact is kept"),
            ));
        }
        *slot = value;
    }
    t
}

/// The FHIRPath of a contact kept in `telecom`.
pub fn telecom_expression(kind: &str, system: &str) -> String {
    format!("{kind}.telecom.where(system='{system}').value")
}
