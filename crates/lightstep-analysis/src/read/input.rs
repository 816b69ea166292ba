//! The input of every reader: read in chunks into one buffer that the parsers scan directly.
//!
//! `io::Read` one byte at a time (what serde_json's reader does) costs a call per byte; reading
//! the whole file first costs its size in memory. Here the input is read 64 KiB at a time, and a
//! parser works on the buffered bytes in place, asking for more when it reaches their end:
//! what it still needs (the token it is in) moves to the front, the rest is dropped. A token
//! longer than the buffer grows it, so memory follows the longest token, not the input.
//!
//! For JSON the lines of the dropped bytes are counted on the way, so that an error anywhere
//! can name its line and column.

use std::io::{self, Read};

/// Bytes read at a time. Also how far a reader may read past the trace it hands over.
pub(crate) const CHUNK: usize = 64 * 1024;

pub(super) struct Input<R> {
    reader: R,
    /// `buf[pos..end]` is read and not yet consumed; the whole buffer is initialized.
    pub(super) buf: Vec<u8>,
    pub(super) pos: usize,
    pub(super) end: usize,
    eof: bool,
    /// Offset in the input of `buf[0]`.
    base: u64,
    /// JSON: the line of `buf[0]` (from 1) and the input offset where that line starts.
    line: u64,
    line_start: u64,
}

impl<R: Read> Input<R> {
    pub(super) fn new(reader: R) -> Self {
        Self::with_capacity(reader, CHUNK)
    }

    /// An input read `capacity` bytes at a time (tests use a few bytes, to cross every token
    /// with a chunk boundary).
    pub(super) fn with_capacity(reader: R, capacity: usize) -> Self {
        Self {
            reader,
            buf: vec![0; capacity.max(1)],
            pos: 0,
            end: 0,
            eof: false,
            base: 0,
            line: 1,
            line_start: 0,
        }
    }

    /// A batch's text as an input of its own, which starts where the text was in the whole
    /// input (`at`), so that its errors are located in the whole input.
    pub(super) fn batch(bytes: Vec<u8>, at: &super::batch::Position) -> Self
    where
        R: Default,
    {
        let end = bytes.len();
        Self {
            reader: R::default(),
            buf: bytes,
            pos: 0,
            end,
            eof: true,
            base: at.offset,
            line: at.line,
            line_start: at.line_start,
        }
    }

    /// Where `buf[at]` is in the input, for a batch that starts there.
    pub(super) fn position(&self, at: usize, depth: usize) -> super::batch::Position {
        let (line, line_start) = self.line_of(at);
        super::batch::Position {
            offset: self.offset(at),
            line,
            line_start,
            depth,
        }
    }

    /// The bytes read and not yet consumed.
    pub(super) fn available(&self) -> &[u8] {
        self.buf.get(self.pos..self.end).unwrap_or(&[])
    }

    /// Reads more: drops the consumed bytes (before `pos`), moves the rest to the front and
    /// fills the buffer behind them, growing it when it is full. Returns the number of bytes
    /// dropped, by which every index into the buffer moves down; `None` at the end of the input.
    pub(super) fn more(&mut self) -> io::Result<Option<usize>> {
        let dropped = self.pos;
        if dropped > 0 {
            self.count_lines(dropped);
            self.buf.copy_within(dropped..self.end, 0);
            self.base += dropped as u64;
            self.end -= dropped;
            self.pos = 0;
        }
        if self.eof {
            return Ok(None);
        }
        if self.end == self.buf.len() {
            let grown = self.buf.len() * 2;
            self.buf.resize(grown, 0);
        }
        loop {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(None);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(Some(dropped));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Offset in the input of `buf[at]`.
    pub(super) fn offset(&self, at: usize) -> u64 {
        self.base + at as u64
    }

    fn count_lines(&mut self, upto: usize) {
        let dropped = &self.buf[..upto];
        if let Some(last) = memchr::memrchr(b'\n', dropped) {
            self.line += memchr::memchr_iter(b'\n', dropped).count() as u64;
            self.line_start = self.base + last as u64 + 1;
        }
    }

    /// The line of `buf[at]` (from 1) and the input offset where that line starts.
    fn line_of(&self, at: usize) -> (u64, u64) {
        let before = self.buf.get(..at.min(self.end)).unwrap_or(&[]);
        let newlines = memchr::memchr_iter(b'\n', before).count() as u64;
        let line_start = match memchr::memrchr(b'\n', before) {
            Some(last) => self.base + last as u64 + 1,
            None => self.line_start,
        };
        (self.line + newlines, line_start)
    }

    /// Line (from 1) and column (from 1, in bytes) of `buf[at]`.
    pub(super) fn location(&self, at: usize) -> (usize, usize) {
        let (line, line_start) = self.line_of(at);
        let column = self.offset(at).saturating_sub(line_start) + 1;
        (
            usize::try_from(line).unwrap_or(usize::MAX),
            usize::try_from(column).unwrap_or(usize::MAX),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_keeps_what_is_not_consumed_and_counts_the_lines_it_drops() {
        let text = b"ab\ncd\nef";
        let mut input = Input::with_capacity(&text[..], 4);
        assert_eq!(input.more().unwrap(), Some(0));
        assert_eq!(input.available(), b"ab\nc");
        input.pos = 3;
        assert_eq!(input.more().unwrap(), Some(3));
        assert_eq!(input.available(), b"cd\ne");
        assert_eq!(input.location(1), (2, 2), "the d");
        // Nothing consumed and the buffer full: it grows.
        assert_eq!(input.more().unwrap(), Some(0));
        assert_eq!(input.available(), b"cd\nef");
        assert_eq!(input.location(4), (3, 2), "the f");
        input.pos = input.end;
        assert_eq!(input.more().unwrap(), None);
    }
}
