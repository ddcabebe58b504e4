//! Accounts and access: roles, Argon2id password hashes, signed short-lived access
//! tokens, rotating refresh tokens bound to a revocable login session, single-use invite
//! links for customers without an account, and a login rate limiter.
//!
//! This module decides who a request comes from; which roles a route allows is declared
//! in `http::routes`. It never logs a password, a token or a hash.

pub mod password;
pub mod rate_limit;
pub mod repo;
pub mod skills;
pub mod tokens;

use serde::Serialize;

use crate::ids::{AuthSessionId, CustomerId, InviteId, UserId, WorkOrderId};
use crate::string_enum;
use crate::work_orders::events::{Actor, ActorRef};

string_enum!(/// The five roles. A user has exactly one.
    Role {
        Customer => "customer",
        Expert => "expert",
        Dispatcher => "dispatcher",
        Technician => "technician",
        Admin => "admin",
    });

/// The authenticated caller of a request.
#[derive(Clone, Debug, Serialize)]
pub struct Principal {
    pub user_id: Option<UserId>,
    pub invite_id: Option<InviteId>,
    pub role: Role,
    pub session_id: AuthSessionId,
    /// Set for customers: the only customer whose data they may see.
    pub customer_id: Option<CustomerId>,
    /// Set for invite logins: the only work order they may see.
    pub work_order_scope: Option<WorkOrderId>,
}

impl Principal {
    pub fn actor(&self) -> Actor {
        let who = match (self.user_id, self.invite_id) {
            (Some(u), _) => ActorRef::User(u),
            (None, Some(i)) => ActorRef::Invite(i),
            (None, None) => ActorRef::System,
        };
        Actor { who, role: Some(self.role) }
    }

    /// Staff see every customer's data; customers with an account only their own; an
    /// invite login sees its work order and nothing else of the customer.
    pub fn may_see_customer(&self, customer: CustomerId) -> bool {
        self.role != Role::Customer || (self.work_order_scope.is_none() && self.customer_id == Some(customer))
    }

    /// Whether this caller may see a work order of `customer`.
    pub fn may_see_work_order(&self, id: WorkOrderId, customer: CustomerId) -> bool {
        match self.work_order_scope {
            Some(scope) => scope == id,
            None => self.may_see_customer(customer),
        }
    }
}
