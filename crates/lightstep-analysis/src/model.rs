//! The span model the analysis works on, independent of any OpenTelemetry SDK.
//!
//! Readers, the embedded receiver and tests all build [`Span`]s through [`Span::new`] and the
//! `with_*` setters. Nothing here validates timing: messy input (end before start, parents that
//! never arrive, ids used twice) is the normal case and is handled by the analysis, which reports
//! what it had to repair instead of refusing the trace.

use std::fmt;
use std::sync::Arc;

/// A span identifier.
///
/// Hex ids of up to 16 digits (either case, leading zeros optional as Jaeger writes them) are
/// kept as a 64-bit number, so that `4b52eb0cabcb50a` and `04B52EB0CABCB50A` name the same span.
/// Anything else (Jaeger test data uses ids such as `span-1`) is kept verbatim as text.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpanId(IdRepr<u64>);

/// A trace identifier: a 128-bit number for hex ids of up to 32 digits, text otherwise.
///
/// A 64-bit id (16 digits or fewer, as Zipkin and old Jaeger clients write) equals the same
/// value written with 32 digits, and prints with 16.
#[derive(Clone)]
pub struct TraceId(TraceRepr);

/// Two 64-bit halves rather than a `u128`, whose 16-byte alignment would double the id's size
/// inside every span; `short` remembers a 64-bit id written with 16 digits or fewer.
#[derive(Clone)]
enum TraceRepr {
    Num { value: [u64; 2], short: bool },
    Text(Box<str>),
}

impl TraceRepr {
    fn num(value: u128, short: bool) -> Self {
        Self::Num {
            value: [(value >> 64) as u64, value as u64],
            short,
        }
    }
}

impl PartialEq for TraceId {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (TraceRepr::Num { value: a, .. }, TraceRepr::Num { value: b, .. }) => a == b,
            (TraceRepr::Text(a), TraceRepr::Text(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for TraceId {}

impl std::hash::Hash for TraceId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match &self.0 {
            TraceRepr::Num { value, .. } => {
                state.write_u8(0);
                value.hash(state);
            }
            TraceRepr::Text(text) => {
                state.write_u8(1);
                text.hash(state);
            }
        }
    }
}

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum IdRepr<N> {
    Num(N),
    Text(Box<str>),
}

fn parse_hex<N: TryFrom<u128>>(text: &str, max_digits: usize) -> Option<N> {
    if text.is_empty() || text.len() > max_digits {
        return None;
    }
    let value = u128::from_str_radix(text, 16).ok()?;
    // `from_str_radix` accepts a leading `+`; an id never has one.
    if text.starts_with('+') {
        return None;
    }
    N::try_from(value).ok()
}

impl SpanId {
    /// Builds an id from its 64-bit value (the eight bytes of an OTLP `span_id`, big endian).
    pub const fn from_u64(value: u64) -> Self {
        Self(IdRepr::Num(value))
    }

    /// Parses an id as written in JSON: hex (either case) when it is hex, otherwise verbatim.
    pub fn parse(text: &str) -> Self {
        match parse_hex::<u64>(text, 16) {
            Some(value) => Self(IdRepr::Num(value)),
            None => Self(IdRepr::Text(text.into())),
        }
    }

    /// Builds an id from raw bytes as OTLP protobuf carries them (normally eight bytes).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        if let Ok(array) = <[u8; 8]>::try_from(bytes) {
            Self(IdRepr::Num(u64::from_be_bytes(array)))
        } else {
            Self(IdRepr::Text(hex(bytes).into()))
        }
    }

    /// The numeric value, when the id is a 64-bit hex id.
    pub fn as_u64(&self) -> Option<u64> {
        match self.0 {
            IdRepr::Num(value) => Some(value),
            IdRepr::Text(_) => None,
        }
    }

    /// Whether this is the all-zero id, which OTLP uses to mean "no parent".
    pub fn is_zero(&self) -> bool {
        matches!(self.0, IdRepr::Num(0))
    }
}

impl TraceId {
    /// Builds an id from its 128-bit value.
    pub const fn from_u128(value: u128) -> Self {
        Self(TraceRepr::Num {
            value: [(value >> 64) as u64, value as u64],
            short: false,
        })
    }

    /// Parses an id as written in JSON: hex (either case) when it is hex, otherwise verbatim.
    pub fn parse(text: &str) -> Self {
        match parse_hex::<u128>(text, 32) {
            Some(value) => Self(TraceRepr::num(value, text.len() <= 16)),
            None => Self(TraceRepr::Text(text.into())),
        }
    }

    /// Builds an id from raw bytes as OTLP protobuf carries them (normally sixteen bytes).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        if let Ok(array) = <[u8; 16]>::try_from(bytes) {
            Self(TraceRepr::num(u128::from_be_bytes(array), false))
        } else {
            Self(TraceRepr::Text(hex(bytes).into()))
        }
    }
}

impl Default for TraceId {
    fn default() -> Self {
        Self::from_u128(0)
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// Sixteen lower-case hex digits without going through the formatting machinery, which is
/// several times slower and shows up when a million ids are printed.
fn hex16(value: u64) -> [u8; 16] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 16];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = DIGITS[((value >> (60 - 4 * i)) & 0xf) as usize];
    }
    out
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            IdRepr::Num(value) => {
                f.write_str(std::str::from_utf8(&hex16(*value)).unwrap_or_default())
            }
            IdRepr::Text(text) => f.write_str(text),
        }
    }
}

impl SpanId {
    /// The id as text: 16 lower-case hex digits for numeric ids.
    pub fn to_hex(&self) -> String {
        self.to_string()
    }

    /// The key used for lookups: numeric ids by value, others by text.
    pub(crate) fn key(&self) -> Result<u64, &str> {
        match &self.0 {
            IdRepr::Num(value) => Ok(*value),
            IdRepr::Text(text) => Err(text),
        }
    }
}

/// An id equals its text as [`SpanId::parse`] reads it: `SpanId::from_u64(0xabc) == "0ABC"`.
impl PartialEq<str> for SpanId {
    fn eq(&self, other: &str) -> bool {
        match (&self.0, parse_hex::<u64>(other, 16)) {
            (IdRepr::Num(value), Some(parsed)) => *value == parsed,
            (IdRepr::Text(text), None) => **text == *other,
            _ => false,
        }
    }
}

impl PartialEq<&str> for SpanId {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

impl serde::Serialize for SpanId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            TraceRepr::Num {
                value: [0, lo],
                short: true,
            } => f.write_str(std::str::from_utf8(&hex16(*lo)).unwrap_or_default()),
            TraceRepr::Num {
                value: [hi, lo], ..
            } => {
                f.write_str(std::str::from_utf8(&hex16(*hi)).unwrap_or_default())?;
                f.write_str(std::str::from_utf8(&hex16(*lo)).unwrap_or_default())
            }
            TraceRepr::Text(text) => f.write_str(text),
        }
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({self})")
    }
}

/// What a span did, as OTLP names it. Only `Producer`/`Consumer` change the analysis.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SpanKind {
    /// Not given.
    #[default]
    Unspecified,
    /// Work inside one process.
    Internal,
    /// The callee side of a synchronous request.
    Server,
    /// The caller side of a synchronous request.
    Client,
    /// The sending side of an asynchronous message.
    Producer,
    /// The receiving side of an asynchronous message; it does not block its parent.
    Consumer,
}

impl SpanKind {
    /// Maps the OTLP enum value (`SPAN_KIND_*`), unknown values to `Unspecified`.
    pub fn from_otlp(value: i64) -> Self {
        match value {
            1 => Self::Internal,
            2 => Self::Server,
            3 => Self::Client,
            4 => Self::Producer,
            5 => Self::Consumer,
            _ => Self::Unspecified,
        }
    }

    /// Maps a kind written as text (`SERVER`, `server`, `SPAN_KIND_SERVER`).
    pub fn from_name(name: &str) -> Self {
        let name = name.strip_prefix("SPAN_KIND_").unwrap_or(name);
        match name.to_ascii_lowercase().as_str() {
            "internal" => Self::Internal,
            "server" => Self::Server,
            "client" => Self::Client,
            "producer" => Self::Producer,
            "consumer" => Self::Consumer,
            _ => Self::Unspecified,
        }
    }

    /// Lower-case name used by the renderers.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::Internal => "internal",
            Self::Server => "server",
            Self::Client => "client",
            Self::Producer => "producer",
            Self::Consumer => "consumer",
        }
    }
}

/// Outcome of a span.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// Not set.
    #[default]
    Unset,
    /// Explicitly successful.
    Ok,
    /// Failed.
    Error,
}

/// How a span relates to the span named by its parent id.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParentRelation {
    /// The parent waits for the child (OTLP parent, Jaeger `CHILD_OF`).
    #[default]
    ChildOf,
    /// The parent does not wait for the child (Jaeger/OpenTracing `FOLLOWS_FROM`).
    FollowsFrom,
}

/// A link to another span, possibly in another trace. Links never block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// Trace of the linked span.
    pub trace_id: TraceId,
    /// The linked span.
    pub span_id: SpanId,
}

/// The empty name, shared: spans without a service or name allocate nothing for it.
fn empty_name() -> Arc<str> {
    static EMPTY: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| Arc::from(""));
    EMPTY.clone()
}

/// One span, with times in integer nanoseconds since the Unix epoch.
///
/// Build one with [`Span::new`] and the `with_*` setters:
///
/// ```
/// use lightstep_analysis::{Span, SpanId, SpanKind, TraceId};
///
/// let span = Span::new(TraceId::from_u128(1), SpanId::from_u64(2), 1_000, 5_000)
///     .with_parent(SpanId::from_u64(1))
///     .with_service("checkout")
///     .with_name("GET /cart")
///     .with_kind(SpanKind::Server);
/// assert_eq!(span.duration_ns(), 4_000);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    trace_id: TraceId,
    span_id: SpanId,
    parent_id: Option<SpanId>,
    relation: ParentRelation,
    links: Vec<Link>,
    kind: SpanKind,
    status: Status,
    service: Arc<str>,
    name: Arc<str>,
    host: Option<Arc<str>>,
    peer: Option<Arc<str>>,
    remote_parent: bool,
    start_ns: u64,
    end_ns: u64,
}

impl Span {
    /// A span with the given identity and times; every other field starts empty.
    ///
    /// `end_ns` may be before `start_ns`: the analysis treats such a span as taking no time and
    /// reports it.
    pub fn new(trace_id: TraceId, span_id: SpanId, start_ns: u64, end_ns: u64) -> Self {
        Self {
            trace_id,
            span_id,
            parent_id: None,
            relation: ParentRelation::ChildOf,
            links: Vec::new(),
            kind: SpanKind::Unspecified,
            status: Status::Unset,
            service: empty_name(),
            name: empty_name(),
            host: None,
            peer: None,
            remote_parent: false,
            start_ns,
            end_ns,
        }
    }

    /// Sets the parent; the all-zero id means "no parent", as in OTLP.
    #[must_use]
    pub fn with_parent(mut self, parent: SpanId) -> Self {
        self.parent_id = if parent.is_zero() { None } else { Some(parent) };
        self
    }

    /// Sets how the span relates to its parent.
    #[must_use]
    pub fn with_relation(mut self, relation: ParentRelation) -> Self {
        self.relation = relation;
        self
    }

    /// Adds a link.
    #[must_use]
    pub fn with_link(mut self, link: Link) -> Self {
        self.links.push(link);
        self
    }

    /// Sets the kind.
    #[must_use]
    pub fn with_kind(mut self, kind: SpanKind) -> Self {
        self.kind = kind;
        self
    }

    /// Sets the status.
    #[must_use]
    pub fn with_status(mut self, status: Status) -> Self {
        self.status = status;
        self
    }

    /// Sets the service name (OTLP `service.name`, Jaeger process, Zipkin local endpoint).
    ///
    /// Pass a shared `Arc<str>` when many spans have the same service to avoid a copy each.
    #[must_use]
    pub fn with_service(mut self, service: impl Into<Arc<str>>) -> Self {
        self.service = service.into();
        self
    }

    /// Sets the operation name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the identity of the host that measured the span's clock (host name or address);
    /// skew correction only moves spans between different hosts.
    #[must_use]
    pub fn with_host(mut self, host: impl Into<Arc<str>>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Sets the remote peer a client or producer span talked to (`server.address` and
    /// `server.port`, `peer.service`, a Zipkin remote endpoint): what tells apart client spans
    /// named only `GET`.
    #[must_use]
    pub fn with_peer(mut self, peer: impl Into<Arc<str>>) -> Self {
        self.peer = Some(peer.into());
        self
    }

    /// Marks the parent as running in another process: OTLP's span flags say so for a parent
    /// that came in a propagated context. See [`has_remote_parent`](Self::has_remote_parent).
    #[must_use]
    pub fn with_remote_parent(mut self, remote: bool) -> Self {
        self.remote_parent = remote;
        self
    }

    pub(crate) fn set_service(&mut self, service: Arc<str>) {
        self.service = service;
    }

    pub(crate) fn set_host(&mut self, host: Option<Arc<str>>) {
        self.host = host;
    }

    pub(crate) fn set_parent(&mut self, parent: Option<SpanId>) {
        self.parent_id = parent;
    }

    /// The trace this span belongs to.
    pub fn trace_id(&self) -> &TraceId {
        &self.trace_id
    }

    /// The span's own id.
    pub fn span_id(&self) -> &SpanId {
        &self.span_id
    }

    /// The parent span's id, if any.
    pub fn parent_id(&self) -> Option<&SpanId> {
        self.parent_id.as_ref()
    }

    /// How the span relates to its parent.
    pub fn relation(&self) -> ParentRelation {
        self.relation
    }

    /// Links to other spans.
    pub fn links(&self) -> &[Link] {
        &self.links
    }

    /// The kind.
    pub fn kind(&self) -> SpanKind {
        self.kind
    }

    /// The status.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The service name, empty when unknown.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The shared service name.
    pub fn service_arc(&self) -> &Arc<str> {
        &self.service
    }

    /// The operation name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The shared operation name.
    pub fn name_arc(&self) -> &Arc<str> {
        &self.name
    }

    /// The host identity, when known.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// The remote peer of a client or producer span, when its source named one.
    pub fn peer(&self) -> Option<&str> {
        self.peer.as_deref()
    }

    /// Whether the parent ran in a caller's process: marked so by OTLP, or a server or consumer
    /// span (whose parent is by nature the caller's client or producer span). Such a parent is
    /// missing from a trace whenever the caller sent no spans, which is normal.
    pub fn has_remote_parent(&self) -> bool {
        self.parent_id.is_some()
            && (self.remote_parent || matches!(self.kind, SpanKind::Server | SpanKind::Consumer))
    }

    /// Start in nanoseconds since the Unix epoch.
    pub fn start_ns(&self) -> u64 {
        self.start_ns
    }

    /// End in nanoseconds since the Unix epoch, as recorded (may precede the start).
    pub fn end_ns(&self) -> u64 {
        self.end_ns
    }

    /// Recorded duration, zero when the end precedes the start.
    pub fn duration_ns(&self) -> u64 {
        self.end_ns.saturating_sub(self.start_ns)
    }
}

/// The spans of one trace, as assembled by a reader or a receiver.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    /// The trace's id.
    pub trace_id: TraceId,
    /// Its spans in input order; order matters only for tie-breaking.
    pub spans: Vec<Span>,
}

impl Trace {
    /// A trace from its spans.
    pub fn new(trace_id: TraceId, spans: Vec<Span>) -> Self {
        Self { trace_id, spans }
    }

    /// Groups spans of any number of traces by trace id, traces in order of first appearance
    /// and spans in input order (for callers such as a receiver that collect spans loosely).
    ///
    /// ```
    /// use lightstep_analysis::{Span, SpanId, Trace, TraceId};
    ///
    /// let (a, b) = (TraceId::from_u128(1), TraceId::from_u128(2));
    /// let traces = Trace::group(vec![
    ///     Span::new(a.clone(), SpanId::from_u64(1), 0, 1),
    ///     Span::new(b.clone(), SpanId::from_u64(2), 0, 1),
    ///     Span::new(a.clone(), SpanId::from_u64(3), 0, 1),
    /// ]);
    /// assert_eq!(traces.len(), 2);
    /// assert_eq!(traces[0].trace_id, a);
    /// assert_eq!(traces[0].spans.len(), 2);
    /// ```
    pub fn group(spans: impl IntoIterator<Item = Span>) -> Vec<Trace> {
        let mut grouper = crate::read::Grouper::default();
        for span in spans {
            grouper.push(span);
        }
        grouper.into_traces()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_ids_are_case_and_zero_insensitive() {
        assert_eq!(
            SpanId::parse("4b52eb0cabcb50a"),
            SpanId::parse("04B52EB0CABCB50A")
        );
        assert_eq!(
            SpanId::parse("04b52eb0cabcb50a").to_string(),
            "04b52eb0cabcb50a"
        );
        assert_eq!(
            TraceId::parse("5B8EFFF798038103D269B633813FC60C").to_string(),
            "5b8efff798038103d269b633813fc60c"
        );
    }

    #[test]
    fn ids_stay_small_inside_spans() {
        // Every span carries three ids; a `u128` inside would make the trace id 48 bytes.
        assert!(std::mem::size_of::<TraceId>() <= 24);
        assert!(std::mem::size_of::<SpanId>() <= 24);
        assert!(
            std::mem::size_of::<Span>() <= 176,
            "{}",
            std::mem::size_of::<Span>()
        );
    }

    #[test]
    fn short_trace_ids_equal_their_padded_form() {
        let short = TraceId::parse("1e223ff1f80f1c69");
        let long = TraceId::parse("00000000000000001E223FF1F80F1C69");
        assert_eq!(short, long);
        assert_eq!(short.to_string(), "1e223ff1f80f1c69");
        assert_eq!(long.to_string(), "00000000000000001e223ff1f80f1c69");
    }

    #[test]
    fn non_hex_ids_are_kept_verbatim() {
        assert_eq!(SpanId::parse("span-1").to_string(), "span-1");
        assert_eq!(SpanId::parse("+1").to_string(), "+1");
        assert_ne!(SpanId::parse("span-1"), SpanId::parse("span-2"));
        let long = "0123456789abcdef0";
        assert_eq!(SpanId::parse(long).to_string(), long);
    }

    #[test]
    fn ids_equal_their_text_as_parse_reads_it() {
        let id = SpanId::from_u64(0x04b5_2eb0_cabc_b50a);
        assert_eq!(id, "04b52eb0cabcb50a");
        assert_eq!(id, "4B52EB0CABCB50A");
        assert_ne!(id, "04b52eb0cabcb50b");
        assert_ne!(id, "");
        assert_ne!(id, "+4b52eb0cabcb50a");
        assert_eq!(SpanId::parse("span-1"), "span-1");
        assert_ne!(SpanId::parse("span-1"), "span-2");
        // A text id never equals a hex string, even one naming its digits.
        assert_ne!(SpanId::parse("00112233445566778899"), "0011223344556677");
        assert_eq!(vec![id.clone()], ["04b52eb0cabcb50a"]);
    }

    #[test]
    fn bytes_ids_match_hex_ids() {
        let bytes = [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74];
        assert_eq!(
            SpanId::from_bytes(&bytes),
            SpanId::parse("EEE19B7EC3C1B174")
        );
        assert_eq!(SpanId::from_bytes(&[1, 2]).to_string(), "0102");
    }

    #[test]
    fn zero_parent_means_none() {
        let span = Span::new(TraceId::default(), SpanId::from_u64(1), 0, 1)
            .with_parent(SpanId::parse("0000000000000000"));
        assert!(span.parent_id().is_none());
    }
}
