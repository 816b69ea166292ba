//! Generated Jaeger traces and a stand-in Jaeger that makes them as they are read, for the
//! memory test and the fetch benchmark: neither side ever holds a whole search's answer.

use crate::standin::{Body, Recorded, Reply, StandIn};

/// Spans per generated trace.
pub(crate) const SPANS: usize = 50;

/// One Jaeger trace of [`SPANS`] spans (a root and a chain of children), as JSON.
pub(crate) fn trace_json(n: usize) -> Vec<u8> {
    let trace_id = format!("{:032x}", n + 1);
    let mut spans = Vec::with_capacity(SPANS);
    for i in 0..SPANS {
        let span_id = format!("{:016x}", (n << 8) + i + 1);
        let references = if i == 0 {
            String::new()
        } else {
            format!(
                r#"{{"refType":"CHILD_OF","traceID":"{trace_id}","spanID":"{:016x}"}}"#,
                (n << 8) + i
            )
        };
        spans.push(format!(
            r#"{{"traceID":"{trace_id}","spanID":"{span_id}","operationName":"operation-{i}","references":[{references}],"startTime":{},"duration":{},"processID":"p1","tags":[{{"key":"span.kind","type":"string","value":"server"}}]}}"#,
            1_700_000_000_000_000u64 + i as u64 * 10,
            10_000 - i * 100,
        ));
    }
    format!(
        r#"{{"traceID":"{trace_id}","spans":[{}],"processes":{{"p1":{{"serviceName":"checkout","tags":[]}}}}}}"#,
        spans.join(",")
    )
    .into_bytes()
}

/// A stand-in Jaeger: its search (`/api/traces?limit=N`) answers N generated traces, made as
/// they are read; `/api/traces/{id}` answers the generated trace of that id (ids are `n + 1`).
pub(crate) async fn jaeger() -> StandIn {
    StandIn::start_unrecorded(|request: &Recorded| {
        if let Some(id) = request.path.strip_prefix("/api/traces/") {
            return match usize::from_str_radix(id, 16) {
                Ok(n) if n > 0 => {
                    let mut body = br#"{"data":["#.to_vec();
                    body.extend(trace_json(n - 1));
                    body.extend_from_slice(b"]}");
                    Reply::json(200, body)
                }
                _ => Reply::json(
                    404,
                    r#"{"data":null,"errors":[{"code":404,"msg":"trace not found"}]}"#,
                ),
            };
        }
        let limit: usize = request.param("limit").unwrap().parse().unwrap();
        let pieces = std::iter::once(br#"{"data":["#.to_vec())
            .chain((0..limit).map(|n| {
                let mut piece = if n == 0 { Vec::new() } else { b",".to_vec() };
                piece.extend(trace_json(n));
                piece
            }))
            .chain(std::iter::once(
                br#"],"total":0,"limit":0,"offset":0,"errors":null}"#.to_vec(),
            ));
        Reply {
            status: 200,
            headers: vec![("content-type", "application/json".into())],
            body: Body::Generated(Box::new(pieces)),
            delay: None,
        }
    })
    .await
}
