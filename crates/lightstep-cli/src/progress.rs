//! A progress line on standard error, shown only on a terminal and only once reading has taken
//! more than a moment, so that pipes, files and quick runs stay clean.

use std::io::{self, IsTerminal, Read, Write};
use std::time::{Duration, Instant};

const DELAY: Duration = Duration::from_millis(400);
const EVERY: Duration = Duration::from_millis(150);

/// Counts bytes as they are read and redraws the line now and then.
#[derive(Debug)]
pub(crate) struct Progress {
    enabled: bool,
    started: Instant,
    last_draw: Option<Instant>,
    label: String,
    total: Option<u64>,
    read: u64,
    traces: usize,
}

impl Progress {
    pub(crate) fn new(label: String, total: Option<u64>) -> Self {
        Self {
            enabled: io::stderr().is_terminal(),
            started: Instant::now(),
            last_draw: None,
            label,
            total,
            read: 0,
            traces: 0,
        }
    }

    pub(crate) fn add_bytes(&mut self, n: usize) {
        self.read += n as u64;
        self.tick();
    }

    pub(crate) fn add_trace(&mut self) {
        self.traces += 1;
        self.tick();
    }

    fn tick(&mut self) {
        if !self.enabled || self.started.elapsed() < DELAY {
            return;
        }
        if self.last_draw.is_some_and(|t| t.elapsed() < EVERY) {
            return;
        }
        self.last_draw = Some(Instant::now());
        let mb = self.read as f64 / 1e6;
        let line = match self.total {
            Some(total) if total > 0 => {
                let pct = 100.0 * self.read as f64 / total as f64;
                let filled = (pct / 5.0) as usize;
                format!(
                    "{} [{}{}] {pct:>5.1}% {mb:.1} MB, {} traces",
                    self.label,
                    "#".repeat(filled.min(20)),
                    " ".repeat(20 - filled.min(20)),
                    self.traces
                )
            }
            _ => format!("{} {mb:.1} MB, {} traces", self.label, self.traces),
        };
        let mut err = io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
    }

    /// Clears the line if one was drawn.
    pub(crate) fn finish(&mut self) {
        if self.last_draw.is_some() {
            let mut err = io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}

/// A reader that reports to a [`Progress`].
#[derive(Debug)]
pub(crate) struct Counting<'p, R> {
    pub(crate) inner: R,
    pub(crate) progress: &'p std::cell::RefCell<Progress>,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Ok(mut progress) = self.progress.try_borrow_mut() {
            progress.add_bytes(n);
        }
        Ok(n)
    }
}
