//! The Rhai sandbox every plugin and theme script runs in: no file, socket, process,
//! environment, module import or `eval`; hard limits on operations, call depth, expression
//! depth, string/array/map sizes, variables, memory ([`super::memory`]) and wall time per call. A call that exceeds one is
//! stopped with an [`Stopped`] error naming the limit; the server keeps serving.
//!
//! Rhai itself has no I/O: the engine starts empty (`Engine::new_raw`) with only the standard
//! library of pure functions; the host functions in [`super::host`] are the only way out, each
//! gated by a capability.

use std::cell::Cell;
use std::time::{Duration, Instant};

use rhai::packages::{Package, StandardPackage};
use rhai::{Engine, EvalAltResult};
use serde::Deserialize;

/// Limits per call into a script. Configurable in the server's settings; the defaults are safe
/// for a public site (a page filter that needs more is doing something wrong).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Rhai operations (roughly: expressions evaluated) per call.
    pub max_operations: u64,
    /// Nested function calls.
    pub max_call_levels: usize,
    /// Nesting of expressions and statements.
    pub max_expr_depth: usize,
    /// Bytes of string data in one value (a string, or all strings inside an array or map).
    pub max_string_bytes: usize,
    /// Elements of one array (nested arrays included).
    pub max_array_len: usize,
    /// Entries of one map (nested maps included).
    pub max_map_len: usize,
    /// Variables alive at once.
    pub max_variables: usize,
    /// Wall time per call, in milliseconds.
    pub max_call_ms: u64,
    /// Bytes one call may allocate (net of what it frees), counted by
    /// [`super::memory::CountingAllocator`].
    pub max_memory_bytes: usize,
    /// Consecutive failures after which a plugin is disabled for the rest of its snapshot.
    pub failures_before_disable: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_operations: 1_000_000,
            max_call_levels: 32,
            max_expr_depth: 64,
            max_string_bytes: 1 << 20,
            max_array_len: 10_000,
            max_map_len: 10_000,
            max_variables: 1_000,
            max_call_ms: 200,
            max_memory_bytes: 64 << 20,
            failures_before_disable: 5,
        }
    }
}

thread_local! {
    /// When the call running on this thread must stop (calls are synchronous on one thread).
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Why a call was stopped or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Stopped {
    #[error("exceeded the operation limit ({0} operations)")]
    Operations(u64),
    #[error("exceeded the call depth limit ({0} levels)")]
    CallDepth(usize),
    #[error("exceeded a data size limit ({0})")]
    DataSize(String),
    #[error("exceeded the wall-time limit ({0} ms)")]
    WallTime(u64),
    #[error("exceeded the memory limit ({0} bytes)")]
    Memory(usize),
    #[error("too many variables")]
    Variables,
    /// Any other runtime error of the script (with its line).
    #[error("{0}")]
    Failed(String),
}

/// A Rhai engine with the sandbox's limits. One per snapshot, shared by its calls.
pub fn engine(limits: &Limits) -> Engine {
    let mut engine = Engine::new_raw();
    engine.register_global_module(StandardPackage::new().as_shared_module());
    engine
        .set_max_operations(limits.max_operations)
        .set_max_call_levels(limits.max_call_levels)
        .set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth)
        .set_max_string_size(limits.max_string_bytes)
        .set_max_array_size(limits.max_array_len)
        .set_max_map_size(limits.max_map_len)
        .set_max_variables(limits.max_variables)
        .set_max_modules(0)
        .set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new())
        .set_strict_variables(true);
    engine.disable_symbol("eval");
    engine.on_print(|text| tracing::info!(target: "whispercms::plugin", "{text}"));
    engine.on_debug(|text, _, pos| tracing::debug!(target: "whispercms::plugin", line = pos.line(), "{text}"));
    engine.on_progress(|operations| {
        if super::memory::exhausted() {
            return Some(MEMORY.into());
        }
        // Reading the clock every operation would cost more than the script; every 1,024 is
        // well under a millisecond apart.
        if operations % 1024 != 0 {
            return None;
        }
        let late = DEADLINE.with(|d| d.get()).is_some_and(|deadline| Instant::now() > deadline);
        late.then(|| WALL_TIME.into())
    });
    engine
}

/// Why the progress callback stopped a call.
const WALL_TIME: &str = "wall time";
const MEMORY: &str = "memory";

/// Run `f` (one call into a script) with the wall-time and memory limits of `limits`, and
/// classify its error.
pub fn with_deadline<T>(limits: &Limits, f: impl FnOnce() -> Result<T, Box<EvalAltResult>>) -> Result<T, Stopped> {
    let previous = DEADLINE.with(|d| d.replace(Some(Instant::now() + Duration::from_millis(limits.max_call_ms))));
    let budget = super::memory::start(limits.max_memory_bytes);
    let result = f();
    super::memory::stop(budget);
    DEADLINE.with(|d| d.set(previous));
    result.map_err(|e| classify(limits, &e))
}

fn classify(limits: &Limits, e: &EvalAltResult) -> Stopped {
    match e {
        EvalAltResult::ErrorTooManyOperations(..) => Stopped::Operations(limits.max_operations),
        EvalAltResult::ErrorStackOverflow(..) => Stopped::CallDepth(limits.max_call_levels),
        EvalAltResult::ErrorDataTooLarge(what, ..) => Stopped::DataSize(what.clone()),
        EvalAltResult::ErrorTerminated(why, _) if why.to_string() == MEMORY => Stopped::Memory(limits.max_memory_bytes),
        EvalAltResult::ErrorTerminated(..) => Stopped::WallTime(limits.max_call_ms),
        EvalAltResult::ErrorTooManyVariables(..) => Stopped::Variables,
        // Errors inside a function call wrap the cause: classify by the innermost one.
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _) => match classify(limits, inner) {
            Stopped::Failed(_) => Stopped::Failed(one_line(e)),
            limit => limit,
        },
        _ => Stopped::Failed(one_line(e)),
    }
}

/// Rhai's messages span lines for nested calls; ours are one line.
fn one_line(e: &EvalAltResult) -> String {
    e.to_string().split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(script: &str) -> Result<rhai::Dynamic, Stopped> {
        run_within(100, script)
    }

    fn run_within(max_call_ms: u64, script: &str) -> Result<rhai::Dynamic, Stopped> {
        let limits = Limits { max_call_ms, ..Limits::default() };
        let engine = engine(&limits);
        let ast = engine.compile(script).map_err(|e| Stopped::Failed(e.to_string()))?;
        with_deadline(&limits, || engine.eval_ast::<rhai::Dynamic>(&ast))
    }

    #[test]
    fn every_limit_stops_the_script() {
        assert_eq!(run("loop {}").unwrap_err(), Stopped::Operations(1_000_000));
        assert_eq!(run("fn f(n) { f(n + 1) } f(0)").unwrap_err(), Stopped::CallDepth(32));
        // The size limits, with time enough that a loaded machine (a parallel test run) does not
        // hit the 200 ms wall-time limit first: it did once.
        assert!(matches!(run_within(10_000, "let s = \"x\"; loop { s += s; }").unwrap_err(), Stopped::DataSize(_)));
        assert!(matches!(run_within(10_000, "let a = []; loop { a.push(1); }").unwrap_err(), Stopped::DataSize(_)));
        // A map growing key by key is not size-checked by Rhai: the memory budget stops it. (Time
        // enough that a slow machine does not hit the wall-time limit first.)
        let memory = run_within(
            60_000,
            "let big = \"x\"; for i in 0..16 { big += big; } let m = #{}; let i = 0; loop { m[big + i] = i; i += 1; }",
        );
        assert_eq!(memory.unwrap_err(), Stopped::Memory(64 << 20));
        // Strings inside an array count together.
        let many = "let s = \"x\"; for i in 0..17 { s += s; } let a = []; loop { a.push(s + \"y\"); }";
        assert!(matches!(run(many).unwrap_err(), Stopped::DataSize(_)));
    }

    #[test]
    fn wall_time_stops_slow_scripts() {
        let limits = Limits { max_call_ms: 20, max_operations: 0, ..Limits::default() };
        let engine = engine(&limits);
        let ast = engine.compile("let x = 0; loop { x += 1; }").unwrap();
        assert_eq!(
            with_deadline(&limits, || engine.eval_ast::<rhai::Dynamic>(&ast)).unwrap_err(),
            Stopped::WallTime(20)
        );
    }

    #[test]
    fn there_is_no_way_out() {
        for script in [
            "eval(\"1\")",
            "import \"x\" as y; 1",
            "open_file(\"/etc/passwd\")",
            "system(\"ls\")",
            "env(\"HOME\")",
            "undefined_variable",
        ] {
            assert!(run(script).is_err(), "{script} must fail");
        }
        assert_eq!(run("40 + 2").unwrap().as_int().unwrap(), 42);
    }
}
