//! Parsers for single setting values, shared by the environment and the file.
//!
//! Each returns what it expected on failure; the caller adds where the value came from.

use std::borrow::Cow;
use std::time::Duration;

use percent_encoding::percent_decode_str;
use url::Url;

use crate::model::{Compression, Propagator, Protocol, Region, TracesExporter};

/// What a parser expected, for the error message.
pub(crate) type Expected = String;

pub(crate) fn boolean(s: &str) -> Result<bool, Expected> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("`true` or `false`".into()),
    }
}

pub(crate) fn count(s: &str) -> Result<usize, Expected> {
    s.trim()
        .parse::<usize>()
        .map_err(|_| "a whole number such as `2048`".into())
}

pub(crate) fn positive_count(s: &str) -> Result<usize, Expected> {
    match count(s)? {
        0 => Err("a whole number of at least 1".into()),
        n => Ok(n),
    }
}

pub(crate) fn limit(s: &str) -> Result<u32, Expected> {
    s.trim()
        .parse::<u32>()
        .map_err(|_| format!("a whole number from 0 to {}", u32::MAX))
}

/// A duration: a whole number of milliseconds (the OpenTelemetry convention, `10000`), or a
/// number with a unit (`10s`, `500ms`, `1m`).
pub(crate) fn duration(s: &str) -> Result<Duration, Expected> {
    let s = s.trim();
    let expected = || "milliseconds such as `10000`, or a duration with a unit such as `10s`";
    if let Ok(ms) = s.parse::<u64>() {
        return Ok(Duration::from_millis(ms));
    }
    humantime::parse_duration(s).map_err(|_| expected().into())
}

/// The longest duration any setting takes: beyond it a value is surely a mistake, and deadlines
/// computed from it could overflow.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// A [`duration`] from 1 ms to [`MAX_DURATION`]: zero would make every export time out (or the
/// export thread spin), and a huge one is surely a mistake.
pub(crate) fn bounded_duration(s: &str) -> Result<Duration, Expected> {
    let d = duration(s)?;
    if d < Duration::from_millis(1) || d > MAX_DURATION {
        return Err("a duration from 1ms to 24h, such as `10000` (milliseconds) or `10s`".into());
    }
    Ok(d)
}

pub(crate) fn ratio(s: &str) -> Result<f64, Expected> {
    let expected = || "a number from 0 to 1, such as `0.25`".to_owned();
    let r: f64 = s.trim().parse().map_err(|_| expected())?;
    if (0.0..=1.0).contains(&r) {
        Ok(r)
    } else {
        Err(expected())
    }
}

pub(crate) fn protocol(s: &str) -> Result<Protocol, Expected> {
    match s.trim().to_ascii_lowercase().as_str() {
        "grpc" => Ok(Protocol::Grpc),
        "http/protobuf" => Ok(Protocol::HttpProtobuf),
        "http/json" => Ok(Protocol::HttpJson),
        _ => Err("one of `grpc`, `http/protobuf`, `http/json`".into()),
    }
}

pub(crate) fn compression(s: &str) -> Result<Compression, Expected> {
    match s.trim().to_ascii_lowercase().as_str() {
        "gzip" => Ok(Compression::Gzip),
        "none" => Ok(Compression::None),
        _ => Err("`gzip` or `none`".into()),
    }
}

pub(crate) fn region(s: &str) -> Result<Region, Expected> {
    match s.trim().to_ascii_lowercase().as_str() {
        "us" => Ok(Region::Us),
        "eu" => Ok(Region::Eu),
        _ => Err("`us` or `eu`".into()),
    }
}

pub(crate) const SAMPLERS: &str = "one of `always_on`, `always_off`, `traceidratio`, `parentbased_always_on`, `parentbased_always_off`, `parentbased_traceidratio`";

/// Samplers the OpenTelemetry specification defines and lightstep-rs does not implement. An
/// environment shared with services in other languages may name them: they get a warning and
/// the specification's fallback, the default sampler, rather than an error.
const UNSUPPORTED_SAMPLERS: &[&str] = &["parentbased_jaeger_remote", "jaeger_remote", "xray"];

/// A sampler's name, without its argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SamplerName {
    /// One lightstep-rs implements, and whether it takes a ratio.
    Supported(&'static str, bool),
    /// One the specification defines that lightstep-rs does not implement.
    Unsupported(&'static str),
}

pub(crate) fn sampler_name(s: &str) -> Result<SamplerName, Expected> {
    let name = s.trim().to_ascii_lowercase();
    if let Some(&unsupported) = UNSUPPORTED_SAMPLERS.iter().find(|n| **n == name) {
        return Ok(SamplerName::Unsupported(unsupported));
    }
    [
        ("always_on", false),
        ("always_off", false),
        ("traceidratio", true),
        ("parentbased_always_on", false),
        ("parentbased_always_off", false),
        ("parentbased_traceidratio", true),
    ]
    .into_iter()
    .find(|(n, _)| *n == name)
    .map(|(n, takes_ratio)| SamplerName::Supported(n, takes_ratio))
    .ok_or_else(|| SAMPLERS.to_owned())
}

const PROPAGATORS: &str = "a comma-separated list of `tracecontext`, `baggage`, `b3`, `b3multi`, `jaeger`, `xray`, `ottrace`, or `none`";

/// A propagator list. `none` alone means no propagation.
pub(crate) fn propagators<'a>(
    items: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Propagator>, Expected> {
    let mut out = Vec::new();
    let mut none = false;
    for item in items {
        let item = item.trim().to_ascii_lowercase();
        let p = match item.as_str() {
            "" => continue,
            "none" => {
                none = true;
                continue;
            }
            "tracecontext" => Propagator::TraceContext,
            "baggage" => Propagator::Baggage,
            "b3" => Propagator::B3,
            "b3multi" => Propagator::B3Multi,
            "jaeger" => Propagator::Jaeger,
            "xray" => Propagator::Xray,
            "ottrace" => Propagator::OtTrace,
            other => return Err(format!("{PROPAGATORS} (`{other}` is not one)")),
        };
        if !out.contains(&p) {
            out.push(p);
        }
    }
    if none && !out.is_empty() {
        return Err(format!(
            "{PROPAGATORS}; `none` cannot be combined with others"
        ));
    }
    Ok(out)
}

/// Trace exporters the OpenTelemetry specification defines (`jaeger` until the specification
/// retired it; `otlp/stdout` in development) that lightstep-rs does not implement: skipped with
/// a warning, as an environment shared with other languages may name them.
const UNSUPPORTED_EXPORTERS: &[&str] = &["zipkin", "console", "logging", "jaeger", "otlp/stdout"];

/// `OTEL_TRACES_EXPORTER`, a comma-separated list: the exporter chosen, or `None` when every
/// name was one of [`UNSUPPORTED_EXPORTERS`] (the setting is then ignored, as the
/// specification says), and the unsupported names skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExporterList {
    pub(crate) exporter: Option<TracesExporter>,
    pub(crate) skipped: Vec<&'static str>,
}

impl ExporterList {
    pub(crate) fn of(exporter: TracesExporter) -> Self {
        Self {
            exporter: Some(exporter),
            skipped: Vec::new(),
        }
    }
}

pub(crate) fn traces_exporter(s: &str) -> Result<ExporterList, Expected> {
    const EXPECTED: &str = "`otlp` or `none` (or a name the OpenTelemetry specification defines, which is skipped with a warning)";
    let mut list = ExporterList {
        exporter: None,
        skipped: Vec::new(),
    };
    let mut none = false;
    for name in s.split(',').map(|n| n.trim().to_ascii_lowercase()) {
        match name.as_str() {
            "" => {}
            "otlp" => list.exporter = Some(TracesExporter::Otlp),
            "none" => none = true,
            other => match UNSUPPORTED_EXPORTERS.iter().find(|n| **n == other) {
                Some(n) if !list.skipped.contains(n) => list.skipped.push(n),
                Some(_) => {}
                None => return Err(format!("{EXPECTED}; `{other}` is not one")),
            },
        }
    }
    if none {
        if list.exporter.is_some() || !list.skipped.is_empty() {
            return Err(format!("{EXPECTED}; `none` cannot be combined with others"));
        }
        list.exporter = Some(TracesExporter::None);
    }
    if list.exporter.is_none() && list.skipped.is_empty() {
        return Err(EXPECTED.into());
    }
    Ok(list)
}

/// An endpoint as given: a URL (`https://host:443`, `http://localhost:4317/`) or `host:port`.
/// Returns the URL and whether the scheme was written out.
pub(crate) fn endpoint(s: &str, insecure: bool) -> Result<(Url, bool), Expected> {
    let s = s.trim();
    let expected = || {
        "a URL such as `https://ingest.lightstep.com:443` or `http://localhost:4317`, or `host:port`".to_owned()
    };
    if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(expected());
    }
    let lower = s.to_ascii_lowercase();
    if (lower.starts_with("http:") || lower.starts_with("https:")) && !s.contains("://") {
        // `https:/host` or `https:host`: a typo, not a host named `https`.
        return Err(expected());
    }
    let (text, explicit) = if s.contains("://") {
        (s.to_owned(), true)
    } else {
        let scheme = if insecure { "http" } else { "https" };
        (format!("{scheme}://{s}"), false)
    };
    let url = Url::parse(&text).map_err(|_| expected())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{} with the scheme `http` or `https`", expected()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(expected());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{} without credentials (send the token as a header instead)",
            expected()
        ));
    }
    Ok((url, explicit))
}

/// A proxy URL: `http://[user:password@]host[:port]`, or `host:port` for `http://host:port`.
/// The URL is returned as given (trimmed, with its scheme): its user information is the
/// proxy's credentials.
pub(crate) fn proxy(s: &str) -> Result<String, Expected> {
    let s = s.trim();
    let expected = || "an HTTP proxy URL such as `http://proxy.example:3128`".to_owned();
    if s.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(expected());
    }
    let text = if s.contains("://") {
        s.to_owned()
    } else {
        format!("http://{s}")
    };
    let url = Url::parse(&text).map_err(|_| expected())?;
    if url.scheme() != "http" {
        return Err(format!(
            "{} (`http://`: exports reach the endpoint through an HTTP CONNECT tunnel, inside \
             which TLS to the endpoint is kept; a TLS connection to the proxy itself is not \
             supported)",
            expected()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(expected());
    }
    Ok(text)
}

/// `s` with the user information of its authority (`user:password@`, as in
/// `https://user:password@host`) replaced by `[REDACTED]`. Endpoints with credentials are
/// refused, but the refusal, warnings and `Debug` output must not repeat them.
///
/// A password may hold any character, `/`, `?` and `#` included, so the user information is
/// taken to run to the **last** `@` of the string, not to the end of the authority: an `@`
/// later in a path or query is redacted with it. Showing less of an odd endpoint is the price
/// of never showing a password. A string without `@` comes back as it is.
pub(crate) fn redact_userinfo(s: &str) -> Cow<'_, str> {
    // A scheme only if what precedes `://` can be one: `://` inside a query is not one.
    let start = match s.find("://") {
        Some(i)
            if i > 0
                && s[..i]
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) =>
        {
            i + 3
        }
        _ => 0,
    };
    match s[start..].rfind('@') {
        Some(at) => Cow::Owned(format!("{}[REDACTED]{}", &s[..start], &s[start + at..])),
        None => Cow::Borrowed(s),
    }
}

/// Why a `key=value` list did not parse. Never holds a value: header values may be secrets.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ListError {
    /// Entry number (1-based) has no `=` or an empty key.
    Malformed(usize),
    /// Entry number (1-based) is not valid percent-encoded UTF-8.
    Encoding(usize),
}

impl ListError {
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Malformed(n) => {
                format!("comma-separated `key=value` pairs; entry {n} has no `=` or an empty key")
            }
            Self::Encoding(n) => {
                format!("percent-encoded UTF-8 values; entry {n} does not decode")
            }
        }
    }
}

/// A W3C-Baggage-style list (`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS`):
/// `k1=v1,k2=v2`, values percent-decoded, whitespace around keys and values trimmed.
pub(crate) fn key_values(s: &str) -> Result<Vec<(String, String)>, ListError> {
    let mut out = Vec::new();
    for (i, entry) in s.split(',').enumerate() {
        if entry.trim().is_empty() {
            continue;
        }
        let Some((k, v)) = entry.split_once('=') else {
            return Err(ListError::Malformed(i + 1));
        };
        let k = k.trim();
        if k.is_empty() {
            return Err(ListError::Malformed(i + 1));
        }
        let key = percent_decode_str(k)
            .decode_utf8()
            .map_err(|_| ListError::Encoding(i + 1))?;
        let value = percent_decode_str(v.trim())
            .decode_utf8()
            .map_err(|_| ListError::Encoding(i + 1))?;
        out.push((key.into_owned(), value.into_owned()));
    }
    Ok(out)
}

/// A header name: an RFC 9110 token. Returned in lowercase (gRPC metadata requires it).
pub(crate) fn header_name(name: &str) -> Result<String, Expected> {
    let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(tchar) {
        return Err("a header name made of letters, digits and `!#$%&'*+-.^_`|~`".into());
    }
    Ok(name.to_ascii_lowercase())
}

/// Checks a header value without ever returning it: visible ASCII, spaces and tabs only, so no
/// CR/LF can inject another header.
pub(crate) fn header_value(value: &str) -> Result<(), String> {
    match value
        .char_indices()
        .find(|&(_, c)| !(c == ' ' || c == '\t' || c.is_ascii_graphic()))
    {
        None => Ok(()),
        Some((i, c)) if c.is_control() => Err(format!(
            "a header value may not contain control characters (found one at byte {i})"
        )),
        Some((i, _)) => Err(format!(
            "a header value must be visible ASCII (found another character at byte {i})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("10000"), Ok(Duration::from_secs(10)));
        assert_eq!(duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(duration(" 250ms "), Ok(Duration::from_millis(250)));
        assert!(duration("ten").is_err());
        assert!(duration("-5").is_err());
    }

    #[test]
    fn ratios() {
        assert_eq!(ratio("0.5"), Ok(0.5));
        assert_eq!(ratio("1"), Ok(1.0));
        assert!(ratio("1.5").is_err());
        assert!(ratio("-0.1").is_err());
        assert!(ratio("NaN").is_err());
    }

    #[test]
    fn key_value_lists() {
        assert_eq!(
            key_values("a=1, b = x%20y ,c=").unwrap(),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y".into()),
                ("c".into(), "".into())
            ]
        );
        assert_eq!(key_values("a=1,b"), Err(ListError::Malformed(2)));
        assert_eq!(key_values("=1"), Err(ListError::Malformed(1)));
        assert_eq!(key_values("a=%ff"), Err(ListError::Encoding(1)));
        // A value may itself contain `=` (base64 padding).
        assert_eq!(
            key_values("a=b==").unwrap(),
            vec![("a".into(), "b==".into())]
        );
    }

    #[test]
    fn header_checks() {
        assert_eq!(header_name("X-Tenant").unwrap(), "x-tenant");
        assert!(header_name("bad name").is_err());
        assert!(header_name("").is_err());
        assert!(header_value("Bearer abc").is_ok());
        assert!(header_value("abc\r\nX-Evil: 1").is_err());
        assert!(header_value("é").is_err());
    }

    #[test]
    fn endpoints() {
        let (u, explicit) = endpoint("ingest.lightstep.com:443", false).unwrap();
        assert_eq!(u.as_str(), "https://ingest.lightstep.com/");
        assert!(!explicit);
        let (u, _) = endpoint("localhost:4317", true).unwrap();
        assert_eq!(u.as_str(), "http://localhost:4317/");
        let (u, explicit) = endpoint("http://[::1]:4318/v1/traces", false).unwrap();
        assert_eq!(u.as_str(), "http://[::1]:4318/v1/traces");
        assert!(explicit);
        assert!(endpoint("ftp://x", false).is_err());
        assert!(endpoint("http://", false).is_err());
        assert!(endpoint("https://user:pw@host", false).is_err());
        assert!(endpoint("host name", false).is_err());
        // A scheme with one slash or none is a typo, not a host named `https`.
        assert!(endpoint("https:/user:pw@host:4318", false).is_err());
        assert!(endpoint("HTTP:host:4318", false).is_err());
    }

    #[test]
    fn user_information_is_redacted_and_nothing_else() {
        for (given, shown) in [
            ("https://u:p@host:4317/x", "https://[REDACTED]@host:4317/x"),
            ("http://p@host", "http://[REDACTED]@host"),
            ("u:p@host:4317", "[REDACTED]@host:4317"),
            ("http://a@b@host/", "http://[REDACTED]@host/"),
            // Passwords with the characters that end an authority.
            (
                "https://user:pa/S3CRET@collector:4318",
                "https://[REDACTED]@collector:4318",
            ),
            (
                "https://user:pa#S3CRET@collector:4318",
                "https://[REDACTED]@collector:4318",
            ),
            (
                "https://user:pa?S3CRET@collector:4318",
                "https://[REDACTED]@collector:4318",
            ),
            // `://` in a query is no scheme; a scheme typo has none either.
            (
                "user:S3CRET@collector:4318/?next=http://x",
                "[REDACTED]@collector:4318/?next=http://x",
            ),
            (
                "https:/user:S3CRET@collector:4318",
                "[REDACTED]@collector:4318",
            ),
            // An `@` later in the string is redacted too: less shown, never a password.
            ("https://host/v1/traces?to=a@b", "https://[REDACTED]@b"),
            ("https://host/v1/traces", "https://host/v1/traces"),
            ("localhost:4317", "localhost:4317"),
            ("", ""),
        ] {
            assert_eq!(redact_userinfo(given), shown, "{given}");
            assert!(!redact_userinfo(given).contains("S3CRET"), "{given}");
        }
    }

    #[test]
    fn propagator_lists() {
        assert_eq!(
            propagators("tracecontext, baggage,b3".split(',')).unwrap(),
            vec![
                Propagator::TraceContext,
                Propagator::Baggage,
                Propagator::B3
            ]
        );
        assert_eq!(propagators(["none"]).unwrap(), vec![]);
        assert!(propagators(["none", "b3"]).is_err());
        assert!(propagators(["w3c"]).is_err());
        assert_eq!(propagators(["XRay"]).unwrap(), vec![Propagator::Xray]);
    }
}
