//! Parent resolution: every span's parent id to the position of the span that owns that id.
//!
//! A hash table of a million ids is larger than any cache, so building it and probing it costs
//! two cache misses per span. Instead the ids and the parent references are first split by
//! the top bits of their hash into partitions of a few hundred, and each partition is then
//! joined in a small table that stays in the cache. The split is a counting sort: the caller
//! counts each partition's ids in its own pass over the spans, then one pass puts every id in
//! its place, straight from the spans (no list of ids in between); both passes run in two
//! halves on two threads for a large trace. Within a partition the input order is kept, so
//! "the first occurrence owns an id" holds exactly as with one global table.
//!
//! The hash is seeded per call: ids come from untrusted files and from the network, and a
//! fixed hash would let crafted ids pile into one partition and one probe sequence.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::BuildHasher;

use crate::Diagnostics;
use crate::assemble::NONE;
use crate::model::Span;
use crate::parallel::SPLIT_SPANS;

/// Spans per partition the split aims for: a table of twice that many 16-byte slots is 8 KiB.
const PER_PARTITION: usize = 256;
/// At most 2^12 partitions: 4,096 output streams still fit the write-combining the CPU does.
const MAX_BITS: u32 = 12;

/// An id (or a parent reference) and the span it belongs to.
type Pair = (u64, u32);

/// How a trace's ids are split into partitions: by the top bits of a hash seeded for it.
#[derive(Clone, Debug)]
pub(crate) struct Partitions {
    hasher: foldhash::fast::RandomState,
    bits: u32,
}

impl Partitions {
    /// For the ids of a trace of `spans` spans.
    pub(crate) fn for_spans(spans: usize) -> Self {
        Self {
            hasher: foldhash::fast::RandomState::default(),
            bits: partition_bits(spans),
        }
    }

    fn hash(&self, key: u64) -> u64 {
        self.hasher.hash_one(key)
    }

    fn of(&self, key: u64) -> usize {
        partition_of(self.hash(key), self.bits)
    }
}

/// How many ids and parent references of some of a trace's spans fall in each partition,
/// counted while the caller makes its own pass over the spans (they are large: one pass fewer
/// is a tenth of the assembly); text ids are kept whole.
pub(crate) struct ParentIds<'a> {
    partitions: Partitions,
    /// Spans counted: the first part counts the first spans of the trace, the second the rest.
    spans: usize,
    id_counts: Vec<u32>,
    ref_counts: Vec<u32>,
    /// Text ids (rare: Jaeger test data, hand-written traces) keep a map of their own.
    text_ids: Vec<(&'a str, u32)>,
    text_refs: Vec<(&'a str, u32)>,
}

impl<'a> ParentIds<'a> {
    pub(crate) fn new(partitions: &Partitions) -> Self {
        let count = 1usize << partitions.bits;
        Self {
            partitions: partitions.clone(),
            spans: 0,
            id_counts: vec![0; count],
            ref_counts: vec![0; count],
            text_ids: Vec::new(),
            text_refs: Vec::new(),
        }
    }

    /// The counts of `spans`, which start at position `first`.
    fn counted(partitions: &Partitions, first: usize, spans: &'a [Span]) -> Self {
        let mut ids = Self::new(partitions);
        for (k, span) in spans.iter().enumerate() {
            ids.push((first + k) as u32, span);
        }
        ids
    }

    /// Counts span `i`, which takes part in the assembly.
    pub(crate) fn push(&mut self, i: u32, span: &'a Span) {
        self.spans += 1;
        match span.span_id().key() {
            Ok(key) => self.id_counts[self.partitions.of(key)] += 1,
            Err(text) => self.text_ids.push((text, i)),
        }
        match span.parent_id().map(crate::SpanId::key) {
            Some(Ok(key)) => self.ref_counts[self.partitions.of(key)] += 1,
            Some(Err(text)) => self.text_refs.push((text, i)),
            None => {}
        }
    }

    /// Resolves parents from the ids counted in two parts, the spans before a position and
    /// those from it on, each counted in order and with the same [`Partitions`]: together the
    /// parts have counted exactly `spans`. `included` says which spans take part; exact
    /// duplicates (robust mode) and self-parents (Jaeger mode) are excluded here, as the
    /// assembly rules say.
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
    let partitions = Partitions::for_spans(spans.len());
    let half = spans.len() / 2;
    let (low, high) = crate::parallel::join(
        spans.len() >= SPLIT_SPANS,
        || ParentIds::counted(&partitions, 0, &spans[..half]),
        || ParentIds::counted(&partitions, half, &spans[half..]),
    );
    let mut included = vec![true; spans.len()];
    // Jaeger mode's rules are the declared links: a duplicate id is only counted (never
    // dropped) and a self-parent is left without a parent.
    let parent = resolve_parents(
        [low, high],
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
    let partitions = &low.partitions;
    let hash = |key: u64| partitions.hash(key);

    debug_assert_eq!(low.spans + high.spans, n, "the parts counted other spans");
    let id_offsets = offsets(&low.id_counts, &high.id_counts);
    let ref_offsets = offsets(&low.ref_counts, &high.ref_counts);
    let (ids, refs) = scatter(spans, [&low, &high], &id_offsets, &ref_offsets);
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

/// Where each partition starts, of the ids counted in two parts, and where the last ends.
fn offsets(low: &[u32], high: &[u32]) -> Vec<u32> {
    let mut offsets = Vec::with_capacity(low.len() + 1);
    let mut at = 0;
    offsets.push(at);
    for (l, h) in low.iter().zip(high) {
        at += l + h;
        offsets.push(at);
    }
    offsets
}

/// The second half of a counting sort by partition: each span's id and parent reference put
/// in its partition, at the offsets the counts of the two parts gave (counted over the same
/// spans with the same partitions), each part on a thread of its own for a large trace. In
/// input order within a partition: stable.
fn scatter(
    spans: &[Span],
    [low, high]: [&ParentIds<'_>; 2],
    id_offsets: &[u32],
    ref_offsets: &[u32],
) -> (Vec<Pair>, Vec<Pair>) {
    let total = |offsets: &[u32]| offsets.last().copied().unwrap_or(0) as usize;
    let mut ids = vec![(0u64, 0u32); total(id_offsets)];
    let mut refs = vec![(0u64, 0u32); total(ref_offsets)];
    let (ids_low, ids_high) = places(&mut ids, &low.id_counts, &high.id_counts);
    let (refs_low, refs_high) = places(&mut refs, &low.ref_counts, &high.ref_counts);
    let half = low.spans.min(spans.len());
    let partitions = &low.partitions;
    crate::parallel::join(
        spans.len() >= SPLIT_SPANS,
        || fill(&spans[..half], 0, partitions, ids_low, refs_low),
        || fill(&spans[half..], half, partitions, ids_high, refs_high),
    );
    (ids, refs)
}

/// Each partition's places for the pairs of the first part, and for those of the second.
fn places<'p>(
    mut pairs: &'p mut [Pair],
    low: &[u32],
    high: &[u32],
) -> (Vec<&'p mut [Pair]>, Vec<&'p mut [Pair]>) {
    let (mut first, mut second) = (
        Vec::with_capacity(low.len()),
        Vec::with_capacity(high.len()),
    );
    for (&l, &h) in low.iter().zip(high) {
        let (mine, rest) = pairs.split_at_mut(l as usize);
        let (theirs, rest) = rest.split_at_mut(h as usize);
        first.push(mine);
        second.push(theirs);
        pairs = rest;
    }
    (first, second)
}

/// Puts the ids and parent references of `spans`, which start at position `first`, in their
/// partitions' places, in order.
fn fill(
    spans: &[Span],
    first: usize,
    partitions: &Partitions,
    mut ids: Vec<&mut [Pair]>,
    mut refs: Vec<&mut [Pair]>,
) {
    let mut id_at = vec![0usize; ids.len()];
    let mut ref_at = vec![0usize; refs.len()];
    for (k, span) in spans.iter().enumerate() {
        let i = (first + k) as u32;
        if let Ok(key) = span.span_id().key() {
            let p = partitions.of(key);
            ids[p][id_at[p]] = (key, i);
            id_at[p] += 1;
        }
        if let Some(Ok(key)) = span.parent_id().map(crate::SpanId::key) {
            let p = partitions.of(key);
            refs[p][ref_at[p]] = (key, i);
            ref_at[p] += 1;
        }
    }
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
        let partitions = Partitions::for_spans(spans.len());
        let mut parts = [ParentIds::new(&partitions), ParentIds::new(&partitions)];
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
