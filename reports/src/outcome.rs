//! What became of one measurement cell of a suite: measured, refused by the kernel (a
//! result), or skipped with the reason.

use serde::{Deserialize, Serialize};

/// What became of one cell (a memory and driver, an operation, a pin try).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Outcome {
    Measured,
    /// The kernel refused the pin: a result (e.g. long-term pins of fsdax: EOPNOTSUPP).
    Refused {
        errno: String,
        detail: String,
    },
    /// Not run here, and why (driver or memory unavailable).
    Skipped {
        reason: String,
    },
}

impl Outcome {
    /// "measured", "refused (EPERM): detail", "skipped: reason".
    pub fn describe(&self) -> String {
        match self {
            Outcome::Measured => "measured".into(),
            Outcome::Refused { errno, detail } => format!("refused ({errno}): {detail}"),
            Outcome::Skipped { reason } => format!("skipped: {reason}"),
        }
    }
}
