//! The flame-graph layout shared by the plain and the differential flame graph: frames as
//! nested rectangles, each as wide as its time including its descendants, the top of each
//! context at the bottom. Written here rather than with inferno, whose licence (CDDL-1.0) the
//! project does not take (ADR 105); the output is static SVG with tooltips, no script.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Write};

use super::xml;

/// Frames narrower than this many pixels are not drawn (with their descendants); the header
/// says how many.
const MIN_WIDTH: f64 = 0.1;
/// Entry points drawn as graphs of their own; the header names how many more there were.
pub(crate) const MAX_GROUPS: usize = 40;

const WIDTH: f64 = 1200.0;
const PAD: f64 = 10.0;
const FRAME_H: f64 = 16.0;
const CHAR_W: f64 = 7.0;

/// One frame to draw.
pub(crate) struct FlameFrame {
    pub(crate) parent: Option<usize>,
    /// What the frame shows (made safe here).
    pub(crate) label: String,
    /// Its own width, before its descendants are added; any unit.
    pub(crate) own: f64,
    pub(crate) fill: String,
}

/// A graph's heading, given its bottom frame's label and width with its descendants.
pub(crate) type Heading = Box<dyn Fn(&str, f64) -> String>;

/// The tooltip after a box's label, given the frames it draws (several when siblings read the
/// same; `None` for the `all` frame) and its width with its descendants.
pub(crate) type Detail = Box<dyn Fn(Option<&[usize]>, f64) -> String>;

/// What to draw.
pub(crate) struct Flame {
    pub(crate) title: String,
    /// Lines under the title (made safe here).
    pub(crate) notes: Vec<String>,
    /// The frames, a parent before its children.
    pub(crate) frames: Vec<FlameFrame>,
    /// One graph per top-level frame, each as wide as the page, with this heading
    /// (`(label, inclusive width)` → text); otherwise one graph over an `all` frame.
    pub(crate) group_heading: Option<Heading>,
    /// The tooltip after a box's label (made safe here).
    pub(crate) detail: Detail,
}

/// Frames as they are drawn: siblings that read the same are one box, as the folded output
/// makes them one line (two contexts can read the same, ADR 105), and their children merge the
/// same way below it.
struct Boxes {
    parent: Vec<Option<usize>>,
    own: Vec<f64>,
    /// The frames each box draws, in their order.
    members: Vec<Vec<usize>>,
    /// The frame whose label and fill the box shows: the widest of its own.
    shown: Vec<usize>,
}

impl Boxes {
    fn of(frames: &[FlameFrame]) -> Self {
        let mut boxes = Self {
            parent: Vec::new(),
            own: Vec::new(),
            members: Vec::new(),
            shown: Vec::new(),
        };
        // Parents precede children, so a frame's parent has its box when the frame is met.
        let mut box_of: Vec<usize> = Vec::with_capacity(frames.len());
        let mut by_label: HashMap<(Option<usize>, &str), usize> = HashMap::new();
        for (i, frame) in frames.iter().enumerate() {
            let parent = frame.parent.filter(|&p| p < i).map(|p| box_of[p]);
            let next = boxes.own.len();
            let b = *by_label
                .entry((parent, frame.label.as_str()))
                .or_insert(next);
            let own = frame.own.max(0.0);
            if b == next {
                boxes.parent.push(parent);
                boxes.own.push(own);
                boxes.members.push(vec![i]);
                boxes.shown.push(i);
            } else {
                boxes.own[b] += own;
                boxes.members[b].push(i);
                if own > frames[boxes.shown[b]].own.max(0.0) {
                    boxes.shown[b] = i;
                }
            }
            box_of.push(b);
        }
        boxes
    }
}

/// Writes the flame graph as SVG.
pub(crate) fn write(out: &mut impl Write, flame: &Flame) -> io::Result<()> {
    let frames = &flame.frames;
    let boxes = Boxes::of(frames);
    let n = boxes.own.len();
    let label = |b: usize| frames[boxes.shown[b]].label.as_str();
    // Each box's width including its descendants, and its children by label; parents precede
    // children, so one backwards pass adds every subtree up.
    let mut inclusive: Vec<f64> = boxes.own.clone();
    let mut subtree: Vec<usize> = vec![1; n];
    for i in (0..n).rev() {
        if let Some(p) = boxes.parent[i] {
            inclusive[p] += inclusive[i];
            subtree[p] += subtree[i];
        }
    }
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut tops: Vec<usize> = Vec::new();
    for i in 0..n {
        match boxes.parent[i] {
            Some(p) => children[p].push(i),
            None => tops.push(i),
        }
    }
    for list in children.iter_mut().chain(std::iter::once(&mut tops)) {
        list.sort_by(|&a, &b| label(a).cmp(label(b)).then(a.cmp(&b)));
    }

    // Groups: (heading, the frames at its bottom row, whether an `all` frame is drawn).
    let mut groups: Vec<(Option<String>, Vec<usize>)> = Vec::new();
    let mut more_groups = 0;
    match &flame.group_heading {
        Some(heading) => {
            let mut by_size = tops.clone();
            by_size.sort_by(|&a, &b| inclusive[b].total_cmp(&inclusive[a]).then(a.cmp(&b)));
            more_groups = by_size.len().saturating_sub(MAX_GROUPS);
            for top in by_size.into_iter().take(MAX_GROUPS) {
                let text = heading(label(top), inclusive[top]);
                groups.push((Some(text), vec![top]));
            }
        }
        None => groups.push((None, tops.clone())),
    }

    let plot_w = WIDTH - 2.0 * PAD;
    let mut body = String::new();
    let mut hidden = 0usize;
    let mut y_top = 0.0;
    for (heading, bottom) in &groups {
        let with_all = heading.is_none();
        let total: f64 = bottom.iter().map(|&i| inclusive[i]).sum();
        // Frames placed: (frame, x, width, depth), found with an explicit stack.
        let mut placed: Vec<(usize, f64, f64, usize)> = Vec::new();
        let mut stack: Vec<(usize, f64, usize)> = Vec::new();
        let scale = if total > 0.0 { plot_w / total } else { 0.0 };
        let mut x = PAD;
        let first_depth = usize::from(with_all);
        for &i in bottom {
            stack.push((i, x, first_depth));
            x += inclusive[i] * scale;
        }
        stack.reverse();
        let mut max_depth = first_depth;
        while let Some((i, x, depth)) = stack.pop() {
            let w = inclusive[i] * scale;
            if inclusive[i] <= 0.0 {
                // Nothing to show (a context of the other set of a comparison): the caller
                // says so if it matters.
                continue;
            }
            if w < MIN_WIDTH {
                hidden += subtree[i];
                continue;
            }
            placed.push((i, x, w, depth));
            max_depth = max_depth.max(depth);
            let mut cx = x;
            let mut kids: Vec<(usize, f64, usize)> = Vec::with_capacity(children[i].len());
            for &c in &children[i] {
                kids.push((c, cx, depth + 1));
                cx += inclusive[c] * scale;
            }
            stack.extend(kids.into_iter().rev());
        }
        let heading_h = if heading.is_some() { 22.0 } else { 0.0 };
        let graph_h = (max_depth as f64 + 1.0) * FRAME_H;
        if let Some(text) = heading {
            let _ = writeln!(
                body,
                r#"<text x="{PAD}" y="{:.1}" font-size="13" font-weight="bold">{}</text>"#,
                y_top + 16.0,
                xml(text)
            );
        }
        let base = y_top + heading_h + graph_h;
        let rect = |body: &mut String,
                    x: f64,
                    w: f64,
                    depth: usize,
                    label: &str,
                    detail: &str,
                    fill: &str| {
            let y = base - (depth as f64 + 1.0) * FRAME_H;
            let _ = write!(
                body,
                r#"<g><title>{}{}{}</title><rect x="{x:.2}" y="{y:.1}" width="{w:.2}" height="{:.1}" fill="{}" rx="2"/>"#,
                xml(label),
                if detail.is_empty() { "" } else { " — " },
                xml(detail),
                FRAME_H - 1.0,
                xml(fill),
            );
            let fits = ((w - 6.0) / CHAR_W).floor();
            if fits >= 3.0 {
                let fits = fits as usize;
                let shown: String = if label.chars().count() <= fits {
                    label.to_owned()
                } else {
                    let mut s: String = label.chars().take(fits - 2).collect();
                    s.push_str("..");
                    s
                };
                let _ = write!(
                    body,
                    r#"<text x="{:.2}" y="{:.1}">{}</text>"#,
                    x + 3.0,
                    y + 11.5,
                    xml(&shown)
                );
            }
            body.push_str("</g>\n");
        };
        if with_all && total > 0.0 {
            let detail = (flame.detail)(None, total);
            rect(&mut body, PAD, plot_w, 0, "all", &detail, "#d8d8d8");
        }
        for (i, x, w, depth) in placed {
            let f = &frames[boxes.shown[i]];
            let detail = (flame.detail)(Some(&boxes.members[i]), inclusive[i]);
            rect(&mut body, x, w, depth, &f.label, &detail, &f.fill);
        }
        y_top += heading_h + graph_h + 14.0;
    }

    let mut notes = flame.notes.clone();
    if hidden > 0 {
        notes.push(format!(
            "{hidden} frames narrower than {MIN_WIDTH} px are not drawn"
        ));
    }
    if more_groups > 0 {
        notes.push(format!("{more_groups} more entry points are not drawn"));
    }
    let header_h = 30.0 + 16.0 * notes.len() as f64;
    let height = header_h + y_top + PAD;
    let mut svg = String::with_capacity(body.len() + 1024);
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" font-family="Verdana, sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        svg,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        svg,
        r#"<text x="{PAD}" y="20" font-size="15" font-weight="bold">{}</text>"#,
        xml(&flame.title)
    );
    for (k, note) in notes.iter().enumerate() {
        let _ = writeln!(
            svg,
            r##"<text x="{PAD}" y="{:.0}" fill="#444">{}</text>"##,
            38.0 + 16.0 * k as f64,
            xml(note)
        );
    }
    let _ = writeln!(svg, r#"<g transform="translate(0 {header_h:.0})">"#);
    svg.push_str(&body);
    svg.push_str("</g>\n</svg>\n");
    out.write_all(svg.as_bytes())
}
