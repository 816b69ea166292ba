//! The details of a span of a large trace file, looked up in the file when it is selected.
//!
//! Files larger than [`DETAILED_FILE_BYTES`](crate::DETAILED_FILE_BYTES) (or that may hold more
//! spans than the store keeps) are read with what the analysis's readers keep
//! (names, times, ids, kinds, status), so that memory follows the spans held rather than the
//! file. When the page asks for a span of such a trace, the file is read again as a stream and
//! only the spans of that trace are kept (the resource, scope or process they belong to with
//! them) in a small document of the file's own format; that document then goes through the
//! same paths a small file takes ([`FileDetails`]). A trace whose spans (with their resources
//! and scopes) take more than [`LOOKUP_BYTES`] in the file keeps only the selected span.
//!
//! Nothing here decides what a file means: a span this pass cannot find, or a file that no
//! longer reads (changed or removed since), only costs the details.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use lightstep_analysis::read::Format;
use lightstep_analysis::{SpanId, TraceId};
use lightstep_wire::encode::{begin_len, end_len, put_key};
use lightstep_wire::{Reader, WireType};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::file_details::FileDetails;
use crate::store::{SpanDetails, StoredTrace};

/// A file a trace was read from without its details: where to look them up.
#[derive(Debug)]
pub(crate) struct FileSource {
    place: Place,
    /// The format the readers found (or were told), known once the file has been read whole
    /// (a spool that could not be written whole never gets one, and is never read).
    pub(crate) format: OnceLock<Format>,
}

#[derive(Debug)]
enum Place {
    Path(PathBuf),
    /// A copy of standard input, written while it was read.
    Spool(Spool),
}

impl FileSource {
    pub(crate) fn new(path: PathBuf, format: Option<Format>) -> Self {
        let known = OnceLock::new();
        if let Some(format) = format {
            let _ = known.set(format);
        }
        Self {
            place: Place::Path(path),
            format: known,
        }
    }

    /// A source in `spool`, usable once its format is set.
    pub(crate) fn spooled(spool: Spool) -> Self {
        Self {
            place: Place::Spool(spool),
            format: OnceLock::new(),
        }
    }
}

/// The most of standard input copied to a spool: past it, the copy is given up, and the
/// details of its spans are not looked up.
pub(crate) const SPOOL_BYTES: u64 = 2 << 30;

/// A temporary file holding a copy of standard input, for looking up the details of its spans
/// as those of a large file are. On Unix it is unlinked as soon as it is created (only the
/// explorer's handle reaches it, and the system reclaims it however the process ends), and
/// readable by its owner only; on Windows it is deleted when its last handle closes, however
/// the process ends; elsewhere it is removed when dropped.
#[derive(Debug)]
pub(crate) struct Spool {
    file: Mutex<File>,
    /// The path to remove when dropped, where it could not be unlinked while open.
    remove: Option<PathBuf>,
}

impl Spool {
    /// A new spool in the system's temporary directory, and a handle that writes to it.
    pub(crate) fn create() -> io::Result<(Self, File)> {
        let dir = std::env::temp_dir();
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut attempt = 0;
        let (file, path) = loop {
            let path = dir.join(format!(
                "lightstep-ui-stdin-{}-{stamp}-{attempt}.spool",
                std::process::id()
            ));
            let mut options = std::fs::OpenOptions::new();
            options.read(true).write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            // FILE_FLAG_DELETE_ON_CLOSE.
            #[cfg(windows)]
            std::os::windows::fs::OpenOptionsExt::custom_flags(&mut options, 0x0400_0000);
            match options.open(&path) {
                Ok(file) => break (file, path),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 16 => {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        };
        let remove = if cfg!(windows) || (cfg!(unix) && std::fs::remove_file(&path).is_ok()) {
            None
        } else {
            Some(path)
        };
        let writer = file.try_clone()?;
        Ok((
            Self {
                file: Mutex::new(file),
                remove,
            },
            writer,
        ))
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if let Some(path) = &self.remove {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Copies what it reads to a spool, until the copy fails or passes [`SPOOL_BYTES`].
pub(crate) struct Spooling<R> {
    inner: R,
    to: Option<File>,
    written: u64,
}

impl<R> Spooling<R> {
    pub(crate) fn new(inner: R, to: Option<File>) -> Self {
        Self {
            inner,
            to,
            written: 0,
        }
    }

    /// Whether everything read so far is in the spool.
    pub(crate) fn is_whole(&self) -> bool {
        self.to.is_some()
    }
}

impl<R: Read> Read for Spooling<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(to) = &mut self.to {
            self.written += n as u64;
            if self.written > SPOOL_BYTES || io::Write::write_all(to, &buf[..n]).is_err() {
                // Given up (the disk full, say): the spans are read all the same, and what
                // was copied is let go of at once (the file stays open, empty, until then).
                let _ = to.set_len(0);
                self.to = None;
            }
        }
        Ok(n)
    }
}

/// Traces whose looked-up details are kept, the most recently asked for first...
const KEPT_TRACES: usize = 2;
/// ...within this estimate of their bytes (the store's): the most recent always stays.
const KEPT_BYTES: usize = 16 << 20;

/// The details looked up last, so that selecting the spans of one trace reads its files once.
#[derive(Debug, Default)]
pub(crate) struct LookedUp {
    recent: Mutex<VecDeque<Found>>,
    /// Files are read again one lookup at a time, on one blocking thread: a request that
    /// waited for its turn finds what the one before it looked up. The turn is held by the
    /// lookup itself, which goes on when the client that asked for it goes away.
    turn: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Debug)]
struct Found {
    trace: Weak<StoredTrace>,
    /// `None` when every span of the trace was looked up, else the one span that was.
    only: Option<SpanId>,
    details: Lookup,
    bytes: usize,
}

/// What a lookup found: the spans with details, by position in the trace, in order.
pub(crate) type Lookup = Arc<Vec<(usize, SpanDetails)>>;

impl LookedUp {
    /// The details of span `index` of `trace` as the trace's files hold them, `None` if they
    /// do not. Reads the files, unless that was just done for the span or its trace, where
    /// blocking is allowed.
    pub(crate) async fn details(
        self: &Arc<Self>,
        trace: &Arc<StoredTrace>,
        index: usize,
    ) -> Result<Option<SpanDetails>, tokio::task::JoinError> {
        if index >= trace.trace.spans.len() {
            return Ok(None);
        }
        let (this, trace) = (Arc::clone(self), Arc::clone(trace));
        let wanted = trace.trace.spans[index].span_id().clone();
        if self.recent(&trace, Some(&wanted)).is_some() {
            // Known: picked (and anything let go of freed) off the async workers.
            return tokio::task::spawn_blocking(move || {
                let found = this.recent(&trace, Some(&wanted))?.0;
                pick(&found, index)
            })
            .await;
        }
        let found = self.read(&trace, index).await?.0;
        tokio::task::spawn_blocking(move || pick(&found, index)).await
    }

    /// The details of the spans of `trace` as its files hold them, by position in the trace,
    /// or `None` when its spans take more than [`LOOKUP_BYTES`] there (they are then looked
    /// up one span at a time) or none was found.
    pub(crate) async fn all(
        self: &Arc<Self>,
        trace: &Arc<StoredTrace>,
    ) -> Result<Option<Lookup>, tokio::task::JoinError> {
        if trace.trace.spans.is_empty() {
            return Ok(None);
        }
        let (found, whole) = match self.recent(trace, None) {
            Some(known) => known,
            None => self.read(trace, 0).await?,
        };
        Ok((whole && !found.is_empty()).then_some(found))
    }

    /// Waits for its turn, then reads the files of `trace` for span `index` on the blocking
    /// pool, unless the lookup before found what is asked.
    async fn read(
        self: &Arc<Self>,
        trace: &Arc<StoredTrace>,
        index: usize,
    ) -> Result<(Lookup, bool), tokio::task::JoinError> {
        let turn = Arc::clone(&self.turn).lock_owned().await;
        let (this, trace) = (Arc::clone(self), Arc::clone(trace));
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            let span_id = trace.trace.spans[index].span_id();
            this.recent(&trace, Some(span_id))
                .unwrap_or_else(|| this.look_up(&trace, index))
        })
        .await
    }

    /// What was found of `trace` when all of its spans, or the span `wanted`, were looked up
    /// (with `wanted` `None`: when anything of it was), and whether that was all of them.
    /// Frees nothing: called from async code.
    fn recent(&self, trace: &Arc<StoredTrace>, wanted: Option<&SpanId>) -> Option<(Lookup, bool)> {
        let weak = Arc::downgrade(trace);
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        let at = recent.iter().position(|found| {
            Weak::ptr_eq(&found.trace, &weak)
                && match (&found.only, wanted) {
                    (Some(only), Some(wanted)) => only == wanted,
                    _ => true,
                }
        })?;
        let found = recent.remove(at)?;
        let answer = (Arc::clone(&found.details), found.only.is_none());
        recent.push_front(found);
        Some(answer)
    }

    /// Reads the files of `trace` for the details of its spans, of span `index` at least.
    fn look_up(&self, trace: &Arc<StoredTrace>, index: usize) -> (Lookup, bool) {
        let span_id = trace.trace.spans[index].span_id();
        let mut all: Option<FileDetails> = None;
        let mut whole = true;
        for source in &trace.sources {
            if let Some((details, all_spans)) = look_up(source, &trace.trace.trace_id, span_id) {
                whole &= all_spans;
                match &mut all {
                    Some(all) => all.extend(details),
                    None => all = Some(details),
                }
            }
        }
        let details = Arc::new(
            all.map(|mut d| d.take_found(&trace.trace))
                .unwrap_or_default(),
        );
        let bytes = details
            .iter()
            .map(|(_, d)| crate::store::weigh_details(d))
            .sum();
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent.push_front(Found {
            trace: Arc::downgrade(trace),
            only: (!whole).then(|| span_id.clone()),
            details: Arc::clone(&details),
            bytes,
        });
        // What no longer fits (or whose trace is gone) is let go of here, off the async
        // workers.
        let mut held = 0;
        let mut gone = Vec::new();
        for found in std::mem::take(&mut *recent) {
            held += found.bytes;
            let fits = recent.is_empty() || (recent.len() < KEPT_TRACES && held <= KEPT_BYTES);
            if found.trace.strong_count() > 0 && fits {
                recent.push_back(found);
            } else {
                gone.push(found);
            }
        }
        drop(recent);
        drop(gone);
        (details, whole)
    }
}

fn pick(found: &[(usize, SpanDetails)], index: usize) -> Option<SpanDetails> {
    let at = found.binary_search_by_key(&index, |&(at, _)| at).ok()?;
    Some(found[at].1.clone())
}

/// The details `source` holds of the spans of `trace_id`: all of them when they take at most
/// [`LOOKUP_BYTES`] in the file, otherwise those with id `span_id` only (`whole` then
/// says `false`). `None` when the file cannot be read again or holds none of them.
pub(crate) fn look_up(
    source: &FileSource,
    trace_id: &TraceId,
    span_id: &SpanId,
) -> Option<(FileDetails, bool)> {
    let format = *source.format.get()?;
    match &source.place {
        Place::Path(path) => {
            // It was a regular file when it was read; something else since (a named pipe
            // would wait for a writer) is not read.
            if !std::fs::metadata(path).ok()?.is_file() {
                return None;
            }
            let file = File::open(path).ok()?;
            let input = BufReader::with_capacity(1 << 20, file);
            look_up_in(input, format, trace_id, span_id)
        }
        Place::Spool(spool) => {
            // One handle, rewound: held for the whole lookup.
            let file = spool.file.lock().unwrap_or_else(PoisonError::into_inner);
            let mut handle = &*file;
            io::Seek::seek(&mut handle, io::SeekFrom::Start(0)).ok()?;
            let input = BufReader::with_capacity(1 << 20, handle);
            look_up_in(input, format, trace_id, span_id)
        }
    }
}

/// [`look_up`] in a file's contents.
pub(crate) fn look_up_in(
    mut input: impl BufRead,
    format: Format,
    trace_id: &TraceId,
    span_id: &SpanId,
) -> Option<(FileDetails, bool)> {
    // A byte order mark before JSON, as the readers take it.
    if format != Format::OtlpProto && input.fill_buf().ok()?.starts_with(b"\xef\xbb\xbf") {
        input.consume(3);
    }
    // The analysis's Zipkin reader names the server half of a shared span `<id>-server`.
    let text = span_id.to_string();
    let span_id = match text.strip_suffix("-server") {
        Some(id) if format == Format::ZipkinJson => SpanId::parse(id),
        _ => span_id.clone(),
    };
    if format == Format::OtlpProto {
        let mut kept = Kept::new(trace_id, &span_id);
        // A file that stops reading midway still gives what was found before.
        let _ = proto_request(&mut input, &mut kept);
        let whole = kept.whole;
        return Some((
            FileDetails::read_otlp(&proto_document(kept.groups), false)?,
            whole,
        ));
    }
    let mut kept = Kept::new(trace_id, &span_id);
    let mut json = serde_json::Deserializer::from_reader(input);
    // One document, or one per line: each is read until the input ends or stops reading.
    while (Node {
        shape: Shape::Document(format),
        kept: &mut kept,
    })
    .deserialize(&mut json)
    .is_ok()
    {}
    let whole = kept.whole;
    let document = json_document(format, kept.groups);
    let details = if format == Format::OtlpJson {
        FileDetails::read_otlp(&document, true)
    } else {
        FileDetails::read(&document)
    };
    Some((details?, whole))
}

/// The bytes of file text a lookup keeps for one trace: past them, only the selected span is
/// kept. The details made of it take a few times as much.
const LOOKUP_BYTES: usize = 4 << 20;

/// The spans of the wanted trace found so far, with what they belong to.
struct Kept<'a, T> {
    trace_id: &'a TraceId,
    span_id: &'a SpanId,
    /// The bytes the kept spans, resources and scopes take in the file.
    bytes: usize,
    /// Whether every span of the trace is kept (rather than the wanted span's only).
    whole: bool,
    groups: Vec<Group<T>>,
    /// The owner of the groups being read, and the last one handed out.
    owner: usize,
    owners: usize,
}

/// Spans that share a resource and a scope (OTLP), or processes (Jaeger).
struct Group<T> {
    /// The `ResourceSpans` (Jaeger: the trace) it belongs to, which may give it its resource
    /// once that has been read.
    owner: usize,
    resource: Option<Arc<T>>,
    scope: Option<Arc<T>>,
    spans: Vec<(SpanId, T)>,
}

impl<T> Group<T> {
    fn new(owner: usize) -> Self {
        Self {
            owner,
            resource: None,
            scope: None,
            spans: Vec::new(),
        }
    }
}

impl<'a, T: AsRef<[u8]>> Kept<'a, T> {
    fn new(trace_id: &'a TraceId, span_id: &'a SpanId) -> Self {
        Self {
            trace_id,
            span_id,
            bytes: 0,
            whole: true,
            groups: Vec::new(),
            owner: 0,
            owners: 0,
        }
    }

    /// A new owner for the groups read from now on; returns it and the one it replaces.
    fn begin(&mut self) -> (usize, usize) {
        self.owners += 1;
        (self.owners, std::mem::replace(&mut self.owner, self.owners))
    }

    /// Keeps `span` in `group` (still being filled) if it belongs to the wanted trace; past the
    /// budget, only spans with the wanted id are kept.
    fn offer(&mut self, group: &mut Group<T>, trace_id: &TraceId, span_id: SpanId, span: T) {
        if trace_id != self.trace_id || (!self.whole && span_id != *self.span_id) {
            return;
        }
        self.bytes = self.bytes.saturating_add(span.as_ref().len());
        group.spans.push((span_id, span));
        self.check_budget(Some(group));
    }

    /// Keeps a group once it is complete, if it holds any span, counting its scope.
    fn close(&mut self, group: Group<T>) {
        if !group.spans.is_empty() {
            self.bytes = self.bytes.saturating_add(size(group.scope.as_deref()));
            self.groups.push(group);
            self.check_budget(None);
        }
    }

    /// Gives `resource` (which came after them, or before) to the kept groups of `owner`,
    /// counting it once.
    fn attach(&mut self, owner: usize, resource: Option<Arc<T>>) {
        let Some(resource) = resource else {
            return;
        };
        let mut used = false;
        for g in &mut self.groups {
            if g.owner == owner && g.resource.is_none() {
                g.resource = Some(Arc::clone(&resource));
                used = true;
            }
        }
        if used {
            self.bytes = self.bytes.saturating_add(resource.as_ref().as_ref().len());
            self.check_budget(None);
        }
    }

    /// Past the budget, lets go of every span but the wanted one's, and of the groups left
    /// empty with their resource and scope.
    fn check_budget(&mut self, current: Option<&mut Group<T>>) {
        if !self.whole || self.bytes <= LOOKUP_BYTES {
            return;
        }
        self.whole = false;
        let wanted = self.span_id;
        if let Some(group) = current {
            group.spans.retain(|(id, _)| id == wanted);
        }
        self.groups.retain_mut(|g| {
            g.spans.retain(|(id, _)| id == wanted);
            !g.spans.is_empty()
        });
        self.bytes = self
            .groups
            .iter()
            .map(|g| {
                let spans: usize = g.spans.iter().map(|(_, s)| s.as_ref().len()).sum();
                spans + size(g.scope.as_deref()) + size(g.resource.as_deref())
            })
            .sum();
    }
}

fn size<T: AsRef<[u8]>>(part: Option<&T>) -> usize {
    part.map_or(0, |p| p.as_ref().len())
}

// ---- JSON -----------------------------------------------------------------------------------

/// What a JSON value is expected to be, in the shapes the analysis's readers take.
#[derive(Clone, Copy)]
enum Shape {
    /// A whole document of the format.
    Document(Format),
    /// OTLP: one element of `resourceSpans`.
    ResourceSpans,
    /// OTLP: one element of `scopeSpans` (or the older `instrumentationLibrarySpans`).
    ScopeSpans,
    /// Jaeger: a document, one trace of its `data`, or a bare trace.
    JaegerTrace,
    /// Zipkin: a list of spans, or of traces that are lists of spans.
    ZipkinList,
}

struct Node<'k, 'a> {
    shape: Shape,
    kept: &'k mut Kept<'a, String>,
}

impl<'de> DeserializeSeed<'de> for Node<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a trace document")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Node { shape, kept } = self;
        let shape = match shape {
            Shape::Document(Format::OtlpJson) => Shape::Document(Format::OtlpJson),
            Shape::Document(Format::JaegerJson) | Shape::JaegerTrace => Shape::JaegerTrace,
            Shape::ResourceSpans => Shape::ResourceSpans,
            Shape::ScopeSpans => Shape::ScopeSpans,
            // A Zipkin file is a list; a single span object is taken as a list of one.
            Shape::Document(_) | Shape::ZipkinList => {
                let span = Value::Object(collect_map(&mut map)?);
                let mut group = Group::new(0);
                offer_zipkin(kept, &mut group, span);
                kept.close(group);
                return Ok(());
            }
        };
        // Scopes belong to their `ResourceSpans`; a resource or a Jaeger trace starts anew.
        let (owner, outer) = match shape {
            Shape::ScopeSpans => (kept.owner, kept.owner),
            _ => kept.begin(),
        };
        let mut group = Group::new(owner);
        let mut resource: Option<String> = None;
        while let Some(key) = map.next_key::<String>()? {
            match (shape, key.as_str()) {
                (Shape::Document(_), "resourceSpans" | "resource_spans") => {
                    map.next_value_seed(Each {
                        shape: Shape::ResourceSpans,
                        kept: &mut *kept,
                    })?;
                }
                (Shape::ResourceSpans, "resource") => {
                    resource = Some(map.next_value::<Value>()?.to_string());
                }
                (
                    Shape::ResourceSpans,
                    "scopeSpans"
                    | "scope_spans"
                    | "instrumentationLibrarySpans"
                    | "instrumentation_library_spans",
                ) => {
                    map.next_value_seed(Each {
                        shape: Shape::ScopeSpans,
                        kept: &mut *kept,
                    })?;
                }
                (
                    Shape::ScopeSpans,
                    "scope" | "instrumentationLibrary" | "instrumentation_library",
                ) => {
                    group.scope = Some(Arc::new(map.next_value::<Value>()?.to_string()));
                }
                (Shape::ScopeSpans, "spans") => {
                    map.next_value_seed(Spans {
                        group: &mut group,
                        kept: &mut *kept,
                    })?;
                }
                (Shape::JaegerTrace, "data") => {
                    map.next_value_seed(Each {
                        shape: Shape::JaegerTrace,
                        kept: &mut *kept,
                    })?;
                }
                (Shape::JaegerTrace, "spans") => {
                    map.next_value_seed(Spans {
                        group: &mut group,
                        kept: &mut *kept,
                    })?;
                }
                (Shape::JaegerTrace, "processes") => {
                    resource = Some(map.next_value::<Value>()?.to_string());
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        // The resource (Jaeger: the processes) may come after the spans it describes.
        kept.close(group);
        kept.attach(owner, resource.map(Arc::new));
        kept.owner = outer;
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Node { shape, kept } = self;
        match shape {
            Shape::Document(Format::ZipkinJson) | Shape::ZipkinList => {
                while seq
                    .next_element_seed(Node {
                        shape: Shape::ZipkinList,
                        kept: &mut *kept,
                    })?
                    .is_some()
                {}
            }
            _ => while seq.next_element::<IgnoredAny>()?.is_some() {},
        }
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
}

/// Each element of a list, as `shape`.
struct Each<'k, 'a> {
    shape: Shape,
    kept: &'k mut Kept<'a, String>,
}

impl<'de> DeserializeSeed<'de> for Each<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Each<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a list")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(Node {
                shape: self.shape,
                kept: &mut *self.kept,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// The ids of an OTLP or a Jaeger span, under the names the readers take.
#[derive(serde::Deserialize)]
struct SpanIds<'a> {
    #[serde(
        borrow,
        default,
        rename = "traceId",
        alias = "trace_id",
        alias = "traceID"
    )]
    trace_id: Option<std::borrow::Cow<'a, str>>,
    #[serde(
        borrow,
        default,
        rename = "spanId",
        alias = "span_id",
        alias = "spanID"
    )]
    span_id: Option<std::borrow::Cow<'a, str>>,
}

/// A list of OTLP or Jaeger spans, each offered to `kept`.
struct Spans<'k, 'g, 'a> {
    group: &'g mut Group<String>,
    kept: &'k mut Kept<'a, String>,
}

impl<'de> DeserializeSeed<'de> for Spans<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Spans<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a list of spans")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        // Each span's text as the file wrote it; only its ids are read from it.
        while let Some(span) = seq.next_element::<Box<serde_json::value::RawValue>>()? {
            let Ok(ids) = serde_json::from_str::<SpanIds<'_>>(span.get()) else {
                continue;
            };
            let (Some(trace_id), Some(span_id)) = (ids.trace_id, ids.span_id) else {
                continue;
            };
            let trace_id = TraceId::parse(&trace_id);
            if trace_id != *self.kept.trace_id {
                continue;
            }
            let span_id = SpanId::parse(&span_id);
            self.kept
                .offer(self.group, &trace_id, span_id, String::from(span.get()));
        }
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

fn collect_map<'de, A: MapAccess<'de>>(
    map: &mut A,
) -> Result<serde_json::Map<String, Value>, A::Error> {
    let mut object = serde_json::Map::new();
    while let Some((key, value)) = map.next_entry::<String, Value>()? {
        object.insert(key, value);
    }
    Ok(object)
}

/// Offers a Zipkin span: its ids compared as the Zipkin reader compares them, case aside.
fn offer_zipkin(kept: &mut Kept<'_, String>, group: &mut Group<String>, span: Value) {
    let id = |key: &str| Some(span.get(key)?.as_str()?.to_ascii_lowercase());
    let (Some(trace_id), Some(span_id)) = (id("traceId"), id("id")) else {
        return;
    };
    let trace_id = TraceId::parse(&trace_id);
    if trace_id != *kept.trace_id {
        return;
    }
    // Kept as text: a parsed span takes several times its size.
    kept.offer(group, &trace_id, SpanId::parse(&span_id), span.to_string());
}

/// The kept spans as a document of `format` that [`FileDetails`] reads.
fn json_document(format: Format, groups: Vec<Group<String>>) -> Vec<u8> {
    let mut out = String::new();
    let spans = |out: &mut String, group: &Group<String>| {
        out.push('[');
        for (k, (_, span)) in group.spans.iter().enumerate() {
            if k > 0 {
                out.push(',');
            }
            out.push_str(span);
        }
        out.push(']');
    };
    let field = |out: &mut String, key: &str, value: &Option<Arc<String>>| {
        if let Some(value) = value {
            out.push_str(key);
            out.push_str(value);
            out.push(',');
        }
    };
    match format {
        Format::ZipkinJson => {
            out.push('[');
            for (k, group) in groups.iter().filter(|g| !g.spans.is_empty()).enumerate() {
                if k > 0 {
                    out.push(',');
                }
                let list = out.len();
                spans(&mut out, group);
                // One list of spans: the brackets of each group's are left out.
                out.remove(list);
                out.pop();
            }
            out.push(']');
        }
        Format::JaegerJson => {
            out.push_str("{\"data\":[");
            for (k, group) in groups.iter().enumerate() {
                out.push_str(if k > 0 { ",{" } else { "{" });
                field(&mut out, "\"processes\":", &group.resource);
                out.push_str("\"spans\":");
                spans(&mut out, group);
                out.push('}');
            }
            out.push_str("]}");
        }
        _ => {
            // One `resourceSpans` element per owner, as the file had it: its scopes share the
            // resource, as they did there.
            out.push_str("{\"resourceSpans\":[");
            for (k, group) in groups.iter().enumerate() {
                let first = k == 0 || groups[k - 1].owner != group.owner;
                let last = groups
                    .get(k + 1)
                    .is_none_or(|next| next.owner != group.owner);
                if first {
                    out.push_str(if k > 0 { ",{" } else { "{" });
                    field(&mut out, "\"resource\":", &group.resource);
                    out.push_str("\"scopeSpans\":[{");
                } else {
                    out.push_str(",{");
                }
                field(&mut out, "\"scope\":", &group.scope);
                out.push_str("\"spans\":");
                spans(&mut out, group);
                out.push('}');
                if last {
                    out.push_str("]}");
                }
            }
            out.push_str("]}");
        }
    }
    out.into_bytes()
}

// ---- protobuf -------------------------------------------------------------------------------

/// Field numbers of the OTLP messages walked here.
const RESOURCE_SPANS: u32 = 1;
const RESOURCE: u32 = 1;
const SCOPE_SPANS: u32 = 2;
const SCOPE: u32 = 1;
const SPANS: u32 = 2;
const TRACE_ID: u32 = 1;
const SPAN_ID: u32 = 2;

/// Walks an `ExportTraceServiceRequest` (or `TracesData`) as a stream, keeping the wanted spans.
fn proto_request(input: &mut impl BufRead, kept: &mut Kept<'_, Vec<u8>>) -> io::Result<()> {
    while let Some((tag, wire_type)) = key(input)? {
        if tag == RESOURCE_SPANS && wire_type == WireType::LengthDelimited {
            let len = varint(input)?;
            resource_spans(&mut input.take(len), kept)?;
        } else {
            skip(input, wire_type)?;
        }
    }
    Ok(())
}

fn resource_spans(input: &mut impl BufRead, kept: &mut Kept<'_, Vec<u8>>) -> io::Result<()> {
    let (owner, _) = kept.begin();
    let mut resource = None;
    while let Some((tag, wire_type)) = key(input)? {
        match (tag, wire_type) {
            (RESOURCE, WireType::LengthDelimited) => resource = Some(bytes(input)?),
            (
                SCOPE_SPANS | lightstep_wire::schema::INSTRUMENTATION_LIBRARY_SPANS,
                WireType::LengthDelimited,
            ) => {
                let len = varint(input)?;
                let group = scope_spans(&mut input.take(len), kept, owner)?;
                kept.close(group);
            }
            _ => skip(input, wire_type)?,
        }
    }
    kept.attach(owner, resource.map(Arc::new));
    Ok(())
}

fn scope_spans(
    input: &mut impl BufRead,
    kept: &mut Kept<'_, Vec<u8>>,
    owner: usize,
) -> io::Result<Group<Vec<u8>>> {
    let mut group = Group::new(owner);
    while let Some((tag, wire_type)) = key(input)? {
        match (tag, wire_type) {
            (SCOPE, WireType::LengthDelimited) => group.scope = Some(Arc::new(bytes(input)?)),
            (SPANS, WireType::LengthDelimited) => {
                let span = bytes(input)?;
                if let Some((trace_id, span_id)) = span_ids(&span) {
                    kept.offer(&mut group, &trace_id, span_id, span);
                }
            }
            _ => skip(input, wire_type)?,
        }
    }
    Ok(group)
}

/// A span's trace and span id, from its encoding.
fn span_ids(span: &[u8]) -> Option<(TraceId, SpanId)> {
    let mut reader = Reader::new(span);
    let (mut trace_id, mut span_id) = (None, None);
    while let Some((tag, wire_type)) = reader.next_key().ok()? {
        match (tag, wire_type) {
            (TRACE_ID, WireType::LengthDelimited) => {
                trace_id = Some(TraceId::from_bytes(reader.len_delimited().ok()?));
            }
            (SPAN_ID, WireType::LengthDelimited) => {
                span_id = Some(SpanId::from_bytes(reader.len_delimited().ok()?));
            }
            _ => reader
                .skip(wire_type, tag, lightstep_wire::RECURSION_LIMIT)
                .ok()?,
        }
    }
    Some((trace_id?, span_id?))
}

/// The kept spans as an `ExportTraceServiceRequest`, one resource and scope per group.
fn proto_document(groups: Vec<Group<Vec<u8>>>) -> Vec<u8> {
    let mut out = Vec::new();
    let field = |out: &mut Vec<u8>, tag: u32, bytes: &[u8]| {
        put_key(out, tag, WireType::LengthDelimited);
        lightstep_wire::encode::put_varint(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    };
    // One `ResourceSpans` per owner, as the file had it.
    let mut at = 0;
    while at < groups.len() {
        let owner = groups[at].owner;
        let end = at + groups[at..].iter().take_while(|g| g.owner == owner).count();
        put_key(&mut out, RESOURCE_SPANS, WireType::LengthDelimited);
        let resource_spans = begin_len(&mut out, 0);
        if let Some(resource) = &groups[at].resource {
            field(&mut out, RESOURCE, resource);
        }
        for group in &groups[at..end] {
            put_key(&mut out, SCOPE_SPANS, WireType::LengthDelimited);
            let scope_spans = begin_len(&mut out, 0);
            if let Some(scope) = &group.scope {
                field(&mut out, SCOPE, scope);
            }
            for (_, span) in &group.spans {
                field(&mut out, SPANS, span);
            }
            end_len(&mut out, scope_spans, 0);
        }
        end_len(&mut out, resource_spans, 0);
        at = end;
    }
    out
}

/// The next field's key, `None` at the end of the input.
fn key(input: &mut impl BufRead) -> io::Result<Option<(u32, WireType)>> {
    if input.fill_buf()?.is_empty() {
        return Ok(None);
    }
    let key = varint(input)?;
    lightstep_wire::split_key(key)
        .map(Some)
        .map_err(io::Error::other)
}

fn varint(input: &mut impl BufRead) -> io::Result<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let mut byte = [0u8];
        input.read_exact(&mut byte)?;
        value |= u64::from(byte[0] & 0x7f) << shift;
        if byte[0] < 0x80 {
            return Ok(value);
        }
    }
    Err(io::Error::other("a varint longer than ten bytes"))
}

/// A length-delimited field's contents, read whole (its length is the file's word: what is
/// set aside for it grows with what is actually read).
fn bytes(input: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let len = varint(input)?;
    let mut out = Vec::with_capacity(len.min(1 << 16) as usize);
    input.take(len).read_to_end(&mut out)?;
    if out.len() as u64 != len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(out)
}

fn skip(input: &mut impl BufRead, wire_type: WireType) -> io::Result<()> {
    let len = match wire_type {
        WireType::Varint => return varint(input).map(drop),
        WireType::SixtyFourBit => 8,
        WireType::ThirtyTwoBit => 4,
        WireType::LengthDelimited => varint(input)?,
        // Groups are long gone from OTLP: a file that has one is not walked further.
        WireType::StartGroup | WireType::EndGroup => {
            return Err(io::Error::other("a group field"));
        }
    };
    let skipped = io::copy(&mut input.take(len), &mut io::sink())?;
    if skipped != len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the readers get is the input, whole, whether the copy works or is given up; a
    /// copy that fails is no longer whole and holds nothing.
    #[test]
    fn spooling_reads_the_input_whatever_the_copy_does() {
        let input: Vec<u8> = (0..200_000u32).flat_map(u32::to_le_bytes).collect();
        let (spool, writer) = Spool::create().unwrap();
        let mut copying = Spooling::new(&input[..], Some(writer));
        let mut read = Vec::new();
        copying.read_to_end(&mut read).unwrap();
        assert_eq!(read, input);
        assert!(copying.is_whole());
        let mut copy = Vec::new();
        let file = spool.file.lock().unwrap();
        let mut handle = &*file;
        io::Seek::seek(&mut handle, io::SeekFrom::Start(0)).unwrap();
        handle.read_to_end(&mut copy).unwrap();
        assert_eq!(copy, input);

        // A copy that cannot be written (a handle opened for reading only) is given up.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("read-only");
        std::fs::write(&path, b"").unwrap();
        let mut failing = Spooling::new(&input[..], Some(File::open(&path).unwrap()));
        let mut read = Vec::new();
        failing.read_to_end(&mut read).unwrap();
        assert_eq!(read, input);
        assert!(!failing.is_whole());
    }
}
