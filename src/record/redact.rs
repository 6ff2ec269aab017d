//! Redaction of secrets and tokens before anything is stored or printed.

use serde_json::Value;

/// The replacement text.
pub const REDACTED: &str = "***";

/// True for keys whose values are secrets.
pub fn is_secret_key(key: &str) -> bool {
    // Lower-cased without `-` and `_`, on the stack: run records test every key
    // of every record they hold.
    let mut buf = [0u8; 96];
    let mut len = 0;
    for b in key.bytes().filter(|b| *b != b'-' && *b != b'_') {
        if len == buf.len() {
            let long = key.to_ascii_lowercase().replace(['-', '_'], "");
            return holds_secret_word(long.as_bytes());
        }
        buf[len] = b.to_ascii_lowercase();
        len += 1;
    }
    holds_secret_word(&buf[..len])
}

/// True when the lower-cased `k` contains a word naming a secret. Only the
/// positions holding a word's first letter are compared.
fn holds_secret_word(k: &[u8]) -> bool {
    const SECRETS: [&[u8]; 9] = [
        b"secret",
        b"password",
        b"token",
        b"authorization",
        b"apikey",
        b"signature",
        b"cookie",
        b"assertion",
        b"privatekey",
    ];
    (0..k.len()).any(|i| {
        matches!(k[i], b's' | b'p' | b't' | b'a' | b'c')
            && SECRETS.iter().any(|s| k[i..].starts_with(s))
    })
}

/// A copy of `v` with secret-named fields replaced and bearer tokens masked.
pub fn redact(v: &Value) -> Value {
    let mut copy = v.clone();
    redact_in_place(&mut copy);
    copy
}

/// Replaces secret-named fields of `v` and masks bearer tokens inside it, in
/// place (what [`redact`] returns a copy of).
pub fn redact_in_place(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, x) in map.iter_mut() {
                if is_secret_key(k) && !x.is_null() {
                    *x = Value::String(REDACTED.into());
                } else {
                    redact_in_place(x);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_in_place),
        Value::String(s) if may_hold_credential(s) => *s = redact_text(s),
        _ => {}
    }
}

/// [`redact_in_place`] for a value shared with others (a step output is also a
/// variable of its run): copied only when it holds something to redact.
pub fn redact_shared(v: &mut std::sync::Arc<Value>) {
    if holds_secret(v) {
        redact_in_place(std::sync::Arc::make_mut(v));
    }
}

/// Whether [`redact_in_place`] would change `v`.
fn holds_secret(v: &Value) -> bool {
    match v {
        Value::Object(map) => map
            .iter()
            .any(|(k, x)| (is_secret_key(k) && !x.is_null()) || holds_secret(x)),
        Value::Array(items) => items.iter().any(holds_secret),
        Value::String(s) => may_hold_credential(s) && redact_text(s) != *s,
        _ => false,
    }
}

/// The schemes [`redact_text`] masks the credential after.
const SCHEMES: [&str; 3] = ["Bearer ", "bearer ", "Signature "];

/// False when `s` holds none of [`SCHEMES`] (all end with a space; the first two
/// share `earer `).
fn may_hold_credential(s: &str) -> bool {
    s.contains(' ') && (s.contains("earer ") || s.contains("Signature "))
}

/// Masks `Bearer <token>` and `Signature <sig>` credentials inside text.
pub fn redact_text(s: &str) -> String {
    if !may_hold_credential(s) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some((i, scheme)) = SCHEMES
        .iter()
        .filter_map(|p| rest.find(p).map(|i| (i, *p)))
        .min_by_key(|(i, _)| *i)
    {
        out.push_str(&rest[..i + scheme.len()]);
        rest = &rest[i + scheme.len()..];
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '"' || c == ',')
            .unwrap_or(rest.len());
        if end > 0 {
            out.push_str(REDACTED);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_masked() {
        let v = json!({"client_secret": "s3cr3t", "access_token": "abc", "name": "x", "nested": [{"Authorization": "Bearer abc.def"}], "refresh_token": null});
        assert_eq!(
            redact(&v),
            json!({"client_secret": "***", "access_token": "***", "name": "x", "nested": [{"Authorization": "***"}], "refresh_token": null})
        );
        assert_eq!(
            redact_text("got 401 for Bearer eyJhbGciOi.x.y, retrying"),
            "got 401 for Bearer ***, retrying"
        );
        assert_eq!(redact_text("no secrets here"), "no secrets here");
    }

    #[test]
    fn a_shared_value_is_copied_only_when_it_holds_a_secret() {
        let clean = std::sync::Arc::new(
            json!({"name": "x", "notes": "bearing no credential", "items": [{"n": 1}]}),
        );
        let mut record = clean.clone();
        redact_shared(&mut record);
        assert!(
            std::sync::Arc::ptr_eq(&clean, &record),
            "nothing to redact: still shared"
        );
        for secret in [
            json!({"deep": [{"apiKey": "k"}]}),
            json!({"header": "Bearer abc.def"}),
        ] {
            let variable = std::sync::Arc::new(secret.clone());
            let mut record = variable.clone();
            redact_shared(&mut record);
            assert_eq!(*record, redact(&secret));
            assert_ne!(*record, secret);
            assert_eq!(*variable, secret, "the run's own value is untouched");
        }
    }
}

#[cfg(test)]
mod key_tests {
    use super::is_secret_key;

    #[test]
    fn secret_keys_are_found_whatever_their_case_separators_and_length() {
        for k in [
            "client_secret",
            "API-Key",
            "x_ms_signature",
            "refreshToken",
            "PRIVATE_KEY",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in ["name", "dealValue", "tok", "keyboard"] {
            assert!(!is_secret_key(k), "{k}");
        }
        let long = format!("{}_client_secret", "x".repeat(200));
        assert!(is_secret_key(&long));
        assert!(!is_secret_key(&"y".repeat(200)));
    }
}
