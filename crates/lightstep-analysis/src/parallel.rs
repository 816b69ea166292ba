//! Work split over two threads on large traces.
//!
//! The readers, the assembly and the JSON writer each split what is proportional to a trace's
//! span count over a second thread, when there is a second core to run it. They share the
//! decision of whether there is one here.

/// Spans from which a pass over a trace's spans is split over two threads: below, a thread
/// costs more than it saves. (Unit tests and fuzzing split small traces, so that both ways
/// are tested.)
pub(crate) const SPLIT_SPANS: usize = if cfg!(any(test, fuzzing)) { 4 } else { 1 << 16 };

/// Whether a second thread can run beside this one.
pub(crate) fn second_core() -> bool {
    std::thread::available_parallelism().is_ok_and(|n| n.get() > 1)
}

/// `a()` and `b()`, `b` on a thread of its own when `large` and there is a second core.
pub(crate) fn join<A, B>(large: bool, a: impl FnOnce() -> A, b: impl FnOnce() -> B + Send) -> (A, B)
where
    B: Send,
{
    if !large || !second_core() {
        return (a(), b());
    }
    std::thread::scope(|scope| {
        let b = scope.spawn(b);
        let a = a();
        let b = b
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (a, b)
    })
}
