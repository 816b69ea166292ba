//! A started receiver: where it listens, its store and counters, and its shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{
    Faults, ReceivedSpan, ReceiverStats, RequestRecord, Result, SpanStore, Trace,
    TraceServiceHandler, TraceServiceServer, service,
};

/// A started receiver. Dropping it stops the listeners (in-flight requests still get
/// [`shutdown`](Self::shutdown)'s grace period, on the runtime's tasks).
///
/// With [`ReceiverBuilder::start`](crate::ReceiverBuilder::start), the receiver runs on the
/// caller's runtime: on a current-thread runtime it answers only while that runtime is driven, so
/// code that blocks the runtime's thread while waiting for an export would wait for itself. Use
/// [`ReceiverBuilder::start_background`](crate::ReceiverBuilder::start_background) then.
#[derive(Debug)]
pub struct RunningReceiver {
    pub(crate) grpc_addr: SocketAddr,
    pub(crate) http_addr: SocketAddr,
    pub(crate) tls: bool,
    pub(crate) store: SpanStore,
    pub(crate) faults: Faults,
    pub(crate) app: Arc<service::App>,
    pub(crate) shutdown_tx: watch::Sender<bool>,
    pub(crate) listeners: Listeners,
}

impl RunningReceiver {
    fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }

    /// The OTLP/gRPC listener's bound address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The OTLP/HTTP listener's bound address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Whether the listeners serve TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The OTLP/gRPC endpoint URL, for example `http://127.0.0.1:41234` (`https://` with TLS).
    pub fn grpc_endpoint(&self) -> String {
        format!("{}://{}", self.scheme(), self.grpc_addr)
    }

    /// The OTLP/HTTP base URL, for example `http://127.0.0.1:41235`: what
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` takes (clients append `/v1/traces`).
    pub fn http_endpoint(&self) -> String {
        format!("{}://{}", self.scheme(), self.http_addr)
    }

    /// The full OTLP/HTTP traces URL, `<http_endpoint>/v1/traces`: what an endpoint given in
    /// code or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` takes.
    pub fn http_traces_url(&self) -> String {
        format!("{}{}", self.http_endpoint(), service::TRACES_PATH)
    }

    /// The span store (cheap to clone, usable from other tasks).
    pub fn store(&self) -> &SpanStore {
        &self.store
    }

    /// opentelemetry-proto's generated OTLP/gRPC trace server over this receiver, to mount on
    /// a tonic server of your own (beside your other services, behind your own layers or TLS).
    ///
    /// Exports through it go to this receiver's store, with the same access-token check, fault
    /// knobs, in-flight budget, counters and request records as its own listeners; once the
    /// receiver has shut down they get `UNAVAILABLE`. It accepts gzip and messages up to the
    /// receiver's request size limit. What differs is reading the request: tonic reads and
    /// decodes the whole message before this receiver sees it, so the body timeout and the
    /// in-flight budget only start after that, and an oversized or malformed message is
    /// answered by tonic (`OUT_OF_RANGE`, `RESOURCE_EXHAUSTED` once inflated, `INTERNAL`)
    /// without a record here. The spans are stored as the message encoded again, so fields
    /// opentelemetry-proto does not know are dropped. The receiver's own gRPC listener
    /// (ADR 203) does none of that and stays the one to expose to untrusted clients. Requests
    /// through this server are recorded with `tls: false` whatever your server's transport,
    /// without the `content-type` and `te` headers tonic keeps out of metadata, and with the
    /// client's address only on tonic's own transport.
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let receiver = lightstep_receiver::Receiver::builder().start().await?;
    /// // With tonic's `transport` and `router` features:
    /// // tonic::transport::Server::builder()
    /// //     .add_service(receiver.trace_service())
    /// //     .serve("127.0.0.1:4317".parse()?)
    /// //     .await?;
    /// let _service = receiver.trace_service();
    /// # Ok(())
    /// # }
    /// ```
    pub fn trace_service(&self) -> TraceServiceServer<TraceServiceHandler> {
        TraceServiceServer::new(TraceServiceHandler::new(Arc::clone(&self.app)))
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
            .max_decoding_message_size(self.app.max_request_bytes())
    }

    /// The fault-injection knobs, for testing how clients cope with a failing backend.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// A copy of every stored span; see [`SpanStore::spans`].
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.store.spans()
    }

    /// Waits for at least `n` stored spans; see [`SpanStore::wait_for_spans`].
    pub async fn wait_for_spans(&self, n: usize, timeout: Duration) -> Result<Vec<ReceivedSpan>> {
        self.store.wait_for_spans(n, timeout).await
    }

    /// Removes and returns every stored span grouped by trace; see [`SpanStore::take_traces`].
    pub fn take_traces(&self) -> Vec<Trace> {
        self.store.take_traces()
    }

    /// Bytes of requests (headers and bodies) being received or decoded right now, charged to the
    /// in-flight budget
    /// ([`ReceiverBuilder::with_max_in_flight_bytes`](crate::ReceiverBuilder::with_max_in_flight_bytes)).
    pub fn in_flight_bytes(&self) -> usize {
        self.app.in_flight_bytes()
    }

    /// The counters since start; see [`ReceiverStats`].
    pub fn stats(&self) -> ReceiverStats {
        self.store.stats()
    }

    /// The newest request records; see [`SpanStore::requests`].
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.store.requests()
    }

    /// Stops accepting connections, lets in-flight requests finish (a delayed request is
    /// answered `UNAVAILABLE`), and returns once both listeners are closed: at most about five
    /// seconds later, however clients behave. The store stays readable through clones of
    /// [`store`](Self::store). The ports are free again when this returns, so a new receiver can
    /// bind the same addresses (to test a backend that goes away and comes back).
    pub async fn shutdown(mut self) {
        self.shutdown_tx.send_replace(true);
        // A listener only ends by finishing; a panic in it has nothing to report beyond the
        // port being closed, which it is either way.
        match &mut self.listeners {
            Listeners::Tasks(tasks) => {
                for task in tasks.drain(..) {
                    let _ = task.await;
                }
            }
            Listeners::Thread(done) => {
                if let Some(done) = done.take() {
                    let _ = done.await;
                }
            }
        }
    }
}

impl Drop for RunningReceiver {
    fn drop(&mut self) {
        self.shutdown_tx.send_replace(true);
    }
}

/// What [`RunningReceiver::shutdown`] waits for.
#[derive(Debug)]
pub(crate) enum Listeners {
    /// Listener tasks on the caller's runtime.
    Tasks(Vec<JoinHandle<()>>),
    /// A dedicated thread running the listeners, which reports when they are closed.
    Thread(Option<tokio::sync::oneshot::Receiver<()>>),
}

#[cfg(test)]
mod tests {
    use crate::Receiver;

    #[tokio::test]
    async fn running_receiver_debug_redacts_the_token() {
        let receiver = Receiver::builder()
            .with_access_token("s3cret-token")
            .start()
            .await
            .expect("start");
        let dbg = format!("{receiver:?}");
        assert!(
            !dbg.contains("s3cret") && !dbg.contains("115, 51, 99"),
            "{dbg}"
        );
        receiver.shutdown().await;
    }
}
