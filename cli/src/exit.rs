//! Exit codes and the error type that carries one. kselftest's conventions where they
//! exist (4 = skipped), the project's own for the rest (README, Exit codes).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Ok = 0,
    /// A comparison found a regression or a loss; `run --strict` found a mismatch.
    Regression = 1,
    /// Bad arguments or input: the user can fix the command line.
    Usage = 2,
    /// The machine lacks something (a tool, a package, a kernel feature) or it failed.
    Environment = 3,
    /// Nothing could be measured here (kselftest's skip).
    Skipped = 4,
    /// The test VM did not finish within --timeout and was killed.
    Timeout = 5,
    /// `ab --bisect`: this kernel cannot be tested (git bisect run skips it).
    BisectSkip = 125,
    /// `ab --bisect`: foliobench's own input is wrong; git bisect run stops.
    BisectAbort = 128,
}

/// An error that knows its exit code; anything else is an environment error.
#[derive(Debug)]
pub struct Fail {
    pub code: Code,
    pub msg: String,
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Fail {}

pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    Fail {
        code: Code::Usage,
        msg: msg.into(),
    }
    .into()
}

pub fn env(msg: impl Into<String>) -> anyhow::Error {
    Fail {
        code: Code::Environment,
        msg: msg.into(),
    }
    .into()
}

/// A flag set by SIGINT or SIGTERM instead of dying: the caller cleans up (kills the VM,
/// restores the namespace, prints what was traced) and then exits.
pub fn interrupt_flag() -> anyhow::Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, std::sync::Arc::clone(&flag))?;
    }
    Ok(flag)
}

/// The exit code for an error: the innermost `Fail` in the chain decides.
pub fn code_of(e: &anyhow::Error) -> Code {
    e.chain()
        .find_map(|c| c.downcast_ref::<Fail>())
        .map(|f| f.code)
        .unwrap_or(Code::Environment)
}
