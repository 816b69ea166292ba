//! Reading a request body against its deadlines: its first bytes within the body start
//! timeout, then at least the minimum rate once its room in the in-flight budget is made, and
//! all of it within the body timeout. Shared by both protocols' handlers.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use tokio::time::{Instant, Sleep};

use super::{App, BoxError, Failure};

/// The minimum body rate is measured from this long after a body's room is made: connections
/// take a moment to get up to speed.
const RATE_GRACE: Duration = Duration::from_secs(1);

/// Which deadline a body missed ([`BodyClock`]).
#[derive(Clone, Copy, Debug)]
pub(super) enum Late {
    /// No byte of it within the body start timeout.
    Start(Duration),
    /// Slower than the minimum rate, in bytes per second.
    Rate(u32),
    /// Not all of it within the body timeout.
    Whole(Duration),
}

impl Late {
    pub(super) fn message(self) -> String {
        match self {
            Late::Start(after) => {
                format!("the request body did not begin within {after:?} of its headers")
            }
            Late::Rate(rate) => {
                format!("the request body arrived slower than {rate} bytes per second")
            }
            Late::Whole(after) => format!("the request body did not arrive within {after:?}"),
        }
    }
}

/// When the next bytes of a request body must arrive: its first bytes within the body start
/// timeout of its headers; once its room in the budget is made, at least the minimum rate
/// (after [`RATE_GRACE`]); all of it within the body timeout.
#[derive(Debug)]
pub(super) struct BodyClock {
    start_timeout: Duration,
    body_timeout: Duration,
    start_by: Instant,
    whole_by: Instant,
    min_rate: u32,
    begun: bool,
    /// Since when the rate is measured, and the bytes received since.
    rate: Option<(Instant, u64)>,
}

impl BodyClock {
    pub(super) fn new(app: &App) -> Self {
        let now = Instant::now();
        Self {
            start_timeout: app.body_start_timeout,
            body_timeout: app.body_timeout,
            start_by: now + app.body_start_timeout,
            whole_by: now + app.body_timeout,
            min_rate: app.min_body_rate,
            begun: false,
            rate: None,
        }
    }

    /// The next deadline, and what missing it means.
    pub(super) fn deadline(&self) -> (Instant, Late) {
        let whole = (self.whole_by, Late::Whole(self.body_timeout));
        let other = if !self.begun {
            (self.start_by, Late::Start(self.start_timeout))
        } else if let Some((from, received)) = self.rate {
            // When the next byte is due at the minimum rate.
            let nanos = u128::from(received + 1) * 1_000_000_000 / u128::from(self.min_rate);
            let due = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
            (from + RATE_GRACE + due, Late::Rate(self.min_rate))
        } else {
            return whole;
        };
        if other.0 < whole.0 { other } else { whole }
    }

    /// Bytes of the body arrived.
    pub(super) fn received(&mut self, bytes: usize) {
        if bytes > 0 {
            self.begun = true;
        }
        if let Some((_, received)) = &mut self.rate {
            *received += bytes as u64;
        }
    }

    /// The body's room in the budget is made: from now on it must keep up the minimum rate.
    pub(super) fn measure_rate(&mut self) {
        self.rate = Some((Instant::now(), 0));
    }
}

/// Reads a body's frames against its [`BodyClock`], with one timer for the whole body: it is
/// moved only when it fires early (the rate deadline moves with every frame), so a body sent in
/// many tiny frames does not register a timer per frame.
pub(super) struct BodyReader<B> {
    body: Pin<Box<B>>,
    clock: BodyClock,
    timer: Pin<Box<Sleep>>,
    read_error: fn(BoxError) -> Failure,
}

impl<B> BodyReader<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    pub(super) fn new(body: B, clock: BodyClock, read_error: fn(BoxError) -> Failure) -> Self {
        let timer = Box::pin(tokio::time::sleep_until(clock.deadline().0));
        Self {
            body: Box::pin(body),
            clock,
            timer,
            read_error,
        }
    }

    /// The next frame's data (`None` at the end of the body; trailers are skipped: an export
    /// needs nothing from them).
    pub(super) async fn next(&mut self) -> Result<Option<Bytes>, Failure> {
        loop {
            tokio::select! {
                biased;
                frame = self.body.frame() => match frame {
                    None => return Ok(None),
                    Some(Err(e)) => return Err((self.read_error)(e.into())),
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            self.clock.received(data.len());
                            return Ok(Some(data));
                        }
                    }
                },
                () = self.timer.as_mut() => {
                    let (deadline, late) = self.clock.deadline();
                    if Instant::now() >= deadline {
                        return Err(Failure::TimedOut(late));
                    }
                    self.timer.as_mut().reset(deadline);
                }
            }
        }
    }

    /// Until when a reservation for this body may wait: its next deadline, and never past
    /// the whole body's.
    pub(super) fn deadline(&self) -> Instant {
        self.clock.deadline().0
    }

    /// See [`BodyClock::measure_rate`].
    pub(super) fn measure_rate(&mut self) {
        self.clock.measure_rate();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock(start: Duration, whole: Duration, rate: u32) -> BodyClock {
        let now = Instant::now();
        BodyClock {
            start_timeout: start,
            body_timeout: whole,
            start_by: now + start,
            whole_by: now + whole,
            min_rate: rate,
            begun: false,
            rate: None,
        }
    }

    #[test]
    fn a_body_must_begin_then_keep_up_the_minimum_rate_within_the_whole_timeout() {
        let mut body = clock(Duration::from_secs(10), Duration::from_secs(60), 1000);
        let (deadline, late) = body.deadline();
        assert!(matches!(late, Late::Start(_)));
        assert_eq!(deadline, body.start_by);
        // Begun, before its room is made: only the whole timeout applies.
        body.received(10);
        assert!(matches!(body.deadline().1, Late::Whole(_)));
        // Room made: the next byte is due after the grace and one byte's worth of the rate,
        // and each byte received moves that by as much.
        body.measure_rate();
        let (first, late) = body.deadline();
        assert!(matches!(late, Late::Rate(1000)));
        body.received(1000);
        let (later, _) = body.deadline();
        assert_eq!(later - first, Duration::from_secs(1));
        // Never past the whole timeout.
        body.received(1_000_000);
        assert!(matches!(body.deadline(), (at, Late::Whole(_)) if at == body.whole_by));
        assert!(
            Late::Rate(1000)
                .message()
                .contains("slower than 1000 bytes per second")
        );
        assert!(
            Late::Start(Duration::from_secs(10))
                .message()
                .contains("did not begin within 10s")
        );
    }
}
