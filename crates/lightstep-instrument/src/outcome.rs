//! How the value an operation produced decides its span's status.
//!
//! An HTTP 404 is an error for the client that asked and not for the server that answered; a
//! gRPC `NOT_FOUND` likewise; an `Err` is an error for everyone. So a value does not say "error"
//! by itself: it gives a [`Report`] of what it is (a status code, a gRPC code, an error value)
//! and the span's role (server, client, database) applies the semantic conventions' rules to it.

use std::fmt;

/// A gRPC status code, as the semantic conventions name it in `rpc.response.status_code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GrpcCode {
    /// `OK` (0).
    Ok,
    /// `CANCELLED` (1).
    Cancelled,
    /// `UNKNOWN` (2).
    Unknown,
    /// `INVALID_ARGUMENT` (3).
    InvalidArgument,
    /// `DEADLINE_EXCEEDED` (4).
    DeadlineExceeded,
    /// `NOT_FOUND` (5).
    NotFound,
    /// `ALREADY_EXISTS` (6).
    AlreadyExists,
    /// `PERMISSION_DENIED` (7).
    PermissionDenied,
    /// `RESOURCE_EXHAUSTED` (8).
    ResourceExhausted,
    /// `FAILED_PRECONDITION` (9).
    FailedPrecondition,
    /// `ABORTED` (10).
    Aborted,
    /// `OUT_OF_RANGE` (11).
    OutOfRange,
    /// `UNIMPLEMENTED` (12).
    Unimplemented,
    /// `INTERNAL` (13).
    Internal,
    /// `UNAVAILABLE` (14).
    Unavailable,
    /// `DATA_LOSS` (15).
    DataLoss,
    /// `UNAUTHENTICATED` (16).
    Unauthenticated,
}

impl GrpcCode {
    const ALL: [GrpcCode; 17] = [
        Self::Ok,
        Self::Cancelled,
        Self::Unknown,
        Self::InvalidArgument,
        Self::DeadlineExceeded,
        Self::NotFound,
        Self::AlreadyExists,
        Self::PermissionDenied,
        Self::ResourceExhausted,
        Self::FailedPrecondition,
        Self::Aborted,
        Self::OutOfRange,
        Self::Unimplemented,
        Self::Internal,
        Self::Unavailable,
        Self::DataLoss,
        Self::Unauthenticated,
    ];

    /// The code for its number; numbers outside 0..=16 read as `UNKNOWN`, as gRPC itself does.
    pub fn from_i32(code: i32) -> Self {
        usize::try_from(code)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
            .unwrap_or(Self::Unknown)
    }

    /// The code from a `grpc-status` header or trailer value; `None` when it is not a number.
    pub fn from_header(value: &[u8]) -> Option<Self> {
        std::str::from_utf8(value)
            .ok()?
            .trim()
            .parse::<i32>()
            .ok()
            .map(Self::from_i32)
    }

    /// The upper-case name the conventions record (`"OK"`, `"DEADLINE_EXCEEDED"`, ..).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Cancelled => "CANCELLED",
            Self::Unknown => "UNKNOWN",
            Self::InvalidArgument => "INVALID_ARGUMENT",
            Self::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Self::NotFound => "NOT_FOUND",
            Self::AlreadyExists => "ALREADY_EXISTS",
            Self::PermissionDenied => "PERMISSION_DENIED",
            Self::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Self::FailedPrecondition => "FAILED_PRECONDITION",
            Self::Aborted => "ABORTED",
            Self::OutOfRange => "OUT_OF_RANGE",
            Self::Unimplemented => "UNIMPLEMENTED",
            Self::Internal => "INTERNAL",
            Self::Unavailable => "UNAVAILABLE",
            Self::DataLoss => "DATA_LOSS",
            Self::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    /// Whether a server that answered with this code failed: only `UNKNOWN`,
    /// `DEADLINE_EXCEEDED`, `UNIMPLEMENTED`, `INTERNAL`, `UNAVAILABLE` and `DATA_LOSS` count,
    /// the others describe the caller's request.
    pub fn is_server_error(self) -> bool {
        matches!(
            self,
            Self::Unknown
                | Self::DeadlineExceeded
                | Self::Unimplemented
                | Self::Internal
                | Self::Unavailable
                | Self::DataLoss
        )
    }

    /// Whether a client that received this code failed: every code but `OK`.
    pub fn is_client_error(self) -> bool {
        self != Self::Ok
    }
}

impl fmt::Display for GrpcCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error value an operation ended with.
#[derive(Clone, Copy)]
pub struct Failure<'a> {
    /// `error.type`: a low-cardinality class of the error, such as a type name.
    pub error_type: &'a str,
    /// The message for the span status and the exception event.
    pub message: &'a dyn fmt::Display,
}

impl fmt::Debug for Failure<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Failure")
            .field("error_type", &self.error_type)
            .field("message", &format_args!("{}", self.message))
            .finish()
    }
}

/// What a finished operation produced, as far as its span is concerned.
///
/// Built by [`Outcome::report`]; the span's role turns it into attributes and a status.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct Report<'a> {
    /// The HTTP response status code, recorded as `http.response.status_code`.
    pub http_status: Option<u16>,
    /// The gRPC status code, recorded as `rpc.response.status_code`.
    pub grpc_code: Option<GrpcCode>,
    /// A message that goes with `grpc_code` (the gRPC status message), used as the span
    /// status description when the code is an error.
    pub message: Option<&'a str>,
    /// An error value: always makes the span an error, with `error.type` and an `exception`
    /// event.
    pub failure: Option<Failure<'a>>,
}

impl<'a> Report<'a> {
    /// A success that carries nothing more.
    pub fn ok() -> Self {
        Self::default()
    }

    /// An HTTP response with this status code.
    pub fn http(status: u16) -> Self {
        Self {
            http_status: Some(status),
            ..Self::default()
        }
    }

    /// A gRPC call that ended with this code (and message, if any).
    pub fn grpc(code: GrpcCode, message: Option<&'a str>) -> Self {
        Self {
            grpc_code: Some(code),
            message,
            ..Self::default()
        }
    }

    /// An operation that failed with an error value.
    pub fn failure(error_type: &'a str, message: &'a dyn fmt::Display) -> Self {
        Self {
            failure: Some(Failure {
                error_type,
                message,
            }),
            ..Self::default()
        }
    }
}

/// A value that ends a traced operation and says how it went.
///
/// Implemented for `()`, [`http::Response`], [`http::StatusCode`], `Result<T, E>` (where `T`
/// is an `Outcome` and `E` displays; a `tonic::Status` error keeps its own code) and, with the
/// `tonic` feature, `tonic::Status`, `tonic::Code` and `tonic::Response`.
///
/// ```
/// use lightstep_instrument::{Outcome, Report};
///
/// /// A reply from a home-grown protocol: 0 is success.
/// struct Reply { code: u16 }
///
/// impl Outcome for Reply {
///     fn report(&self) -> Report<'_> {
///         if self.code == 0 { Report::ok() } else { Report::failure("reply_error", &self.code) }
///     }
/// }
/// ```
pub trait Outcome {
    /// What the span should know about this value.
    fn report(&self) -> Report<'_>;
}

impl Outcome for () {
    fn report(&self) -> Report<'_> {
        Report::ok()
    }
}

impl<B> Outcome for http::Response<B> {
    fn report(&self) -> Report<'_> {
        Report::http(self.status().as_u16())
    }
}

impl Outcome for http::StatusCode {
    fn report(&self) -> Report<'_> {
        Report::http(self.as_u16())
    }
}

impl Outcome for GrpcCode {
    fn report(&self) -> Report<'_> {
        Report::grpc(*self, None)
    }
}

impl<T: Outcome, E: fmt::Display + 'static> Outcome for Result<T, E> {
    fn report(&self) -> Report<'_> {
        match self {
            Ok(value) => value.report(),
            Err(error) => error_report(error),
        }
    }
}

/// The report for an `Err`: a gRPC status keeps its code (so that the server-side split rules
/// apply to it), anything else is a failure named by its type.
pub(crate) fn error_report<E: fmt::Display + 'static>(error: &E) -> Report<'_> {
    #[cfg(feature = "tonic")]
    if let Some(status) = (error as &dyn std::any::Any).downcast_ref::<tonic::Status>() {
        return status.report();
    }
    Report::failure(error_type::<E>(), error)
}

/// `error.type` for an error of type `E`: its type name, or the convention's `_OTHER` for the
/// types that name no kind of error (a `String`, a `&str`, a boxed `dyn Error`), where the type
/// name would be the same for every error and say nothing.
fn error_type<E: 'static>() -> &'static str {
    use std::any::TypeId;
    use std::error::Error;
    let unnamed = [
        TypeId::of::<String>(),
        TypeId::of::<&'static str>(),
        TypeId::of::<Box<dyn Error>>(),
        TypeId::of::<Box<dyn Error + Send>>(),
        TypeId::of::<Box<dyn Error + Send + Sync>>(),
    ];
    let name = std::any::type_name::<E>();
    // The catch-all error types of anyhow and eyre, named without depending on them.
    if unnamed.contains(&TypeId::of::<E>()) || matches!(name, "anyhow::Error" | "eyre::Report") {
        "_OTHER"
    } else {
        name
    }
}

/// The report for any `Result`, whatever its `Ok` value: used by the database helpers, whose
/// results are rows rather than outcomes.
pub(crate) fn result_report<T, E: fmt::Display + 'static>(result: &Result<T, E>) -> Report<'_> {
    match result {
        Ok(_) => Report::ok(),
        Err(error) => error_report(error),
    }
}

#[cfg(feature = "tonic")]
mod tonic_impls {
    use super::{GrpcCode, Outcome, Report};

    impl From<tonic::Code> for GrpcCode {
        fn from(code: tonic::Code) -> Self {
            GrpcCode::from_i32(code as i32)
        }
    }

    impl Outcome for tonic::Status {
        fn report(&self) -> Report<'_> {
            Report::grpc(self.code().into(), Some(self.message()))
        }
    }

    impl Outcome for tonic::Code {
        fn report(&self) -> Report<'_> {
            Report::grpc((*self).into(), None)
        }
    }

    impl<T> Outcome for tonic::Response<T> {
        fn report(&self) -> Report<'_> {
            Report::grpc(GrpcCode::Ok, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_codes_round_trip() {
        for (i, code) in GrpcCode::ALL.iter().enumerate() {
            assert_eq!(GrpcCode::from_i32(i as i32), *code);
        }
        assert_eq!(GrpcCode::from_i32(99), GrpcCode::Unknown);
        assert_eq!(GrpcCode::from_i32(-1), GrpcCode::Unknown);
        assert_eq!(
            GrpcCode::from_header(b"4"),
            Some(GrpcCode::DeadlineExceeded)
        );
        assert_eq!(GrpcCode::from_header(b"x"), None);
        assert_eq!(GrpcCode::DeadlineExceeded.as_str(), "DEADLINE_EXCEEDED");
    }

    #[test]
    fn split_rules() {
        let server: Vec<_> = GrpcCode::ALL
            .iter()
            .filter(|c| c.is_server_error())
            .map(|c| c.as_str())
            .collect();
        assert_eq!(
            server,
            [
                "UNKNOWN",
                "DEADLINE_EXCEEDED",
                "UNIMPLEMENTED",
                "INTERNAL",
                "UNAVAILABLE",
                "DATA_LOSS"
            ]
        );
        assert_eq!(
            GrpcCode::ALL.iter().filter(|c| c.is_client_error()).count(),
            16
        );
    }

    #[test]
    fn result_reports() {
        let ok: Result<http::StatusCode, std::io::Error> = Ok(http::StatusCode::NOT_FOUND);
        assert_eq!(ok.report().http_status, Some(404));
        let err: Result<(), std::io::Error> = Err(std::io::Error::other("boom"));
        let failure = err.report().failure.expect("an error is a failure");
        assert_eq!(failure.error_type, "std::io::error::Error");
        assert_eq!(failure.message.to_string(), "boom");
        // Types that name no kind of error get the convention's fallback; the message stays.
        let err: Result<(), String> = Err("no such user".to_owned());
        let failure = err.report().failure.expect("an error is a failure");
        assert_eq!(failure.error_type, "_OTHER");
        assert_eq!(failure.message.to_string(), "no such user");
        let err: Result<(), &'static str> = Err("no such user");
        assert_eq!(err.report().failure.unwrap().error_type, "_OTHER");
        let err: Result<(), Box<dyn std::error::Error + Send + Sync>> = Err("boxed".into());
        assert_eq!(err.report().failure.unwrap().error_type, "_OTHER");
    }
}
