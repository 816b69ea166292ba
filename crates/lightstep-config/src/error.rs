//! Configuration errors and warnings.

use std::fmt;
use std::path::PathBuf;

use crate::source::Source;

/// Everything that can be wrong with a configuration.
///
/// Each message names where the bad value came from (the variable, or the file and key), the
/// value unless it may be a secret, and what was expected.
///
/// `Debug` prints the same message and its causes ([`ErrorChain`]), so that
/// `fn main() -> Result<(), Box<dyn Error>>` shows what is wrong rather than a structure.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value that does not parse or is out of range.
    #[error("invalid value `{value}` in {origin}: expected {expected}")]
    InvalidValue {
        /// Where the value came from.
        origin: Source,
        /// The value as given.
        value: String,
        /// What would have been accepted.
        expected: String,
    },
    /// A secret value (the token or a header value) that is malformed. The value is not repeated.
    #[error("invalid value in {origin} (value hidden): {reason}")]
    InvalidSecret {
        /// Where the value came from.
        origin: Source,
        /// What is wrong with it.
        reason: String,
    },
    /// An environment variable whose value is not valid UTF-8.
    #[error("environment variable `{var}` is not valid UTF-8")]
    NotUnicode {
        /// The variable's name.
        var: String,
    },
    /// The configuration file could not be read.
    #[error("cannot read configuration file `{}`: {error}", path.display())]
    FileRead {
        /// The path as given.
        path: PathBuf,
        /// The I/O error (in the message; not repeated as the error's source).
        error: std::io::Error,
    },
    /// The configuration file's extension names no supported format.
    #[error(
        "cannot tell the format of configuration file `{}`: expected the extension .toml, .yaml, .yml or .json",
        path.display()
    )]
    FileFormat {
        /// The path as given.
        path: PathBuf,
    },
    /// The configuration file is not valid TOML, YAML or JSON.
    #[error("syntax error in configuration file `{}` at line {line}, column {column}: {message}", path.display())]
    FileSyntax {
        /// The path as given.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What the parser expected. Never quotes the file's content, which may hold the token.
        message: String,
    },
    /// A key in the configuration file that lightstep-rs does not know: a typo must not silently
    /// do nothing.
    #[error("unknown key `{key}` in configuration file `{}`{}", path.display(), suggestion.as_ref().map(|s| format!(": did you mean `{s}`?")).unwrap_or_default())]
    UnknownKey {
        /// The path as given.
        path: PathBuf,
        /// The dotted key.
        key: String,
        /// The closest known key, when one is close.
        suggestion: Option<String>,
    },
    /// A file named for the TLS configuration that is missing or not PEM.
    #[error("{origin} names `{}`, which {reason}", path.display())]
    TlsFile {
        /// Where the path came from.
        origin: Source,
        /// The path.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// No access token while sending to Lightstep's public ingest.
    #[error(
        "no access token for Lightstep's public ingest `{host}`: set LIGHTSTEP_ACCESS_TOKEN or LS_ACCESS_TOKEN (a Collector, a satellite or localhost needs none)"
    )]
    MissingToken {
        /// The ingest host.
        host: String,
        /// Where the endpoint came from: [`Source::Default`] when nothing named one, which is
        /// how a tool tells "nothing configured" from "Lightstep's ingest named, token missing".
        endpoint_source: Source,
    },
    /// The access token or another header value would cross the network unencrypted. Every
    /// header value counts as a secret (`authorization`, `x-api-key`, ...).
    #[error(
        "{} would travel in plaintext to `{host}` ({endpoint_source}): use an https endpoint, or allow it explicitly with OTEL_EXPORTER_OTLP_INSECURE=true or `with_insecure(true)`",
        secrets_named(*.token, .headers)
    )]
    PlaintextSecrets {
        /// The host, which is not loopback.
        host: String,
        /// Whether the access token is among them.
        token: bool,
        /// The names of the other headers that would be sent (never their values).
        headers: Vec<String>,
        /// Where the endpoint came from.
        endpoint_source: Source,
    },
    /// Two settings that cannot hold together.
    #[error("{0}")]
    Inconsistent(String),
    /// More than one of the above; every problem is reported at once.
    #[error("{} configuration errors: {}", .0.len(), list(.0))]
    Multiple(Vec<ConfigError>),
}

fn list(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .enumerate()
        .map(|(i, e)| format!("({}) {e}", i + 1))
        .collect::<Vec<_>>()
        .join("; ")
}

impl ConfigError {
    /// The individual errors: itself, or each one of [`ConfigError::Multiple`].
    pub fn errors(&self) -> &[ConfigError] {
        match self {
            Self::Multiple(errors) => errors,
            other => std::slice::from_ref(other),
        }
    }

    pub(crate) fn from_list(mut errors: Vec<ConfigError>) -> Option<Self> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(Self::Multiple(errors)),
        }
    }
}

/// Something in the configuration that works but is probably not what was meant, such as two
/// variables for one setting that disagree, or a value the OpenTelemetry specification defines
/// that lightstep-rs does not implement. Shown in the effective configuration (and so by
/// `lightstep doctor`); `lightstep::init()` logs each one through `tracing` (target
/// `lightstep`) and keeps them on its guard. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    message: String,
}

impl ConfigWarning {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The warning's text.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// "the access token and the headers `a`, `b`": what [`ConfigError::PlaintextSecrets`] names.
fn secrets_named(token: bool, headers: &[String]) -> String {
    let names = headers
        .iter()
        .map(|h| format!("`{h}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let headers = match headers.len() {
        0 => String::new(),
        1 => format!("the value of header {names}"),
        _ => format!("the values of headers {names}"),
    };
    match (token, headers.is_empty()) {
        (true, true) => "the access token".to_owned(),
        (true, false) => format!("the access token and {headers}"),
        (false, _) => headers,
    }
}

impl fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#}", ErrorChain(self))
    }
}

/// An error with its causes, as it reads best where people meet it: with `{}` on one line,
/// `outer: inner: innermost`; with `{:#}`, the error then `Caused by:` and one cause per line
/// (what `fn main() -> Result<(), Box<dyn Error>>` prints through `Debug`). A cause whose text
/// is already in what comes before it is not repeated, and line breaks inside a message become
/// spaces in the one-line form.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl ErrorChain<'_> {
    /// The causes worth showing: each one whose text is not already in what comes before it.
    fn causes(&self) -> impl Iterator<Item = String> + '_ {
        let mut told = self.0.to_string();
        std::iter::successors(self.0.source(), |e| e.source()).filter_map(move |cause| {
            let text = cause.to_string();
            if text.is_empty() || told.contains(&text) {
                return None;
            }
            told.push_str(&text);
            Some(text)
        })
    }
}

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            write!(f, "{}", self.0)?;
            let mut causes = self.causes().peekable();
            if causes.peek().is_some() {
                f.write_str("\n\nCaused by:")?;
                for cause in causes {
                    write!(f, "\n    {}", cause.replace('\n', "\n    "))?;
                }
            }
            Ok(())
        } else {
            let mut line = self.0.to_string();
            for cause in self.causes() {
                line.push_str(": ");
                line.push_str(&cause);
            }
            f.write_str(&line.replace('\n', " "))
        }
    }
}

impl fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:#}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Outer(String, #[source] std::io::Error);

    #[test]
    fn a_chain_reads_on_one_line_or_with_its_causes_below() {
        let error = Outer(
            "cannot read `otel.toml`".into(),
            std::io::Error::other("permission\ndenied"),
        );
        assert_eq!(
            ErrorChain(&error).to_string(),
            "cannot read `otel.toml`: permission denied"
        );
        assert_eq!(
            format!("{:#}", ErrorChain(&error)),
            "cannot read `otel.toml`\n\nCaused by:\n    permission\n    denied"
        );
        // A cause the message already tells is not told again.
        let repeated = Outer(
            "cannot connect: refused".into(),
            std::io::Error::other("refused"),
        );
        assert_eq!(ErrorChain(&repeated).to_string(), "cannot connect: refused");
        assert_eq!(
            format!("{:#}", ErrorChain(&repeated)),
            "cannot connect: refused"
        );
    }

    #[test]
    fn debug_is_the_message_not_the_structure() {
        let error = ConfigError::InvalidValue {
            origin: Source::Env {
                var: "OTEL_EXPORTER_OTLP_PROTOCOL".into(),
            },
            value: "grpcc".into(),
            expected: "grpc, http/protobuf or http/json".into(),
        };
        assert_eq!(format!("{error:?}"), error.to_string());
        // What `fn main() -> Result<(), Box<dyn Error>>` prints after `Error: `.
        let boxed: Box<dyn std::error::Error> = Box::new(error);
        let shown = format!("{boxed:?}");
        assert!(shown.starts_with("invalid value `grpcc` in "), "{shown}");
        assert!(shown.contains("OTEL_EXPORTER_OTLP_PROTOCOL"), "{shown}");
        assert!(!shown.contains("InvalidValue"), "{shown}");
    }
}
