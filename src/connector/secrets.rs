//! Secret references: `${env:NAME}` and `${file:PATH}` inside connection settings,
//! resolved only when a connection is first used (never when a project is loaded)
//! and never printed: a resolved value lives in a [`Secret`], whose `Debug` and
//! `Display` show `***`, and resolution errors name the variable or file, never a
//! value.

use std::fmt;

/// A resolved secret value. Formatting it prints `***`; only [`Secret::expose`]
/// gives the text, at the point where it goes on the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the request that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Why a reference could not be resolved. Messages name the reference, never a
/// value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// `${env:NAME}` with `NAME` unset (or not valid Unicode).
    #[error("environment variable `{0}` is not set")]
    MissingEnv(String),
    /// `${file:PATH}` that cannot be read.
    #[error("cannot read secret file `{path}`: {reason}")]
    UnreadableFile {
        /// The path as written.
        path: String,
        /// Why (the I/O error kind).
        reason: String,
    },
    /// A `${` without a well-formed `env:`/`file:` reference.
    #[error("malformed reference (expected `${{env:NAME}}` or `${{file:PATH}}`)")]
    Malformed,
}

/// Expands every `${env:NAME}` / `${file:PATH}` reference inside `text` (a
/// reference may be embedded, as in `https://login.microsoftonline.com/${env:TENANT}/...`).
/// Text without references is returned as is. File contents lose their trailing
/// line break; relative paths are relative to the working directory.
pub fn resolve(text: &str) -> Result<Secret, SecretError> {
    resolve_with(text, &|name| std::env::var(name).ok(), &|path| {
        std::fs::read_to_string(path).map_err(|e| e.kind().to_string())
    })
}

/// [`resolve`] with injectable lookups (for tests).
pub(crate) fn resolve_with(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    file: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Secret, SecretError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or(SecretError::Malformed)?;
        let reference = &after[..end];
        if let Some(name) = reference.strip_prefix("env:") {
            if !valid_env_name(name) {
                return Err(SecretError::Malformed);
            }
            let value = env(name).ok_or_else(|| SecretError::MissingEnv(name.to_string()))?;
            out.push_str(&value);
        } else if let Some(path) = reference.strip_prefix("file:") {
            if path.is_empty() {
                return Err(SecretError::Malformed);
            }
            let value = file(path).map_err(|reason| SecretError::UnreadableFile {
                path: path.to_string(),
                reason,
            })?;
            out.push_str(value.trim_end_matches(['\n', '\r']));
        } else {
            return Err(SecretError::Malformed);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(Secret(out))
}

fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// True when `text` holds a `${...}` reference (resolved later, not checkable now).
pub fn has_reference(text: &str) -> bool {
    text.contains("${")
}

/// The secret values a connection has handed out (client secrets, refresh and
/// access tokens), scrubbed from every message before it leaves the connection.
#[derive(Debug, Default)]
pub(crate) struct Redactor {
    values: std::sync::Mutex<Vec<Secret>>,
}

/// Most remembered values (older access tokens are forgotten first).
const REMEMBERED: usize = 16;

impl Redactor {
    /// Remembers a value to scrub (values shorter than 4 characters are ignored:
    /// scrubbing them would mangle ordinary text).
    pub(crate) fn remember(&self, secret: &Secret) {
        if secret.expose().len() < 4 {
            return;
        }
        let mut values = match self.values.lock() {
            Ok(v) => v,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !values.contains(secret) {
            if values.len() >= REMEMBERED {
                values.remove(0);
            }
            values.push(secret.clone());
        }
    }

    /// `text` with every remembered value and every `Bearer` credential masked.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        let values = match self.values.lock() {
            Ok(v) => v,
            Err(poisoned) => poisoned.into_inner(),
        };
        for v in values.iter() {
            if out.contains(v.expose()) {
                out = out.replace(v.expose(), crate::record::redact::REDACTED);
            }
        }
        crate::record::redact::redact_text(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "TENANT").then(|| "contoso".to_string())
    }

    fn file(path: &str) -> Result<String, String> {
        match path {
            "/run/secret" => Ok("s3cr3t\n".into()),
            _ => Err("not found".into()),
        }
    }

    #[test]
    fn expands_embedded_references() {
        let r = resolve_with("https://login/${env:TENANT}/token", &env, &file);
        assert_eq!(
            r.map(|s| s.expose().to_string()),
            Ok("https://login/contoso/token".into())
        );
        let r = resolve_with("${file:/run/secret}", &env, &file);
        assert_eq!(r.map(|s| s.expose().to_string()), Ok("s3cr3t".into()));
        let r = resolve_with("plain", &env, &file);
        assert_eq!(r.map(|s| s.expose().to_string()), Ok("plain".into()));
    }

    #[test]
    fn errors_name_the_reference_not_a_value() {
        assert_eq!(
            resolve_with("${env:MISSING}", &env, &file),
            Err(SecretError::MissingEnv("MISSING".into()))
        );
        assert!(matches!(
            resolve_with("${file:/nope}", &env, &file),
            Err(SecretError::UnreadableFile { .. })
        ));
        for bad in ["${env:1X}", "${vault:x}", "${env:X", "${file:}"] {
            assert_eq!(
                resolve_with(bad, &env, &file),
                Err(SecretError::Malformed),
                "{bad}"
            );
        }
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
        let r = Redactor::default();
        r.remember(&s);
        assert_eq!(
            r.scrub("refused hunter2 with Bearer abc.def"),
            "refused *** with Bearer ***"
        );
    }
}
