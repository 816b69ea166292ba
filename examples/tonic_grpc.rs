//! A tonic gRPC server and client traced with the tonic integration: the client's `CLIENT` span
//! travels in the request metadata and the server's `SERVER` span continues it, down to the
//! server's SQLite query. The service is gRPC's standard health service (`tonic-health`'s
//! generated code, so no `build.rs` here), answering from a database of known services.
//!
//! ```sh
//! cargo run --example tonic_grpc
//! ```
#![allow(clippy::print_stdout)]

use std::net::SocketAddr;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use futures_util::Stream;
use lightstep::instrument::LightstepTracing;
use lightstep::instrument::grpc::{GrpcClientLayer, GrpcServerLayer};
use lightstep::opentelemetry::trace::{FutureExt as _, TraceContextExt as _, Tracer as _};
use lightstep::opentelemetry::{Context, global};
use lightstep_examples::{Demo, chain, config_builder};
use tonic::transport::{Endpoint, Server};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

type Db = Arc<Mutex<rusqlite::Connection>>;

const LOOKUP: &str = "SELECT serving FROM services WHERE name = ?1";

#[tokio::main]
async fn main() -> ExitCode {
    let demo = match Demo::start(config_builder("tonic-grpc")).await {
        Ok(demo) => demo,
        Err(error) => {
            eprintln!("error: {}", chain(&*error));
            return ExitCode::FAILURE;
        }
    };
    match run().await {
        Ok(()) => demo.finish().await,
        Err(error) => {
            eprintln!("error: {}", chain(&*error));
            let _ = demo.finish().await;
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let (addr, stop, server) = serve(database()?).await?;
    println!("gRPC health service on http://{addr}");

    let channel = Endpoint::from_shared(format!("http://{addr}"))?
        .connect()
        .await?;
    // The client layer: a CLIENT span per call, injected into the metadata. A tonic channel
    // adds the server's address below the layer, so it is given here.
    let channel = tower::ServiceBuilder::new()
        .layer(
            GrpcClientLayer::new(LightstepTracing::global())
                .with_server_address(addr.ip().to_string(), Some(addr.port())),
        )
        .service(channel);
    let mut client = HealthClient::new(channel);

    for service in ["checkout", "payments", "unknown"] {
        // Each check under a root span of its own: one trace per check.
        let tracer = global::tracer("tonic_grpc");
        let root = Context::current_with_span(tracer.start(format!("check {service}")));
        let result = client
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .with_context(root.clone())
            .await;
        root.span().end();
        match result {
            Ok(response) => println!(
                "Check({service}) -> {:?}",
                ServingStatus::try_from(response.into_inner().status)
                    .unwrap_or(ServingStatus::Unknown)
            ),
            Err(status) => println!(
                "Check({service}) -> {:?}: {}",
                status.code(),
                status.message()
            ),
        }
    }

    let _ = stop.send(());
    server.await??;
    Ok(())
}

struct Checker {
    db: Db,
}

#[tonic::async_trait]
impl Health for Checker {
    async fn check(
        &self,
        request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<HealthCheckResponse>, tonic::Status> {
        let name = request.into_inner().service;
        let db = Arc::clone(&self.db);
        // Runs inside the server span the layer made, so the query nests under it.
        let serving: Result<bool, rusqlite::Error> = LightstepTracing::global()
            .trace_database("sqlite", LOOKUP, async move {
                let conn = db.lock().expect("the database lock is never poisoned");
                conn.query_row(LOOKUP, [&name], |row| row.get(0))
            })
            .await;
        let status = match serving {
            Ok(true) => ServingStatus::Serving,
            Ok(false) => ServingStatus::NotServing,
            Err(rusqlite::Error::QueryReturnedNoRows) => {
                return Err(tonic::Status::not_found("unknown service"));
            }
            Err(error) => return Err(tonic::Status::internal(error.to_string())),
        };
        Ok(tonic::Response::new(HealthCheckResponse {
            status: status as i32,
        }))
    }

    type WatchStream =
        Pin<Box<dyn Stream<Item = Result<HealthCheckResponse, tonic::Status>> + Send>>;

    async fn watch(
        &self,
        _request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        Err(tonic::Status::unimplemented(
            "watch is not part of this example",
        ))
    }
}

type ServerTask = tokio::task::JoinHandle<Result<(), tonic::transport::Error>>;

/// Serves the health service on a loopback port, with the server layer, until `stop`.
async fn serve(
    db: Db,
) -> std::io::Result<(SocketAddr, tokio::sync::oneshot::Sender<()>, ServerTask)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = Server::builder()
        .layer(GrpcServerLayer::new(LightstepTracing::global()))
        .add_service(HealthServer::new(Checker { db }))
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            async {
                let _ = stop_rx.await;
            },
        );
    Ok((addr, stop_tx, tokio::spawn(server)))
}

fn database() -> rusqlite::Result<Db> {
    let conn = rusqlite::Connection::open_in_memory()?;
    conn.execute_batch(
        "CREATE TABLE services (name TEXT PRIMARY KEY, serving INTEGER NOT NULL);
         INSERT INTO services (name, serving) VALUES ('checkout', 1), ('payments', 0);",
    )?;
    Ok(Arc::new(Mutex::new(conn)))
}
