//! consul-template's per-template `wait`: after the data a template reads changes, that template
//! is written only once the data has been quiet for its `min`, or `max` after the first change,
//! while the other templates follow at once.

use std::collections::BTreeSet;

use tokio::time::Instant;

use super::deps::Dependency;
use super::template::Wait;

/// When each template with its own wait may next be written.
#[derive(Debug)]
pub struct Holds {
    waits: Vec<Option<Wait>>,
    /// Per template: (first change, last change) since it was last released.
    held: Vec<Option<(Instant, Instant)>>,
}

impl Holds {
    pub fn new(waits: Vec<Option<Wait>>) -> Holds {
        let held = vec![None; waits.len()];
        Holds { waits, held }
    }

    /// Holds every template with its own wait that read one of `changed` in its last render.
    pub fn changed(&mut self, changed: &BTreeSet<Dependency>, used: &[BTreeSet<Dependency>], now: Instant) {
        for (i, wait) in self.waits.iter().enumerate() {
            let reads_one = used.get(i).is_some_and(|used| !used.is_disjoint(changed));
            if wait.is_some() && reads_one {
                let first = self.held[i].map_or(now, |(first, _)| first);
                self.held[i] = Some((first, now));
            }
        }
    }

    fn release_at(&self, i: usize) -> Option<Instant> {
        let (wait, (first, last)) = (self.waits[i]?, self.held[i]?);
        Some((last + wait.min).min(first + wait.max))
    }

    /// Whether template `i` may be written at `now`; a hold that has run out is released.
    pub fn released(&mut self, i: usize, now: Instant) -> bool {
        match self.release_at(i) {
            Some(at) if at > now => false,
            _ => {
                self.held[i] = None;
                true
            }
        }
    }

    /// When the next held template may be written.
    pub fn next_release(&self) -> Option<Instant> {
        (0..self.waits.len()).filter_map(|i| self.release_at(i)).min()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_template_with_its_own_wait_is_held_until_quiet_or_max() {
        let wait = Wait { min: Duration::from_secs(2), max: Duration::from_secs(5) };
        let mut holds = Holds::new(vec![Some(wait), None]);
        let key = Dependency::Key("k".into());
        let used = vec![BTreeSet::from([key.clone()]), BTreeSet::from([key.clone()])];
        let t0 = Instant::now();
        holds.changed(&BTreeSet::from([key.clone()]), &used, t0);
        assert!(!holds.released(0, t0 + Duration::from_secs(1)), "held for min after the change");
        assert!(holds.released(1, t0), "a template without a wait is never held");
        // Changes keep coming every second: released at max, 5 s after the first.
        for s in 1..5 {
            holds.changed(&BTreeSet::from([key.clone()]), &used, t0 + Duration::from_secs(s));
        }
        assert_eq!(holds.next_release(), Some(t0 + Duration::from_secs(5)));
        assert!(!holds.released(0, t0 + Duration::from_millis(4900)));
        assert!(holds.released(0, t0 + Duration::from_secs(5)));
        assert_eq!(holds.next_release(), None);
        // A change to data the template does not read holds nothing.
        holds.changed(&BTreeSet::from([Dependency::Services]), &used, t0);
        assert!(holds.released(0, t0));
    }
}
