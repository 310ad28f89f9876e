//! Questions to the person at the terminal: whether to go on, and what to
//! do when a build fails under `-on-error=ask`.

use std::io::{IsTerminal, Write};

use anyhow::bail;

use osci::engine::walk::{Decision, Failure};
use osci::oapi::transport::BoxFuture;

/// Asks `what` and goes on only on `yes`, unless `auto_approve`; without a
/// terminal to ask on, refuses.
pub fn confirm(what: &str, auto_approve: bool) -> anyhow::Result<()> {
    if auto_approve {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        bail!("no terminal to ask for confirmation: pass --auto-approve to {what} without asking");
    }
    eprint!("Do you want to {what}? Only 'yes' will be accepted: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    if answer.trim() != "yes" {
        bail!("{what} cancelled");
    }
    Ok(())
}

/// `-on-error=ask` needs someone to ask.
pub fn can_ask() -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        bail!("-on-error=ask asks on a terminal, and there is none: use cleanup or abort");
    }
    Ok(())
}

/// Asks, as Packer does, what to do about a failed step: clean up, abort
/// (keep what the build made, for a later destroy) or retry the step.
pub fn on_error(failure: Failure) -> BoxFuture<'static, Decision> {
    // Builds that fail together are asked about one after the other.
    static ASKING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    Box::pin(async move {
        let _turn = ASKING.lock().await;
        tokio::task::spawn_blocking(move || {
            eprintln!(
                "build \"{}\": {} failed: {}",
                failure.group, failure.job, failure.why
            );
            loop {
                eprint!(
                    "[c] Clean up and exit, [a] abort without cleanup, or [r] retry step (build may \
                     fail even if retry succeeds)? "
                );
                let _ = std::io::stderr().flush();
                let mut answer = String::new();
                // End of input: nobody left to answer; clean up.
                if std::io::stdin().read_line(&mut answer).unwrap_or(0) == 0 {
                    return Decision::Reverse;
                }
                match answer.trim() {
                    "c" | "C" => return Decision::Reverse,
                    "a" | "A" => return Decision::Keep,
                    "r" | "R" => return Decision::Retry,
                    _ => {}
                }
            }
        })
        .await
        .unwrap_or(Decision::Reverse)
    })
}
