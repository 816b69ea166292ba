//! Parent resolution: every span's parent id to the position of the span that owns that id.
//!
//! A hash table of a million ids is larger than any cache, so building it and probing it costs
//! two cache misses per span. Instead the ids and the parent references are first split by
//! the top bits of their hash into partitions of a few hundred (two sequential passes each),
//! and each partition is then joined in a small table that stays in the cache. Within a
//! partition the input order is kept, so "the first occurrence owns an id" holds exactly as
//! with one global table.
//!
//! The hash is seeded per call: ids come from untrusted files and from the network, and a
//! fixed hash would let crafted ids pile into one partition and one probe sequence.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::BuildHasher;

use crate::Diagnostics;
use crate::assemble::NONE;
use crate::model::Span;

/// Spans per partition the split aims for: a table of twice that many 16-byte slots is 8 KiB.
const PER_PARTITION: usize = 256;
/// At most 2^12 partitions: 4,096 output streams still fit the write-combining the CPU does.
const MAX_BITS: u32 = 12;

/// An id (or a parent reference) and the span it belongs to.
type Pair = (u64, u32);

/// The ids and parent references of a trace's spans, gathered while the caller makes its own
/// pass over the spans (they are large: one pass fewer is a tenth of the assembly).
pub(crate) struct ParentIds<'a> {
    ids: Vec<Pair>,
    refs: Vec<Pair>,
    /// Text ids (rare: Jaeger test data, hand-written traces) keep a map of their own.
    text_ids: Vec<(&'a str, u32)>,
    text_refs: Vec<(&'a str, u32)>,
}

impl<'a> ParentIds<'a> {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            ids: Vec::with_capacity(n),
            refs: Vec::with_capacity(n),
            text_ids: Vec::new(),
            text_refs: Vec::new(),
        }
    }

    /// Records span `i`, which takes part in the assembly.
    pub(crate) fn push(&mut self, i: u32, span: &'a Span) {
        match span.span_id().key() {
            Ok(key) => self.ids.push((key, i)),
            Err(text) => self.text_ids.push((text, i)),
        }
        match span.parent_id().map(crate::SpanId::key) {
            Some(Ok(key)) => self.refs.push((key, i)),
            Some(Err(text)) => self.text_refs.push((text, i)),
            None => {}
        }
    }

    /// Resolves parents from the ids gathered in two parts, the spans before a position and
    /// those from it on. `included` says which spans take part; exact duplicates (robust
    /// mode) and self-parents (Jaeger mode) are excluded here, as the assembly rules say.
    /// Returns each span's parent position, `NONE` for roots, orphans and excluded spans.
    pub(crate) fn resolve(
        parts: [Self; 2],
        spans: &[Span],
        included: &mut [bool],
        jaeger: bool,
        diagnostics: &mut Diagnostics,
    ) -> Vec<u32> {
        resolve_parents(parts, spans, included, jaeger, diagnostics)
    }
}

/// Each span's parent as the spans declare it: the position in `spans` of the first span that
/// holds the parent id, `None` for a span without a parent id, one whose parent is missing, and
/// one that names itself.
///
/// Unlike the assembly, which repairs a trace for its critical path, this keeps every span and
/// every link (a later span that reuses an id keeps its own parent; cycles are left to the
/// caller): it is the tree a viewer shows as the trace was sent. It costs the same partitioned
/// join as the assembly, not a hash table of a million ids.
pub fn declared_parents(spans: &[Span]) -> Vec<Option<u32>> {
    let spans = &spans[..spans.len().min(NONE as usize - 1)];
    let mut ids = ParentIds::with_capacity(spans.len());
    for (i, span) in spans.iter().enumerate() {
        ids.push(i as u32, span);
    }
    let mut included = vec![true; spans.len()];
    // Jaeger mode's rules are the declared links: a duplicate id is only counted (never
    // dropped) and a self-parent is left without a parent.
    let parts = [ids, ParentIds::with_capacity(0)];
    let parent = resolve_parents(
        parts,
        spans,
        &mut included,
        true,
        &mut Diagnostics::default(),
    );
    parent
        .into_iter()
        .map(|p| (p != NONE).then_some(p))
        .collect()
}

fn resolve_parents(
    [low, high]: [ParentIds<'_>; 2],
    spans: &[Span],
    included: &mut [bool],
    jaeger: bool,
    diagnostics: &mut Diagnostics,
) -> Vec<u32> {
    let n = spans.len();
    let hasher = foldhash::fast::RandomState::default();
    let hash = |key: u64| hasher.hash_one(key);

    // One after the other, each list freed once split: splitting both at once on two threads
    // was no faster beyond the noise of side-by-side runs on a million spans, and held 16 MB
    // more at the peak of a run.
    let bits = partition_bits(low.ids.len() + high.ids.len());
    let (id_offsets, ids) = split([&low.ids, &high.ids], bits, &hash);
    drop((low.ids, high.ids));
    let (ref_offsets, refs) = split([&low.refs, &high.refs], bits, &hash);
    drop((low.refs, high.refs));
    let text_ids: Vec<_> = low.text_ids.into_iter().chain(high.text_ids).collect();
    let text_refs: Vec<_> = low.text_refs.into_iter().chain(high.text_refs).collect();
    let largest = id_offsets
        .windows(2)
        .map(|w| (w[1] - w[0]) as usize)
        .max()
        .unwrap_or(0);
    let mut table = Table::with_room_for(largest);

    // Ownership first, everywhere: a duplicate dropped here must not be resolved below even
    // when its reference lies in a partition handled earlier.
    for part in id_offsets.windows(2) {
        let part = &ids[part[0] as usize..part[1] as usize];
        table.clear(part.len());
        for &(key, i) in part {
            if let Some(first) = table.insert_first(key, i, hash(key)) {
                duplicate(spans, included, jaeger, diagnostics, first, i);
            }
        }
    }
    let mut text_owner: HashMap<&str, u32, foldhash::fast::RandomState> = HashMap::default();
    for &(text, i) in &text_ids {
        match text_owner.entry(text) {
            Entry::Vacant(slot) => {
                slot.insert(i);
            }
            Entry::Occupied(slot) => {
                duplicate(spans, included, jaeger, diagnostics, *slot.get(), i);
            }
        }
    }

    let mut parent = vec![NONE; n];
    let mut link = |owner: Option<u32>, i: u32| {
        if !included[i as usize] {
            return;
        }
        match owner {
            Some(p) if p == i => {
                diagnostics.self_parents += 1;
                if jaeger {
                    // Jaeger UI hangs such a span under itself, where no walk from a root
                    // ever reaches it (nor anything below it).
                    included[i as usize] = false;
                    diagnostics.dropped += 1;
                }
            }
            Some(p) => parent[i as usize] = p,
            None => {
                diagnostics.orphans += 1;
                if spans[i as usize].has_remote_parent() {
                    diagnostics.remote_parents += 1;
                }
            }
        }
    };
    for (id_part, ref_part) in id_offsets.windows(2).zip(ref_offsets.windows(2)) {
        let id_part = &ids[id_part[0] as usize..id_part[1] as usize];
        let ref_part = &refs[ref_part[0] as usize..ref_part[1] as usize];
        if ref_part.is_empty() {
            continue;
        }
        table.clear(id_part.len());
        for &(key, i) in id_part {
            table.insert_first(key, i, hash(key));
        }
        for &(key, i) in ref_part {
            link(table.get(key, hash(key)), i);
        }
    }
    for &(text, i) in &text_refs {
        link(text_owner.get(text).copied(), i);
    }
    parent
}

/// A later span with an id already taken: an exact copy is a retransmission (robust mode drops
/// it), anything else a distinct span that happens to share the id.
fn duplicate(
    spans: &[Span],
    included: &mut [bool],
    jaeger: bool,
    diagnostics: &mut Diagnostics,
    first: u32,
    later: u32,
) {
    if !jaeger && is_same_span(&spans[first as usize], &spans[later as usize]) {
        included[later as usize] = false;
        diagnostics.duplicates_dropped += 1;
    } else {
        diagnostics.duplicate_ids += 1;
    }
}

fn is_same_span(a: &Span, b: &Span) -> bool {
    a.start_ns() == b.start_ns()
        && a.end_ns() == b.end_ns()
        && a.parent_id() == b.parent_id()
        && a.name() == b.name()
        && a.service() == b.service()
        && a.kind() == b.kind()
}

fn partition_bits(len: usize) -> u32 {
    let parts = (len / PER_PARTITION).max(1);
    parts.ilog2().min(MAX_BITS)
}

fn partition_of(hash: u64, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        (hash >> (64 - bits)) as usize
    }
}

/// Counting sort by partition of the pairs of both parts, in order: stable, so each partition
/// keeps the input order.
fn split(parts: [&[Pair]; 2], bits: u32, hash: &impl Fn(u64) -> u64) -> (Vec<u32>, Vec<Pair>) {
    let len = parts[0].len() + parts[1].len();
    if bits == 0 {
        return (vec![0, len as u32], parts.concat());
    }
    let pairs = || parts.into_iter().flatten();
    let count = 1usize << bits;
    let mut offsets = vec![0u32; count + 1];
    for &(key, _) in pairs() {
        offsets[partition_of(hash(key), bits) + 1] += 1;
    }
    for p in 1..offsets.len() {
        offsets[p] += offsets[p - 1];
    }
    let mut fill = offsets.clone();
    let mut out = vec![(0u64, 0u32); len];
    for &(key, i) in pairs() {
        let slot = &mut fill[partition_of(hash(key), bits)];
        out[*slot as usize] = (key, i);
        *slot += 1;
    }
    (offsets, out)
}

/// Open addressing with linear probing, at most half full.
struct Table {
    slots: Vec<Pair>,
    mask: usize,
}

impl Table {
    fn with_room_for(len: usize) -> Self {
        let size = (2 * len).max(2).next_power_of_two();
        Self {
            slots: vec![(0, NONE); size],
            mask: size - 1,
        }
    }

    /// Empties the table and sizes it for `len` keys (never above its first size).
    fn clear(&mut self, len: usize) {
        let size = (2 * len).max(2).next_power_of_two().min(self.slots.len());
        self.mask = size - 1;
        self.slots[..size].fill((0, NONE));
    }

    /// Records `index` for `key` unless the key is taken; returns the earlier owner if it is.
    fn insert_first(&mut self, key: u64, index: u32, hash: u64) -> Option<u32> {
        let mut at = hash as usize & self.mask;
        loop {
            let (k, owner) = self.slots[at];
            if owner == NONE {
                self.slots[at] = (key, index);
                return None;
            }
            if k == key {
                return Some(owner);
            }
            at = (at + 1) & self.mask;
        }
    }

    fn get(&self, key: u64, hash: u64) -> Option<u32> {
        let mut at = hash as usize & self.mask;
        loop {
            let (k, owner) = self.slots[at];
            if owner == NONE {
                return None;
            }
            if k == key {
                return Some(owner);
            }
            at = (at + 1) & self.mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SpanId, TraceId};

    fn resolve(
        spans: &[Span],
        included: &mut [bool],
        jaeger: bool,
        diagnostics: &mut Diagnostics,
    ) -> Vec<u32> {
        // In two parts, as the assembly gathers them: an id owned in the first part and
        // referenced or repeated in the second must resolve as with one part.
        let mut parts = [
            ParentIds::with_capacity(spans.len()),
            ParentIds::with_capacity(spans.len()),
        ];
        for (i, span) in spans.iter().enumerate() {
            parts[usize::from(i >= spans.len() / 2)].push(i as u32, span);
        }
        ParentIds::resolve(parts, spans, included, jaeger, diagnostics)
    }

    fn span(id: u64, parent: Option<u64>, start: u64) -> Span {
        let span = Span::new(
            TraceId::from_u128(1),
            SpanId::from_u64(id),
            start,
            start + 1,
        );
        match parent {
            Some(p) => span.with_parent(SpanId::from_u64(p)),
            None => span,
        }
    }

    #[test]
    fn the_first_occurrence_owns_an_id_across_many_partitions() {
        // Enough spans for thousands of partitions; id 7 appears twice (different spans).
        let n = 300_000u64;
        let mut spans: Vec<Span> = (0..n)
            .map(|i| span(i + 1, (i > 0).then_some(i), i))
            .collect();
        spans.push(span(7, Some(1), 5_000_000));
        spans.push(span(n + 1, Some(7), 6_000_000));
        let mut included = vec![true; spans.len()];
        let mut diagnostics = Diagnostics::default();
        let parent = resolve(&spans, &mut included, false, &mut diagnostics);
        assert!(partition_bits(spans.len()) > 8);
        assert_eq!(diagnostics.duplicate_ids, 1);
        assert_eq!(diagnostics.orphans, 0);
        for (i, &p) in parent.iter().enumerate().take(n as usize).skip(1) {
            assert_eq!(p, i as u32 - 1);
        }
        assert_eq!(parent[0], NONE);
        // The late span naming 7 as parent hangs under the first span with id 7 (position 6).
        assert_eq!(parent[spans.len() - 1], 6);
    }

    #[test]
    fn exact_copies_are_dropped_before_anything_resolves_under_them() {
        let spans = vec![
            span(1, None, 0),
            span(2, Some(1), 1),
            span(2, Some(1), 1),
            span(3, Some(9), 2),
        ];
        let mut included = vec![true; spans.len()];
        let mut diagnostics = Diagnostics::default();
        let parent = resolve(&spans, &mut included, false, &mut diagnostics);
        assert_eq!(included, [true, true, false, true]);
        assert_eq!(parent, [NONE, 0, NONE, NONE]);
        assert_eq!(diagnostics.duplicates_dropped, 1);
        assert_eq!(diagnostics.orphans, 1);
    }

    #[test]
    fn text_and_numeric_ids_resolve_side_by_side() {
        let t = TraceId::from_u128(1);
        let spans = vec![
            Span::new(t.clone(), SpanId::parse("root"), 0, 10),
            Span::new(t.clone(), SpanId::from_u64(5), 1, 2).with_parent(SpanId::parse("root")),
            Span::new(t.clone(), SpanId::parse("leaf"), 1, 2).with_parent(SpanId::from_u64(5)),
            Span::new(t, SpanId::parse("self"), 1, 2).with_parent(SpanId::parse("self")),
        ];
        let mut included = vec![true; spans.len()];
        let mut diagnostics = Diagnostics::default();
        let parent = resolve(&spans, &mut included, true, &mut diagnostics);
        assert_eq!(parent, [NONE, 0, 1, NONE]);
        assert_eq!(diagnostics.self_parents, 1);
        assert_eq!(included, [true, true, true, false]);
    }

    /// The obvious implementation: one map, input order.
    fn naive(spans: &[Span], jaeger: bool) -> (Vec<u32>, Vec<bool>, Diagnostics) {
        let mut included = vec![true; spans.len()];
        let mut diagnostics = Diagnostics::default();
        let mut owner: HashMap<SpanId, u32> = HashMap::new();
        for (i, span) in spans.iter().enumerate() {
            match owner.entry(span.span_id().clone()) {
                Entry::Vacant(slot) => {
                    slot.insert(i as u32);
                }
                Entry::Occupied(slot) => {
                    let first = *slot.get();
                    duplicate(
                        spans,
                        &mut included,
                        jaeger,
                        &mut diagnostics,
                        first,
                        i as u32,
                    );
                }
            }
        }
        let mut parent = vec![NONE; spans.len()];
        for (i, span) in spans.iter().enumerate() {
            let Some(pid) = span.parent_id() else {
                continue;
            };
            if !included[i] {
                continue;
            }
            match owner.get(pid) {
                Some(&p) if p as usize == i => {
                    diagnostics.self_parents += 1;
                    if jaeger {
                        included[i] = false;
                        diagnostics.dropped += 1;
                    }
                }
                Some(&p) => parent[i] = p,
                None => diagnostics.orphans += 1,
            }
        }
        (parent, included, diagnostics)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        /// Enough spans for several partitions, ids from a small range so that duplicates,
        /// exact copies, self-parents and orphans all occur; some ids are text.
        #[test]
        fn partitioned_resolution_equals_one_map(
            raw in proptest::collection::vec(
                (0u64..1_500, proptest::option::of(0u64..1_700), 0u64..3),
                1_100..2_500,
            ),
            jaeger in proptest::bool::ANY,
        ) {
            let t = TraceId::from_u128(1);
            let id = |v: u64| {
                if v.is_multiple_of(97) {
                    SpanId::parse(&format!("t{v}"))
                } else {
                    SpanId::from_u64(v + 1)
                }
            };
            let spans: Vec<Span> = raw
                .iter()
                .map(|&(i, p, start)| {
                    let span = Span::new(t.clone(), id(i), start, start + 1);
                    match p {
                        Some(p) => span.with_parent(id(p)),
                        None => span,
                    }
                })
                .collect();
            proptest::prop_assert!(partition_bits(spans.len()) >= 2);
            let (want_parent, want_included, want_diagnostics) = naive(&spans, jaeger);
            let mut included = vec![true; spans.len()];
            let mut diagnostics = Diagnostics::default();
            let parent = resolve(&spans, &mut included, jaeger, &mut diagnostics);
            proptest::prop_assert_eq!(parent, want_parent);
            proptest::prop_assert_eq!(included, want_included);
            proptest::prop_assert_eq!(diagnostics, want_diagnostics);
            // The declared tree keeps every span and link: the first span of an id owns it,
            // a self-parent or a missing parent is none.
            let mut first: HashMap<&SpanId, u32> = HashMap::new();
            for (i, span) in spans.iter().enumerate() {
                first.entry(span.span_id()).or_insert(i as u32);
            }
            let want_declared: Vec<Option<u32>> = spans
                .iter()
                .enumerate()
                .map(|(i, span)| {
                    span.parent_id()
                        .and_then(|p| first.get(p).copied())
                        .filter(|&p| p as usize != i)
                })
                .collect();
            proptest::prop_assert_eq!(declared_parents(&spans), want_declared);
        }
    }
}
