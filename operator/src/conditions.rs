//! Status conditions whose lastTransitionTime moves only when their status does, so that
//! `kubectl wait` and dashboards see real transitions, not every reconcile.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// A condition to set: type, status, reason, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    pub type_: &'static str,
    pub status: bool,
    pub reason: String,
    pub message: String,
}

impl Want {
    pub fn new(
        type_: &'static str,
        status: bool,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Want {
        Want { type_, status, reason: reason.into(), message: message.into() }
    }
}

fn status_word(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// The new conditions: each wanted one keeps the previous lastTransitionTime when its status did
/// not change; `now` otherwise.
pub fn merge(previous: &[Condition], wanted: &[Want], generation: Option<i64>, now: Time) -> Vec<Condition> {
    wanted
        .iter()
        .map(|w| {
            let status = status_word(w.status);
            let since = previous
                .iter()
                .find(|c| c.type_ == w.type_ && c.status == status)
                .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
            Condition {
                type_: w.type_.to_string(),
                status: status.to_string(),
                reason: w.reason.clone(),
                message: w.message.clone(),
                observed_generation: generation,
                last_transition_time: since,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Time {
        Time(jiff::Timestamp::from_second(secs).expect("valid second"))
    }

    #[test]
    fn transition_time_moves_only_with_the_status() {
        let first = merge(&[], &[Want::new("Ready", false, "NoPassing", "0 of 1")], Some(1), at(100));
        assert_eq!(first[0].last_transition_time, at(100));
        let same = merge(&first, &[Want::new("Ready", false, "NoPassing", "0 of 2")], Some(2), at(200));
        assert_eq!(same[0].last_transition_time, at(100));
        assert_eq!(same[0].observed_generation, Some(2));
        assert_eq!(same[0].message, "0 of 2");
        let flipped = merge(&same, &[Want::new("Ready", true, "Passing", "2 of 2")], Some(2), at(300));
        assert_eq!(flipped[0].last_transition_time, at(300));
        assert_eq!(flipped[0].status, "True");
    }
}
