//! Text that arrives in OTLP is untrusted: the characters it must not carry to a terminal.

/// Whether `c` would act on a terminal instead of being shown: a control character (C0, DEL
/// and C1: `ESC [2J` clears the screen, OSC 52 writes the clipboard) or a bidirectional
/// formatting character (which reorders what is shown around it). Whatever prints or writes
/// text from spans escapes or replaces these.
///
/// ```
/// use lightstep_wire::text::acts_on_a_terminal;
/// assert!(acts_on_a_terminal('\u{1b}'));
/// assert!(acts_on_a_terminal('\u{202e}'));
/// assert!(!acts_on_a_terminal('é'));
/// ```
pub fn acts_on_a_terminal(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}
