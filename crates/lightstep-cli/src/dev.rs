//! `lightstep dev`: a local stand-in for Lightstep's Developer Mode, without Docker.
//!
//! Starts the embedded OTLP receiver (gRPC on 127.0.0.1:4317 and HTTP on 127.0.0.1:4318 by
//! default, both accepting either protocol; other addresses than loopback only with
//! `--allow-remote`, which needs `--require-token`; TLS with `--tls-cert` and `--tls-key`)
//! and, as each trace completes (no new span for
//! `--idle`), prints it as an indented tree with durations, its trace id and its critical path.
//! `--out` appends each completed trace to a file as one OTLP JSON object per line;
//! `--svg-dir` writes an SVG timeline per trace. The trace explorer is served on
//! 127.0.0.1:16686 (`--ui ADDR`, loopback only; `--no-ui`), each trace added as it completes.
//! SIGINT (Ctrl-C) and SIGTERM stop it after the
//! traces it still holds have been printed and written. Standard output closing (`| head`) stops
//! it quietly with status 0 when it next prints, after the traces still held have gone to
//! `--out` and `--svg-dir`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use lightstep::analysis::render::write_svg;
use lightstep::analysis::{Options, analyze_assembled, assemble};
use lightstep::receiver::{
    Exposure, Receiver, ReceiverStats, RunningReceiver, Trace, is_loopback, write_report,
};
use lightstep_explorer::{Explorer, RunningExplorer, TraceStore};

use crate::stop::StopSignals;

/// Arguments of `lightstep dev`.
#[derive(Debug, clap::Args)]
pub(crate) struct DevArgs {
    /// Address of the OTLP/gRPC listener: IP:PORT, or localhost:PORT for 127.0.0.1:PORT. A
    /// loopback address unless --allow-remote.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:4317",
        value_parser = parse_listen_addr
    )]
    grpc: SocketAddr,
    /// Address of the OTLP/HTTP listener (`POST /v1/traces`): IP:PORT, or localhost:PORT for
    /// 127.0.0.1:PORT. A loopback address unless --allow-remote.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:4318",
        value_parser = parse_listen_addr
    )]
    http: SocketAddr,
    /// A trace is complete once no new span of it arrived for this long (`3s`, `500ms`).
    #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = parse_duration)]
    idle: Duration,
    /// Append each completed trace to FILE, one OTLP JSON object (`{"resourceSpans":[...]}`)
    /// per line.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Write an SVG timeline per completed trace into DIR (`<trace id>.svg`).
    #[arg(long, value_name = "DIR")]
    svg_dir: Option<PathBuf>,
    /// Refuse exports that lack the access token the application is given: the value of
    /// LIGHTSTEP_ACCESS_TOKEN, or else LS_ACCESS_TOKEN, in this environment (never printed).
    /// Checks that the application sends it as `lightstep-access-token`.
    #[arg(long)]
    require_token: bool,
    /// Accept exports from other machines: --grpc and --http may then be any address (such as
    /// 0.0.0.0:4317). Needs --require-token; give --tls-cert and --tls-key too, or exports and
    /// their token cross the network unencrypted.
    #[arg(long)]
    allow_remote: bool,
    /// Serve TLS on both listeners with this certificate chain (PEM, leaf first); needs
    /// --tls-key. The endpoints printed then start with https://.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve the trace explorer (in the browser) on this address: IP:PORT or localhost:PORT,
    /// loopback only [default: 127.0.0.1:16686, or none if that port is taken].
    #[arg(long, value_name = "ADDR", value_parser = parse_listen_addr, conflicts_with = "no_ui")]
    ui: Option<SocketAddr>,
    /// Do not serve the trace explorer.
    #[arg(long)]
    no_ui: bool,
}

/// Refuses listeners that other machines could reach unless `--allow-remote` says so, and
/// `--allow-remote` without `--require-token`: the receiver's own rule
/// ([`Exposure::check`]), with this command's flags in the message.
fn check_exposure(args: &DevArgs) -> Result<(), String> {
    if args.allow_remote {
        if !args.require_token {
            return Err(
                "--allow-remote needs --require-token: exports from other machines \
                        must carry the access token"
                    .into(),
            );
        }
        return Ok(());
    }
    if let Some(addr) = args.ui.filter(|addr| !is_loopback(addr.ip())) {
        // With or without --allow-remote: the explorer shows every trace to whoever reaches
        // it, with no token to ask for.
        return Err(format!(
            "--ui {addr} is not a loopback address (127.0.0.0/8, ::1 or localhost): the explorer \
             has no authentication and shows every trace"
        ));
    }
    for (flag, addr) in [("--grpc", args.grpc), ("--http", args.http)] {
        if !is_loopback(addr.ip()) {
            return Err(format!(
                "{flag} {addr} is not a loopback address (127.0.0.0/8, ::1 or localhost): other \
                 machines could send to it; add --allow-remote (with --require-token) to accept \
                 their exports"
            ));
        }
    }
    Ok(())
}

/// The certificate chain and key of `--tls-cert` and `--tls-key`, if given.
fn tls_files(args: &DevArgs) -> io::Result<Option<(Vec<u8>, Vec<u8>)>> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    let read = |flag: &str, path: &Path| {
        std::fs::read(path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot read {flag} `{}`: {e}", path.display()),
            )
        })
    };
    Ok(Some((read("--tls-cert", cert)?, read("--tls-key", key)?)))
}

/// The token `--require-token` expects, from the variables the application reads it from.
fn expected_token() -> Result<String, String> {
    use lightstep::config::{EnvSnapshot, Setting};
    let env = EnvSnapshot::from_process();
    let vars: Vec<&str> = Setting::AccessToken.env_vars().collect();
    vars.iter()
        // As the configuration reads it: trimmed, and an empty value counts as unset.
        .find_map(|var| {
            env.get(var)
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
        })
        .ok_or_else(|| format!("--require-token needs the token in {}", vars.join(" or ")))
}

/// What the receiver refused since the last look, one line per kind, so that an exporter's
/// mistake shows where the user is watching (the exporter only logs it, if anything).
fn refusals(before: &ReceiverStats, now: &ReceiverStats) -> Vec<String> {
    let grew = |a: u64, b: u64| b.saturating_sub(a);
    [
        (
            grew(
                before.requests_unauthenticated,
                now.requests_unauthenticated,
            ),
            "export request(s) without the expected access token (`lightstep-access-token` \
             missing or wrong): UNAUTHENTICATED / 401",
        ),
        (
            grew(before.requests_malformed, now.requests_malformed),
            "export request(s) that are not OTLP trace protobuf or JSON: INVALID_ARGUMENT / 400",
        ),
        (
            grew(before.requests_too_large, now.requests_too_large),
            "export request(s) over the size limit: RESOURCE_EXHAUSTED / 413",
        ),
        (
            grew(before.spans_rejected_invalid, now.spans_rejected_invalid),
            "span(s) with an invalid trace or span id (told to the exporter as partial success)",
        ),
        (
            grew(before.spans_rejected_full, now.spans_rejected_full)
                + grew(before.requests_throttled, now.requests_throttled),
            "span(s) or request(s) for want of room (the receiver holds too much)",
        ),
    ]
    .into_iter()
    .filter(|&(n, _)| n > 0)
    .map(|(n, what)| format!("lightstep dev: refused {n} {what}"))
    .collect()
}

/// `IP:PORT`, or `localhost:PORT` (as exporter endpoints are often written) taken as
/// 127.0.0.1 without a lookup, so that the listener is where the default one is whichever
/// address the resolver would list first.
pub(crate) fn parse_listen_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse() {
        return Ok(addr);
    }
    let expected = "expected IP:PORT or localhost:PORT, such as 127.0.0.1:4317";
    match s.rsplit_once(':') {
        Some((host, port)) if host.eq_ignore_ascii_case("localhost") => port
            .parse::<u16>()
            .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
            .map_err(|_| format!("`{port}` is not a port from 0 to 65535 ({expected})")),
        _ => Err(expected.into()),
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("{e} (expected a duration such as `3s`)"))?;
    if d < Duration::from_millis(10) || d > Duration::from_secs(24 * 60 * 60) {
        return Err("expected a duration from 10ms to 24h, such as `3s`".into());
    }
    Ok(d)
}

/// Where completed traces go.
struct Sinks {
    out: Option<(PathBuf, File)>,
    svg_dir: Option<PathBuf>,
    /// The explorer's traces, when it runs.
    explorer: Option<TraceStore>,
    /// Standard output's reader has gone away: nothing more is printed, and the run stops.
    stdout_closed: bool,
}

impl Sinks {
    /// Runs `print` on standard output unless it has closed; a closed pipe is remembered
    /// instead of being an error.
    fn print(
        &mut self,
        print: impl FnOnce(&mut io::StdoutLock<'static>) -> io::Result<()>,
    ) -> io::Result<()> {
        if self.stdout_closed {
            return Ok(());
        }
        let mut stdout = io::stdout().lock();
        match print(&mut stdout).and_then(|()| stdout.flush()) {
            Err(e) if crate::is_closed_pipe(&e) => {
                self.stdout_closed = true;
                Ok(())
            }
            other => other,
        }
    }
}

pub(crate) fn run(args: &DevArgs) -> ExitCode {
    if let Err(message) = check_exposure(args) {
        crate::diagnostic(format_args!("{message} (see --help)"));
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            crate::diagnostic(format_args!("cannot start a runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            crate::diagnostic(format_args!("{}", crate::one_line(e.as_ref())));
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: &DevArgs) -> Result<(), Box<dyn std::error::Error>> {
    let mut sinks = Sinks {
        out: match &args.out {
            Some(path) => Some((path.clone(), open_append(path)?)),
            None => None,
        },
        svg_dir: args.svg_dir.clone(),
        explorer: None,
        stdout_closed: false,
    };
    if let Some(dir) = &sinks.svg_dir {
        std::fs::create_dir_all(dir).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot create `{}`: {e}", dir.display()))
        })?;
    }
    let mut builder = Receiver::builder()
        .with_grpc_addr(args.grpc)
        .with_http_addr(args.http);
    if args.require_token {
        builder = builder.with_access_token(expected_token()?);
    }
    if args.allow_remote {
        builder = builder.with_exposure(Exposure::Remote);
    }
    let tls = tls_files(args)?;
    let with_tls = tls.is_some();
    if let Some((cert, key)) = tls {
        builder = builder.with_tls(cert, key);
    }
    let receiver = builder.start().await.map_err(|e| match e {
        // Name the files the certificate or key came from.
        lightstep::receiver::Error::Tls { .. } => Box::<dyn std::error::Error>::from(format!(
            "--tls-cert `{}` and --tls-key `{}`: {}",
            args.tls_cert.as_deref().unwrap_or(Path::new("")).display(),
            args.tls_key.as_deref().unwrap_or(Path::new("")).display(),
            crate::one_line(&e)
        )),
        other => Box::new(other),
    })?;
    if args.allow_remote && !with_tls {
        crate::diagnostic(format_args!(
            "warning: --allow-remote without --tls-cert and --tls-key: exports and their access \
             token cross the network unencrypted"
        ));
    }
    let explorer = start_explorer(args).await?;
    sinks.explorer = explorer.as_ref().map(|e| e.store().clone());
    // Before anyone can know where to send, nor that the process is up: every refusal after
    // this is reported, and a stop signal after this is a clean stop. One listener for the
    // whole run: a Ctrl-C that arrives while a trace is being printed is not missed.
    let mut stop = StopSignals::listen()?;
    let mut seen = receiver.stats();
    sinks.print(|stdout| {
        writeln!(
            stdout,
            "lightstep dev: listening for OTLP on grpc={} http={} (any OTLP exporter; Ctrl-C to stop)",
            receiver.grpc_endpoint(),
            receiver.http_traces_url()
        )?;
        if let Some(explorer) = &explorer {
            writeln!(
                stdout,
                "lightstep dev: the trace explorer is at {}",
                explorer.url()
            )?;
        }
        if args.require_token {
            writeln!(
                stdout,
                "exports must carry the access token of this environment as `lightstep-access-token`"
            )?;
        }
        writeln!(
            stdout,
            "a trace is printed once no new span of it arrived for {}",
            humantime::format_duration(args.idle)
        )
    })?;

    let mut tick = tokio::time::interval(Duration::from_millis(100).min(args.idle));
    while !sinks.stdout_closed {
        tokio::select! {
            _ = tick.tick() => {
                let now = receiver.stats();
                for line in refusals(&seen, &now) {
                    sinks.print(|stdout| writeln!(stdout, "{line}"))?;
                }
                seen = now;
                // Printing, analyzing and converting take time in proportion to the traces:
                // off the async worker's scheduling.
                let traces = receiver.store().take_idle_traces(args.idle);
                if !traces.is_empty() {
                    tokio::task::block_in_place(|| {
                        traces.iter().try_for_each(|trace| emit(trace, &mut sinks))
                    })?;
                }
            }
            () = stop.recv() => break,
        }
    }
    tokio::task::block_in_place(|| flush_all(&receiver, &mut sinks))?;
    receiver.shutdown().await;
    if let Some(explorer) = explorer {
        explorer.shutdown().await;
    }
    Ok(())
}

/// The explorer on `--ui` (or its default address), unless `--no-ui`. When the default port
/// is taken (a Jaeger of the user's own, say), `dev` goes on without it and says so; a port
/// named with `--ui` that cannot be bound is an error.
async fn start_explorer(
    args: &DevArgs,
) -> Result<Option<RunningExplorer>, Box<dyn std::error::Error>> {
    if args.no_ui {
        return Ok(None);
    }
    let addr = args.ui.unwrap_or(lightstep_explorer::DEFAULT_ADDR);
    match Explorer::builder().with_addr(addr).start().await {
        Ok(explorer) => Ok(Some(explorer)),
        Err(e) if args.ui.is_none() => {
            crate::diagnostic(format_args!(
                "warning: the trace explorer is not served: {} (give it a free port with --ui \
                 127.0.0.1:PORT, or --no-ui)",
                crate::one_line(&e)
            ));
            Ok(None)
        }
        Err(e) => Err(format!("--ui {addr}: {}", crate::one_line(&e)).into()),
    }
}

/// At the end: every trace still held is complete as far as this run goes.
fn flush_all(receiver: &RunningReceiver, sinks: &mut Sinks) -> io::Result<()> {
    let traces = receiver.store().take_traces();
    for trace in &traces {
        emit(trace, sinks)?;
    }
    sinks.print(|stdout| writeln!(stdout, "lightstep dev: stopped"))
}

fn emit(trace: &Trace, sinks: &mut Sinks) -> io::Result<()> {
    // In the explorer first: once its tree is printed, a trace is there to open.
    if let Some(store) = &sinks.explorer {
        store.add_received(trace);
    }
    if let Some((path, file)) = &mut sinks.out {
        let mut line = trace.to_otlp_json();
        line.push('\n');
        file.write_all(line.as_bytes())
            .and_then(|()| file.flush())
            .map_err(|e| {
                io::Error::new(e.kind(), format!("cannot write `{}`: {e}", path.display()))
            })?;
    }
    let Some(analysis_trace) = trace.to_analysis() else {
        return sinks.print(|stdout| {
            writeln!(
                stdout,
                "\ntrace {}: could not be analyzed",
                trace.trace_id()
            )
        });
    };
    sinks.print(|stdout| {
        writeln!(stdout)?;
        write_report(stdout, &analysis_trace)
    })?;
    if let Some(dir) = &sinks.svg_dir {
        let assembled = assemble(&analysis_trace, &Options::default());
        let analysis = analyze_assembled(&analysis_trace, &assembled);
        let path = dir.join(format!("{}.svg", analysis_trace.trace_id));
        let mut svg = io::BufWriter::new(create(&path)?);
        write_svg(&mut svg, &analysis_trace, &assembled, &analysis)
            .and_then(|()| svg.flush())
            .map_err(|e| {
                io::Error::new(e.kind(), format!("cannot write `{}`: {e}", path.display()))
            })?;
    }
    Ok(())
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot open `{}`: {e}", path.display())))
}

fn create(path: &Path) -> io::Result<File> {
    File::create(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot create `{}`: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::parse_listen_addr;

    #[test]
    fn listen_addresses_are_ip_and_port_or_localhost_and_port() {
        for (text, addr) in [
            ("127.0.0.1:4317", "127.0.0.1:4317"),
            ("0.0.0.0:4318", "0.0.0.0:4318"),
            ("[::1]:4317", "[::1]:4317"),
            ("localhost:4317", "127.0.0.1:4317"),
            ("LocalHost:0", "127.0.0.1:0"),
        ] {
            let expected: SocketAddr = addr.parse().unwrap();
            assert_eq!(parse_listen_addr(text), Ok(expected), "{text}");
        }
        for text in [
            "localhost",
            "localhost:",
            "localhost:65536",
            "localhost:http",
            "example.com:4317",
            "127.0.0.1",
            ":4317",
            "",
        ] {
            let err = parse_listen_addr(text).unwrap_err();
            assert!(err.contains("localhost:PORT"), "{text:?}: {err}");
        }
    }
}
