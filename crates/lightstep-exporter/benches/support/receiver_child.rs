//! The embedded receiver in a child process on a CPU of its own, for the benches that must not
//! count its work (`delivery` in its remote mode, `cpu` always): the bench binary re-executes
//! itself as `taskset -c <2nd allowed CPU> <binary>` with `CHILD_ENV` set, pins itself to the
//! first allowed CPU, and talks to the child over its stdin and stdout (`count` -> spans
//! stored, `clear` -> spans taken). The child exits when its stdin closes, that is when the
//! bench ends, however it ends.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lightstep_receiver::Receiver;

/// Set by the bench on the child it starts: run the receiver, not the bench.
pub(crate) const CHILD_ENV: &str = "BENCH_RECEIVER_CHILD";

/// The receiver, in the child or in the bench's own process: room for every span of a run.
pub(crate) fn receiver_builder() -> lightstep_receiver::ReceiverBuilder {
    Receiver::builder()
        .with_max_spans(1_000_000)
        .with_max_stored_bytes(1 << 30)
        .with_max_request_bytes(64 << 20)
}

/// Whether one of this bench's own switches is set (to anything but empty or `0`). They are not
/// the library's configuration, which `EnvSnapshot` reads (`OTEL_`, `LIGHTSTEP_`, `LS_` only),
/// hence the one exception to the workspace's rule.
#[allow(clippy::disallowed_methods)]
pub(crate) fn bench_switch(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0")
}

/// The CPUs process `pid` ("self" or a number) may run on, from `/proc/<pid>/status`'s
/// `Cpus_allowed_list` (such as `0-1` or `0,2-3`).
pub(crate) fn allowed_cpus(pid: &str) -> Option<Vec<usize>> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let list = status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))?;
    let mut cpus = Vec::new();
    for part in list.trim().split(',') {
        match part.split_once('-') {
            Some((first, last)) => cpus.extend(first.parse::<usize>().ok()?..=last.parse().ok()?),
            None => cpus.push(part.parse().ok()?),
        }
    }
    Some(cpus)
}

/// The receiver in a child process pinned to a CPU of its own (see the module's comment).
pub(crate) struct ChildReceiver {
    child: Child,
    io: Mutex<ChildIo>,
    /// The receiver's gRPC endpoint.
    pub(crate) endpoint: String,
    /// The receiver's OTLP/HTTP traces URL.
    pub(crate) http_traces_url: String,
    pub(crate) description: String,
}

struct ChildIo {
    /// `None` once closed (on drop): the child exits when it reads end of file.
    to_child: Option<ChildStdin>,
    from_child: BufReader<ChildStdout>,
}

impl ChildReceiver {
    /// Starts the child on the second allowed CPU, then pins this process to the first.
    /// Returns why not if it cannot (the child, if started, exits when dropped).
    pub(crate) fn start(bench: &str) -> Result<ChildReceiver, String> {
        let cpus = allowed_cpus("self")
            .ok_or("/proc/self/status has no readable Cpus_allowed_list (not Linux?)")?;
        let [app_cpu, receiver_cpu, ..] = cpus[..] else {
            return Err(format!(
                "this process may only run on CPU(s) {cpus:?}, and the receiver needs a CPU of \
                 its own (do not run the bench under taskset yourself)"
            ));
        };
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
        // No argument: criterion's (`--bench`, filters) are not for the child, which never
        // reaches criterion.
        let mut child = Command::new("taskset")
            .arg("-c")
            .arg(receiver_cpu.to_string())
            .arg(&exe)
            .env(CHILD_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    "the `taskset` program (util-linux) is not installed".to_owned()
                }
                _ => format!("`taskset -c {receiver_cpu} {}` failed: {e}", exe.display()),
            })?;
        let to_child = child.stdin.take();
        let from_child = BufReader::new(child.stdout.take().expect("piped"));
        let mut receiver = ChildReceiver {
            child,
            io: Mutex::new(ChildIo {
                to_child,
                from_child,
            }),
            endpoint: String::new(),
            http_traces_url: String::new(),
            description: String::new(),
        };

        // The child's first line is its gRPC endpoint and its OTLP/HTTP traces URL, once its
        // receiver listens.
        let mut endpoints = String::new();
        let io = receiver.io.get_mut().unwrap();
        if io.from_child.read_line(&mut endpoints).unwrap_or(0) == 0 {
            return Err(format!(
                "the receiver child (`taskset -c {receiver_cpu} {}`) exited before it \
                 started (see its error above)",
                exe.display()
            ));
        }
        let (grpc, http) = endpoints
            .trim()
            .split_once(' ')
            .ok_or_else(|| format!("the receiver child's first line is {endpoints:?}"))?;
        receiver.endpoint = grpc.to_owned();
        receiver.http_traces_url = http.to_owned();
        let child_pid = receiver.child.id();
        let child_cpus = allowed_cpus(&child_pid.to_string());
        if child_cpus.as_deref() != Some(&[receiver_cpu]) {
            return Err(format!(
                "the receiver child may run on CPU(s) {child_cpus:?}, not CPU {receiver_cpu} alone"
            ));
        }

        // Pin this process, every thread it has so far (`-a`); later threads inherit it.
        let pid = std::process::id().to_string();
        let pinned = Command::new("taskset")
            .args(["-a", "-p", "-c", &app_cpu.to_string(), &pid])
            .output()
            .map_err(|e| format!("`taskset -a -p -c {app_cpu} {pid}` failed: {e}"))?;
        let own_cpus = allowed_cpus("self");
        if !pinned.status.success() || own_cpus.as_deref() != Some(&[app_cpu]) {
            return Err(format!(
                "`taskset -a -p -c {app_cpu} {pid}` did not pin this process ({}; now on CPU(s) \
                 {own_cpus:?})",
                String::from_utf8_lossy(&pinned.stderr).trim()
            ));
        }

        receiver.description = format!(
            "receiver in child process {child_pid} pinned to CPU {receiver_cpu}; application \
             threads, exporter and no-op ceiling in this process pinned to CPU {app_cpu}"
        );
        eprintln!(
            "{bench}: {} (gRPC {}, HTTP {})",
            receiver.description, receiver.endpoint, receiver.http_traces_url
        );
        Ok(receiver)
    }

    /// Sends one command, returns the number the child answers.
    pub(crate) fn ask(&self, command: &str) -> usize {
        let mut io = self.io.lock().unwrap();
        let io = &mut *io;
        let to_child = io.to_child.as_mut().expect("open until drop");
        to_child
            .write_all(format!("{command}\n").as_bytes())
            .and_then(|()| to_child.flush())
            .expect("the receiver child process is gone");
        let mut answer = String::new();
        io.from_child
            .read_line(&mut answer)
            .expect("the receiver child process is gone");
        answer.trim().parse().unwrap_or_else(|_| {
            panic!("the receiver child answered {answer:?} to {command:?} (gone?)")
        })
    }
}

impl Drop for ChildReceiver {
    fn drop(&mut self) {
        // Closing its stdin ends the child; give it a moment, then kill it.
        if let Ok(io) = self.io.get_mut() {
            io.to_child = None;
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The child's side (`CHILD_ENV` set): starts the receiver, writes its gRPC endpoint and its
/// OTLP/HTTP traces URL on stdout, then answers one line per command read on stdin: `count` ->
/// spans stored, `clear` -> spans taken out of the store. Returns at end of stdin (the parent
/// closed it or ended).
pub(crate) fn receiver_child() {
    // Its threads inherit the CPU `taskset` gave this process: a runtime of one worker on the
    // 2-core machine.
    let rt = tokio::runtime::Runtime::new().expect("a Tokio runtime");
    let receiver = rt
        .block_on(receiver_builder().start())
        .expect("the receiver starts");
    let mut out = std::io::stdout().lock();
    let mut answer = |line: &str| writeln!(out, "{line}").and_then(|()| out.flush()).is_ok();
    if !answer(&format!(
        "{} {}",
        receiver.grpc_endpoint(),
        receiver.http_traces_url()
    )) {
        return;
    }
    for command in std::io::stdin().lock().lines() {
        let Ok(command) = command else { break };
        let reply = match command.trim() {
            "count" => receiver.store().len(),
            "clear" => receiver.store().take_spans().len(),
            other => {
                eprintln!("bench receiver child: unknown command {other:?}");
                break;
            }
        };
        if !answer(&reply.to_string()) {
            break;
        }
    }
    // The parent is done or gone, and nothing here is worth keeping: exit at once rather than
    // through the runtime's orderly shutdown, which waits for the requests still being decoded.
    std::process::exit(0);
}
