//! What every loom model of this crate shares: how it is checked.

/// How many times loom may preempt a thread that could go on, in one execution, unless
/// `LOOM_MAX_PREEMPTIONS` says otherwise. Two or three find most bugs; at three every
/// model of this crate takes well under a second.
pub const PREEMPTIONS: usize = 3;

/// Check `model` under loom with the preemption bound, and say how many executions were
/// explored (shown with `--nocapture`).
pub fn check(model: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    let bound = *builder.preemption_bound.get_or_insert(PREEMPTIONS);
    let executions = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = executions.clone();
    builder.check(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        model();
    });
    let executions = executions.load(std::sync::atomic::Ordering::Relaxed);
    println!("{executions} executions explored, at most {bound} preemptions each");
}
