//! Repair guidance: the knowledge base of repair procedures (data in `models/knowledge/`,
//! loaded into the database with versions), step cards pushed in a live session, and the
//! expert's annotations with their anchoring on the customer's video.

pub mod anchoring;
pub mod live;
pub mod procedures;
pub mod store;
pub mod tracking;

/// The loaded knowledge base: the bundled library (tools, parts, procedures as read from
/// the files) and the fault taxonomy's ids, for validating edits.
pub struct Guidance {
    pub library: procedures::Library,
    pub fault_ids: std::collections::BTreeSet<String>,
}
