//! The work-order domain: lifecycle, SLA, the append-only event log and evidence.
//!
//! `model`, `lifecycle`, `sla` and `events` are pure; `repo` and `evidence` do the I/O.
//! Every change goes through [`repo::append`]: lock the row, decide the event from the
//! current state, apply it, write projection and event in one transaction.

pub mod events;
pub mod evidence;
pub mod kpis;
pub mod lifecycle;
pub mod model;
pub mod repo;
pub mod sla;
pub mod sla_timers;
pub mod surveys;

pub use events::replay;
