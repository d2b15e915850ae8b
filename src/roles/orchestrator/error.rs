//! How a step of starting, finishing or cancelling a run failed, as HTTP: a dependency that is
//! down is 503, anything else 500, each naming the step and the engine's reason.

use crate::clients::BackendError;
use crate::http::ApiError;
use crate::infra::broker::BrokerError;
use crate::infra::config_store::ConfigStoreError;
use crate::infra::launcher::LaunchError;

/// One engine call that failed, and whether retrying later may work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepFailure {
    /// What was being done: `publishing the jobs`.
    pub step: &'static str,
    pub message: String,
    /// The engine is down or unreachable (503) rather than refusing (500).
    pub unavailable: bool,
}

impl StepFailure {
    pub fn new(step: &'static str, message: impl Into<String>, unavailable: bool) -> Self {
        Self { step, message: message.into(), unavailable }
    }

    pub fn backend(step: &'static str, error: BackendError) -> Self {
        let unavailable = error.is_unavailable();
        Self::new(step, error.to_string(), unavailable)
    }

    pub fn config_store(step: &'static str, error: ConfigStoreError) -> Self {
        let unavailable = matches!(error, ConfigStoreError::Unavailable(_));
        Self::new(step, error.to_string(), unavailable)
    }

    pub fn broker(step: &'static str, error: BrokerError) -> Self {
        let unavailable = matches!(error, BrokerError::Unavailable(_));
        Self::new(step, error.to_string(), unavailable)
    }

    pub fn launcher(step: &'static str, error: LaunchError) -> Self {
        let unavailable = matches!(error, LaunchError::Unavailable(_));
        Self::new(step, error.to_string(), unavailable)
    }

    /// The answer, with `context` before the step (`could not start the run`) and `after`
    /// appended (what was undone).
    pub fn into_api_error(self, context: &str, after: &str) -> ApiError {
        let detail = format!("{context}: {} failed: {}{after}", self.step, self.message);
        let status = if self.unavailable {
            axum::http::StatusCode::SERVICE_UNAVAILABLE
        } else {
            axum::http::StatusCode::INTERNAL_SERVER_ERROR
        };
        ApiError::new(status, detail.clone()).with_source(anyhow::anyhow!(detail))
    }
}

/// Why a start was refused or failed.
#[derive(Debug)]
pub enum StartError {
    /// Refused before anything was stored (bad input, a run id already used).
    Refused(ApiError),
    /// A step failed after the start began; what was done has been undone.
    Failed(StepFailure),
}

impl From<ApiError> for StartError {
    fn from(error: ApiError) -> Self {
        StartError::Refused(error)
    }
}

impl From<StepFailure> for StartError {
    fn from(failure: StepFailure) -> Self {
        StartError::Failed(failure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dependency_down_is_503_and_a_refusal_500_naming_the_step() {
        let down = StepFailure::broker("publishing the jobs", BrokerError::Unavailable("connection refused".into()));
        let error = down.into_api_error("could not start the run", "; nothing was kept");
        assert_eq!(error.status.as_u16(), 503);
        assert_eq!(
            error.detail,
            "could not start the run: publishing the jobs failed: broker unavailable: connection refused; nothing was kept"
        );
        let refused = StepFailure::launcher("launching the agents", LaunchError::Conflict("launched twice".into()));
        assert_eq!(refused.into_api_error("x", "").status.as_u16(), 500);
    }
}
