//! modelport's documented exit codes.

use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The command did what was asked.
    Success = 0,
    /// Something failed; the message and a hint are on stderr.
    Error = 1,
    /// `plan` only: the plan has changes (like `terraform plan -detailed-exitcode`).
    Changes = 2,
    /// A comparison ran and the two sides disagree beyond the tolerances.
    Mismatch = 3,
}

// Exit code 2 is also clap's for usage errors, raised before any command runs.

impl From<Code> for ExitCode {
    fn from(c: Code) -> ExitCode {
        ExitCode::from(c as u8)
    }
}
