//! `#[tracing::instrument]` code and the lightstep-rs helpers in the same traces.
//!
//! `lightstep::instrument::tracing_layer` is a `tracing-subscriber` layer (tracing-opentelemetry's,
//! with context activation): a `tracing` span records an OpenTelemetry span, entering it makes
//! its context current, so a helper called inside nests under it, and a `tracing` span opened
//! inside a helper's future nests under the helper's span. `tracing` events inside a span
//! become span events.
//!
//! ```text
//! POST /orders                 (helper: HTTP SERVER span)
//! └─ place_order               (#[tracing::instrument])
//!    ├─ price_items            (#[tracing::instrument], with an event)
//!    └─ INSERT orders          (helper: database CLIENT span, real SQLite)
//! ```
//!
//! ```sh
//! cargo run --example tracing_bridge
//! ```
#![allow(clippy::print_stdout)]

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lightstep::instrument::LightstepTracing;
use lightstep_examples::{Demo, chain, config_builder};
use tracing_subscriber::layer::SubscriberExt as _;

type Db = Arc<Mutex<rusqlite::Connection>>;

const INSERT: &str = "INSERT INTO orders (customer, total_cents) VALUES (?1, ?2)";

#[tokio::main]
async fn main() -> ExitCode {
    let demo = match Demo::start(config_builder("tracing-bridge")).await {
        Ok(demo) => demo,
        Err(error) => {
            eprintln!("error: {}", chain(&*error));
            return ExitCode::FAILURE;
        }
    };
    // The bridge: `tracing` spans go to the same pipeline as the helpers' spans.
    let subscriber = tracing_subscriber::registry().with(lightstep::instrument::tracing_layer(
        demo.pipeline().tracer(),
    ));
    if let Err(error) = tracing::subscriber::set_global_default(subscriber) {
        eprintln!("error: {error}");
        return ExitCode::FAILURE;
    }
    let db = match database() {
        Ok(db) => db,
        Err(error) => {
            eprintln!("error: cannot create the SQLite database: {error}");
            return ExitCode::FAILURE;
        }
    };

    let tracing = LightstepTracing::global();
    for (customer, items) in [("ada", 3), ("grace", 1)] {
        let status = tracing
            .trace_http("POST", "/orders", async {
                match place_order(Arc::clone(&db), customer, items).await {
                    Ok(_) => http::StatusCode::CREATED,
                    Err(_) => http::StatusCode::INTERNAL_SERVER_ERROR,
                }
            })
            .await;
        let noun = if items == 1 { "item" } else { "items" };
        println!("POST /orders ({customer}, {items} {noun}) -> {status}");
    }
    demo.finish().await
}

/// A function traced with `tracing`, as existing code often is.
#[tracing::instrument(skip(db))]
async fn place_order(db: Db, customer: &str, items: u32) -> Result<i64, rusqlite::Error> {
    let total = price_items(items).await;
    let customer = customer.to_owned();
    // A helper span inside a `tracing` span: it nests under `place_order`.
    LightstepTracing::global()
        .trace_database("sqlite", INSERT, async move {
            let conn = db.lock().expect("the database lock is never poisoned");
            conn.execute(INSERT, rusqlite::params![customer, total])?;
            Ok(conn.last_insert_rowid())
        })
        .await
}

#[tracing::instrument]
async fn price_items(items: u32) -> i64 {
    // Stands for a call to a pricing engine.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let total = i64::from(items) * 450;
    tracing::info!(total, "priced");
    total
}

fn database() -> rusqlite::Result<Db> {
    let conn = rusqlite::Connection::open_in_memory()?;
    conn.execute_batch(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT NOT NULL, total_cents INTEGER NOT NULL);",
    )?;
    Ok(Arc::new(Mutex::new(conn)))
}
