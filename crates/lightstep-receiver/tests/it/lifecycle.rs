//! Starting, addressing, stopping and restarting.

use std::time::Duration;

use lightstep_receiver::{Error, Receiver};

use crate::common::*;

#[tokio::test]
async fn a_taken_port_is_an_error_naming_the_address() {
    let first = Receiver::builder().start().await.expect("start");
    let err = Receiver::builder()
        .with_grpc_addr(first.grpc_addr())
        .start()
        .await
        .expect_err("port taken");
    match &err {
        Error::Bind { listener, addr, .. } => {
            assert_eq!(*listener, "OTLP/gRPC");
            assert_eq!(*addr, first.grpc_addr());
        }
        other => panic!("unexpected error: {other}"),
    }
    assert!(
        err.to_string().contains(&first.grpc_addr().to_string()),
        "{err}"
    );
    let err = Receiver::builder()
        .with_http_addr(first.http_addr())
        .start()
        .await
        .expect_err("port taken");
    assert!(err.to_string().contains("OTLP/HTTP"), "{err}");
    first.shutdown().await;
}

#[tokio::test]
async fn a_receiver_can_stop_and_come_back_on_the_same_ports() {
    let rx = Receiver::builder().start().await.expect("start");
    let (grpc, http) = (rx.grpc_addr(), rx.http_addr());
    export_trace(&rx.grpc_endpoint(), 1).await.expect("export");
    let store = rx.store().clone();
    rx.shutdown().await;
    // The store outlives the receiver.
    assert_eq!(store.len(), 3);
    // Nothing listens any more.
    assert!(tokio::net::TcpStream::connect(grpc).await.is_err());

    let back = Receiver::builder()
        .with_grpc_addr(grpc)
        .with_http_addr(http)
        .start()
        .await
        .expect("restart on the same ports");
    export_trace(&back.grpc_endpoint(), 2)
        .await
        .expect("export after restart");
    assert_eq!(back.spans().len(), 3);
    back.shutdown().await;
}

#[tokio::test]
async fn a_receiver_serves_on_listeners_it_is_given() {
    let grpc = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    // Bound but not listening: connections are refused until the receiver listens on it.
    let http = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    http.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .expect("bind");
    let http = std::net::TcpListener::from(http);
    let (grpc_addr, http_addr) = (grpc.local_addr().unwrap(), http.local_addr().unwrap());
    assert!(tokio::net::TcpStream::connect(http_addr).await.is_err());
    let rx = Receiver::builder()
        // The listener given after an address wins.
        .with_grpc_addr("127.0.0.1:1".parse().unwrap())
        .with_grpc_listener(grpc)
        .with_http_listener(http)
        .start()
        .await
        .expect("start on the given sockets");
    assert_eq!((rx.grpc_addr(), rx.http_addr()), (grpc_addr, http_addr));
    export_trace(&rx.grpc_endpoint(), 1)
        .await
        .expect("export over gRPC");
    let resp = http_post(
        rx.http_addr(),
        &[("content-type", "application/x-protobuf")],
        prost::Message::encode_to_vec(&request("s", three_span_trace(2))),
    )
    .await;
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(rx.spans().len(), 6);
    rx.shutdown().await;
    // Shut down, the receiver has closed the sockets it was given (no clone of the builder
    // keeps them): nothing listens.
    assert!(tokio::net::TcpStream::connect(grpc_addr).await.is_err());
    assert!(tokio::net::TcpStream::connect(http_addr).await.is_err());
}

#[tokio::test]
async fn a_socket_that_cannot_listen_is_an_error_naming_the_listener() {
    // A UDP socket converted to a TCP listener type: listening on it fails.
    let udp = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    udp.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let err = Receiver::builder()
        .with_http_listener(std::net::TcpListener::from(udp))
        .start()
        .await
        .expect_err("not a TCP socket");
    assert!(
        matches!(
            err,
            Error::Listener {
                listener: "OTLP/HTTP",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "could not use the socket given for the OTLP/HTTP listener"
    );
}

#[tokio::test]
async fn wait_for_spans_gives_up_with_a_count() {
    let rx = Receiver::builder().start().await.expect("start");
    let err = rx
        .wait_for_spans(1, Duration::from_millis(1))
        .await
        .expect_err("nothing sent");
    assert!(
        matches!(
            err,
            Error::Timeout {
                expected: 1,
                received: 0,
                ..
            }
        ),
        "{err}"
    );
    rx.shutdown().await;
}

#[tokio::test]
async fn wait_for_spans_wakes_for_spans_sent_later() {
    let rx = Receiver::builder().start().await.expect("start");
    let endpoint = rx.grpc_endpoint();
    let waiter = {
        let store = rx.store().clone();
        tokio::spawn(async move { store.wait_for_spans(6, HANG_GUARD).await })
    };
    grpc_export(&endpoint, request("s", three_span_trace(1)), &[], false)
        .await
        .expect("export");
    grpc_export(&endpoint, request("s", three_span_trace(2)), &[], false)
        .await
        .expect("export");
    let spans = waiter.await.expect("join").expect("spans");
    assert_eq!(spans.len(), 6);
    rx.shutdown().await;
}

#[tokio::test]
async fn settings_out_of_range_are_refused() {
    for builder in [
        Receiver::builder().with_max_spans(0),
        Receiver::builder().with_max_request_bytes(0),
    ] {
        let err = builder.start().await.expect_err("invalid");
        assert!(matches!(err, Error::InvalidSetting { .. }), "{err}");
    }
}

#[test]
fn starting_outside_a_tokio_runtime_is_an_error() {
    // A minimal executor that is not Tokio.
    let fut = Receiver::builder().start();
    let result = futures_executor_block_on(fut);
    assert!(matches!(result, Err(Error::NoRuntime)));
}

/// Polls a future to completion on the current thread without any runtime.
fn futures_executor_block_on<F: std::future::Future>(fut: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    let waker = Waker::from(Arc::new(Noop));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

/// A blocking HTTP/1.1 POST of a three-span trace with std's `TcpStream`: it holds the calling
/// thread until the answer arrives. Returns the status code.
fn blocking_post(addr: std::net::SocketAddr) -> u16 {
    use prost::Message as _;
    use std::io::{Read as _, Write as _};
    let body = request("s", three_span_trace(1)).encode_to_vec();
    let mut tcp = std::net::TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(HANG_GUARD)).expect("hang guard");
    let head = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-protobuf\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).expect("write");
    tcp.write_all(&body).expect("write");
    let mut response = Vec::new();
    tcp.read_to_end(&mut response).expect("read the answer");
    std::str::from_utf8(&response[9..12])
        .expect("utf-8")
        .parse()
        .expect("status")
}

#[tokio::test]
async fn a_background_receiver_answers_while_the_test_thread_blocks() {
    // `#[tokio::test]` is a current-thread runtime: a receiver on it could not answer the
    // blocking call below, which holds the runtime's only thread.
    let rx = Receiver::builder().start_background().expect("start");
    assert_eq!(blocking_post(rx.http_addr()), 200);
    assert_eq!(rx.spans().len(), 3);
    let spans = rx.wait_for_spans(3, HANG_GUARD).await.expect("spans");
    assert_eq!(spans[0].name(), "root");
    let grpc = rx.grpc_addr();
    rx.shutdown().await;
    assert!(tokio::net::TcpStream::connect(grpc).await.is_err());
}

#[test]
fn a_background_receiver_needs_no_runtime() {
    let rx = Receiver::builder().start_background().expect("start");
    assert_eq!(blocking_post(rx.http_addr()), 200);
    assert_eq!(rx.spans().len(), 3);
    // Errors still come back from the thread.
    let err = Receiver::builder()
        .with_http_addr(rx.http_addr())
        .start_background()
        .expect_err("port taken");
    assert!(
        matches!(
            err,
            Error::Bind {
                listener: "OTLP/HTTP",
                ..
            }
        ),
        "{err}"
    );
    drop(rx);
}

#[test]
fn handles_can_move_between_threads_and_tasks() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<lightstep_receiver::RunningReceiver>();
    send_sync::<lightstep_receiver::SpanStore>();
    send_sync::<lightstep_receiver::Faults>();
    send_sync::<lightstep_receiver::ReceivedSpan>();
    send_sync::<lightstep_receiver::Trace>();
    send_sync::<lightstep_receiver::Error>();
}
