//! The configuration file: TOML, YAML or JSON, chosen by extension, parsed once by the format's
//! own parser, and checked key by key against the settings table so that a typo is an error
//! rather than a silent no-op.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::ConfigError;
use crate::settings::{Setting, Shape};
use crate::source::Source;

/// The settings found in one file, as text. Its `Debug` shows the keys only: values may be the
/// token, header values or endpoints with credentials.
#[derive(Default)]
pub(crate) struct FileLayer {
    pub(crate) path: PathBuf,
    scalars: BTreeMap<Setting, String>,
    maps: BTreeMap<Setting, Vec<(String, String)>>,
    lists: BTreeMap<Setting, Vec<String>>,
}

impl fmt::Debug for FileLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys =
            |settings: Vec<&Setting>| settings.into_iter().map(|s| s.key()).collect::<Vec<_>>();
        f.debug_struct("FileLayer")
            .field("path", &self.path)
            .field("scalars", &keys(self.scalars.keys().collect()))
            .field("maps", &keys(self.maps.keys().collect()))
            .field("lists", &keys(self.lists.keys().collect()))
            .finish()
    }
}

#[derive(Clone, Copy)]
enum Format {
    Toml,
    Yaml,
    Json,
}

/// One value of a parsed file, seen alike whatever the format. Values are converted one level
/// at a time, as the walk needs them, so nothing here recurses on the file's depth.
enum Node<'a, V> {
    Nil,
    Scalar(String),
    List(Vec<&'a V>),
    /// Entries by key; `None` where a key is no scalar (YAML allows a list as a key).
    Table(Vec<(Option<String>, &'a V)>),
}

trait Tree: Sized {
    fn node(&self) -> Node<'_, Self>;
}

impl Tree for toml::Value {
    fn node(&self) -> Node<'_, Self> {
        match self {
            Self::String(s) => Node::Scalar(s.clone()),
            Self::Integer(n) => Node::Scalar(n.to_string()),
            Self::Float(n) => Node::Scalar(n.to_string()),
            Self::Boolean(b) => Node::Scalar(b.to_string()),
            Self::Datetime(d) => Node::Scalar(d.to_string()),
            Self::Array(items) => Node::List(items.iter().collect()),
            Self::Table(t) => Node::Table(t.iter().map(|(k, v)| (Some(k.clone()), v)).collect()),
        }
    }
}

impl Tree for serde_json::Value {
    fn node(&self) -> Node<'_, Self> {
        match self {
            Self::Null => Node::Nil,
            Self::String(s) => Node::Scalar(s.clone()),
            Self::Bool(b) => Node::Scalar(b.to_string()),
            // As a number reads, not as serde_json prints it (`100`, not `100.0`, for `1e2`).
            Self::Number(n) => Node::Scalar(match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => i.to_string(),
                (_, Some(u), _) => u.to_string(),
                (_, _, f) => f.unwrap_or_default().to_string(),
            }),
            Self::Array(items) => Node::List(items.iter().collect()),
            Self::Object(t) => Node::Table(t.iter().map(|(k, v)| (Some(k.clone()), v)).collect()),
        }
    }
}

impl Tree for yaml_rust2::Yaml {
    fn node(&self) -> Node<'_, Self> {
        match self {
            // A number YAML calls real but Rust does not read (`.inf`) stays text, for the
            // setting's parser to refuse with the key named.
            Self::Real(s) => Node::Scalar(
                s.parse::<f64>()
                    .map_or_else(|_| s.clone(), |f| f.to_string()),
            ),
            Self::Integer(n) => Node::Scalar(n.to_string()),
            Self::String(s) => Node::Scalar(s.clone()),
            Self::Boolean(b) => Node::Scalar(b.to_string()),
            Self::Array(items) => Node::List(items.iter().collect()),
            Self::Hash(t) => Node::Table(
                t.iter()
                    .map(|(k, v)| match k.node() {
                        Node::Scalar(k) => (Some(k), v),
                        _ => (None, v),
                    })
                    .collect(),
            ),
            Self::Null | Self::Alias(_) | Self::BadValue => Node::Nil,
        }
    }
}

fn found<V>(node: &Node<'_, V>) -> String {
    match node {
        Node::Table(_) => "<a table>",
        Node::List(_) => "<a list>",
        Node::Nil | Node::Scalar(_) => "<a single value>",
    }
    .into()
}

impl FileLayer {
    pub(crate) fn scalar(&self, setting: Setting) -> Option<&str> {
        self.scalars.get(&setting).map(String::as_str)
    }

    pub(crate) fn map(&self, setting: Setting) -> &[(String, String)] {
        self.maps
            .get(&setting)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    pub(crate) fn list(&self, setting: Setting) -> Option<&[String]> {
        self.lists.get(&setting).map(Vec::as_slice)
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
            Some("toml") => Format::Toml,
            Some("yaml" | "yml") => Format::Yaml,
            Some("json") => Format::Json,
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
        let mut layer = FileLayer {
            path: path.into(),
            ..Self::default()
        };
        // The format's own parser locates a syntax error by line and column, in a message that
        // never quotes the file (it may hold the token).
        let located = |line: usize, column: usize, message: String| ConfigError::FileSyntax {
            path: path.into(),
            line,
            column,
            message,
        };
        let read = match format {
            Format::Toml => match toml::from_str::<toml::Table>(&text) {
                Ok(table) => layer.collect(&toml::Value::Table(table), errors),
                Err(e) => {
                    let offset = e.span().map_or(0, |s| s.start);
                    let (line, column) = line_column(&text, offset);
                    Err(located(line, column, e.message().trim().to_owned()))
                }
            },
            Format::Yaml => match yaml_rust2::YamlLoader::load_from_str(&text) {
                Ok(docs) => match docs.as_slice() {
                    [] => Ok(()),
                    [root] => layer.collect(root, errors),
                    _ => Err(located(1, 1, NOT_A_TABLE.into())),
                },
                Err(e) => {
                    let marker = e.marker();
                    Err(located(
                        marker.line(),
                        marker.col() + 1,
                        e.info().to_owned(),
                    ))
                }
            },
            Format::Json => match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(root) => layer.collect(&root, errors),
                Err(e) => {
                    let message = e.to_string();
                    let message = message
                        .rfind(" at line ")
                        .map_or(message.as_str(), |i| &message[..i]);
                    Err(located(e.line(), e.column(), message.to_owned()))
                }
            },
        };
        match read {
            Ok(()) => Some(layer),
            Err(e) => {
                errors.push(e);
                None
            }
        }
    }

    /// Walks the root table: sections one level down, each key checked against the table of
    /// settings. Fails only when the root is no table; other problems go to `errors`.
    fn collect<V: Tree>(
        &mut self,
        root: &V,
        errors: &mut Vec<ConfigError>,
    ) -> Result<(), ConfigError> {
        let Node::Table(mut entries) = root.node() else {
            return Err(ConfigError::FileSyntax {
                path: self.path.clone(),
                line: 1,
                column: 1,
                message: NOT_A_TABLE.into(),
            });
        };
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, value) in entries {
            let Some(key) = key else {
                errors.push(self.not_a_name(""));
                continue;
            };
            let node = value.node();
            if !is_section(&key) {
                self.leaf(key, node, errors);
                continue;
            }
            match node {
                Node::Table(mut inner) => {
                    inner.sort_by(|a, b| a.0.cmp(&b.0));
                    for (k, v) in inner {
                        match k {
                            Some(k) => self.leaf(format!("{key}.{k}"), v.node(), errors),
                            None => errors.push(self.not_a_name(&format!("{key}."))),
                        }
                    }
                }
                Node::Nil => {}
                other => errors.push(self.shape_error(&key, &other, "a table")),
            }
        }
        Ok(())
    }

    /// A key that is a list or a table (YAML allows them), inside `parent`.
    fn not_a_name(&self, parent: &str) -> ConfigError {
        ConfigError::UnknownKey {
            path: self.path.clone(),
            key: format!("{parent}<a list or table as a key>"),
            suggestion: None,
        }
    }

    /// Records the value of one dotted key, or the error that it is no key or not of its shape.
    fn leaf<V: Tree>(&mut self, key: String, node: Node<'_, V>, errors: &mut Vec<ConfigError>) {
        let known = Setting::ALL
            .iter()
            .find_map(|&s| (s.key() == key).then_some((s, s.def().file?)));
        let Some((setting, shape)) = known else {
            // `"headers.x-tenant" = "a"` at the top level: an entry of a table.
            let entry = key.split_once('.').and_then(|(map, entry)| {
                let s = *Setting::ALL.iter().find(|s| s.key() == map)?;
                (s.def().file == Some(Shape::Map)).then_some((s, entry))
            });
            match (entry, node) {
                (Some((s, entry)), Node::Scalar(text)) => {
                    self.maps
                        .entry(s)
                        .or_default()
                        .push((entry.to_owned(), text));
                }
                (Some(_), other) => errors.push(self.shape_error(&key, &other, "a string")),
                (None, _) => errors.push(ConfigError::UnknownKey {
                    path: self.path.clone(),
                    suggestion: suggest(&key),
                    key,
                }),
            }
            return;
        };
        match (shape, node) {
            (_, Node::Nil) => {}
            (Shape::Map, Node::Table(mut table)) => {
                table.sort_by(|a, b| a.0.cmp(&b.0));
                let mut entries = Vec::with_capacity(table.len());
                for (k, v) in table {
                    match (k, v.node()) {
                        (Some(k), Node::Scalar(text)) => entries.push((k, text)),
                        (Some(k), other) => {
                            errors.push(self.shape_error(&format!("{key}.{k}"), &other, "a string"))
                        }
                        (None, _) => errors.push(self.not_a_name(&format!("{key}."))),
                    }
                }
                self.maps.entry(setting).or_default().extend(entries);
            }
            (Shape::List, Node::List(items)) => {
                let mut list = Vec::with_capacity(items.len());
                for item in items {
                    match item.node() {
                        Node::Scalar(text) => list.push(text),
                        other => errors.push(self.shape_error(&key, &other, "a list of names")),
                    }
                }
                self.lists.insert(setting, list);
            }
            (Shape::List, Node::Scalar(text)) => {
                self.lists
                    .insert(setting, text.split(',').map(str::to_owned).collect());
            }
            (Shape::Scalar, Node::Scalar(text)) => {
                self.scalars.insert(setting, text);
            }
            (shape, other) => {
                let expected = match shape {
                    Shape::Map => "a table",
                    Shape::List => "a list of names",
                    Shape::Scalar => "a single value",
                };
                errors.push(self.shape_error(&key, &other, expected));
            }
        }
    }

    fn shape_error<V>(&self, key: &str, found_here: &Node<'_, V>, expected: &str) -> ConfigError {
        ConfigError::InvalidValue {
            origin: Source::file(&self.path, key),
            value: found(found_here),
            expected: expected.to_owned(),
        }
    }
}

/// Said of a file whose top level is no table of settings (a list, a scalar, several YAML
/// documents), in our words: a parser's message may quote content, which may hold the token.
const NOT_A_TABLE: &str = "expected one table of settings at the top level";

/// Whether `key` names a section of the file (`tls`, `batch`, `sampler`, `limits`).
fn is_section(key: &str) -> bool {
    Setting::ALL.iter().any(|s| {
        s.def().file.is_some()
            && s.key()
                .split_once('.')
                .is_some_and(|(section, _)| section == key)
    })
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
    Setting::ALL
        .iter()
        .filter(|s| s.def().file.is_some())
        .map(|s| {
            let k = s.key();
            let known_leaf = k.rsplit('.').next().unwrap_or(k);
            (
                edit_distance(key, k).min(edit_distance(leaf, known_leaf)),
                k,
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
