//! A JSON pull parser over [`Input`]: the readers ask for the tokens they expect, in the order
//! their format has them, and skip what they do not use.
//!
//! It accepts exactly JSON (RFC 8259: no comments, no trailing commas, no leading zeros, no
//! control characters in strings, valid UTF-8 where text is used) and checks the syntax of what
//! it skips as well as of what it reads. Nothing recurses: skipping a value keeps its open
//! brackets on a small stack, and nesting is limited to 128 levels, as serde_json limits it.
//! Every error names the line and column of the token at fault.

use std::io::{self, Read};

use super::batch::{BATCH, BATCH_BYTES, Batch};
use super::input::Input;

/// How deep objects and arrays may nest.
const MAX_DEPTH: usize = 128;

/// Why reading stopped: boxed, so that every result of the lexer stays two words.
#[derive(Debug)]
pub(super) struct Fail(pub(super) Box<Failure>);

#[derive(Debug)]
pub(super) enum Failure {
    /// The input is not what the reader expects, at this line and column.
    Json {
        line: usize,
        column: usize,
        message: String,
    },
    /// The protobuf input is not what the reader expects, in the top-level field at this offset.
    Protobuf { offset: u64, message: String },
    /// Reading the input failed.
    Io(io::Error),
    /// The consumer of the traces failed.
    Sink(io::Error),
    /// The input is of another format than the one asked for.
    WrongFormat(&'static str),
}

impl From<Failure> for Fail {
    fn from(failure: Failure) -> Self {
        Self(Box::new(failure))
    }
}

impl From<io::Error> for Fail {
    fn from(err: io::Error) -> Self {
        Failure::Io(err).into()
    }
}

pub(super) type Res<T> = Result<T, Fail>;

/// Where a string's text is: in the input buffer (no escapes), or decoded in the scratch buffer
/// (`start` is `u32::MAX`). Valid until the lexer moves on.
#[derive(Clone, Copy, Debug)]
pub(super) struct Text {
    start: u32,
    end: u32,
}

impl Text {
    const SCRATCH: Self = Self {
        start: u32::MAX,
        end: 0,
    };
}

/// A JSON number, as serde_json reads it: an integer that fits exactly, else a float.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Number {
    Unsigned(u64),
    Negative(i64),
    Float(f64),
}

impl Number {
    fn describe(self) -> String {
        match self {
            Self::Unsigned(n) => format!("integer `{n}`"),
            Self::Negative(n) => format!("integer `{n}`"),
            Self::Float(f) => format!("floating point `{f}`"),
        }
    }

    /// The number as text, as serde_json prints it.
    pub(super) fn to_text(self) -> String {
        match self {
            Self::Unsigned(n) => n.to_string(),
            Self::Negative(n) => n.to_string(),
            Self::Float(f) => {
                serde_json::Number::from_f64(f).map_or_else(String::new, |n| n.to_string())
            }
        }
    }
}

/// An integer that may be written as a number or a string of digits. Numbers are taken as
/// parsed: integers exactly; a float only when it is integral and small enough (2^53) to be
/// exact, so nothing is ever rounded.
const EXACT_FLOAT: f64 = 9_007_199_254_740_992.0;

pub(super) struct Lexer<R> {
    pub(super) input: Input<R>,
    scratch: Vec<u8>,
    depth: usize,
    /// What [`Lexer::scan_batch`] found wrong past the elements of the batch it returned:
    /// reported by its next call, once those elements are parsed (one of them may be wrong
    /// too, and come first).
    after_batch: Option<Fail>,
}

#[inline]
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

/// Bytes before the first quote or backslash (or all of them).
#[inline]
fn quote_or_backslash(bytes: &[u8]) -> usize {
    memchr::memchr2(b'"', b'\\', bytes).unwrap_or(bytes.len())
}

/// Bytes before the first quote or bracket (or all of them), eight at a time.
#[inline]
fn structural(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(ONES) & !x;
    let mut i = 0;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let v = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).unwrap_or_default());
        // `{` and `}` are 0x7b and 0x7d, `[` and `]` 0x5b and 0x5d: with bits 1 and 2 cleared,
        // each pair is one value (as are `y`, DEL, `Y` and `_`, which the caller passes over).
        let folded = v & !(ONES * 6);
        let stops = (zero(v ^ (ONES * u64::from(b'"')))
            | zero(folded ^ (ONES * 0x79))
            | zero(folded ^ (ONES * 0x59)))
            & HIGH;
        if stops != 0 {
            return i + (stops.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    let rest = bytes.get(i..).unwrap_or(&[]);
    i + rest
        .iter()
        .position(|&b| matches!(b, b'"' | b'{' | b'}' | b'[' | b']'))
        .unwrap_or(rest.len())
}

/// Where the quotes and brackets of 64 bytes are (bit `k` of a mask for byte `k`), and whether
/// they hold a backslash. Eight bytes at a time, each byte compared exactly (no carry crosses
/// bytes).
#[derive(Clone, Copy)]
struct Marks {
    quote: u64,
    /// `{`, `}`, `[` and `]`, and also `Y`, `_`, `y` and DEL, which the caller tells apart.
    bracket: u64,
    backslash: bool,
}

impl Marks {
    #[inline]
    fn of(block: &[u8]) -> Self {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const LOW: u64 = 0x7f7f_7f7f_7f7f_7f7f;
        // The high bit of each byte of `v` that equals `b`.
        let eq = |v: u64, b: u8| {
            let x = v ^ (ONES * u64::from(b));
            !(((x & LOW) + LOW) | x) & !LOW
        };
        // The high bits of the eight bytes, as the low eight bits.
        let gather = |m: u64| ((m >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56;
        let mut marks = Self {
            quote: 0,
            bracket: 0,
            backslash: false,
        };
        let mut backslashes = 0;
        for (w, chunk) in block.chunks_exact(8).take(8).enumerate() {
            let v = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).unwrap_or_default());
            // `{` `}` `[` `]` are 0x7b 0x7d 0x5b 0x5d: with bits 1, 2 and 5 cleared, all 0x59.
            let folded = v & !(ONES * 0x26);
            let shift = 8 * w;
            marks.quote |= gather(eq(v, b'"')) << shift;
            marks.bracket |= gather(eq(folded, 0x59)) << shift;
            backslashes |= eq(v, b'\\');
        }
        marks.backslash = backslashes != 0;
        marks
    }
}

/// Bit `k` set when an odd number of the bits `0..=k` of `bits` are: with quotes for bits, the
/// bytes inside strings (opening quotes included, closing ones not).
#[inline]
fn prefix_xor(mut bits: u64) -> u64 {
    for shift in [1, 2, 4, 8, 16, 32] {
        bits ^= bits << shift;
    }
    bits
}

/// How many bytes at the start of `bytes` are plain string content: not a quote, a backslash, a
/// control character or a byte past ASCII. Eight bytes at a time: this is where most of the
/// input's bytes are looked at.
#[inline]
fn plain_run(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let v = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).unwrap_or_default());
        let quote = v ^ (ONES * u64::from(b'"'));
        let backslash = v ^ (ONES * u64::from(b'\\'));
        // A byte's high bit is set in each term where that byte is a stop (and may be set in
        // later bytes after one is, which the first stop makes irrelevant).
        let stops = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (v.wrapping_sub(ONES * 0x20) & !v)
            | v;
        let stops = stops & HIGH;
        if stops != 0 {
            return i + (stops.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    let rest = bytes.get(i..).unwrap_or(&[]);
    i + rest
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || !(0x20..0x80).contains(&b))
        .unwrap_or(rest.len())
}

impl<R: Read> Lexer<R> {
    pub(super) fn new(input: Input<R>) -> Self {
        Self {
            input,
            scratch: Vec::new(),
            depth: 0,
            after_batch: None,
        }
    }

    /// A lexer for a batch's text (see `batch`), at the nesting depth where the text was.
    pub(super) fn for_batch(batch: &mut Batch) -> Self
    where
        R: Default,
    {
        Self {
            input: Input::batch(std::mem::take(&mut batch.bytes), &batch.at),
            scratch: Vec::new(),
            depth: batch.at.depth,
            after_batch: None,
        }
    }

    /// The input's buffer, taken away (a batch's text, once it is read).
    pub(super) fn take_buffer(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.input.buf)
    }

    // ---- errors ----

    /// An error at `buf[at]`.
    pub(super) fn error_at(&self, at: usize, message: impl Into<String>) -> Fail {
        let (line, column) = self.input.location(at);
        Failure::Json {
            line,
            column,
            message: message.into(),
        }
        .into()
    }

    /// An error at the current position.
    pub(super) fn error(&self, message: impl Into<String>) -> Fail {
        self.error_at(self.input.pos, message)
    }

    /// Marks field `key` (1-based into `fields`; 0 for a field not read) as seen in `seen`,
    /// or fails if the object already had it: a duplicate would silently replace a value.
    pub(super) fn first_time(&self, seen: &mut u32, key: u32, fields: &[&str]) -> Result<(), Fail> {
        if key == 0 {
            return Ok(());
        }
        if *seen & (1 << key) != 0 {
            return Err(self.error(format!("duplicate field `{}`", fields[key as usize - 1])));
        }
        *seen |= 1 << key;
        Ok(())
    }

    /// The input ends where `what` was expected: an error at its end.
    fn eof(&self, what: &str) -> Fail {
        self.error_at(
            self.input.end,
            format!("expected {what} (the input ends too early)"),
        )
    }

    /// `invalid type: <what is there>, expected <what>`, at the value (after it, for a string
    /// or a number, which are read to be shown).
    pub(super) fn invalid_type(&mut self, expected: &str) -> Fail {
        let found = match self.input.buf.get(self.input.pos) {
            Some(b'"') => match self.string() {
                Ok(text) => format!("string {}", self.quoted(text)),
                Err(err) => return err,
            },
            Some(b'{') => "map".to_owned(),
            Some(b'[') => "sequence".to_owned(),
            Some(b't') => "boolean `true`".to_owned(),
            Some(b'f') => "boolean `false`".to_owned(),
            Some(b'n') => "null".to_owned(),
            Some(b'-' | b'0'..=b'9') => match self.number() {
                Ok(n) => n.describe(),
                Err(err) => return err,
            },
            _ => return self.error("expected a JSON value"),
        };
        self.error(format!("invalid type: {found}, expected {expected}"))
    }

    /// A string from the input for a message: quoted, escaped so that it prints on one line
    /// and drives no terminal, and cut after 100 characters.
    pub(super) fn quoted(&self, text: Text) -> String {
        let text = String::from_utf8_lossy(self.bytes(text));
        let cut: String = text.chars().take(100).collect();
        let more = if cut.len() < text.len() { "..." } else { "" };
        // Debug escapes what `printable` does: control and bidirectional formatting characters.
        format!("{cut:?}{more}")
    }

    // ---- whitespace and structure ----

    /// The next byte that is not whitespace, not consumed; `None` at the end of the input.
    #[inline]
    pub(super) fn peek(&mut self) -> Res<Option<u8>> {
        match self.input.available().first() {
            Some(&b) if !is_space(b) => Ok(Some(b)),
            _ => self.skip_space(),
        }
    }

    fn skip_space(&mut self) -> Res<Option<u8>> {
        loop {
            let input = &mut self.input;
            if let Some(skip) = input.buf[input.pos..input.end]
                .iter()
                .position(|&b| !is_space(b))
            {
                input.pos += skip;
                return Ok(Some(input.buf[input.pos]));
            }
            input.pos = input.end;
            if input.more()?.is_none() {
                return Ok(None);
            }
        }
    }

    /// The next byte that is not whitespace, which must be there (`what` says what was
    /// expected if the input ends).
    #[inline]
    pub(super) fn peek_value(&mut self, what: &str) -> Res<u8> {
        match self.peek()? {
            Some(b) => Ok(b),
            None => Err(self.eof(what)),
        }
    }

    #[inline]
    fn enter(&mut self) -> Res<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!(
                "objects and arrays nest deeper than {MAX_DEPTH} levels"
            )));
        }
        self.input.pos += 1;
        Ok(())
    }

    /// `{`, or `null` (which reads as absent: `false`); anything else is an error naming `what`.
    pub(super) fn begin_object(&mut self, what: &str) -> Res<bool> {
        match self.peek_value(what)? {
            b'{' => {
                self.enter()?;
                Ok(true)
            }
            b'n' => {
                self.literal(b"null")?;
                Ok(false)
            }
            _ => Err(self.invalid_type(what)),
        }
    }

    /// `[`, or `null` (absent: `false`).
    pub(super) fn begin_array(&mut self, what: &str) -> Res<bool> {
        match self.peek_value(what)? {
            b'[' => {
                self.enter()?;
                Ok(true)
            }
            b'n' => {
                self.literal(b"null")?;
                Ok(false)
            }
            _ => Err(self.invalid_type(what)),
        }
    }

    /// The next key of an object, classified by `classify` while its text is at hand; `None`
    /// after the closing brace. `first` is true before the first key.
    #[inline]
    pub(super) fn next_key<K>(
        &mut self,
        first: &mut bool,
        classify: impl FnOnce(&[u8]) -> K,
    ) -> Res<Option<K>> {
        // Compact JSON: `,"key":` (or `"key":` first), whole in the buffer.
        let here = self.input.available();
        let skip = usize::from(!*first);
        if here.get(..skip) == Some(&b","[..skip]) && here.get(skip) == Some(&b'"') {
            let rest = here.get(skip + 1..).unwrap_or(&[]);
            let len = plain_run(rest);
            if rest.get(len..len + 2) == Some(b"\":") {
                let key = classify(&rest[..len]);
                self.input.pos += skip + len + 3;
                *first = false;
                return Ok(Some(key));
            }
        }
        self.next_key_slow(first, classify)
    }

    fn next_key_slow<K>(
        &mut self,
        first: &mut bool,
        classify: impl FnOnce(&[u8]) -> K,
    ) -> Res<Option<K>> {
        let mut b = self.peek_value("a key or `}`")?;
        if b == b'}' && *first {
            self.leave();
            return Ok(None);
        }
        if !*first {
            match b {
                b'}' => {
                    self.leave();
                    return Ok(None);
                }
                b',' => {
                    self.input.pos += 1;
                    b = self.peek_value("a key")?;
                }
                _ => return Err(self.error("expected `,` or `}` after an object's value")),
            }
        }
        *first = false;
        if b != b'"' {
            return Err(if b == b'}' {
                self.error("trailing comma before `}`")
            } else {
                self.error("expected a key (a string)")
            });
        }
        let text = self.string()?;
        let key = classify(self.bytes(text));
        if self.peek_value("`:`")? != b':' {
            return Err(self.error("expected `:` after an object's key"));
        }
        self.input.pos += 1;
        Ok(Some(key))
    }

    /// Whether another element of an array follows (consuming the comma); `false` after the
    /// closing bracket.
    #[inline]
    pub(super) fn next_element(&mut self, first: &mut bool) -> Res<bool> {
        let b = self.peek_value("a value or `]`")?;
        if b == b']' {
            self.leave();
            return Ok(false);
        }
        if !*first {
            if b != b',' {
                return Err(self.error("expected `,` or `]` after an array's element"));
            }
            self.input.pos += 1;
            if self.peek_value("a value")? == b']' {
                return Err(self.error("trailing comma before `]`"));
            }
        }
        *first = false;
        Ok(true)
    }

    #[inline]
    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
        self.input.pos += 1;
    }

    /// One of `true`, `false`, `null`, at the current position.
    fn literal(&mut self, word: &[u8]) -> Res<()> {
        loop {
            let here = self.input.available();
            let n = here.len().min(word.len());
            if here[..n] != word[..n] {
                return Err(self.error("expected a JSON value"));
            }
            if n == word.len() {
                self.input.pos += n;
                return Ok(());
            }
            if self.input.more()?.is_none() {
                return Err(self.eof("a value"));
            }
        }
    }

    // ---- strings ----

    /// The text of a string token.
    pub(super) fn bytes(&self, text: Text) -> &[u8] {
        if text.start == u32::MAX {
            &self.scratch
        } else {
            let (start, end) = (text.start as usize, text.end as usize);
            self.input.buf.get(start..end).unwrap_or(&[])
        }
    }

    /// The text of a string token as UTF-8 (an error after the token if it is not).
    pub(super) fn str(&self, text: Text) -> Res<&str> {
        std::str::from_utf8(self.bytes(text)).map_err(|_| self.error("a string is not valid UTF-8"))
    }

    /// A string token, the current byte being its opening quote; its text is valid UTF-8.
    #[inline]
    pub(super) fn string(&mut self) -> Res<Text> {
        // Most strings are plain and whole in the buffer.
        let start = self.input.pos + 1;
        let rest = self.input.buf.get(start..self.input.end).unwrap_or(&[]);
        let len = plain_run(rest);
        if rest.get(len) == Some(&b'"')
            && let (Ok(start32), Ok(end32)) = (u32::try_from(start), u32::try_from(start + len))
        {
            self.input.pos = start + len + 1;
            return Ok(Text {
                start: start32,
                end: end32,
            });
        }
        self.string_slow()
    }

    fn string_slow(&mut self) -> Res<Text> {
        let mut scan = self.input.pos + 1;
        // Whether the text has bytes past ASCII, which must then be checked as UTF-8.
        let mut wide = false;
        loop {
            let input = &mut self.input;
            let at = scan + plain_run(&input.buf[scan..input.end]);
            if at == input.end {
                scan = input.end;
                match input.more()? {
                    Some(dropped) => scan -= dropped,
                    None => return Err(self.eof("the end of a string")),
                }
                continue;
            }
            match input.buf[at] {
                b'"' => {
                    let start = input.pos + 1;
                    if wide && std::str::from_utf8(&input.buf[start..at]).is_err() {
                        return Err(self.error_at(start, "a string is not valid UTF-8"));
                    }
                    // The buffer holds at most one token beyond 64 KiB, and none of 4 GiB.
                    let (Ok(start32), Ok(end32)) = (u32::try_from(start), u32::try_from(at)) else {
                        return Err(self.error_at(start, "a string longer than 4 GiB"));
                    };
                    input.pos = at + 1;
                    return Ok(Text {
                        start: start32,
                        end: end32,
                    });
                }
                b'\\' => return self.escaped(at),
                0x80.. => {
                    wide = true;
                    scan = at + 1;
                }
                _ => {
                    return Err(self.error_at(
                        at,
                        "control character (\\u0000-\\u001F) in a string: it must be escaped",
                    ));
                }
            }
        }
    }

    /// The rest of a string with escapes, from the first backslash at `buf[at]`, decoded into
    /// the scratch buffer.
    fn escaped(&mut self, at: usize) -> Res<Text> {
        self.scratch.clear();
        let start = self.input.pos + 1;
        self.scratch.extend_from_slice(&self.input.buf[start..at]);
        // Everything before `at` is copied: only the rest of the string needs the buffer.
        self.input.pos = at;
        loop {
            let b = self.byte_in_string()?;
            match b {
                b'"' => {
                    self.input.pos += 1;
                    if std::str::from_utf8(&self.scratch).is_err() {
                        return Err(self.error("a string is not valid UTF-8"));
                    }
                    return Ok(Text::SCRATCH);
                }
                b'\\' => {
                    self.input.pos += 1;
                    self.escape()?;
                }
                0..0x20 => {
                    return Err(self.error(
                        "control character (\\u0000-\\u001F) in a string: it must be escaped",
                    ));
                }
                _ => {
                    let input = &mut self.input;
                    // Bytes past ASCII are copied one at a time; the whole text is checked as
                    // UTF-8 at the end.
                    let run = plain_run(&input.buf[input.pos..input.end]).max(1);
                    self.scratch
                        .extend_from_slice(&input.buf[input.pos..input.pos + run]);
                    input.pos += run;
                }
            }
        }
    }

    /// The byte at the current position inside a string, reading more if needed.
    fn byte_in_string(&mut self) -> Res<u8> {
        while self.input.pos == self.input.end {
            if self.input.more()?.is_none() {
                return Err(self.eof("the end of a string"));
            }
        }
        Ok(self.input.buf[self.input.pos])
    }

    /// One escape after its backslash, appended to the scratch buffer.
    fn escape(&mut self) -> Res<()> {
        let b = self.byte_in_string()?;
        self.input.pos += 1;
        let simple = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let unit = self.hex4()?;
                let c = match unit {
                    0xd800..=0xdbff => {
                        // A high surrogate must be followed by an escaped low one.
                        if self.byte_in_string()? != b'\\' {
                            return Err(self.error("lone leading surrogate in hex escape"));
                        }
                        self.input.pos += 1;
                        if self.byte_in_string()? != b'u' {
                            return Err(self.error("lone leading surrogate in hex escape"));
                        }
                        self.input.pos += 1;
                        let low = self.hex4()?;
                        if !(0xdc00..=0xdfff).contains(&low) {
                            return Err(self.error("lone leading surrogate in hex escape"));
                        }
                        let value = 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
                        char::from_u32(value)
                    }
                    0xdc00..=0xdfff => None,
                    _ => char::from_u32(unit),
                };
                let Some(c) = c else {
                    return Err(self.error("lone trailing surrogate in hex escape"));
                };
                let mut utf8 = [0; 4];
                self.scratch
                    .extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
                return Ok(());
            }
            _ => {
                return Err(self.error_at(self.input.pos - 1, "invalid escape in a string"));
            }
        };
        self.scratch.push(simple);
        Ok(())
    }

    fn hex4(&mut self) -> Res<u32> {
        let mut value = 0;
        for _ in 0..4 {
            let b = self.byte_in_string()?;
            let digit = match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b'A'..=b'F' => b - b'A' + 10,
                _ => return Err(self.error("invalid \\u escape: expected four hex digits")),
            };
            value = value * 16 + u32::from(digit);
            self.input.pos += 1;
        }
        Ok(value)
    }

    /// A string value, or `None` for `null`; anything else is an error naming `what`.
    pub(super) fn string_or_null(&mut self, what: &str) -> Res<Option<Text>> {
        match self.peek_value(what)? {
            b'"' => self.string().map(Some),
            b'n' => {
                self.literal(b"null")?;
                Ok(None)
            }
            _ => Err(self.invalid_type(what)),
        }
    }

    // ---- numbers ----

    /// A number token at the current position.
    pub(super) fn number(&mut self) -> Res<Number> {
        // The whole token in the buffer.
        let mut len = 0;
        loop {
            let input = &self.input;
            let rest = &input.buf[input.pos + len..input.end];
            match rest
                .iter()
                .position(|&b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
            {
                Some(k) => {
                    len += k;
                    break;
                }
                None => {
                    len = input.end - input.pos;
                    if self.input.more()?.is_none() {
                        break;
                    }
                }
            }
        }
        let pos = self.input.pos;
        let token = &self.input.buf[pos..pos + len];
        let Some(number) = parse_number(token) else {
            return Err(self.error("invalid number"));
        };
        self.input.pos += len;
        Ok(number)
    }

    /// An integer written as a number or a string of digits (`null` reads as 0), for a field
    /// described by `what`.
    pub(super) fn integer(&mut self, signed: bool) -> Res<i128> {
        let what = if signed {
            "an integer (a number or a string of digits)"
        } else {
            "a non-negative integer (a number or a string of digits)"
        };
        match self.peek_value(what)? {
            b'"' => {
                let text = self.string()?;
                // Timestamps are mostly this: up to 19 digits, which cannot overflow.
                if let Some(n) = short_digits(self.bytes(text)) {
                    return Ok(i128::from(n));
                }
                let parsed = std::str::from_utf8(self.bytes(text)).ok().and_then(|t| {
                    if signed {
                        t.parse::<i64>().ok().map(i128::from)
                    } else {
                        t.parse::<u64>().ok().map(i128::from)
                    }
                });
                parsed.ok_or_else(|| {
                    let found = self.quoted(text);
                    self.error(format!("invalid value: string {found}, expected {what}"))
                })
            }
            b'-' | b'0'..=b'9' => {
                let number = self.number()?;
                match number {
                    Number::Unsigned(n) => return Ok(i128::from(n)),
                    Number::Negative(n) if signed => return Ok(i128::from(n)),
                    Number::Float(f)
                        if f.fract() == 0.0 && f.abs() <= EXACT_FLOAT && (signed || f >= 0.0) =>
                    {
                        // Exact: integral and within the range where f64 holds every integer.
                        return Ok(f as i128);
                    }
                    _ => {}
                }
                Err(self.error(format!(
                    "invalid value: {}, expected {what}",
                    number.describe()
                )))
            }
            b'n' => {
                self.literal(b"null")?;
                Ok(0)
            }
            _ => Err(self.invalid_type(what)),
        }
    }

    /// A JSON scalar as text: a string's text, a number as serde_json prints it, `true` or
    /// `false`; `None` for null, objects and arrays (which are skipped). Jaeger tags and OTLP
    /// attribute values are read this way.
    pub(super) fn scalar_text(&mut self, out: &mut String) -> Res<bool> {
        out.clear();
        match self.peek_value("a value")? {
            b'"' => {
                let text = self.string()?;
                out.push_str(self.str(text)?);
                Ok(true)
            }
            b'-' | b'0'..=b'9' => {
                out.push_str(&self.number()?.to_text());
                Ok(true)
            }
            b't' => {
                self.literal(b"true")?;
                out.push_str("true");
                Ok(true)
            }
            b'f' => {
                self.literal(b"false")?;
                out.push_str("false");
                Ok(true)
            }
            _ => {
                self.skip_value()?;
                Ok(false)
            }
        }
    }

    /// A boolean (`null` reads as `None`).
    pub(super) fn boolean(&mut self, what: &str) -> Res<Option<bool>> {
        match self.peek_value(what)? {
            b't' => self.literal(b"true").map(|()| Some(true)),
            b'f' => self.literal(b"false").map(|()| Some(false)),
            b'n' => self.literal(b"null").map(|()| None),
            _ => Err(self.invalid_type(what)),
        }
    }

    /// A comma between elements of a list (the caller knows one more follows).
    pub(super) fn comma(&mut self) -> Res<()> {
        if self.peek_value("`,`")? != b',' {
            return Err(self.error("expected `,` or `]` after an array's element"));
        }
        self.input.pos += 1;
        Ok(())
    }

    // ---- batches ----

    /// Copies the next objects of a list into a batch (see `batch`): from an element's start
    /// (with `leading_comma`, from before the comma that precedes it), up to `BATCH` elements or
    /// `BATCH_BYTES` bytes, each ending where its brackets close. It stops before anything that
    /// is not a comma followed by an object: the end of the list, or an error that this lexer
    /// then reports. Only brackets, strings and escapes are looked at: the batch's own lexer
    /// checks everything else.
    pub(super) fn scan_batch(
        &mut self,
        leading_comma: bool,
        mut bytes: Vec<u8>,
    ) -> Res<Option<Batch>> {
        if let Some(err) = self.after_batch.take() {
            return Err(err);
        }
        bytes.clear();
        let mut batch = Batch {
            bytes,
            at: self.input.position(self.input.pos, self.depth),
            leading_comma,
            elements: 0,
        };
        loop {
            let complete = batch.bytes.len();
            let step = if batch.elements > 0 || leading_comma {
                self.comma_then_object(&mut batch.bytes)
            } else {
                self.peek().map(|b| b == Some(b'{'))
            };
            let step = step.and_then(|more| {
                if more {
                    self.copy_object(&mut batch.bytes)?;
                }
                Ok(more)
            });
            match step {
                Ok(true) => {}
                Ok(false) => break,
                Err(err) if batch.elements == 0 => return Err(err),
                Err(err) => {
                    // The elements before it are whole: parsed first, then this is reported.
                    batch.bytes.truncate(complete);
                    self.after_batch = Some(err);
                    break;
                }
            }
            batch.elements += 1;
            if batch.elements >= BATCH || batch.bytes.len() >= BATCH_BYTES {
                break;
            }
        }
        Ok((batch.elements > 0).then_some(batch))
    }

    /// Whether whitespace, a comma, whitespace and `{` follow; if so they are copied to `out`
    /// up to the brace, else nothing is consumed.
    fn comma_then_object(&mut self, out: &mut Vec<u8>) -> Res<bool> {
        let mut at = self.input.pos;
        let mut comma = false;
        loop {
            let Some(&b) = self.input.buf.get(at).filter(|_| at < self.input.end) else {
                match self.input.more()? {
                    Some(dropped) => at -= dropped,
                    None => return Ok(false),
                }
                continue;
            };
            match b {
                b' ' | b'\n' | b'\r' | b'\t' => at += 1,
                b',' if !comma => {
                    comma = true;
                    at += 1;
                }
                b'{' if comma => {
                    out.extend_from_slice(&self.input.buf[self.input.pos..at]);
                    self.input.pos = at;
                    return Ok(true);
                }
                _ => return Ok(false),
            }
        }
    }

    /// Copies an object, from its opening brace to the one that closes it, to `out`; at the
    /// end of the input, what there is of it.
    fn copy_object(&mut self, out: &mut Vec<u8>) -> Res<()> {
        let mut depth = 0usize;
        let mut in_string = false;
        // An escape's backslash ended the last piece: the next byte is escaped.
        let mut escaped = false;
        loop {
            let input = &mut self.input;
            let here = &input.buf[input.pos..input.end];
            if here.is_empty() {
                if input.more()?.is_none() {
                    return Ok(());
                }
                continue;
            }
            let mut i = usize::from(escaped);
            // Up to where bytes are looked at one token at a time, after a block that holds a
            // backslash (escapes are rare: the blocks take the rest).
            let mut tokens_until = 0;
            while i < here.len() {
                if i >= tokens_until
                    && let Some(block) = here.get(i..i + 64)
                {
                    let marks = Marks::of(block);
                    if marks.backslash {
                        tokens_until = i + 64;
                    } else {
                        let strings = prefix_xor(marks.quote) ^ if in_string { !0 } else { 0 };
                        let mut brackets = marks.bracket & !strings;
                        while brackets != 0 {
                            let k = brackets.trailing_zeros() as usize;
                            match block[k] {
                                b'{' | b'[' => depth += 1,
                                b'}' | b']' => {
                                    depth = depth.saturating_sub(1);
                                    if depth == 0 {
                                        out.extend_from_slice(&here[..=i + k]);
                                        input.pos += i + k + 1;
                                        return Ok(());
                                    }
                                }
                                _ => {}
                            }
                            brackets &= brackets - 1;
                        }
                        in_string = strings >> 63 != 0;
                        i += 64;
                        continue;
                    }
                }
                if in_string {
                    i += quote_or_backslash(&here[i..]);
                    match here.get(i) {
                        // Past the escaped byte, which may be in the next piece.
                        Some(b'\\') => i += 2,
                        Some(_) => {
                            in_string = false;
                            i += 1;
                        }
                        None => break,
                    }
                    continue;
                }
                i += structural(&here[i..]);
                match here.get(i) {
                    Some(b'"') => in_string = true,
                    Some(b'{' | b'[') => depth += 1,
                    Some(b'}' | b']') => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            out.extend_from_slice(&here[..=i]);
                            input.pos += i + 1;
                            return Ok(());
                        }
                    }
                    Some(_) => {}
                    None => break,
                }
                i += 1;
            }
            // The whole piece is copied; an escape may reach into the next one.
            escaped = i > here.len();
            out.extend_from_slice(here);
            input.pos = input.end;
        }
    }

    // ---- skipping ----

    /// Skips one value, checking its syntax.
    pub(super) fn skip_value(&mut self) -> Res<()> {
        // The open brackets, innermost in the lowest bit: 1 for an object (where a key comes
        // next), 0 for an array. Nesting is limited to 128 levels, so they fit.
        let mut open: u128 = 0;
        let mut depth = 0u32;
        loop {
            // A value.
            match self.peek_value("a value")? {
                b'"' => self.skip_string()?,
                b'{' => {
                    self.enter()?;
                    if self.peek_value("a key or `}`")? == b'}' {
                        self.leave();
                    } else {
                        open = open << 1 | 1;
                        depth += 1;
                        self.skip_key()?;
                        continue;
                    }
                }
                b'[' => {
                    self.enter()?;
                    if self.peek_value("a value or `]`")? == b']' {
                        self.leave();
                    } else {
                        open <<= 1;
                        depth += 1;
                        continue;
                    }
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                b'-' | b'0'..=b'9' => self.skip_number()?,
                _ => return Err(self.error("expected a JSON value")),
            }
            // After a value: close what ends here, or go on to the next element.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                let is_object = open & 1 == 1;
                let close = if is_object { b'}' } else { b']' };
                match self.peek_value(if is_object {
                    "`,` or `}`"
                } else {
                    "`,` or `]`"
                })? {
                    b',' => {
                        self.input.pos += 1;
                        if is_object {
                            self.skip_key()?;
                        }
                        break;
                    }
                    b if b == close => {
                        self.leave();
                        open >>= 1;
                        depth -= 1;
                    }
                    _ => {
                        return Err(self.error(if is_object {
                            "expected `,` or `}` after an object's value"
                        } else {
                            "expected `,` or `]` after an array's element"
                        }));
                    }
                }
            }
        }
    }

    /// A key and its colon, inside an object being skipped.
    fn skip_key(&mut self) -> Res<()> {
        if self.peek_value("a key")? != b'"' {
            return Err(self.error("expected a key (a string)"));
        }
        self.skip_string()?;
        if self.peek_value("`:`")? != b':' {
            return Err(self.error("expected `:` after an object's key"));
        }
        self.input.pos += 1;
        Ok(())
    }

    /// A string whose text is not needed: its escapes and its UTF-8 are checked, its bytes not
    /// kept.
    fn skip_string(&mut self) -> Res<()> {
        self.input.pos += 1;
        loop {
            let input = &mut self.input;
            let run = plain_run(&input.buf[input.pos..input.end]);
            match (input.pos + run < input.end).then_some(run) {
                Some(k) => {
                    input.pos += k;
                    match input.buf[input.pos] {
                        b'"' => {
                            input.pos += 1;
                            return Ok(());
                        }
                        b'\\' => {
                            input.pos += 1;
                            self.scratch.clear();
                            self.escape()?;
                        }
                        0x80.. => self.skip_char()?,
                        _ => {
                            return Err(self.error(
                                "control character (\\u0000-\\u001F) in a string: it must be escaped",
                            ));
                        }
                    }
                }
                None => {
                    input.pos = input.end;
                    if input.more()?.is_none() {
                        return Err(self.eof("the end of a string"));
                    }
                }
            }
        }
    }

    /// One character of more than one byte, checked to be UTF-8.
    fn skip_char(&mut self) -> Res<()> {
        let len = match self.input.buf[self.input.pos] {
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => 0,
        };
        while self.input.end - self.input.pos < len {
            if self.input.more()?.is_none() {
                return Err(self.eof("the end of a string"));
            }
        }
        let pos = self.input.pos;
        if len == 0 || std::str::from_utf8(&self.input.buf[pos..pos + len]).is_err() {
            return Err(self.error("a string is not valid UTF-8"));
        }
        self.input.pos += len;
        Ok(())
    }

    /// A number whose value is not needed: its syntax is checked, however long it is.
    fn skip_number(&mut self) -> Res<()> {
        let mut state = NumberState::Start;
        loop {
            let input = &mut self.input;
            while input.pos < input.end {
                let b = input.buf[input.pos];
                match state.next(b) {
                    Some(next) => {
                        state = next;
                        input.pos += 1;
                    }
                    None if state.is_final() => return Ok(()),
                    None => return Err(self.error("invalid number")),
                }
            }
            if input.more()?.is_none() {
                return if state.is_final() {
                    Ok(())
                } else {
                    Err(self.eof("the rest of a number"))
                };
            }
        }
    }
}

/// The value of 1 to 19 decimal digits (fewer than 2^64), if `text` is that.
#[inline]
fn short_digits(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 19 {
        return None;
    }
    let mut value = 0u64;
    let mut chunks = text.chunks_exact(8);
    for chunk in &mut chunks {
        value = value * 100_000_000 + eight_digits(chunk)?;
    }
    for &b in chunks.remainder() {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        value = value * 10 + u64::from(digit);
    }
    Some(value)
}

/// The value of eight decimal digits, combined in a few multiplications (timestamps have
/// nineteen).
#[inline]
fn eight_digits(chunk: &[u8]) -> Option<u64> {
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    const HIGH_NIBBLES: u64 = 0xf0f0_f0f0_f0f0_f0f0;
    let v = u64::from_le_bytes(<[u8; 8]>::try_from(chunk).ok()?);
    // Every byte is 0x30 to 0x39: its high nibble is 3, and still 3 after adding 6.
    if v & HIGH_NIBBLES != ZEROS || v.wrapping_add(0x0606_0606_0606_0606) & HIGH_NIBBLES != ZEROS {
        return None;
    }
    let v = v - ZEROS;
    // Pairs of digits, then fours, then the eight (the first digit is the lowest byte).
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    let v = ((v & 0x0000_00ff_0000_00ff).wrapping_mul(100 + (1_000_000 << 32)))
        .wrapping_add(((v >> 16) & 0x0000_00ff_0000_00ff).wrapping_mul(1 + (10_000 << 32)))
        >> 32;
    Some(v)
}

/// Where a number's syntax is, byte by byte (for numbers that are skipped).
#[derive(Clone, Copy, PartialEq, Eq)]
enum NumberState {
    Start,
    Minus,
    Zero,
    Int,
    Dot,
    Frac,
    E,
    ESign,
    Exp,
}

impl NumberState {
    fn next(self, b: u8) -> Option<Self> {
        use NumberState::*;
        Some(match (self, b) {
            (Start, b'-') => Minus,
            (Start | Minus, b'0') => Zero,
            (Start | Minus, b'1'..=b'9') => Int,
            (Int, b'0'..=b'9') => Int,
            (Zero | Int, b'.') => Dot,
            (Dot | Frac, b'0'..=b'9') => Frac,
            (Zero | Int | Frac, b'e' | b'E') => E,
            (E, b'+' | b'-') => ESign,
            (E | ESign | Exp, b'0'..=b'9') => Exp,
            _ => return None,
        })
    }

    fn is_final(self) -> bool {
        matches!(self, Self::Zero | Self::Int | Self::Frac | Self::Exp)
    }
}

/// Parses a whole number token as serde_json does: integers exactly when they fit, else (and
/// for fractions and exponents) as the nearest `f64`. `None` when it is not a JSON number.
fn parse_number(token: &[u8]) -> Option<Number> {
    if let Some(n) = short_digits(token)
        && (token.len() == 1 || token.first() != Some(&b'0'))
    {
        return Some(Number::Unsigned(n));
    }
    let mut state = NumberState::Start;
    for &b in token {
        state = state.next(b)?;
    }
    if !state.is_final() {
        return None;
    }
    let text = std::str::from_utf8(token).ok()?;
    if matches!(state, NumberState::Zero | NumberState::Int) {
        if let Some(digits) = text.strip_prefix('-') {
            if let Ok(n) = digits.parse::<u64>()
                && n <= i64::MIN.unsigned_abs()
            {
                return Some(Number::Negative(
                    0i64.checked_sub_unsigned(n).unwrap_or(i64::MIN),
                ));
            }
        } else if let Ok(n) = text.parse::<u64>() {
            return Some(Number::Unsigned(n));
        }
    }
    let value: f64 = text.parse().ok()?;
    value.is_finite().then_some(Number::Float(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lexer(text: &str, chunk: usize) -> Lexer<&[u8]> {
        Lexer::new(Input::with_capacity(text.as_bytes(), chunk))
    }

    fn message(fail: Fail) -> (usize, usize, String) {
        match *fail.0 {
            Failure::Json {
                line,
                column,
                message,
            } => (line, column, message),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn strings_are_read_across_chunk_boundaries_with_their_escapes() {
        for chunk in [1, 2, 3, 5, 64] {
            let mut lx = lexer(r#"  "plain"  "a\"b\\c\/\n\u00e9\ud83d\ude00z" "#, chunk);
            assert_eq!(lx.peek().unwrap(), Some(b'"'));
            let text = lx.string().unwrap();
            assert_eq!(lx.bytes(text), b"plain", "chunk {chunk}");
            lx.peek().unwrap();
            let text = lx.string().unwrap();
            assert_eq!(
                lx.str(text).unwrap(),
                "a\"b\\c/\n\u{e9}\u{1f600}z",
                "chunk {chunk}"
            );
            assert_eq!(lx.peek().unwrap(), None);
        }
    }

    #[test]
    fn numbers_are_exact_integers_or_floats_as_serde_json_reads_them() {
        let cases = [
            ("0", Number::Unsigned(0)),
            ("18446744073709551615", Number::Unsigned(u64::MAX)),
            ("-9223372036854775808", Number::Negative(i64::MIN)),
            (
                "18446744073709551616",
                Number::Float(18446744073709551616.0),
            ),
            ("1.5e3", Number::Float(1500.0)),
            ("-0.25", Number::Float(-0.25)),
        ];
        for (text, expected) in cases {
            for chunk in [1, 4, 64] {
                let text = format!("{text} ");
                let mut lx = lexer(&text, chunk);
                lx.peek().unwrap();
                assert_eq!(lx.number().unwrap(), expected, "{text}");
            }
        }
        for bad in ["01", "1.", "-", "1e", ".5", "1.2.3", "--1"] {
            let mut lx = lexer(bad, 64);
            assert!(lx.number().is_err(), "{bad}");
            let wrapped = format!("[{bad}]");
            let mut lx = lexer(&wrapped, 64);
            assert!(lx.skip_value().is_err(), "{bad}");
        }
    }

    #[test]
    fn digits_are_read_eight_at_a_time_exactly() {
        for text in [
            "0",
            "7",
            "12345678",
            "123456789",
            "1544712660000000001",
            "9999999999999999999",
            "0000000000000000001",
            "98765432",
        ] {
            assert_eq!(short_digits(text.as_bytes()), text.parse().ok(), "{text}");
        }
        for bad in [
            "",
            "1234567a",
            "12345678:",
            "1/345678",
            "12345678901234567890",
            "+1",
        ] {
            assert_eq!(short_digits(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn integers_take_numbers_and_strings_of_digits_exactly() {
        let mut lx = lexer(r#"1544712660000000001 "1544712661000000003" 1e3 null"#, 3);
        assert_eq!(lx.integer(false).unwrap(), 1_544_712_660_000_000_001);
        assert_eq!(lx.integer(false).unwrap(), 1_544_712_661_000_000_003);
        assert_eq!(lx.integer(false).unwrap(), 1000);
        assert_eq!(lx.integer(false).unwrap(), 0);
        for bad in ["1.5", "-1", "\"x\"", "1e300", "{}"] {
            let (_, _, message) = message(lexer(bad, 64).integer(false).unwrap_err());
            assert!(message.contains("non-negative integer"), "{bad}: {message}");
        }
        assert_eq!(lexer("-5", 64).integer(true).unwrap(), -5);
    }

    #[test]
    fn skipping_checks_the_syntax_of_what_it_skips() {
        let good =
            r#"{"a": [1, -2.5e3, "x\"y", {"b": null, "c": [true, false, {}]}, []], "d": {}}"#;
        for chunk in [1, 3, 64] {
            let text = format!("{good} 7");
            let mut lx = lexer(&text, chunk);
            lx.skip_value().unwrap();
            assert_eq!(lx.peek().unwrap(), Some(b'7'));
        }
        for bad in [
            r#"{"a" 1}"#,
            r#"{"a": 1,}"#,
            r#"[1,]"#,
            r#"[1 2]"#,
            r#"{"a": tru}"#,
            r#"{1: 2}"#,
            r#"["a]"#,
            "[\"\u{1}\"]",
            r#"["\x"]"#,
            r#"{"a": [}"#,
        ] {
            assert!(lexer(bad, 64).skip_value().is_err(), "{bad}");
        }
    }

    #[test]
    fn nesting_is_limited_without_recursion() {
        let deep = "[".repeat(100_000);
        let (_, column, message) = message(lexer(&deep, 64).skip_value().unwrap_err());
        assert!(message.contains("deeper than 128"), "{message}");
        assert_eq!(column, 129);
        let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
        lexer(&ok, 64).skip_value().unwrap();
    }

    #[test]
    fn errors_name_the_line_and_column_of_the_token_at_fault() {
        let text = "{\"a\": 1,\n  \"b\": tx}";
        for chunk in [1, 2, 64] {
            let mut lx = lexer(text, chunk);
            assert!(lx.begin_object("an object").unwrap());
            let mut first = true;
            let mut failure = None;
            while let Some(()) = lx.next_key(&mut first, |_| ()).unwrap() {
                if let Err(err) = lx.skip_value() {
                    failure = Some(err);
                    break;
                }
            }
            assert_eq!(
                message(failure.unwrap()),
                (2, 8, "expected a JSON value".into())
            );
        }
        let (line, column, message) = message(
            lexer("\n\n  \"abc", 2)
                .string_or_null("a name")
                .unwrap_err(),
        );
        assert_eq!((line, column), (3, 7));
        assert!(message.contains("ends too early"), "{message}");
    }

    #[test]
    fn invalid_types_say_what_was_found_on_one_line() {
        let (_, _, message) = message(
            lexer("\"a\\nb\\u001b[2J\"", 64)
                .begin_object("an object")
                .unwrap_err(),
        );
        assert_eq!(
            message,
            r#"invalid type: string "a\nb\u{1b}[2J", expected an object"#
        );
    }

    /// What `Marks` finds, found one byte at a time.
    fn marks_by_hand(block: &[u8]) -> (u64, u64, bool) {
        let mut quote = 0;
        let mut bracket = 0;
        for (k, &b) in block.iter().enumerate() {
            quote |= u64::from(b == b'"') << k;
            bracket |= u64::from(b"{}[]Y_y\x7f".contains(&b)) << k;
        }
        (quote, bracket, block.contains(&b'\\'))
    }

    /// A JSON value with long strings full of what the object scan must not miscount: brackets,
    /// quotes and backslashes (escaped by serde_json), and bytes past ASCII.
    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            "[a-z{}\\[\\]\"\\\\ /é]{0,90}".prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            Just(serde_json::Value::Null),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                proptest::collection::btree_map("[a-z\\]\"{]{1,12}", inner, 0..6)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn marks_find_every_quote_backslash_and_bracket(
            block in proptest::collection::vec(proptest::prelude::any::<u8>(), 64),
            special in proptest::collection::vec((0usize..64, proptest::sample::select(
                b"\"\\{}[]Y_y\x7f\xfb\xdb\xfd\xdd\xd9\x79;".to_vec())), 0..40),
        ) {
            let mut block = block;
            for (at, byte) in special {
                block[at] = byte;
            }
            let marks = Marks::of(&block);
            proptest::prop_assert_eq!(
                (marks.quote, marks.bracket, marks.backslash),
                marks_by_hand(&block)
            );
        }

        #[test]
        fn an_object_is_copied_to_where_its_brackets_close(
            fields in proptest::collection::btree_map("[a-z]{1,8}", json_value(), 0..8),
            chunk in proptest::sample::select(vec![1usize, 7, 63, 64, 65, 200, 8192]),
        ) {
            let object = serde_json::Value::Object(fields.into_iter().collect()).to_string();
            let text = format!("{object} , {{\"next\": \"}}\"}}");
            let mut lx = lexer(&text, chunk);
            proptest::prop_assert_eq!(lx.peek().unwrap(), Some(b'{'));
            let mut out = Vec::new();
            lx.copy_object(&mut out).unwrap();
            proptest::prop_assert_eq!(String::from_utf8_lossy(&out), object.as_str());
            let mut rest = Vec::new();
            proptest::prop_assert!(lx.comma_then_object(&mut rest).unwrap());
        }
    }
}
