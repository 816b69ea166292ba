//! Listeners stay on loopback unless clients on other machines are allowed, and then every
//! request must carry the access token.

use std::net::{IpAddr, SocketAddr};

use lightstep_receiver::{Error, Exposure, Receiver, is_loopback};
use prost::Message as _;

use crate::common::*;

#[tokio::test]
async fn an_address_other_than_loopback_is_refused_naming_the_listener_and_address() {
    for (builder, listener, addr) in [
        (
            Receiver::builder().with_grpc_addr("0.0.0.0:0".parse().unwrap()),
            "OTLP/gRPC",
            "0.0.0.0:0",
        ),
        (
            Receiver::builder().with_http_addr("[::]:0".parse().unwrap()),
            "OTLP/HTTP",
            "[::]:0",
        ),
        // With a token, but without allowing other machines: still refused.
        (
            Receiver::builder()
                .with_access_token("t")
                .with_grpc_addr("0.0.0.0:0".parse().unwrap()),
            "OTLP/gRPC",
            "0.0.0.0:0",
        ),
    ] {
        let err = builder.start().await.expect_err("not loopback");
        assert!(
            matches!(&err, Error::NotLoopback { listener: l, addr: a }
                if *l == listener && a.to_string() == addr),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains(listener)
                && message.contains(addr)
                && message.contains("not a loopback address"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn a_socket_handed_over_is_checked_too_before_it_listens() {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&SocketAddr::from(([0, 0, 0, 0], 0)).into())
        .unwrap();
    let listener: std::net::TcpListener = socket.into();
    let err = Receiver::builder()
        .with_http_listener(listener.try_clone().unwrap())
        .start()
        .await
        .expect_err("bound to every interface");
    assert!(
        matches!(
            err,
            Error::NotLoopback {
                listener: "OTLP/HTTP",
                ..
            }
        ),
        "{err:?}"
    );
    // It was never made to listen: connecting to its port is refused.
    let port = listener.local_addr().unwrap().port();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[tokio::test]
async fn remote_clients_need_a_token() {
    let remote = Receiver::builder().with_exposure(Exposure::Remote);
    let err = remote.clone().start().await.expect_err("no token");
    assert!(matches!(err, Error::RemoteWithoutToken), "{err:?}");
    assert!(err.to_string().contains("need an access token"), "{err}");
    assert!(matches!(
        remote.start_background(),
        Err(Error::RemoteWithoutToken)
    ));

    // With one, the receiver starts (here on loopback, as tests do) and requires it.
    let rx = Receiver::builder()
        .with_exposure(Exposure::Remote)
        .with_access_token("remote-token")
        .start()
        .await
        .expect("start");
    let body = request("s", three_span_trace(1)).encode_to_vec();
    let ct = ("content-type", "application/x-protobuf");
    let resp = http_post(rx.http_addr(), &[ct], body.clone()).await;
    assert_eq!(resp.status, 401);
    let resp = http_post(
        rx.http_addr(),
        &[ct, ("lightstep-access-token", "remote-token")],
        body,
    )
    .await;
    assert_eq!(resp.status, 200);
    rx.shutdown().await;
}

#[test]
fn loopback_is_127_slash_8_and_ipv6_one_however_written() {
    for ip in ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"] {
        assert!(is_loopback(ip.parse::<IpAddr>().unwrap()), "{ip}");
    }
    for ip in [
        "0.0.0.0",
        "::",
        "10.0.0.1",
        "192.168.1.10",
        "::ffff:10.0.0.1",
        "fe80::1",
    ] {
        assert!(!is_loopback(ip.parse::<IpAddr>().unwrap()), "{ip}");
    }
    let any: SocketAddr = "0.0.0.0:4317".parse().unwrap();
    assert!(Exposure::Remote.check("UI", any, true).is_ok());
    assert!(matches!(
        Exposure::Remote.check("UI", any, false),
        Err(Error::RemoteWithoutToken)
    ));
    assert!(matches!(
        Exposure::Loopback.check("UI", any, true),
        Err(Error::NotLoopback { listener: "UI", .. })
    ));
    assert!(
        Exposure::default()
            .check("UI", "[::1]:1".parse().unwrap(), false)
            .is_ok()
    );
}
