//! Skips that show: a test that cannot run here (no root, a tool or the openstack client
//! missing) calls [`skip`], which
//! * under `CI=true` panics instead (CI cannot go green by skipping);
//! * else writes `SKIPPED test: reason` straight to the process's standard error, not
//!   through `eprintln!` (libtest captures that and shows it only with `--nocapture`), so
//!   the line appears in `cargo test`'s output beside the test's `ok`;
//! * and when the test binary exits, right under libtest's `test result:` line, prints
//!   `SKIPPED: N of this binary's tests did not run (counted as passed above): ...` with
//!   their names (a `libc::atexit` handler, registered at the first skip).
//!
//! libtest has no runtime "skipped" state (`#[ignore]` is decided at compile time, and a
//! build-time cfg would not follow `sudo` between builds), so the count it prints stays
//! "passed"; these two lines are what tells a user which tests did not run. Standalone
//! (only `std` and `libc`): files without `mod common` include it with
//! `#[path = "common/skip.rs"] mod skip;`.

use std::io::Write as _;
use std::sync::{Mutex, Once};

static SKIPPED: Mutex<Vec<String>> = Mutex::new(Vec::new());
static AT_EXIT: Once = Once::new();

/// True under CI (`CI=true`): a test that cannot run must fail, not skip.
pub fn in_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// `test` cannot run here because of `reason`: panic under CI, else report the skip
/// visibly (see the module doc). The caller returns right after.
pub fn skip(test: &str, reason: &str) {
    assert!(!in_ci(), "{test}: cannot run under CI: {reason}");
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {reason}");
    if let Ok(mut v) = SKIPPED.lock() {
        v.push(test.to_string());
    }
    AT_EXIT.call_once(|| {
        // SAFETY: registers a plain `extern "C"` function with no arguments.
        unsafe { libc::atexit(summary) };
    });
}

extern "C" fn summary() {
    let Ok(v) = SKIPPED.lock() else { return };
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {} of this binary's tests did not run (counted as passed above): {}; \
         they need root and the lab tools (README, Quick start: running every test)",
        v.len(),
        v.join(", ")
    );
}
