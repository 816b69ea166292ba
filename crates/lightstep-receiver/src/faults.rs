//! Testing knobs that make the receiver misbehave on purpose.
//!
//! An exporter's fault handling (retries, deadlines, dropped-span counts) can only be tested
//! against a backend that fails. These knobs make this receiver fail for real, on the wire:
//! a refused request gets a real gRPC `UNAVAILABLE` or HTTP `503`, a delayed one really waits
//! before it is handled. Nothing is stored from a request a knob refuses. When the receiver
//! requires an access token, a request without the right one is refused before the knobs see
//! it, and does not use up a simulated failure.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Handle on the fault knobs of a running receiver. Cheap to clone; changes apply to the
/// requests that arrive after them.
///
/// These are testing knobs: a receiver that nobody turns them on for behaves normally.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> lightstep_receiver::Result<()> {
/// use std::time::Duration;
///
/// let receiver = lightstep_receiver::Receiver::builder().start().await?;
/// // The exporter under test will see two UNAVAILABLE answers, then success.
/// receiver.faults().fail_next_requests(2);
/// assert_eq!(receiver.faults().pending_failures(), 2);
/// // Or a backend that takes a second per export.
/// receiver.faults().set_response_delay(Duration::from_secs(1));
/// receiver.shutdown().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct Faults {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    fail_next: AtomicU64,
    delay_ms: AtomicU64,
    held: AtomicU64,
}

/// Counts a request as held by the delay for as long as it lives, including when the client
/// goes away mid-delay and the request's future is dropped.
pub(crate) struct HeldRequest<'a>(&'a AtomicU64);

impl Drop for HeldRequest<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Faults {
    /// Answers the next `n` export requests with gRPC `UNAVAILABLE` / HTTP `503 Service
    /// Unavailable` (both retryable in OTLP) without storing anything. Replaces any count
    /// still pending; `0` turns the knob off.
    pub fn fail_next_requests(&self, n: u64) {
        self.inner.fail_next.store(n, Ordering::SeqCst);
    }

    /// How many requests are still to be failed.
    pub fn pending_failures(&self) -> u64 {
        self.inner.fail_next.load(Ordering::SeqCst)
    }

    /// Waits `delay` before handling each export request (before the access token is checked
    /// and anything is stored), as a slow backend would. `Duration::ZERO` turns it off. A very
    /// long delay behaves like a backend that black-holes requests; shutting the receiver down
    /// ends the wait.
    pub fn set_response_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.inner.delay_ms.store(ms, Ordering::SeqCst);
    }

    /// The current delay.
    pub fn response_delay(&self) -> Duration {
        Duration::from_millis(self.inner.delay_ms.load(Ordering::SeqCst))
    }

    /// How many requests the delay is holding right now. Lets a test wait until a client is
    /// really blocked on the receiver before it acts, instead of sleeping.
    pub fn delayed_requests(&self) -> u64 {
        self.inner.held.load(Ordering::SeqCst)
    }

    pub(crate) fn hold(&self) -> HeldRequest<'_> {
        self.inner.held.fetch_add(1, Ordering::SeqCst);
        HeldRequest(&self.inner.held)
    }

    /// Takes one pending failure, if any: true means "fail this request".
    pub(crate) fn take_failure(&self) -> bool {
        self.inner
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_counted_down_to_zero() {
        let f = Faults::default();
        assert!(!f.take_failure());
        f.fail_next_requests(2);
        assert!(f.take_failure());
        assert!(f.take_failure());
        assert!(!f.take_failure());
        assert_eq!(f.pending_failures(), 0);
    }
}
