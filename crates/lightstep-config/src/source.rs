//! Where a setting's value came from.

use std::fmt;
use std::path::PathBuf;

/// The origin of one setting's value, reported in errors, warnings and the effective
/// configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// The built-in default.
    Default,
    /// A configuration file, and the key inside it (dotted, e.g. `batch.max_queue_size`).
    File {
        /// The file's path as given.
        path: PathBuf,
        /// The dotted key.
        key: String,
    },
    /// An environment variable.
    Env {
        /// The variable's name.
        var: String,
    },
    /// A `with_*` call on [`crate::ConfigBuilder`].
    Code {
        /// The builder method.
        setter: &'static str,
    },
}

impl Source {
    pub(crate) fn env(var: impl Into<String>) -> Self {
        Self::Env { var: var.into() }
    }

    pub(crate) fn file(path: impl Into<PathBuf>, key: impl Into<String>) -> Self {
        Self::File {
            path: path.into(),
            key: key.into(),
        }
    }

    /// A short form for tables: `default`, `env OTEL_SERVICE_NAME`, `file app.toml: batch.x`,
    /// `code with_timeout`.
    pub fn short(&self) -> String {
        match self {
            Self::Default => "default".to_owned(),
            Self::File { path, key } => format!("file {}: {key}", path.display()),
            Self::Env { var } => format!("env {var}"),
            Self::Code { setter } => format!("code {setter}"),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("the built-in default"),
            Self::File { path, key } => {
                write!(f, "key `{key}` in file `{}`", path.display())
            }
            Self::Env { var } => write!(f, "environment variable `{var}`"),
            Self::Code { setter } => write!(f, "`ConfigBuilder::{setter}`"),
        }
    }
}
