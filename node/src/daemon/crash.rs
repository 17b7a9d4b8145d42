//! Crash points for the crash tests. With `UNSEEN_CRASH_AT=ROLE:STEP` in
//! its environment (for example `responder:after-charge`), a node sends
//! itself SIGKILL when a job reaches that step, exactly as `kill -9` from
//! outside would at that moment, with no destructor, flush or commit after
//! it. The variable is for tests; an operator has no reason to set it.

use std::sync::OnceLock;

use crate::policy::Role;

/// The environment variable that names the crash point.
pub const ENV: &str = "UNSEEN_CRASH_AT";

/// The steps of a job a test can kill a node at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The request is known, admission has not run.
    BeforeAdmission,
    /// Admission committed the charge; no protocol message has left.
    AfterCharge,
    /// Protocol messages are moving.
    MidStream,
    /// The protocol is done; the job's end is not yet recorded.
    BeforeFinish,
    /// A stats party holds every agreement; no share has left it.
    AfterGo,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Self::BeforeAdmission => "before-admission",
            Self::AfterCharge => "after-charge",
            Self::MidStream => "mid-stream",
            Self::BeforeFinish => "before-finish",
            Self::AfterGo => "after-go",
        }
    }
}

/// Kills this process if the environment names this role and step.
pub fn point(role: Role, step: Step) {
    static TARGET: OnceLock<Option<String>> = OnceLock::new();
    let target = TARGET.get_or_init(|| std::env::var(ENV).ok());
    if target.as_deref() == Some(&format!("{}:{}", role.as_str(), step.name())) {
        tracing::warn!("{ENV}: killing this node at {}", step.name());
        // SIGKILL by pid through kill(1): std has no safe way to signal the
        // process itself, and abort() would run a different path (SIGABRT).
        let _ = std::process::Command::new("kill")
            .args(["-9", &std::process::id().to_string()])
            .status();
        std::process::abort();
    }
}
