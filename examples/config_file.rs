//! Configuration from a file: the same small request traced twice, once configured by
//! `config/lightstep.toml` (OTLP/gRPC) and once by `config/lightstep.yaml` (OTLP/HTTP), each
//! printing its effective configuration with where every value came from.
//!
//! ```sh
//! cargo run --example config_file                          # both shipped files
//! cargo run --example config_file -- path/to/app.toml      # your own (.toml, .yaml, .yml, .json)
//! LIGHTSTEP_CONFIG_FILE=app.yaml cargo run --example quickstart   # any example, by variable
//! ```
//!
//! Precedence: built-in defaults < the file < the environment < code. So `OTEL_SERVICE_NAME`
//! still overrides the file's `service_name` here.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::ExitCode;

use lightstep::instrument::LightstepTracing;
use lightstep_examples::{Demo, chain};

#[tokio::main]
async fn main() -> ExitCode {
    let mut files: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if files.is_empty() {
        // Found wherever the example is run from.
        let shipped = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
        files = vec![
            shipped.join("lightstep.toml"),
            shipped.join("lightstep.yaml"),
        ];
    }
    let mut status = ExitCode::SUCCESS;
    for file in files {
        println!("== {}", file.display());
        // `with_file` names the file in code; `LIGHTSTEP_CONFIG_FILE` does the same from the
        // environment.
        let demo = match Demo::start(lightstep::LightstepConfig::builder().with_file(&file)).await {
            Ok(demo) => demo,
            Err(error) => {
                eprintln!("error: {}", chain(&*error));
                status = ExitCode::FAILURE;
                continue;
            }
        };
        println!(
            "effective configuration (token redacted):\n{}",
            demo.pipeline().config().effective()
        );

        let tracing = LightstepTracing::global();
        let response = tracing
            .trace_http("GET", "/api/config", async {
                let read: Result<usize, std::io::Error> = tracing
                    .trace_database("sqlite", "SELECT key, value FROM settings", async { Ok(2) })
                    .await;
                if read.is_ok() {
                    http::StatusCode::OK
                } else {
                    http::StatusCode::INTERNAL_SERVER_ERROR
                }
            })
            .await;
        println!("GET /api/config -> {response}");
        if demo.finish().await != ExitCode::SUCCESS {
            status = ExitCode::FAILURE;
        }
    }
    status
}
