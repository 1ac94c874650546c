//! Staff roles, below everything that decides by them (the store's token owner, users,
//! the permission table).
use serde::{Deserialize, Serialize};

/// What a member of staff is, and so what they may do (`auth::allows`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Clinician,
    Receptionist,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Clinician, Role::Receptionist];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Clinician => "clinician",
            Role::Receptionist => "receptionist",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}
