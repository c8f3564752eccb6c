//! `SuccessBeforePassing`, `FailuresBeforeWarning` and `FailuresBeforeCritical`: a check's new
//! result changes its status only after enough consecutive results agree, as Consul counts them.

use crate::catalog::{CheckSpec, CheckStatus};

#[derive(Debug, Default)]
pub struct FlapGuard {
    successes: u64,
    failures: u64,
}

impl FlapGuard {
    /// The status to record after result `seen`, or `None` to keep the recorded one.
    pub fn observe(&mut self, spec: &CheckSpec, seen: CheckStatus) -> Option<CheckStatus> {
        if seen == CheckStatus::Passing {
            self.successes += 1;
            self.failures = 0;
            return (self.successes >= spec.success_before_passing).then_some(CheckStatus::Passing);
        }
        self.failures += 1;
        self.successes = 0;
        let before_warning = if spec.failures_before_warning == 0 {
            spec.failures_before_critical
        } else {
            spec.failures_before_warning
        };
        if self.failures >= spec.failures_before_critical {
            Some(seen)
        } else if self.failures >= before_warning {
            Some(CheckStatus::Warning)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CheckStatus::{Critical, Passing, Warning};

    fn spec(success: u64, warning: u64, critical: u64) -> CheckSpec {
        CheckSpec {
            success_before_passing: success,
            failures_before_warning: warning,
            failures_before_critical: critical,
            ..Default::default()
        }
    }

    fn run(spec: &CheckSpec, results: &[CheckStatus]) -> Vec<Option<CheckStatus>> {
        let mut guard = FlapGuard::default();
        results.iter().map(|r| guard.observe(spec, *r)).collect()
    }

    #[test]
    fn without_thresholds_every_result_counts_at_once() {
        assert_eq!(
            run(&spec(0, 0, 0), &[Passing, Critical, Warning]),
            vec![Some(Passing), Some(Critical), Some(Warning)]
        );
    }

    #[test]
    fn passing_needs_n_successes_in_a_row() {
        let s = spec(3, 0, 0);
        assert_eq!(run(&s, &[Passing, Passing, Passing]), vec![None, None, Some(Passing)]);
        // A failure in between starts the count again.
        assert_eq!(
            run(&s, &[Passing, Passing, Critical, Passing, Passing]),
            vec![None, None, Some(Critical), None, None]
        );
    }

    #[test]
    fn failures_go_through_warning_before_critical() {
        let s = spec(0, 2, 4);
        assert_eq!(
            run(&s, &[Critical, Critical, Critical, Critical, Passing]),
            vec![None, Some(Warning), Some(Warning), Some(Critical), Some(Passing)]
        );
    }

    #[test]
    fn warning_threshold_defaults_to_the_critical_one() {
        let s = spec(0, 0, 3);
        assert_eq!(run(&s, &[Critical, Critical, Critical]), vec![None, None, Some(Critical)]);
    }
}
