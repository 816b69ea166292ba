//! Graceful shutdown that loses no span: a service with an HTTP endpoint and a background worker
//! runs until Ctrl-C (SIGINT) or SIGTERM, then stops taking work, lets the request and the job
//! in progress finish, and shuts the pipeline down, which flushes every span within the
//! configured deadline (`LIGHTSTEP_SHUTDOWN_TIMEOUT`). It prints how many spans were delivered
//! of how many ended.
//!
//! ```sh
//! cargo run --example graceful_shutdown                    # then Ctrl-C, or kill -TERM <pid>
//! cargo run --example graceful_shutdown -- --exit-after 3  # stops itself after 3 seconds
//! cargo run --example graceful_shutdown -- --listen 0.0.0.0:8080   # as in deploy/Dockerfile
//! ```
//!
//! The shape to copy: spawn the work, wait for a signal, signal the work to stop, await it,
//! then `shutdown().await` the guard (never just let `main` return with spans in the queue:
//! dropping the guard also flushes, but only `shutdown` tells you what was lost).
#![allow(clippy::print_stdout)]

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use lightstep::instrument::LightstepTracing;
use lightstep::instrument::tower::HttpServerLayer;
use lightstep::opentelemetry::trace::{FutureExt as _, TraceContextExt as _, Tracer as _};
use lightstep::opentelemetry::{Context, global};
use lightstep_examples::{Demo, chain, config_builder};
use tokio::sync::watch;

type Db = Arc<Mutex<rusqlite::Connection>>;

const RECORD: &str = "INSERT INTO events (kind) VALUES (?1)";

#[tokio::main]
async fn main() -> ExitCode {
    let args = match args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    let demo = match Demo::start(config_builder("graceful-shutdown")).await {
        Ok(demo) => demo,
        Err(error) => {
            eprintln!("error: {}", chain(&*error));
            return ExitCode::FAILURE;
        }
    };
    let result = run(args).await;
    let delivered = demo.finish().await;
    match result {
        Ok(()) => delivered,
        Err(error) => {
            eprintln!("error: {}", chain(&*error));
            ExitCode::FAILURE
        }
    }
}

/// The command line: `[--listen ADDR] [--exit-after SECONDS]`.
#[derive(Debug)]
struct Args {
    /// Where the HTTP service listens: loopback by default, `0.0.0.0:8080` in a container.
    listen: std::net::SocketAddr,
    /// Stop by itself after this long (for tests and demos).
    exit_after: Option<Duration>,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        exit_after: None,
    };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let value = given
            .next()
            .ok_or_else(|| format!("{flag} takes a value"))?;
        match flag.as_str() {
            "--listen" => {
                args.listen = value.parse().map_err(|_| {
                    format!("--listen takes an address such as 0.0.0.0:8080, not {value:?}")
                })?;
            }
            "--exit-after" => {
                let seconds = value
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .ok_or_else(|| {
                        format!("--exit-after takes a number of seconds, not {value:?}")
                    })?;
                args.exit_after = Some(Duration::from_secs_f64(seconds));
            }
            _ => {
                return Err(
                    "usage: graceful_shutdown [--listen ADDR] [--exit-after SECONDS]".into(),
                );
            }
        }
    }
    Ok(args)
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let db = database()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let served = Arc::new(AtomicU64::new(0));

    // The HTTP service, with graceful shutdown: in-flight requests finish.
    let app = Router::new()
        .route("/work", get(work))
        .with_state((Arc::clone(&db), Arc::clone(&served)))
        .layer(
            HttpServerLayer::new(LightstepTracing::global())
                .with_route_from(|_| Some("/work".into())),
        );
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    // The traffic below goes to loopback even when listening on all interfaces.
    let target = if addr.ip().is_unspecified() {
        std::net::SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    let mut server_stop = stop_rx.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_stop.wait_for(|stop| *stop).await;
            })
            .await
    });
    // Traffic for it, and a background worker: both stop between units of work.
    let traffic = tokio::spawn(traffic(target, stop_rx.clone()));
    let worker = tokio::spawn(worker(db, stop_rx));

    println!(
        "ready: serving http://{addr}/work, pid {}; stop with Ctrl-C or `kill -TERM {}`",
        std::process::id(),
        std::process::id()
    );
    let reason = shutdown_signal(args.exit_after).await?;
    println!("{reason}: stopping; finishing the work in progress");
    let _ = stop_tx.send(true);
    let requests = traffic.await?;
    let jobs = worker.await?;
    server.await??;
    println!(
        "stopped: {requests} requests sent, {} served, {jobs} jobs done; flushing spans",
        served.load(Ordering::Relaxed)
    );
    Ok(())
}

/// Waits for Ctrl-C, SIGTERM (on Unix) or the `--exit-after` deadline; says which.
async fn shutdown_signal(exit_after: Option<Duration>) -> std::io::Result<&'static str> {
    #[cfg(unix)]
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    #[cfg(unix)]
    let terminate = terminate.recv();
    #[cfg(not(unix))]
    let terminate = std::future::pending::<Option<()>>();
    let deadline = async {
        match exit_after {
            Some(after) => tokio::time::sleep(after).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.map(|()| "received Ctrl-C (SIGINT)"),
        _ = terminate => Ok("received SIGTERM"),
        () = deadline => Ok("--exit-after reached"),
    }
}

async fn work(State((db, served)): State<(Db, Arc<AtomicU64>)>) -> &'static str {
    tokio::time::sleep(Duration::from_millis(20)).await;
    let recorded: Result<usize, rusqlite::Error> = LightstepTracing::global()
        .trace_database("sqlite", RECORD, async move {
            let conn = db.lock().expect("the database lock is never poisoned");
            conn.execute(RECORD, ["request"])
        })
        .await;
    served.fetch_add(1, Ordering::Relaxed);
    if recorded.is_ok() { "done" } else { "failed" }
}

/// Sends requests until told to stop; returns how many.
async fn traffic(addr: std::net::SocketAddr, mut stop: watch::Receiver<bool>) -> u64 {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<axum::body::Bytes>>();
    let mut sent = 0;
    while !*stop.borrow() {
        let Ok(uri) = format!("http://{addr}/work").parse::<http::Uri>() else {
            break;
        };
        if client.get(uri).await.is_ok() {
            sent += 1;
        }
        tokio::select! {
            _ = stop.changed() => {}
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
    sent
}

/// A background job every 150 ms: a root span with a database span inside. A job that has
/// started always finishes; the stop signal is looked at between jobs.
async fn worker(db: Db, mut stop: watch::Receiver<bool>) -> u64 {
    let mut done = 0;
    while !*stop.borrow() {
        done += 1;
        let root =
            Context::current_with_span(global::tracer("worker").start(format!("job {done}")));
        let db = Arc::clone(&db);
        async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            let _: Result<usize, rusqlite::Error> = LightstepTracing::global()
                .trace_database("sqlite", RECORD, async move {
                    let conn = db.lock().expect("the database lock is never poisoned");
                    conn.execute(RECORD, ["job"])
                })
                .await;
        }
        .with_context(root.clone())
        .await;
        root.span().end();
        println!("job {done} done");
        tokio::select! {
            _ = stop.changed() => {}
            () = tokio::time::sleep(Duration::from_millis(150)) => {}
        }
    }
    done
}

fn database() -> rusqlite::Result<Db> {
    let conn = rusqlite::Connection::open_in_memory()?;
    conn.execute_batch("CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT NOT NULL);")?;
    Ok(Arc::new(Mutex::new(conn)))
}
