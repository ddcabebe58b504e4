//! The work-order lifecycle as a pure transition table.
//!
//! ```text
//! new -> triaged -> in_remote_session -> resolved_remote -> closed
//!                                     \-> escalated -> scheduled -> on_site -> resolved_on_site -> closed
//! ```
//! plus `cancelled` from any state before work is done on site. The extra edges are the
//! ones a service desk needs: a remote session that ends without an outcome goes back
//! to `triaged` (customer unreachable), a case that cannot be handled remotely at all is
//! escalated straight from `triaged`, a visit that needs a second trip goes back to
//! `scheduled`, and a resolved work order can be reopened (`triaged`) until it is closed.
//! `closed` and `cancelled` are terminal. Anything else is refused with 409.

use super::model::Status::{self, *};

/// Every legal edge. The state machine test walks the full product Status x Status.
pub const TRANSITIONS: &[(Status, Status)] = &[
    (New, Triaged),
    (New, Cancelled),
    (Triaged, InRemoteSession),
    (Triaged, Escalated),
    (Triaged, Cancelled),
    (InRemoteSession, ResolvedRemote),
    (InRemoteSession, Escalated),
    (InRemoteSession, Triaged),
    (ResolvedRemote, Closed),
    (ResolvedRemote, Triaged),
    (Escalated, Scheduled),
    (Escalated, Cancelled),
    (Scheduled, OnSite),
    (Scheduled, Escalated),
    (Scheduled, Cancelled),
    (OnSite, ResolvedOnSite),
    (OnSite, Scheduled),
    (ResolvedOnSite, Closed),
    (ResolvedOnSite, Triaged),
];

pub fn is_legal(from: Status, to: Status) -> bool {
    TRANSITIONS.contains(&(from, to))
}

/// States the customer may move a work order into themselves.
pub fn customer_may_enter(to: Status) -> bool {
    to == Cancelled
}

pub fn is_resolved(s: Status) -> bool {
    matches!(s, ResolvedRemote | ResolvedOnSite)
}

pub fn is_terminal(s: Status) -> bool {
    matches!(s, Closed | Cancelled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_states_have_no_way_out() {
        for &(from, _) in TRANSITIONS {
            assert!(!is_terminal(from), "{from} is terminal but has an edge");
        }
    }

    #[test]
    fn every_non_terminal_state_is_reachable_from_new() {
        let mut seen = vec![New];
        let mut frontier = vec![New];
        while let Some(s) = frontier.pop() {
            for &(f, t) in TRANSITIONS {
                if f == s && !seen.contains(&t) {
                    seen.push(t);
                    frontier.push(t);
                }
            }
        }
        for s in Status::ALL {
            assert!(seen.contains(s), "{s} unreachable");
        }
    }
}
