//! The quick start: one request through an HTTP server span, an RPC client span and a database
//! span on a real (embedded, in-memory) SQLite database, exported over OTLP, received, and its
//! trace tree and critical path printed.
//!
//! ```sh
//! cargo run --example quickstart                 # no account: an embedded receiver takes the spans
//! LIGHTSTEP_ACCESS_TOKEN=... cargo run --example quickstart                   # to Lightstep
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 cargo run --example quickstart  # to a Collector
//! ```
//!
//! It exits by itself: after delivering every span (status 0), or, when the endpoint never
//! answers, once the shutdown deadline (`LIGHTSTEP_SHUTDOWN_TIMEOUT`, 5 s by default) has
//! passed, saying how many spans it could not deliver (status 1).
//!
//! `Demo` (this directory's `src/lib.rs`, not a published crate) adds the embedded receiver
//! when no endpoint or token is set, and prints what arrived. Without it, a service needs
//! only this (the rest of the file is unchanged):
//!
//! ```ignore
//! let guard = lightstep::init()?; // the environment, and the file named by LIGHTSTEP_CONFIG_FILE
//! // ... the service ...
//! guard.shutdown().await?; // flushes within LIGHTSTEP_SHUTDOWN_TIMEOUT; says what was lost
//! ```
#![allow(clippy::print_stdout)]

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lightstep::instrument::LightstepTracing;
use lightstep::opentelemetry::trace::TraceContextExt as _;
use lightstep_examples::{Demo, chain, config_builder};

const LOOKUP: &str = "SELECT id, name, email FROM users WHERE id = ?1";
const AUDIT: &str = "INSERT INTO audit (user_id, action) VALUES (?1, 'viewed')";

type Db = Arc<Mutex<rusqlite::Connection>>;

#[derive(Debug)]
struct User {
    id: i64,
    name: String,
    email: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    // The original design's `LightstepExporter::new(config)` + `LightstepTracing::new(exporter)`:
    // here the configuration comes from the environment, and the pipeline is installed globally.
    let demo = match Demo::start(config_builder("quickstart")).await {
        Ok(demo) => demo,
        Err(error) => {
            eprintln!("error: {}", chain(&*error));
            return ExitCode::FAILURE;
        }
    };
    let db = match open_database() {
        Ok(db) => db,
        Err(error) => {
            eprintln!("error: cannot create the SQLite database: {error}");
            return ExitCode::FAILURE;
        }
    };
    let tracing = LightstepTracing::global();

    // An incoming request, `GET /api/users/1`: a SERVER span named after the route.
    let mut trace_id = None;
    let response = tracing
        .trace_http("GET", "/api/users/{id}", async {
            trace_id = Some(
                lightstep::opentelemetry::Context::current()
                    .span()
                    .span_context()
                    .trace_id(),
            );
            // The user service, called over gRPC: a CLIENT span. What the service does is
            // simulated in-process: 15 ms on the network, then its database query.
            let user = tracing
                .trace_rpc("users.v1.UserService", "GetUser", async {
                    tokio::time::sleep(Duration::from_millis(15)).await;
                    let db = Arc::clone(&db);
                    tracing
                        .trace_database("sqlite", LOOKUP, async move {
                            let conn = db.lock().expect("the database lock is never poisoned");
                            conn.query_row(LOOKUP, [1], |row| {
                                Ok(User {
                                    id: row.get(0)?,
                                    name: row.get(1)?,
                                    email: row.get(2)?,
                                })
                            })
                        })
                        .await
                        // What a tonic client returns: `Result<Response<T>, Status>`.
                        .map(tonic::Response::new)
                        .map_err(|error| tonic::Status::internal(error.to_string()))
                })
                .await
                .map(tonic::Response::into_inner);
            // Then the server records the access itself: a second database span.
            let audited = tracing
                .trace_database("sqlite", AUDIT, async {
                    let conn = db.lock().expect("the database lock is never poisoned");
                    conn.execute(AUDIT, [1])
                })
                .await;
            let (status, body) = match (user, audited) {
                (Ok(user), Ok(_)) => (
                    200,
                    format!(
                        r#"{{"id":{},"name":"{}","email":"{}"}}"#,
                        user.id, user.name, user.email
                    ),
                ),
                (Err(status), _) => (500, status.message().to_owned()),
                (_, Err(error)) => (500, error.to_string()),
            };
            http::Response::builder().status(status).body(body)
        })
        .await;
    match &response {
        Ok(response) => println!(
            "GET /api/users/1 -> {} {} (trace {})",
            response.status(),
            response.body(),
            trace_id.map(|id| id.to_string()).unwrap_or_default(),
        ),
        Err(error) => eprintln!("error: cannot build the response: {error}"),
    }

    demo.finish().await
}

/// A real SQLite database, in memory.
fn open_database() -> rusqlite::Result<Db> {
    let conn = rusqlite::Connection::open_in_memory()?;
    conn.execute_batch(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL);
         CREATE TABLE audit (user_id INTEGER NOT NULL, action TEXT NOT NULL);
         INSERT INTO users (id, name, email) VALUES
             (1, 'Ada Lovelace', 'ada@example.com'),
             (2, 'Grace Hopper', 'grace@example.com');",
    )?;
    Ok(Arc::new(Mutex::new(conn)))
}
