//! An axum HTTP service traced with the tower layer, calling a downstream axum service with the
//! trace context propagated in the request headers: one trace across both.
//!
//! ```text
//! load generator ──GET /orders/{sku}──▶ shop (HttpServerLayer)
//!                                         └─ HttpClientLayer ──GET /stock/{sku}──▶ inventory (HttpServerLayer)
//!                                                                                    └─ SQLite query
//! ```
//!
//! Both services run in this process on loopback ports; the example sends three requests (one
//! for an unknown product, a 404) and exits.
//!
//! ```sh
//! cargo run --example axum_service
//! ```
#![allow(clippy::print_stdout)]

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{MatchedPath, Path, State};
use axum::routing::get;
use http::StatusCode;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use lightstep::instrument::LightstepTracing;
use lightstep::instrument::tower::{HttpClientLayer, HttpClientService, HttpServerLayer};
use lightstep_examples::{Demo, chain, config_builder};
use tokio::sync::oneshot;
use tower::ServiceExt as _;

type Db = Arc<Mutex<rusqlite::Connection>>;
type TracedClient = HttpClientService<Client<HttpConnector, Empty<Bytes>>>;

const STOCK: &str = "SELECT quantity FROM stock WHERE sku = ?1";

#[tokio::main]
async fn main() -> ExitCode {
    let demo = match Demo::start(config_builder("axum-service")).await {
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
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (inventory, inventory_done) = serve(inventory(database()?), stop_rx.clone()).await?;
    let (shop, shop_done) = serve(shop(inventory), stop_rx).await?;
    println!("shop on http://{shop}, inventory on http://{inventory}");

    // The load generator: a plain client, so the shop's server span is each trace's root.
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    for sku in ["espresso", "tea", "unicorn"] {
        let request =
            http::Request::get(format!("http://{shop}/orders/{sku}")).body(Empty::new())?;
        let response = client.request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        println!(
            "GET /orders/{sku} -> {status} {}",
            String::from_utf8_lossy(&body)
        );
    }

    // Stop both servers; every span has ended by the time a response is sent.
    let _ = stop_tx.send(true);
    let _ = tokio::join!(shop_done, inventory_done);
    Ok(())
}

/// The front service: asks the inventory, through the traced client.
fn shop(inventory: SocketAddr) -> Router {
    let tracing = LightstepTracing::global();
    let client: TracedClient = tower::ServiceBuilder::new()
        .layer(HttpClientLayer::new(tracing.clone()))
        .service(Client::builder(TokioExecutor::new()).build_http());
    Router::new()
        .route("/orders/{sku}", get(order))
        .with_state((client, inventory))
        .layer(server_layer(tracing))
}

async fn order(
    State((client, inventory)): State<(TracedClient, SocketAddr)>,
    Path(sku): Path<String>,
) -> (StatusCode, String) {
    let request =
        match http::Request::get(format!("http://{inventory}/stock/{sku}")).body(Empty::new()) {
            Ok(request) => request,
            Err(error) => return (StatusCode::BAD_REQUEST, error.to_string()),
        };
    // The layer makes a CLIENT span and injects `traceparent` into the request.
    match client.oneshot(request).await {
        Ok(response) if response.status() == StatusCode::OK => {
            let body = response.into_body().collect().await;
            let stock = body
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                .unwrap_or_default();
            (StatusCode::OK, format!("order accepted, {stock} in stock"))
        }
        Ok(response) if response.status() == StatusCode::NOT_FOUND => {
            (StatusCode::NOT_FOUND, format!("no product {sku}"))
        }
        Ok(response) => (
            StatusCode::BAD_GATEWAY,
            format!("inventory answered {}", response.status()),
        ),
        Err(error) => (StatusCode::BAD_GATEWAY, error.to_string()),
    }
}

/// The downstream service: its server span continues the caller's trace.
fn inventory(db: Db) -> Router {
    Router::new()
        .route("/stock/{sku}", get(stock))
        .with_state(db)
        .layer(server_layer(LightstepTracing::global()))
}

async fn stock(State(db): State<Db>, Path(sku): Path<String>) -> Result<String, StatusCode> {
    let quantity: Result<i64, rusqlite::Error> = LightstepTracing::global()
        .trace_database("sqlite", STOCK, async move {
            let conn = db.lock().expect("the database lock is never poisoned");
            conn.query_row(STOCK, [&sku], |row| row.get(0))
        })
        .await;
    match quantity {
        Ok(quantity) => Ok(quantity.to_string()),
        Err(rusqlite::Error::QueryReturnedNoRows) => Err(StatusCode::NOT_FOUND),
        Err(_) => Err(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// Server spans named `{method} {route}` with axum's matched route template.
fn server_layer(tracing: LightstepTracing) -> HttpServerLayer {
    HttpServerLayer::new(tracing).with_route_from(|extensions| {
        extensions
            .get::<MatchedPath>()
            .map(|path| path.as_str().to_owned())
    })
}

/// Serves `app` on a loopback port until `stop` turns true.
async fn serve(
    app: Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<(SocketAddr, oneshot::Receiver<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (done_tx, done_rx) = oneshot::channel();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|stop| *stop).await;
        };
        if let Err(error) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            eprintln!("error: server on {addr}: {error}");
        }
        let _ = done_tx.send(());
    });
    Ok((addr, done_rx))
}

fn database() -> rusqlite::Result<Db> {
    let conn = rusqlite::Connection::open_in_memory()?;
    conn.execute_batch(
        "CREATE TABLE stock (sku TEXT PRIMARY KEY, quantity INTEGER NOT NULL);
         INSERT INTO stock (sku, quantity) VALUES ('espresso', 12), ('tea', 40);",
    )?;
    Ok(Arc::new(Mutex::new(conn)))
}
