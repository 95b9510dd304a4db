//! Why a deploy failed, with the state it left: every error after the rollout began
//! says whether the previous revision still serves and how to finish.

use modelport_core::provider::ProviderError;

/// Why a deploy could not finish.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Core(#[from] modelport_core::Error),
    #[error(transparent)]
    Package(#[from] modelport_package::PackageError),
    #[error(transparent)]
    Catalog(#[from] modelport_catalog::CatalogError),
    #[error(transparent)]
    Runtime(#[from] modelport_runtime::RuntimeError),
    /// The comparison could not run (the reference, the samples, the endpoint).
    #[error("the comparison could not run: {0}")]
    Compare(#[source] Box<DeployError>),
    #[error(transparent)]
    Predict(#[from] modelport_verify::CompareError),
    #[error(transparent)]
    Compress(#[from] modelport_compress::CompressError),
    /// `model.compress` made a model that misses its goal against the original;
    /// nothing was created.
    #[error("the compressed model misses the goal against the original model: nothing was created")]
    Gate(Box<modelport_compress::CompressReport>),
    /// A fail point armed by a test (debug builds only).
    #[error("fail point {0} was hit")]
    FailPoint(String),
    /// SIGINT or SIGTERM arrived.
    #[error("interrupted ({0})")]
    Interrupted(String),
    /// The rollout stopped and what it undid or finished is said in `outcome`.
    #[error("{source}; {outcome}")]
    RolledBack {
        #[source]
        source: Box<DeployError>,
        /// `the new revision was removed and the previous one keeps serving`, ...
        outcome: String,
    },
    /// The rollout stopped and could not clean up after itself.
    #[error("{source}; {outcome}")]
    Stranded {
        #[source]
        source: Box<DeployError>,
        outcome: String,
        hint: String,
    },
    #[error("{message}")]
    Other {
        message: String,
        hint: Option<String>,
    },
}

impl DeployError {
    pub fn other(message: impl Into<String>) -> DeployError {
        DeployError::Other {
            message: message.into(),
            hint: None,
        }
    }

    /// A likely fix, printed by the CLI as a `hint:` line.
    pub fn hint(&self) -> Option<String> {
        match self {
            DeployError::Provider(e) => e.hint(),
            DeployError::Core(e) => e.hint(),
            DeployError::Package(e) => e.hint(),
            DeployError::Catalog(e) => e.hint(),
            DeployError::Runtime(e) => e.hint(),
            DeployError::Compare(e) => e.hint(),
            DeployError::Predict(e) => e.hint(),
            DeployError::Compress(e) => e.hint(),
            DeployError::Gate(_) => Some(
                "loosen `model.compress.max_degradation`, set `per_channel: true`, `exclude` the \
                 nodes that lose accuracy, or `auto: true`; `modelport compress` tries settings \
                 without deploying"
                    .into(),
            ),
            DeployError::RolledBack { source, .. } => source.hint(),
            DeployError::Stranded { hint, .. } => Some(hint.clone()),
            DeployError::Other { hint, .. } => hint.clone(),
            DeployError::FailPoint(_) | DeployError::Interrupted(_) => None,
        }
    }

    /// The last lines of a server's log, when a server failed to start.
    pub fn log_tail(&self) -> Option<&[String]> {
        match self {
            DeployError::Provider(ProviderError::StartupFailed { log_tail, .. }) => Some(log_tail),
            DeployError::Compare(e)
            | DeployError::RolledBack { source: e, .. }
            | DeployError::Stranded { source: e, .. } => e.log_tail(),
            _ => None,
        }
    }

    /// True when the rollout stopped for SIGINT or SIGTERM.
    pub fn is_interrupt(&self) -> bool {
        matches!(self, DeployError::Interrupted(_))
    }
}

pub type Result<T, E = DeployError> = std::result::Result<T, E>;
