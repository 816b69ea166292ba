//! The configuration file: TOML, YAML or JSON, chosen by extension, read with the `config`
//! crate, and checked key by key so that a typo is an error rather than a silent no-op.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use config::{FileFormat, Value, ValueKind};

use crate::error::ConfigError;

/// How a file key's value is shaped.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Scalar,
    /// A table of string values (`headers`, `resource_attributes`).
    Map,
    /// A list, or one comma-separated string (`propagators`).
    List,
}

/// Every key a file may hold, dotted.
pub(crate) const KEYS: &[(&str, Shape)] = &[
    ("access_token", Shape::Scalar),
    ("otlp_endpoint", Shape::Scalar),
    ("traces_endpoint", Shape::Scalar),
    ("protocol", Shape::Scalar),
    ("region", Shape::Scalar),
    ("service_name", Shape::Scalar),
    ("service_version", Shape::Scalar),
    ("deployment_environment", Shape::Scalar),
    ("headers", Shape::Map),
    ("resource_attributes", Shape::Map),
    ("timeout", Shape::Scalar),
    ("compression", Shape::Scalar),
    ("traces_exporter", Shape::Scalar),
    ("sdk_disabled", Shape::Scalar),
    ("propagators", Shape::List),
    ("shutdown_timeout", Shape::Scalar),
    ("proxy", Shape::Scalar),
    ("tls.ca_file", Shape::Scalar),
    ("tls.client_certificate", Shape::Scalar),
    ("tls.client_key", Shape::Scalar),
    ("tls.insecure", Shape::Scalar),
    ("batch.max_queue_size", Shape::Scalar),
    ("batch.max_export_batch_size", Shape::Scalar),
    ("batch.scheduled_delay", Shape::Scalar),
    ("batch.export_timeout", Shape::Scalar),
    ("batch.max_concurrent_exports", Shape::Scalar),
    ("sampler.name", Shape::Scalar),
    ("sampler.arg", Shape::Scalar),
    ("limits.attribute_count", Shape::Scalar),
    ("limits.attribute_value_length", Shape::Scalar),
    ("limits.event_count", Shape::Scalar),
    ("limits.link_count", Shape::Scalar),
    ("limits.event_attribute_count", Shape::Scalar),
    ("limits.link_attribute_count", Shape::Scalar),
];

const SECTIONS: &[&str] = &["tls", "batch", "sampler", "limits"];

/// The settings found in one file, as text, by dotted key. Its `Debug` shows the keys only:
/// values may be the token, header values or endpoints with credentials.
#[derive(Default)]
pub(crate) struct FileLayer {
    pub(crate) path: PathBuf,
    scalars: BTreeMap<&'static str, String>,
    maps: BTreeMap<&'static str, Vec<(String, String)>>,
    lists: BTreeMap<&'static str, Vec<String>>,
}

impl fmt::Debug for FileLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileLayer")
            .field("path", &self.path)
            .field("scalars", &self.scalars.keys().collect::<Vec<_>>())
            .field("maps", &self.maps.keys().collect::<Vec<_>>())
            .field("lists", &self.lists.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl FileLayer {
    pub(crate) fn scalar(&self, key: &str) -> Option<&str> {
        self.scalars.get(key).map(String::as_str)
    }

    pub(crate) fn map(&self, key: &str) -> &[(String, String)] {
        self.maps.get(key).map(Vec::as_slice).unwrap_or_default()
    }

    pub(crate) fn list(&self, key: &str) -> Option<&[String]> {
        self.lists.get(key).map(Vec::as_slice)
    }

    /// Reads and checks a file. Every problem found is pushed to `errors`; what could be read is
    /// kept, so one bad key does not hide the others' errors.
    pub(crate) fn load(path: &Path, errors: &mut Vec<ConfigError>) -> Option<Self> {
        let format = match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("toml") => FileFormat::Toml,
            Some("yaml" | "yml") => FileFormat::Yaml,
            Some("json") => FileFormat::Json,
            _ => {
                errors.push(ConfigError::FileFormat { path: path.into() });
                return None;
            }
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) => {
                errors.push(ConfigError::FileRead {
                    path: path.into(),
                    error,
                });
                return None;
            }
        };
        Self::parse(path, &text, format, errors)
    }

    pub(crate) fn parse(
        path: &Path,
        text: &str,
        format: FileFormat,
        errors: &mut Vec<ConfigError>,
    ) -> Option<Self> {
        if let Err(e) = syntax_check(path, text, format) {
            errors.push(e);
            return None;
        }
        let root = config::Config::builder()
            .add_source(config::File::from_str(text, format))
            .build()
            .and_then(|c| c.try_deserialize::<config::Map<String, Value>>());
        let root = match root {
            Ok(root) => root,
            Err(_) => {
                // The parser accepted the syntax but the document is not a table of settings
                // (a list or a scalar at the top, several YAML documents). The `config` crate's
                // message may quote content, which may hold the token: say it in our words.
                errors.push(ConfigError::FileSyntax {
                    path: path.into(),
                    line: 1,
                    column: 1,
                    message: "expected one table of settings at the top level".into(),
                });
                return None;
            }
        };
        let mut layer = FileLayer {
            path: path.into(),
            ..Self::default()
        };
        layer.collect(root, errors);
        Some(layer)
    }

    fn collect(&mut self, root: config::Map<String, Value>, errors: &mut Vec<ConfigError>) {
        // Walk with an explicit stack: a section holds only known leaves, so depth is bounded
        // by the key table, and nothing recurses on input.
        let mut pending: Vec<(String, Value)> = root.into_iter().collect();
        pending.sort_by(|a, b| a.0.cmp(&b.0));
        pending.reverse();
        while let Some((key, value)) = pending.pop() {
            if SECTIONS.contains(&key.as_str()) {
                match value.kind {
                    ValueKind::Table(table) => {
                        let mut inner: Vec<_> = table
                            .into_iter()
                            .map(|(k, v)| (format!("{key}.{k}"), v))
                            .collect();
                        inner.sort_by(|a, b| b.0.cmp(&a.0));
                        pending.extend(inner);
                    }
                    ValueKind::Nil => {}
                    other => errors.push(self.shape_error(&key, &other, "a table")),
                }
                continue;
            }
            let Some(&(known, shape)) = KEYS.iter().find(|(k, _)| *k == key) else {
                errors.push(ConfigError::UnknownKey {
                    path: self.path.clone(),
                    suggestion: suggest(&key),
                    key,
                });
                continue;
            };
            match (shape, value.kind) {
                (_, ValueKind::Nil) => {}
                (Shape::Map, ValueKind::Table(table)) => {
                    let mut entries = Vec::with_capacity(table.len());
                    for (k, v) in table {
                        match scalar_text(&v.kind) {
                            Some(text) => entries.push((k, text)),
                            None => errors.push(self.shape_error(
                                &format!("{known}.{k}"),
                                &v.kind,
                                "a string",
                            )),
                        }
                    }
                    entries.sort();
                    self.maps.insert(known, entries);
                }
                (Shape::List, ValueKind::Array(items)) => {
                    let mut list = Vec::with_capacity(items.len());
                    for v in items {
                        match scalar_text(&v.kind) {
                            Some(text) => list.push(text),
                            None => {
                                errors.push(self.shape_error(known, &v.kind, "a list of names"))
                            }
                        }
                    }
                    self.lists.insert(known, list);
                }
                (Shape::List, kind) => match scalar_text(&kind) {
                    Some(text) => {
                        self.lists
                            .insert(known, text.split(',').map(str::to_owned).collect());
                    }
                    None => errors.push(self.shape_error(known, &kind, "a list of names")),
                },
                (Shape::Map, kind) => errors.push(self.shape_error(known, &kind, "a table")),
                (Shape::Scalar, kind) => match scalar_text(&kind) {
                    Some(text) => {
                        self.scalars.insert(known, text);
                    }
                    None => errors.push(self.shape_error(known, &kind, "a single value")),
                },
            }
        }
    }

    fn shape_error(&self, key: &str, found: &ValueKind, expected: &str) -> ConfigError {
        let found = match found {
            ValueKind::Table(_) => "a table",
            ValueKind::Array(_) => "a list",
            _ => "a single value",
        };
        ConfigError::InvalidValue {
            origin: crate::Source::file(&self.path, key),
            value: format!("<{found}>"),
            expected: expected.to_owned(),
        }
    }
}

fn scalar_text(kind: &ValueKind) -> Option<String> {
    Some(match kind {
        ValueKind::String(s) => s.clone(),
        ValueKind::Boolean(b) => b.to_string(),
        ValueKind::I64(n) => n.to_string(),
        ValueKind::I128(n) => n.to_string(),
        ValueKind::U64(n) => n.to_string(),
        ValueKind::U128(n) => n.to_string(),
        ValueKind::Float(f) => f.to_string(),
        ValueKind::Nil | ValueKind::Table(_) | ValueKind::Array(_) => return None,
    })
}

/// Runs the format's own parser first, so a syntax error carries its line and column, in a
/// message that never quotes the file (it may hold the token).
fn syntax_check(path: &Path, text: &str, format: FileFormat) -> Result<(), ConfigError> {
    let located = |line: usize, column: usize, message: String| ConfigError::FileSyntax {
        path: path.into(),
        line,
        column,
        message,
    };
    match format {
        FileFormat::Toml => match toml::from_str::<toml::Table>(text) {
            Ok(_) => Ok(()),
            Err(e) => {
                let offset = e.span().map_or(0, |s| s.start);
                let (line, column) = line_column(text, offset);
                Err(located(line, column, e.message().trim().to_owned()))
            }
        },
        FileFormat::Yaml => match yaml_rust2::YamlLoader::load_from_str(text) {
            Ok(_) => Ok(()),
            Err(e) => {
                let marker = e.marker();
                Err(located(
                    marker.line(),
                    marker.col() + 1,
                    e.info().to_owned(),
                ))
            }
        },
        FileFormat::Json => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(_) => Ok(()),
            Err(e) => {
                let message = e.to_string();
                let message = message
                    .rfind(" at line ")
                    .map_or(message.as_str(), |i| &message[..i]);
                Err(located(e.line(), e.column(), message.to_owned()))
            }
        },
        _ => Ok(()),
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

/// The known key closest to a misspelt one, if it is close enough to be the likely intent.
fn suggest(key: &str) -> Option<String> {
    let leaf = key.rsplit('.').next().unwrap_or(key);
    KEYS.iter()
        .map(|(k, _)| {
            let known_leaf = k.rsplit('.').next().unwrap_or(k);
            (
                edit_distance(key, k).min(edit_distance(leaf, known_leaf)),
                *k,
            )
        })
        .filter(|&(d, _)| d <= 3)
        .min_by_key(|&(d, _)| d)
        .map(|(_, k)| k.to_owned())
}

pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(suggest("servce_name").as_deref(), Some("service_name"));
        assert_eq!(
            suggest("batch.max_queue_sise").as_deref(),
            Some("batch.max_queue_size")
        );
        assert_eq!(suggest("completely_different"), None);
    }

    #[test]
    fn line_and_column() {
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("ab", 0), (1, 1));
    }
}
