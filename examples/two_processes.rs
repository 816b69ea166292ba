//! Two processes, one trace: this example starts itself a second time as a backend service
//! (`two_processes --serve`), calls it over HTTP with the trace context in the headers
//! (`traceparent`), and prints the trace both processes made.
//!
//! ```text
//! frontend process                              backend process (a child)
//! checkout {item}                               GET /price/{item}  (HttpServerLayer)
//! └─ GET  (HttpClientLayer) ──traceparent──▶    └─ SELECT prices   (SQLite)
//! ```
//!
//! With no token and no endpoint configured, the frontend starts the embedded receiver and
//! gives its endpoint to the child in `OTEL_EXPORTER_OTLP_ENDPOINT`; otherwise the child
//! inherits the configuration and both send to the same backend.
//!
//! ```sh
//! cargo run --example two_processes
//! ```
#![allow(clippy::print_stdout)]

use std::io::Write as _;
use std::process::{ExitCode, Stdio};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{MatchedPath, Path, State};
use axum::routing::get;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use lightstep::instrument::LightstepTracing;
use lightstep::instrument::tower::{HttpClientLayer, HttpServerLayer};
use lightstep::opentelemetry::trace::{FutureExt as _, TraceContextExt as _, Tracer as _};
use lightstep::opentelemetry::{Context, global};
use lightstep_examples::{Demo, chain, config_builder};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};
use tower::ServiceExt as _;

type Db = Arc<Mutex<rusqlite::Connection>>;

const SERVE: &str = "--serve";
const LISTENING: &str = "listening on ";
const PRICE: &str = "SELECT cents FROM prices WHERE item = ?1";

#[tokio::main]
async fn main() -> ExitCode {
    let serve = std::env::args().nth(1).as_deref() == Some(SERVE);
    let service = if serve {
        "two-processes-backend"
    } else {
        "two-processes-frontend"
    };
    let demo = match Demo::start(config_builder(service)).await {
        Ok(demo) => demo,
        Err(error) => {
            eprintln!("error: {}", chain(&*error));
            return ExitCode::FAILURE;
        }
    };
    let result = if serve {
        backend().await
    } else {
        frontend(&demo).await
    };
    let delivered = demo.finish().await;
    match result {
        Ok(()) => delivered,
        Err(error) => {
            eprintln!("error: {}", chain(&*error));
            ExitCode::FAILURE
        }
    }
}

/// The parent: starts the backend, calls it, stops it.
async fn frontend(demo: &Demo) -> Result<(), Box<dyn std::error::Error>> {
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .arg(SERVE)
        // The embedded receiver's endpoint, when there is one.
        .envs(demo.child_env())
        .env("OTEL_SERVICE_NAME", "two-processes-backend")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no child stdout")?).lines();
    // The backend says where it listens; everything else it prints is passed on.
    let addr = loop {
        let line = lines
            .next_line()
            .await?
            .ok_or("the backend exited before listening")?;
        println!("  backend | {line}");
        if let Some(addr) = line.strip_prefix(LISTENING) {
            break addr.to_owned();
        }
    };
    let forward = tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            println!("  backend | {line}");
        }
    });

    let client = tower::ServiceBuilder::new()
        .layer(HttpClientLayer::new(LightstepTracing::global()))
        .service(Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>());
    for item in ["coffee", "bagel"] {
        let root = Context::current_with_span(
            global::tracer("two_processes").start(format!("checkout {item}")),
        );
        let request =
            http::Request::get(format!("http://{addr}/price/{item}")).body(Empty::new())?;
        let response = client
            .clone()
            .oneshot(request)
            .with_context(root.clone())
            .await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        root.span().end();
        println!(
            "GET /price/{item} -> {status} {} (trace {})",
            String::from_utf8_lossy(&body),
            root.span().span_context().trace_id()
        );
    }

    // Closing its stdin stops the backend, which flushes its spans before it exits.
    drop(child.stdin.take());
    let status = child.wait().await?;
    let _ = forward.await;
    if !status.success() {
        return Err(format!("the backend exited with {status}").into());
    }
    Ok(())
}

/// The child: serves until its stdin closes.
async fn backend() -> Result<(), Box<dyn std::error::Error>> {
    let conn = rusqlite::Connection::open_in_memory()?;
    conn.execute_batch(
        "CREATE TABLE prices (item TEXT PRIMARY KEY, cents INTEGER NOT NULL);
         INSERT INTO prices (item, cents) VALUES ('coffee', 350), ('bagel', 275);",
    )?;
    let db: Db = Arc::new(Mutex::new(conn));
    let layer = HttpServerLayer::new(LightstepTracing::global()).with_route_from(|extensions| {
        extensions
            .get::<MatchedPath>()
            .map(|path| path.as_str().to_owned())
    });
    let app = Router::new()
        .route("/price/{item}", get(price))
        .with_state(db)
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("{LISTENING}{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    let stdin_closed = async {
        let mut sink = Vec::new();
        let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(stdin_closed)
        .await?;
    Ok(())
}

async fn price(State(db): State<Db>, Path(item): Path<String>) -> Result<String, http::StatusCode> {
    let cents: Result<i64, rusqlite::Error> = LightstepTracing::global()
        .trace_database("sqlite", PRICE, async move {
            let conn = db.lock().expect("the database lock is never poisoned");
            conn.query_row(PRICE, [&item], |row| row.get(0))
        })
        .await;
    match cents {
        Ok(cents) => Ok(format!("{}.{:02}", cents / 100, cents % 100)),
        Err(rusqlite::Error::QueryReturnedNoRows) => Err(http::StatusCode::NOT_FOUND),
        Err(_) => Err(http::StatusCode::INTERNAL_SERVER_ERROR),
    }
}
