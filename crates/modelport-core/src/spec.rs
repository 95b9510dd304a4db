//! Placeholder: replaced by the deployment spec module.

use std::fmt;

/// An error in `modelport.yaml`, located by file, line, column and field.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecError {
    pub file: std::path::PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub field: Option<String>,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.message)
    }
}

impl std::error::Error for SpecError {}
