//! Exit codes and the error type that carries one. kselftest's conventions where they
//! exist (4 = skipped), DESIGN.md's for the rest.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Ok = 0,
    /// A comparison found a regression.
    #[allow(dead_code)] // used by `compare`, which lands with the reports issue
    Regression = 1,
    /// Bad arguments or input: the user can fix the command line.
    Usage = 2,
    /// The machine lacks something (a tool, a package, a kernel feature) or it failed.
    Environment = 3,
    /// Nothing could be measured here (kselftest's skip).
    #[allow(dead_code)]
    Skipped = 4,
    /// The test VM did not finish within --timeout and was killed.
    Timeout = 5,
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

/// The exit code for an error: the innermost `Fail` in the chain decides.
pub fn code_of(e: &anyhow::Error) -> Code {
    e.chain()
        .find_map(|c| c.downcast_ref::<Fail>())
        .map(|f| f.code)
        .unwrap_or(Code::Environment)
}
