//! Onsite dispatch: technicians, matching, assignment, onsite visits, spare parts.
//!
//! * [`schedule`] — working hours in a technician's time zone as UTC intervals (pure).
//! * [`matching`] — the transparent technician score and ranking (pure).

pub mod matching;
pub mod schedule;
