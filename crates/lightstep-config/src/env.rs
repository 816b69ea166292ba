//! The one gateway to the process environment.
//!
//! Everything else in lightstep-rs receives an [`EnvSnapshot`], so tests can fill one by hand and
//! no code path reads a variable behind the configuration's back.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;

/// A snapshot of the environment variables lightstep-rs reads.
///
/// Only variables starting with `OTEL_`, `LIGHTSTEP_` or `LS_` are kept, and the proxy variables
/// (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`, and their lowercase forms). `Debug` redacts the
/// values of variables that may hold secrets (tokens and headers), and user information in
/// URLs.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EnvSnapshot {
    vars: BTreeMap<String, String>,
    /// Variables whose values are not valid UTF-8: reported as errors, never silently dropped.
    not_unicode: Vec<String>,
}

const PREFIXES: [&str; 3] = ["OTEL_", "LIGHTSTEP_", "LS_"];

impl EnvSnapshot {
    /// An empty snapshot: as if no variable were set.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Reads the relevant variables of the current process.
    #[allow(clippy::disallowed_methods)] // the one place that may read the environment
    pub fn from_process() -> Self {
        Self::from_os_vars(std::env::vars_os())
    }

    fn from_os_vars(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Self {
        let mut snapshot = Self::default();
        for (name, value) in vars {
            let Some(name) = name.to_str() else { continue };
            let ours = PREFIXES.iter().any(|p| name.starts_with(p));
            if !ours && !crate::settings::is_known_variable(name) {
                continue;
            }
            match value.into_string() {
                Ok(value) => {
                    snapshot.vars.insert(name.to_owned(), value);
                }
                Err(_) => snapshot.not_unicode.push(name.to_owned()),
            }
        }
        snapshot
    }

    /// Sets a variable in the snapshot (builder style), for tests and embedding.
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.vars.insert(name.into(), value.into());
        self
    }

    /// Sets a variable in the snapshot.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.vars.insert(name.into(), value.into());
    }

    /// A variable's value. The OpenTelemetry specification treats an empty value as unset, and
    /// so does this.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The names of the variables set (to anything, even empty).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.vars.keys().map(String::as_str)
    }

    /// Variables that were set to something that is not valid UTF-8.
    pub fn not_unicode(&self) -> &[String] {
        &self.not_unicode
    }

    /// Whether a variable's value may be a secret and must never be printed: the token and
    /// header variables, and any variable lightstep-rs does not know (a misspelt token variable
    /// is still a token).
    pub fn is_sensitive(name: &str) -> bool {
        name.ends_with("ACCESS_TOKEN")
            || name.ends_with("HEADERS")
            || !crate::settings::is_known_variable(name)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for EnvSnapshot {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut snapshot = Self::default();
        for (k, v) in iter {
            snapshot.set(k, v);
        }
        snapshot
    }
}

impl fmt::Debug for EnvSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (name, value) in &self.vars {
            if Self::is_sensitive(name) {
                map.entry(name, &"[REDACTED]");
            } else {
                map.entry(name, &crate::parse::redact_userinfo(value));
            }
        }
        map.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_our_prefixes_and_redacts_secrets() {
        let snapshot = EnvSnapshot::from_os_vars([
            ("PATH".into(), "/bin".into()),
            ("OTEL_SERVICE_NAME".into(), "svc".into()),
            ("LS_ACCESS_TOKEN".into(), "tok-123".into()),
            ("OTEL_EXPORTER_OTLP_HEADERS".into(), "a=secret-h".into()),
        ]);
        assert_eq!(snapshot.get("PATH"), None);
        assert_eq!(snapshot.get("OTEL_SERVICE_NAME"), Some("svc"));
        let debug = format!("{snapshot:?}");
        assert!(debug.contains("OTEL_SERVICE_NAME"));
        assert!(!debug.contains("tok-123"), "{debug}");
        assert!(!debug.contains("secret-h"), "{debug}");
    }

    #[test]
    fn empty_value_is_unset() {
        let snapshot = EnvSnapshot::empty().with("OTEL_SERVICE_NAME", "");
        assert_eq!(snapshot.get("OTEL_SERVICE_NAME"), None);
    }

    #[cfg(unix)]
    #[test]
    fn non_unicode_values_are_remembered() {
        use std::os::unix::ffi::OsStringExt;
        let snapshot = EnvSnapshot::from_os_vars([(
            "OTEL_SERVICE_NAME".into(),
            OsString::from_vec(vec![0xff, 0xfe]),
        )]);
        assert_eq!(snapshot.not_unicode(), ["OTEL_SERVICE_NAME".to_owned()]);
    }
}
