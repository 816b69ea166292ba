//! A slow, obviously-correct model of the robust walk, and the invariants every result keeps.
//!
//! The oracle rescans every span at every step to find the children of the current span (no
//! sorting, no cursors, no compressed rows), so it is quadratic and only fit for small traces.

use lightstep_analysis::{AssembledTrace, CriticalPathAnalysis};

/// Owner (`None` for a gap), start, end; chronological.
pub(crate) type Piece = (Option<usize>, u64, u64);

fn blocking_parent(a: &AssembledTrace, off: &[bool], i: usize) -> Option<Option<usize>> {
    // Some(None): top-level; Some(Some(p)): child of p; None: excluded, or off the path.
    a.window(i)?;
    if off[i] {
        return None;
    }
    Some(a.parent(i))
}

/// The robust critical path, straight from its definition: the virtual root's window spans
/// the top-level spans that are not off the path.
pub(crate) fn robust(a: &AssembledTrace) -> Vec<Piece> {
    let n = a.len();
    let windows: Vec<Option<(u64, u64)>> = (0..n).map(|i| a.window(i)).collect();
    let mut off = vec![false; n];
    for (i, _) in a.off_path() {
        off[i] = true;
    }
    let tops: Vec<usize> = (0..n)
        .filter(|&i| blocking_parent(a, &off, i) == Some(None))
        .collect();
    if tops.is_empty() {
        return Vec::new();
    }
    let start = tops.iter().map(|&i| windows[i].unwrap().0).min().unwrap();
    let end = tops.iter().map(|&i| windows[i].unwrap().1).max().unwrap();

    let mut used = vec![false; n];
    let mut pieces = Vec::new();
    // (owner, time): owner None is the virtual root.
    let mut stack: Vec<(Option<usize>, u64)> = vec![(None, end)];
    while let Some(&(owner, time)) = stack.last() {
        let candidates = (0..n).filter(|&c| {
            !used[c] && blocking_parent(a, &off, c) == Some(owner) && {
                let (s, e) = windows[c].unwrap();
                e <= time || (owner.is_none() && s < time)
            }
        });
        // Latest end first, then earliest start, then input order.
        let best = candidates.min_by_key(|&c| {
            let (s, e) = windows[c].unwrap();
            (std::cmp::Reverse(e), s, c)
        });
        match best {
            Some(c) => {
                used[c] = true;
                let child_end = windows[c].unwrap().1.min(time);
                if child_end < time {
                    pieces.push((owner, child_end, time));
                }
                stack.push((Some(c), child_end));
            }
            None => {
                let own_start = owner.map_or(start, |o| windows[o].unwrap().0);
                if own_start < time {
                    pieces.push((owner, own_start, time));
                }
                stack.pop();
                if let Some(last) = stack.last_mut() {
                    last.1 = own_start;
                }
            }
        }
    }
    pieces.reverse();
    pieces
}

/// The analysis as pieces, gaps included, chronological.
pub(crate) fn pieces(analysis: &CriticalPathAnalysis) -> Vec<Piece> {
    let mut all: Vec<Piece> = analysis
        .sections
        .iter()
        .map(|s| (Some(s.span), s.start_ns, s.end_ns))
        .chain(analysis.gaps.iter().map(|g| (None, g.start_ns, g.end_ns)))
        .collect();
    all.sort_by_key(|p| (p.1, p.2));
    all
}

/// Checks the invariants: pieces are non-empty, chronological, never overlap, tile the window
/// exactly, and each lies in its span's sanitized window.
pub(crate) fn check_invariants(
    assembled: &AssembledTrace,
    analysis: &CriticalPathAnalysis,
) -> Result<(), String> {
    let all = pieces(analysis);
    let mut at = analysis.start_ns;
    for (owner, s, e) in &all {
        if s >= e {
            return Err(format!("empty or reversed piece {owner:?} {s}..{e}"));
        }
        if *s != at {
            return Err(format!(
                "piece {owner:?} {s}..{e} does not start where the last ended ({at})"
            ));
        }
        at = *e;
        if let Some(span) = owner {
            let Some((ws, we)) = assembled.window(*span) else {
                return Err(format!("section owned by excluded span {span}"));
            };
            if *s < ws || *e > we {
                return Err(format!(
                    "section {s}..{e} outside span {span}'s window {ws}..{we}"
                ));
            }
        }
    }
    if !all.is_empty() && at != analysis.end_ns {
        return Err(format!(
            "pieces end at {at}, window ends at {}",
            analysis.end_ns
        ));
    }
    let sum: u64 = all.iter().map(|(_, s, e)| e - s).sum();
    if !all.is_empty() && sum != analysis.duration_ns() {
        return Err(format!(
            "pieces sum to {sum}, window is {}",
            analysis.duration_ns()
        ));
    }
    let self_total: u64 = analysis.path.iter().map(|p| p.self_ns).sum();
    if self_total != analysis.critical_ns() {
        return Err(format!(
            "self times sum to {self_total}, sections to {}",
            analysis.critical_ns()
        ));
    }
    Ok(())
}
