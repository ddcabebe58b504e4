//! Typed ids that cross module boundaries. Each wraps a UUIDv7 (time-ordered, so keyset
//! pagination by id is also pagination by creation time) and is stored as its canonical
//! text form. Parsing happens at the edge: a malformed id is a 4xx, never a panic.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(/// A user account (any role).
    UserId);
id_type!(/// A login session; refresh tokens and access tokens are bound to one.
    AuthSessionId);
id_type!(/// A single-use invite link bound to one work order.
    InviteId);
id_type!(/// A customer organisation.
    CustomerId);
id_type!(/// A customer's site (address and coordinates).
    SiteId);
id_type!(/// A customer's tool or machine.
    AssetId);
id_type!(/// A product line (e.g. cordless drills, CNC spindles).
    ProductLineId);
id_type!(/// A work order.
    WorkOrderId);
id_type!(/// An evidence attachment of a work order.
    EvidenceId);

/// Declares a closed set of names stored and sent as lowercase strings, with `as_str`,
/// `FromStr` (error lists the accepted names) and serde in the same spelling.
#[macro_export]
macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "`{other}` is not one of: {}",
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}
