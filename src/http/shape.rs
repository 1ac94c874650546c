//! Every shape error of a JSON body at once, in words a receptionist's screen can show. serde
//! stops at the first error, so the body is deserialized again and again: each time the error is
//! noted (with its JSON Pointer) and the member is repaired — removed if unknown, replaced or
//! filled with a stand-in value otherwise — until the body fits or nothing more can be learned.
//! Errors under a stand-in are careq's own and are not reported.
use std::collections::HashSet;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::FieldError;

/// More rounds than any request body of careq has members.
const MAX_ROUNDS: usize = 100;

/// What checking a body's shape found.
pub enum Shape<T> {
    /// The body fits `T` as sent.
    Fits(T),
    /// Shape errors; `repaired` is the body with stand-ins (when one could be made), so rules can
    /// still be checked on the fields that were sent right. `stand_ins` are the pointers whose
    /// values are careq's.
    Broken {
        errors: Vec<FieldError>,
        repaired: Option<T>,
        stand_ins: Vec<String>,
    },
}

/// Whether `pointer` is `root` or inside it.
pub fn under(pointer: &str, root: &str) -> bool {
    pointer == root
        || (pointer.starts_with(root) && pointer.as_bytes().get(root.len()) == Some(&b'/'))
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Missing,
    Unknown,
    Variant(Vec<String>),
    /// A value of another type (or out of range); `expected` in serde's words.
    Wrong {
        expected: String,
        null: bool,
    },
    Custom(String),
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn unescape(seg: &str) -> String {
    seg.replace("~1", "/").replace("~0", "~")
}

/// JSON Pointer (RFC 6901) of a serde path.
pub fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        out.push('/');
        match seg {
            Segment::Seq { index } => out.push_str(&index.to_string()),
            Segment::Map { key } | Segment::Enum { variant: key } => out.push_str(&escape(key)),
            Segment::Unknown => out.push('-'),
        }
    }
    out
}

/// The name between the first pair of backticks of a serde message.
fn quoted(msg: &str) -> String {
    msg.split('`').nth(1).unwrap_or("-").to_string()
}

/// A member's pointer: serde reports missing and unknown members at their object.
fn member(at: &str, name: &str) -> String {
    let p = format!("{at}/{}", escape(name));
    if at.ends_with(&format!("/{}", escape(name))) {
        at.to_string()
    } else {
        p
    }
}

fn classify(e: &serde_path_to_error::Error<serde_json::Error>) -> (String, Kind) {
    let at = pointer_of(e.path());
    let msg = e.inner().to_string();
    if msg.starts_with("missing field") {
        return (member(&at, &quoted(&msg)), Kind::Missing);
    }
    if msg.starts_with("unknown field") {
        return (member(&at, &quoted(&msg)), Kind::Unknown);
    }
    if msg.starts_with("unknown variant") {
        let listed = msg.split_once("expected ").map(|x| x.1).unwrap_or("");
        let names: Vec<String> = listed
            .split('`')
            .enumerate()
            .filter(|(i, _)| i % 2 == 1)
            .map(|(_, s)| s.to_string())
            .collect();
        return (at, Kind::Variant(names));
    }
    for prefix in ["invalid type: ", "invalid value: ", "invalid length "] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            let expected = rest.split_once(", expected ").map(|x| x.1).unwrap_or("");
            return (
                at,
                Kind::Wrong {
                    expected: expected.to_string(),
                    null: rest.starts_with("null"),
                },
            );
        }
    }
    (at, Kind::Custom(msg))
}

/// serde's `expected …` in plain words.
fn words(expected: &str) -> String {
    let e = expected.trim();
    match e {
        "f64" | "f32" => "must be a number".into(),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" | "a whole number" => {
            "must be a whole number".into()
        }
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => {
            "must be a whole number, 0 or more".into()
        }
        "a string" | "a borrowed string" | "a char" => "must be a string".into(),
        "a boolean" => "must be true or false".into(),
        "a sequence" => "must be a list".into(),
        "a map" => "must be an object".into(),
        _ if e.starts_with("struct ") || e.starts_with("map") => "must be an object".into(),
        _ if e.starts_with("a sequence") || e.starts_with("an array") => "must be a list".into(),
        _ if e.starts_with("a ") || e.starts_with("an ") => format!("must be {e}"),
        _ => "has the wrong type".into(),
    }
}

/// Stand-ins to try for a member, the likeliest first.
fn candidates(kind: &Kind) -> Vec<Value> {
    let mut out = Vec::new();
    if let Kind::Wrong { expected, .. } = kind {
        let m = words(expected);
        if m.contains("number") {
            out.push(Value::from(0));
            out.push(Value::from(1));
        } else if m.contains("string") {
            out.push(Value::from("x"));
        } else if m.contains("true or false") {
            out.push(Value::Bool(false));
        } else if m.contains("list") {
            out.push(Value::Array(Vec::new()));
        } else if m.contains("object") {
            out.push(Value::Object(Default::default()));
        }
    }
    out.extend([
        Value::from(""),
        Value::from(0),
        Value::Bool(false),
        Value::Array(Vec::new()),
        Value::Object(Default::default()),
        Value::Null,
    ]);
    out
}

fn try_de<T: DeserializeOwned>(
    body: &Value,
) -> Result<T, serde_path_to_error::Error<serde_json::Error>> {
    serde_path_to_error::deserialize(body.clone())
}

/// Puts `v` at `pointer` (creating the member in its object); false if there is no place.
fn put(body: &mut Value, pointer: &str, v: Value) -> bool {
    if pointer.is_empty() {
        *body = v;
        return true;
    }
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return false;
    };
    match body.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.insert(unescape(last), v);
            true
        }
        Some(Value::Array(items)) => match last.parse::<usize>().ok() {
            Some(i) if i < items.len() => {
                items[i] = v;
                true
            }
            _ => false,
        },
        _ => false,
    }
}

fn remove(body: &mut Value, pointer: &str) -> bool {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return false;
    };
    match body.pointer_mut(parent) {
        Some(Value::Object(map)) => map.remove(&unescape(last)).is_some(),
        _ => false,
    }
}

/// Empty strings in object members become `null`: what an HTML form sends for a field left
/// blank means "not given". Lists are left alone (their items are checked on their own).
fn empty_to_null(v: &mut Value, at: &str, out: &mut HashSet<String>) {
    if let Value::Object(map) = v {
        for (k, item) in map.iter_mut() {
            let here = format!("{at}/{}", escape(k));
            if item.as_str() == Some("") {
                *item = Value::Null;
                out.insert(here);
            } else {
                empty_to_null(item, &here, out);
            }
        }
    }
}

/// Strings and keys holding NUL: no field careq takes can (PostgreSQL's text cannot store one).
fn nul_strings(v: &mut Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::String(s) if s.contains('\0') => {
            *s = s.replace('\0', "");
            out.push(at.to_string());
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                nul_strings(item, &format!("{at}/{i}"), out);
            }
        }
        Value::Object(map) => {
            let bad: Vec<String> = map.keys().filter(|k| k.contains('\0')).cloned().collect();
            for k in bad {
                map.remove(&k);
                out.push(format!("{at}/{}", escape(&k)));
            }
            for (k, item) in map.iter_mut() {
                nul_strings(item, &format!("{at}/{}", escape(k)), out);
            }
        }
        _ => {}
    }
}

/// Fills `pointer` with the first stand-in after which the next error is elsewhere; returns the
/// allowed values when the member turned out to be one of a fixed set.
fn stand_in<T: DeserializeOwned>(
    body: &mut Value,
    pointer: &str,
    kind: &Kind,
) -> Option<Option<Vec<String>>> {
    let mut tries = candidates(kind);
    if let Kind::Variant(names) = kind {
        tries.insert(0, Value::from(names.first().cloned().unwrap_or_default()));
    }
    for v in tries {
        if !put(body, pointer, v) {
            return None;
        }
        match try_de::<T>(body) {
            Ok(_) => return Some(None),
            Err(e) => match classify(&e) {
                (p, Kind::Variant(names)) if p == pointer && !names.is_empty() => {
                    put(body, pointer, Value::from(names[0].clone()));
                    return Some(Some(names));
                }
                (p, _) if p == pointer => continue,
                _ => return Some(None),
            },
        }
    }
    None
}

/// Whether `T` is read from a JSON object (an empty one fits, or fails only inside it).
fn takes_objects<T: DeserializeOwned>() -> bool {
    match try_de::<T>(&Value::Object(Default::default())) {
        Ok(_) => true,
        Err(e) => !matches!(classify(&e), (p, Kind::Wrong { .. }) if p.is_empty()),
    }
}

/// Checks `body` against `T`, collecting every shape error.
pub fn check<T: DeserializeOwned>(mut body: Value) -> Shape<T> {
    if body.is_array() && takes_objects::<T>() {
        // serde lets a list stand for a struct's fields in order; no client means that.
        return Shape::Broken {
            errors: vec![FieldError::new("", "must be an object")],
            repaired: None,
            stand_ins: Vec::new(),
        };
    }
    let mut errors: Vec<FieldError> = Vec::new();
    let mut stand_ins: Vec<String> = Vec::new();
    let mut nul = Vec::new();
    nul_strings(&mut body, "", &mut nul);
    for p in nul {
        errors.push(FieldError::new(
            &p,
            "holds a NUL character (\\u0000), which no field takes",
        ));
        stand_ins.push(p);
    }
    let mut emptied = HashSet::new();
    empty_to_null(&mut body, "", &mut emptied);
    let mut seen = HashSet::new();
    for _ in 0..MAX_ROUNDS {
        let err = match try_de::<T>(&body) {
            Ok(v) if errors.is_empty() => return Shape::Fits(v),
            Ok(v) => {
                return Shape::Broken {
                    errors,
                    repaired: Some(v),
                    stand_ins,
                }
            }
            Err(e) => e,
        };
        let (pointer, kind) = classify(&err);
        if !seen.insert(format!("{pointer}\u{0}{kind:?}")) {
            break;
        }
        let ours = stand_ins.iter().any(|s| under(&pointer, s));
        let blank = emptied.contains(&pointer);
        // A blank optional field is simply left out; a blank required one is reported below,
        // when its absence is.
        if blank && matches!(kind, Kind::Wrong { null: true, .. }) {
            if remove(&mut body, &pointer) {
                continue;
            }
            break;
        }
        let message = match &kind {
            Kind::Missing if blank => "must not be empty".to_string(),
            Kind::Missing => "is required".to_string(),
            Kind::Unknown => "is not a field of this request".to_string(),
            Kind::Variant(names) => format!("must be one of: {}", names.join(", ")),
            Kind::Wrong { expected, .. } => words(expected),
            Kind::Custom(m) => m.clone(),
        };
        let at = errors.len();
        if !ours {
            errors.push(FieldError::new(&pointer, message));
        }
        if kind == Kind::Unknown {
            if !remove(&mut body, &pointer) {
                break;
            }
            continue;
        }
        match stand_in::<T>(&mut body, &pointer, &kind) {
            Some(found) => {
                if let (Some(names), false) = (found, ours) {
                    if !matches!(kind, Kind::Missing) {
                        errors[at].message = format!("must be one of: {}", names.join(", "));
                    }
                }
                if !stand_ins.iter().any(|s| under(&pointer, s)) {
                    stand_ins.push(pointer);
                }
            }
            None => break,
        }
    }
    if errors.is_empty() {
        // Nothing could be learned beyond serde's own message: never expected, but never a 200.
        errors.push(FieldError::new("", "does not have the expected shape"));
    }
    Shape::Broken {
        errors,
        repaired: None,
        stand_ins,
    }
}
