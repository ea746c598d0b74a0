//! Why a namespace operation or a suite stopped: something the user can change
//! (`Refused`: exit 2), or the machine failed (`Failed`: exit 3).

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The user can fix it (grant, choose another namespace, unmount...).
    #[error("{0}")]
    Refused(String),
    /// The machine or a command failed.
    #[error("{0}")]
    Failed(String),
}
