//! Work-order vocabulary: channel, priority, status and the projected state.

use serde::Serialize;

pub use crate::customers::Tier;
use crate::ids::{AssetId, CustomerId, SiteId, UserId, WorkOrderId};
use crate::string_enum;
use crate::UnixMillis;

string_enum!(/// How the work order came in.
    Channel { Portal => "portal", Invite => "invite", Phone => "phone", TelemetryAlert => "telemetry_alert" });

string_enum!(/// P1 is the most urgent.
    Priority { P1 => "P1", P2 => "P2", P3 => "P3", P4 => "P4" });

string_enum!(/// Lifecycle states; see [`super::lifecycle`] for the legal transitions.
    Status {
        New => "new",
        Triaged => "triaged",
        InRemoteSession => "in_remote_session",
        ResolvedRemote => "resolved_remote",
        Escalated => "escalated",
        Scheduled => "scheduled",
        OnSite => "on_site",
        ResolvedOnSite => "resolved_on_site",
        Closed => "closed",
        Cancelled => "cancelled",
    });

/// The projected state of a work order: exactly what replaying its events yields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WorkOrder {
    pub id: WorkOrderId,
    pub customer_id: CustomerId,
    pub asset_id: Option<AssetId>,
    pub site_id: Option<SiteId>,
    pub title: String,
    pub description: String,
    pub channel: Channel,
    pub priority: Priority,
    pub tier: Tier,
    pub status: Status,
    pub fault_codes: Vec<String>,
    #[serde(serialize_with = "crate::http::ser_time")]
    pub first_response_due: UnixMillis,
    #[serde(serialize_with = "crate::http::ser_time")]
    pub resolution_due: UnixMillis,
    #[serde(serialize_with = "crate::http::ser_time_opt")]
    pub first_response_at: Option<UnixMillis>,
    #[serde(serialize_with = "crate::http::ser_time_opt")]
    pub resolved_at: Option<UnixMillis>,
    pub created_by: Option<UserId>,
    #[serde(serialize_with = "crate::http::ser_time")]
    pub created_at: UnixMillis,
    #[serde(serialize_with = "crate::http::ser_time")]
    pub updated_at: UnixMillis,
    /// Number of events applied; the sequence number of the last event.
    pub version: i64,
}
