//! When an export tries again: which answers the OTLP specification calls transient, how long
//! to wait before the next attempt, and the budget that all attempts of one export share.
//!
//! Both transports use it, so that gRPC and HTTP retry alike: exponential backoff with full
//! jitter (a random wait up to a cap that doubles, so that the clients of a backend that comes
//! back do not all return at once), at least as long as the backend asked for (gRPC
//! `RetryInfo`, HTTP `Retry-After`), and never past the export's deadline. What happens to a
//! batch once its budget is spent is the processor's business (it goes back to the queue).
//!
//! [`run`] is the one loop that both transports' exports go through: a transport only says
//! how one attempt went.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tonic_types::StatusExt as _;

use crate::processor::{Delivered, ExportResult, Failure};

/// The cap of the first wait; it doubles after each attempt, up to [`MAX_INTERVAL`].
pub(crate) const FIRST_INTERVAL: Duration = Duration::from_millis(100);

/// The largest cap. It is the default `shutdown_timeout`: an export waiting to try again when
/// a shutdown begins tries once more before that shutdown's deadline.
pub(crate) const MAX_INTERVAL: Duration = Duration::from_secs(5);

/// What a failed attempt says about trying again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// The failure is not transient: another attempt would fail the same way.
    Never,
    /// Transient: try again after the backoff, or after the delay the backend asked for when
    /// that is longer.
    After(Option<Duration>),
}

/// The OTLP/gRPC rules: `CANCELLED`, `DEADLINE_EXCEEDED`, `ABORTED`, `OUT_OF_RANGE`,
/// `UNAVAILABLE` and `DATA_LOSS` are transient; `RESOURCE_EXHAUSTED` only when the status
/// carries a `google.rpc.RetryInfo` (the backend says it will recover); nothing else is. The
/// `RetryInfo` delay is honoured whatever the code.
pub(crate) fn grpc(status: &tonic::Status) -> Retry {
    use tonic::Code;
    // Decoded from `grpc-status-details-bin`, which arrives in a header block (bounded by the
    // HTTP/2 header size limit); an undecodable one counts as absent.
    let retry_info = status.get_details_retry_info();
    match status.code() {
        Code::ResourceExhausted => match retry_info {
            Some(info) => Retry::After(info.retry_delay),
            None => Retry::Never,
        },
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => Retry::After(retry_info.and_then(|info| info.retry_delay)),
        _ => Retry::Never,
    }
}

/// The OTLP/HTTP rules: 429, 502, 503 and 504 are transient, with `Retry-After` honoured;
/// nothing else is. (A failure with no answer at all, a refused connection or a timeout, is
/// transient too; the transport decides that.)
pub(crate) fn http(status: u16, retry_after: Option<&http::HeaderValue>) -> Retry {
    match status {
        429 | 502 | 503 | 504 => Retry::After(
            retry_after
                .and_then(|v| v.to_str().ok())
                .and_then(|v| parse_retry_after(v, SystemTime::now())),
        ),
        _ => Retry::Never,
    }
}

/// `Retry-After` as delay-seconds (`120`) or as an HTTP-date (`Fri, 31 Dec 1999 23:59:59
/// GMT`, a date in the past meaning now). Anything else counts as absent. No cap here: the
/// export's budget caps every wait.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The attempts of one export, which share its deadline (`batch.export_timeout` from its
/// start).
#[derive(Debug)]
pub(crate) struct Attempts {
    deadline: Instant,
    /// The cap of the next wait.
    cap: Duration,
}

impl Attempts {
    pub(crate) fn new(budget: Duration) -> Self {
        Self {
            deadline: Instant::now() + budget,
            cap: FIRST_INTERVAL,
        }
    }

    /// How long the next attempt may take: `request_timeout`, or what is left of the budget if
    /// that is less; `None` once nothing is left.
    pub(crate) fn next_timeout(&self, request_timeout: Duration) -> Option<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        (!left.is_zero()).then(|| left.min(request_timeout))
    }

    /// How long to wait after a transient failure before the next attempt: a random time up to
    /// the cap (which then doubles), or `asked` by the backend if that is longer, and never
    /// past the deadline. `None` when the budget is already spent.
    pub(crate) fn wait(&mut self, asked: Option<Duration>) -> Option<Duration> {
        let jitter = full_jitter(self.cap);
        self.cap = (self.cap * 2).min(MAX_INTERVAL);
        let wait = asked.map_or(jitter, |asked| asked.max(jitter));
        let left = self.deadline.saturating_duration_since(Instant::now());
        (!left.is_zero()).then(|| wait.min(left))
    }
}

/// An attempt that did not deliver: why (cleaned of secrets, fit to log) and whether to try
/// again.
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) reason: String,
    pub(crate) retry: Retry,
}

/// One export: `attempt` is called with the time the attempt may take until one is answered,
/// one fails for a reason that is not transient, or the export's `budget` is spent. An attempt
/// that does not finish in its time fails as transient ("no answer"). `protocol` names the
/// transport in the reasons.
pub(crate) async fn run<F, Fut>(
    protocol: &str,
    budget: Duration,
    request_timeout: Duration,
    last_attempt: &LastAttempt,
    mut attempt: F,
) -> ExportResult
where
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = Result<Delivered, Failed>>,
{
    let mut attempts = Attempts::new(budget);
    let mut last = None;
    while let Some(timeout) = attempts.next_timeout(request_timeout) {
        let failed = match tokio::time::timeout(timeout, attempt(timeout)).await {
            Ok(Ok(delivered)) => {
                last_attempt.succeeded();
                return Ok(delivered);
            }
            Ok(Err(failed)) => failed,
            Err(_) => Failed {
                reason: format!(
                    "{protocol} export failed: no answer within {}ms",
                    timeout.as_millis()
                ),
                retry: Retry::After(None),
            },
        };
        last_attempt.failed(&failed.reason);
        let Retry::After(asked) = failed.retry else {
            return Err(Failure::permanent(failed.reason));
        };
        if let Some(wait) = attempts.wait(asked) {
            tokio::time::sleep(wait).await;
        }
        last = Some(failed.reason);
    }
    Err(Failure::transient(last.unwrap_or_else(|| {
        format!("{protocol} export failed: no time left before the export deadline")
    })))
}

/// Why the most recent failed attempt of any export failed, for the processor to name when it
/// gives an export up itself (at its backstop, or at shutdown's deadline) while the export is
/// still retrying: "the backend refused the connection" says more than "it did not finish".
#[derive(Clone, Default)]
pub(crate) struct LastAttempt(Arc<Mutex<Option<String>>>);

impl LastAttempt {
    fn failed(&self, reason: &str) {
        if let Ok(mut last) = self.0.lock() {
            *last = Some(reason.to_owned());
        }
    }

    fn succeeded(&self) {
        if let Ok(mut last) = self.0.lock() {
            *last = None;
        }
    }

    pub(crate) fn get(&self) -> Option<String> {
        self.0.lock().ok().and_then(|last| last.clone())
    }
}

/// A uniformly random duration from zero to `cap`.
fn full_jitter(cap: Duration) -> Duration {
    let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(fastrand::u64(..=nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::ErrorDetails;

    fn with_retry_info(code: tonic::Code, delay: Option<Duration>) -> tonic::Status {
        tonic::Status::with_error_details(code, "busy", ErrorDetails::with_retry_info(delay))
    }

    #[test]
    fn grpc_codes_follow_the_otlp_specification() {
        use tonic::Code;
        for code in [
            Code::Cancelled,
            Code::DeadlineExceeded,
            Code::Aborted,
            Code::OutOfRange,
            Code::Unavailable,
            Code::DataLoss,
        ] {
            assert_eq!(
                grpc(&tonic::Status::new(code, "")),
                Retry::After(None),
                "{code:?}"
            );
        }
        for code in [
            Code::Unknown,
            Code::InvalidArgument,
            Code::NotFound,
            Code::AlreadyExists,
            Code::PermissionDenied,
            Code::FailedPrecondition,
            Code::Unimplemented,
            Code::Internal,
            Code::Unauthenticated,
            // Without RetryInfo the backend does not say it will recover.
            Code::ResourceExhausted,
        ] {
            assert_eq!(
                grpc(&tonic::Status::new(code, "")),
                Retry::Never,
                "{code:?}"
            );
        }
    }

    #[test]
    fn grpc_retry_info_makes_resource_exhausted_transient_and_sets_the_delay() {
        let two = Some(Duration::from_secs(2));
        let status = with_retry_info(tonic::Code::ResourceExhausted, two);
        assert_eq!(grpc(&status), Retry::After(two));
        // RetryInfo without a delay still says the backend will recover.
        let status = with_retry_info(tonic::Code::ResourceExhausted, None);
        assert_eq!(grpc(&status), Retry::After(None));
        let status = with_retry_info(tonic::Code::Unavailable, two);
        assert_eq!(grpc(&status), Retry::After(two));
        // A code that is never transient stays so.
        let status = with_retry_info(tonic::Code::InvalidArgument, two);
        assert_eq!(grpc(&status), Retry::Never);
        // Details that do not decode count as absent.
        let garbage = tonic::Status::with_details(
            tonic::Code::ResourceExhausted,
            "busy",
            bytes::Bytes::from_static(b"\xff\xff\xff"),
        );
        assert_eq!(grpc(&garbage), Retry::Never);
    }

    #[test]
    fn http_statuses_follow_the_otlp_specification() {
        for status in [429, 502, 503, 504] {
            assert_eq!(http(status, None), Retry::After(None), "{status}");
        }
        for status in [400, 401, 403, 404, 408, 413, 500, 501, 505] {
            assert_eq!(http(status, None), Retry::Never, "{status}");
        }
        let after = http::HeaderValue::from_static("7");
        assert_eq!(
            http(503, Some(&after)),
            Retry::After(Some(Duration::from_secs(7)))
        );
        assert_eq!(http(400, Some(&after)), Retry::Never);
    }

    #[test]
    fn retry_after_as_seconds_and_as_an_http_date() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").expect("date");
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        // A date already past: now.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        for nonsense in [
            "",
            "-5",
            "1.5",
            "soon",
            "Sun, 06 Nov 1994",
            "99999999999999999999",
        ] {
            assert_eq!(parse_retry_after(nonsense, now), None, "{nonsense:?}");
        }
    }

    #[test]
    fn waits_are_random_below_a_doubling_cap_and_never_pass_the_deadline() {
        let mut attempts = Attempts::new(Duration::from_secs(3600));
        let mut cap = FIRST_INTERVAL;
        for _ in 0..12 {
            let wait = attempts.wait(None).expect("time is left");
            assert!(wait <= cap, "{wait:?} > {cap:?}");
            cap = (cap * 2).min(MAX_INTERVAL);
        }
        assert_eq!(cap, MAX_INTERVAL);
        // Full jitter: the waits under one cap are spread over it, not all the same.
        let waits: Vec<Duration> = (0..50).map(|_| full_jitter(MAX_INTERVAL)).collect();
        assert!(waits.iter().any(|w| *w < MAX_INTERVAL / 2), "{waits:?}");
        assert!(waits.iter().any(|w| *w > MAX_INTERVAL / 2), "{waits:?}");
        // The backend's delay is a floor; the budget a ceiling.
        let mut attempts = Attempts::new(Duration::from_secs(3600));
        assert_eq!(
            attempts.wait(Some(Duration::from_secs(60))),
            Some(Duration::from_secs(60))
        );
        let mut attempts = Attempts::new(Duration::from_millis(300));
        let wait = attempts
            .wait(Some(Duration::from_secs(3600)))
            .expect("left");
        assert!(wait <= Duration::from_millis(300), "{wait:?}");
        let spent = Attempts::new(Duration::ZERO);
        assert_eq!(spent.next_timeout(Duration::from_secs(10)), None);
        let fresh = Attempts::new(Duration::from_secs(3600));
        assert_eq!(
            fresh.next_timeout(Duration::from_secs(10)),
            Some(Duration::from_secs(10))
        );
    }
}
