//! Four-eyes (maker-checker) policy: which first decisions need a second
//! reviewer before they become final.

use super::process::Decision;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Every rejection.
    pub rejections: bool,
    /// Accepts of cases that fail a validation.
    pub failing_accepts: bool,
    /// Every decision on these integrators' cases.
    pub integrators: Vec<String>,
    /// This share (0-100) of the other accepts, chosen by scanId.
    pub sample_percent: u8,
}

/// Why a decision needs a second reviewer (stored with the proposal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Rejection,
    FailingAccept,
    Integrator,
    Sample,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Rejection => "rejection",
            Rule::FailingAccept => "failing_accept",
            Rule::Integrator => "integrator",
            Rule::Sample => "sample",
        }
    }

    pub fn label(code: &str) -> &'static str {
        match code {
            "rejection" => "every rejection is checked",
            "failing_accept" => "accepted with failing checks",
            "integrator" => "the integrator's cases are all checked",
            "sample" => "sampled accept",
            _ => "policy",
        }
    }
}

impl Policy {
    /// The rule that holds this final decision for a second reviewer, if
    /// any. The sample is a pure function of the scanId, so a case is in it
    /// or not whoever decides it and however often the page is reloaded.
    pub fn rule_for(
        &self,
        decision: Decision,
        integrator_id: &str,
        scan_id: &str,
        failing: bool,
    ) -> Option<Rule> {
        match decision {
            Decision::Pending => None,
            _ if self.integrators.iter().any(|i| i == integrator_id) => Some(Rule::Integrator),
            Decision::Reject if self.rejections => Some(Rule::Rejection),
            Decision::Reject => None,
            Decision::Accept if self.failing_accepts && failing => Some(Rule::FailingAccept),
            Decision::Accept if in_sample(scan_id, self.sample_percent) => Some(Rule::Sample),
            Decision::Accept => None,
        }
    }

    pub fn is_off(&self) -> bool {
        !self.rejections
            && !self.failing_accepts
            && self.integrators.is_empty()
            && self.sample_percent == 0
    }
}

/// Whether a case falls in a `percent` sample: the first two bytes of
/// SHA-256(scanId) mod 100.
pub fn in_sample(scan_id: &str, percent: u8) -> bool {
    if percent == 0 {
        return false;
    }
    let h = Sha256::digest(scan_id.as_bytes());
    let v = u16::from_be_bytes([h[0], h[1]]) % 100;
    v < u16::from(percent.min(100))
}

/// What the second reviewer does with a proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Confirm,
    Overturn,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Confirm => "confirmed",
            Verdict::Overturn => "overturned",
        }
    }

    /// The final decision: the proposal's, or the other one.
    pub fn outcome(self, proposed: Decision) -> Decision {
        match (self, proposed) {
            (Verdict::Confirm, d) => d,
            (Verdict::Overturn, Decision::Accept) => Decision::Reject,
            (Verdict::Overturn, _) => Decision::Accept,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_apply_in_order() {
        let p = Policy {
            rejections: true,
            failing_accepts: true,
            integrators: vec!["i1".into()],
            sample_percent: 0,
        };
        assert_eq!(
            p.rule_for(Decision::Reject, "i2", "s", false),
            Some(Rule::Rejection)
        );
        assert_eq!(
            p.rule_for(Decision::Accept, "i2", "s", true),
            Some(Rule::FailingAccept)
        );
        assert_eq!(p.rule_for(Decision::Accept, "i2", "s", false), None);
        assert_eq!(
            p.rule_for(Decision::Accept, "i1", "s", false),
            Some(Rule::Integrator)
        );
        assert_eq!(p.rule_for(Decision::Pending, "i1", "s", true), None);
        assert_eq!(
            Policy::default().rule_for(Decision::Reject, "i1", "s", true),
            None
        );
    }

    #[test]
    fn the_sample_is_reproducible_and_near_its_share() {
        let ids: Vec<String> = (0..10_000).map(|i| format!("case-{i}")).collect();
        let n = ids.iter().filter(|id| in_sample(id, 10)).count();
        assert!((800..1200).contains(&n), "{n}");
        assert!(ids.iter().all(|id| in_sample(id, 10) == in_sample(id, 10)));
        assert!(ids.iter().all(|id| in_sample(id, 100)));
        assert!(!ids.iter().any(|id| in_sample(id, 0)));
        assert_eq!(
            Verdict::Overturn.outcome(Decision::Reject),
            Decision::Accept
        );
        assert_eq!(
            Verdict::Overturn.outcome(Decision::Accept),
            Decision::Reject
        );
        assert_eq!(Verdict::Confirm.outcome(Decision::Reject), Decision::Reject);
    }
}
