//! Quality assurance of final decisions: the filter of the rejection audit
//! and its reproducible sampler.

use super::State;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Which final decisions the audit lists.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionFilter {
    pub state: State,
    pub agent: Option<String>,
    pub reason: Option<String>,
    pub integrator: Option<String>,
    /// Decision time range, milliseconds, `to` exclusive.
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub failing: Option<String>,
}

/// A QA verdict: agree with the decision, or say what it should have been.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Agree,
    Disagree,
}

impl Verdict {
    pub fn parse(s: &str) -> Option<Verdict> {
        match s {
            "agree" => Some(Verdict::Agree),
            "disagree" => Some(Verdict::Disagree),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Agree => "agree",
            Verdict::Disagree => "disagree",
        }
    }
}

/// The verdict's meaning for a decided case: agreeing keeps the decided
/// state as the correct one; disagreeing names the other final state.
pub fn correct_state(decided: State, v: Verdict) -> State {
    match (v, decided) {
        (Verdict::Agree, s) => s,
        (Verdict::Disagree, State::Verified) => State::NotVerified,
        (Verdict::Disagree, _) => State::Verified,
    }
}

/// Up to `n` decisions per agent, chosen by SHA-256(`seed` + scanId): the
/// same decisions, seed and `n` always give the same sample, and nobody can
/// steer which of their cases are drawn.
pub fn sample(decisions: &[(String, String)], n: usize, seed: &str) -> Vec<String> {
    let mut by_agent: BTreeMap<&str, Vec<([u8; 32], &str)>> = BTreeMap::new();
    for (scan_id, agent) in decisions {
        let mut h = Sha256::new();
        h.update(seed.as_bytes());
        h.update(b":");
        h.update(scan_id.as_bytes());
        by_agent
            .entry(agent.as_str())
            .or_default()
            .push((h.finalize().into(), scan_id.as_str()));
    }
    let mut out = Vec::new();
    for (_, mut v) in by_agent {
        v.sort();
        out.extend(v.into_iter().take(n).map(|(_, id)| id.to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_is_per_agent_and_reproducible() {
        let d: Vec<(String, String)> = (0..50)
            .map(|i| (format!("case-{i}"), format!("agent-{}", i % 3)))
            .collect();
        let a = sample(&d, 4, "2026-W48");
        assert_eq!(a.len(), 12);
        assert_eq!(a, sample(&d, 4, "2026-W48"));
        assert_ne!(a, sample(&d, 4, "2026-W49"));
        let mut shuffled = d.clone();
        shuffled.reverse();
        let mut b = sample(&shuffled, 4, "2026-W48");
        let mut a2 = a.clone();
        a2.sort();
        b.sort();
        assert_eq!(a2, b, "the order of the input does not matter");
        assert_eq!(
            correct_state(State::NotVerified, Verdict::Disagree),
            State::Verified
        );
        assert_eq!(
            correct_state(State::Verified, Verdict::Agree),
            State::Verified
        );
    }
}
