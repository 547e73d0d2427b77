//! The one authorisation decision point. Every service operation asks [`Veil::authorize`] (or, for lists, takes
//! the [`CustomerScope`] it returns) before touching data, and gets allow or deny with a reason.
//!
//! Two questions, in order:
//! 1. For an action on one record: is the record inside the caller's scope? If not, 404 — a caller may not learn
//!    that a record they cannot see exists, so "outside your scope" and "does not exist" look the same.
//! 2. May this role perform this action at all? (role permissions, [`role_permits`]) If not, 403: the caller
//!    may know the record (or the kind of record), it is the action they may not take.
//!
//! Scopes: `admin` all customers; `manager` the customers of their team and its sub-teams; `sales` the customers
//! they own; `service` the customers linked to them (a ticket assigned to them about the customer creates the
//! link; until tickets exist an admin or manager links explicitly), read-only plus notes; `dpo` and `auditor` no
//! customer records.

use std::collections::{BTreeSet, HashMap};

use veil_store::{CustomerProfile, CustomerScope};

use crate::error::{AppError, AppResult};
use crate::users::{Actor, Role};
use crate::Veil;

/// Everything a caller can ask to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// List or search customers.
    CustomerList,
    /// Read one customer (masked).
    CustomerRead,
    /// Create a customer.
    CustomerCreate,
    /// Change a customer.
    CustomerUpdate,
    /// Erase a customer (crypto-shredding).
    CustomerErase,
    /// Move customers to another owner or team.
    CustomerTransfer,
    /// Read a customer's notes.
    NoteRead,
    /// Add a note.
    NoteWrite,
    /// Read masking policies.
    PolicyRead,
    /// Record a masking-policy change.
    PolicyChange,
    /// Add, disable, reset users.
    UserManage,
    /// Add teams.
    TeamManage,
    /// Read the audit log.
    AuditRead,
    /// Verify the audit chain and read its checkpoints.
    AuditVerify,
    /// Produce a data-subject report (who accessed one customer's data).
    SubjectReport,
    /// Open and close incidents (lock-down), read incident reports.
    IncidentManage,
    /// Read security alerts and self-check results.
    SecurityRead,
    /// Read a customer's consents.
    ConsentRead,
    /// Record or withdraw a customer's consent.
    ConsentWrite,
    /// Ask to unmask (and read one's own requests and grants).
    UnmaskRequest,
    /// Approve or reject unmask requests.
    UnmaskApprove,
    /// Reveal plaintext under a grant.
    Reveal,
    /// List backups and their verification.
    BackupRead,
    /// Create and verify backups.
    BackupManage,
    /// Read a customer's interactions and timeline.
    InteractionRead,
    /// Record an interaction.
    InteractionWrite,
    /// List and read tickets.
    TicketRead,
    /// Open tickets, change their status or priority, comment.
    TicketWrite,
    /// Choose or change a ticket's assignee.
    TicketAssign,
    /// Read the product catalogue.
    ProductRead,
    /// Add or change products.
    ProductManage,
    /// Read a customer's orders (purchase history) and recommendations.
    OrderRead,
    /// Enter orders and change their status.
    OrderWrite,
    /// Read a customer's loyalty account.
    LoyaltyRead,
    /// Redeem a customer's points.
    LoyaltyRedeem,
    /// Record a customer's feedback (CSAT or NPS score, comment) received by staff.
    FeedbackWrite,
    /// Read the feedback analysis (scores by month, agent, channel, product; complaint terms).
    FeedbackRead,
    /// Send NPS surveys to a set of customers.
    SurveyManage,
    /// List and read deals (of customers in scope) and the pipelines.
    DealRead,
    /// Enter deals, change them, move their stage.
    DealWrite,
    /// List and read follow-up tasks.
    TaskRead,
    /// Create follow-up tasks and mark them done.
    TaskWrite,
    /// Browse the customer pool (公海).
    PoolRead,
    /// Claim a customer from the pool.
    PoolClaim,
    /// Put a customer back in the pool.
    PoolRelease,
    /// Read message templates.
    TemplateRead,
    /// Add, change and delete message templates.
    TemplateManage,
    /// Send a message to a customer (the server uses the address or number; the sender never sees it).
    MessageSend,
    /// Add or remove custom fields of an industry template.
    IndustryFieldManage,
}

impl Action {
    /// The name the audit trail uses for this action.
    pub fn audit_name(self) -> &'static str {
        match self {
            Action::CustomerList => "customer.list",
            Action::CustomerRead => "customer.read",
            Action::CustomerCreate => "customer.create",
            Action::CustomerUpdate => "customer.update",
            Action::CustomerErase => "customer.erase",
            Action::CustomerTransfer => "customer.transfer",
            Action::NoteRead => "note.read",
            Action::NoteWrite => "note.create",
            Action::PolicyRead => "policy.read",
            Action::PolicyChange => "policy.change",
            Action::UserManage => "user.manage",
            Action::TeamManage => "team.add",
            Action::AuditRead => "audit.read",
            Action::AuditVerify => "audit.verify",
            Action::SubjectReport => "subject.report",
            Action::IncidentManage => "incident.manage",
            Action::SecurityRead => "security.read",
            Action::ConsentRead => "consent.read",
            Action::ConsentWrite => "consent.record",
            Action::UnmaskRequest => "unmask.request",
            Action::UnmaskApprove => "unmask.approve",
            Action::Reveal => "customer.reveal",
            Action::BackupRead => "backup.list",
            Action::BackupManage => "backup.manage",
            Action::InteractionRead => "interaction.read",
            Action::InteractionWrite => "interaction.create",
            Action::TicketRead => "ticket.read",
            Action::TicketWrite => "ticket.write",
            Action::TicketAssign => "ticket.assign",
            Action::ProductRead => "product.read",
            Action::ProductManage => "product.manage",
            Action::OrderRead => "order.read",
            Action::OrderWrite => "order.write",
            Action::LoyaltyRead => "loyalty.read",
            Action::LoyaltyRedeem => "loyalty.redeem",
            Action::FeedbackWrite => "feedback.create",
            Action::FeedbackRead => "feedback.summary",
            Action::SurveyManage => "survey.create",
            Action::DealRead => "deal.read",
            Action::DealWrite => "deal.write",
            Action::TaskRead => "task.read",
            Action::TaskWrite => "task.write",
            Action::PoolRead => "pool.list",
            Action::PoolClaim => "pool.claim",
            Action::PoolRelease => "pool.release",
            Action::TemplateRead => "template.read",
            Action::TemplateManage => "template.manage",
            Action::MessageSend => "message.send",
            Action::IndustryFieldManage => "industry.field.manage",
        }
    }

    /// Every action (for exhaustive tests).
    pub const ALL: [Action; 49] = [
        Action::CustomerList,
        Action::CustomerRead,
        Action::CustomerCreate,
        Action::CustomerUpdate,
        Action::CustomerErase,
        Action::CustomerTransfer,
        Action::NoteRead,
        Action::NoteWrite,
        Action::PolicyRead,
        Action::PolicyChange,
        Action::UserManage,
        Action::TeamManage,
        Action::AuditRead,
        Action::AuditVerify,
        Action::SubjectReport,
        Action::IncidentManage,
        Action::SecurityRead,
        Action::ConsentRead,
        Action::ConsentWrite,
        Action::UnmaskRequest,
        Action::UnmaskApprove,
        Action::Reveal,
        Action::BackupRead,
        Action::BackupManage,
        Action::InteractionRead,
        Action::InteractionWrite,
        Action::TicketRead,
        Action::TicketWrite,
        Action::TicketAssign,
        Action::ProductRead,
        Action::ProductManage,
        Action::OrderRead,
        Action::OrderWrite,
        Action::LoyaltyRead,
        Action::LoyaltyRedeem,
        Action::FeedbackWrite,
        Action::FeedbackRead,
        Action::SurveyManage,
        Action::DealRead,
        Action::DealWrite,
        Action::TaskRead,
        Action::TaskWrite,
        Action::PoolRead,
        Action::PoolClaim,
        Action::PoolRelease,
        Action::TemplateRead,
        Action::TemplateManage,
        Action::MessageSend,
        Action::IndustryFieldManage,
    ];
}

/// Whether `role` may perform `action` at all; the error is the reason given to the caller.
pub fn role_permits(role: Role, action: Action) -> Result<(), &'static str> {
    use Action::*;
    use Role::*;
    let allowed = match action {
        CustomerList | CustomerRead | NoteRead | NoteWrite | InteractionRead | InteractionWrite
        | TicketRead | TicketWrite => matches!(role, Admin | Manager | Sales | Service),
        TicketAssign => matches!(role, Admin | Manager | Sales),
        ProductRead | OrderRead | LoyaltyRead | LoyaltyRedeem => {
            matches!(role, Admin | Manager | Sales | Service)
        }
        OrderWrite => matches!(role, Admin | Manager | Sales),
        FeedbackWrite => matches!(role, Admin | Manager | Sales | Service),
        FeedbackRead => matches!(role, Admin | Manager | Sales),
        SurveyManage => matches!(role, Admin | Manager),
        DealRead | DealWrite => matches!(role, Admin | Manager | Sales),
        TaskRead | TaskWrite => matches!(role, Admin | Manager | Sales | Service),
        PoolRead | PoolClaim | PoolRelease => matches!(role, Admin | Manager | Sales),
        TemplateRead | MessageSend => matches!(role, Admin | Manager | Sales | Service),
        ProductManage | TemplateManage => matches!(role, Admin | Manager),
        CustomerCreate | CustomerUpdate => matches!(role, Admin | Manager | Sales),
        CustomerErase | CustomerTransfer => matches!(role, Admin | Manager),
        PolicyRead => matches!(role, Admin | Dpo | Auditor),
        PolicyChange | UserManage | TeamManage | IndustryFieldManage => role == Admin,
        AuditRead => matches!(role, Dpo | Auditor),
        AuditVerify | SecurityRead => matches!(role, Admin | Dpo | Auditor),
        SubjectReport => role == Dpo,
        IncidentManage => matches!(role, Admin | Dpo),
        ConsentRead => matches!(role, Admin | Manager | Sales | Service | Dpo | Auditor),
        ConsentWrite => matches!(role, Admin | Manager | Sales),
        UnmaskRequest | Reveal => matches!(role, Admin | Dpo | Manager | Sales | Service),
        UnmaskApprove => matches!(role, Admin | Dpo | Manager),
        BackupRead => matches!(role, Admin | Dpo | Auditor),
        BackupManage => role == Admin,
    };
    if allowed {
        return Ok(());
    }
    Err(match action {
        CustomerList | CustomerRead | NoteRead | NoteWrite | InteractionRead | InteractionWrite
        | TicketRead | TicketWrite => "this role does not work with customer records",
        TicketAssign => "only admins, managers and salespeople assign tickets",
        ProductRead | OrderRead | LoyaltyRead | LoyaltyRedeem => {
            "this role does not work with customer records"
        }
        OrderWrite => "only admins, managers and salespeople enter orders",
        FeedbackWrite => "this role does not work with customer records",
        FeedbackRead => "only admins, managers and salespeople read the feedback analysis",
        SurveyManage => "only admins and managers send NPS surveys",
        DealRead | DealWrite => "only admins, managers and salespeople work with deals",
        TaskRead | TaskWrite => "this role does not work with follow-up tasks",
        PoolRead | PoolClaim | PoolRelease => {
            "only admins, managers and salespeople work with the customer pool"
        }
        TemplateRead | MessageSend => "this role does not work with customer records",
        TemplateManage => "only admins and managers change message templates",
        ProductManage => "only admins and managers change the product catalogue",
        CustomerCreate | CustomerUpdate => "this role does not create or change customers",
        CustomerErase => "only admins and managers can erase customers",
        CustomerTransfer => "only admins and managers can transfer customers",
        PolicyRead => "only admins, DPOs and auditors read masking policies",
        PolicyChange => "only admins record policy changes",
        UserManage => "only admins manage users",
        TeamManage => "only admins manage teams",
        IndustryFieldManage => "only admins change industry templates",
        AuditRead => "only DPOs and auditors read the audit log",
        AuditVerify => "only admins, DPOs and auditors verify the audit chain",
        SubjectReport => "only the DPO produces data-subject reports",
        IncidentManage => "only admins and DPOs manage incidents",
        SecurityRead => "only admins, DPOs and auditors read security alerts and checks",
        ConsentRead => "this role does not read consents",
        ConsentWrite => "only admins, managers and salespeople record consents",
        UnmaskRequest | Reveal => "this role does not unmask personal data",
        UnmaskApprove => "only DPOs, admins and managers decide unmask requests",
        BackupRead => "only admins, DPOs and auditors list backups",
        BackupManage => "only admins create and verify backups",
    })
}

/// Whether `actor` may perform `action` at all: their role allows it and, when they call with an API token, the
/// token's scopes cover it. Pure: see [`Veil::permit_recorded`] for the variant that audits refusals.
pub fn permit(actor: &Actor, action: Action) -> AppResult<()> {
    role_permits(actor.role, action).map_err(AppError::Forbidden)?;
    crate::tokens::check_scope(actor, action)
}

/// Whether a customer with `profile` lies inside `scope`, as far as its profile tells (a service link is checked
/// against the database by [`Veil::authorize`]).
pub fn in_scope(scope: &CustomerScope, profile: &CustomerProfile) -> bool {
    let owner_ok = match &scope.owner_id {
        Some(owner) => profile.owner_id.as_deref() == Some(owner.as_str()),
        None => true,
    };
    let team_ok = match &scope.teams {
        Some(teams) => profile
            .team
            .as_ref()
            .is_some_and(|team| teams.contains(team)),
        None => true,
    };
    owner_ok && team_ok
}

/// `team` and every team below it, given each team's parent (sorted).
pub fn team_and_descendants(team: &str, parents: &HashMap<String, Option<String>>) -> Vec<String> {
    let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
    for (child, parent) in parents {
        if let Some(parent) = parent {
            children
                .entry(parent.as_str())
                .or_default()
                .push(child.as_str());
        }
    }
    let mut found: BTreeSet<String> = BTreeSet::from([team.to_owned()]);
    let mut pending = vec![team];
    while let Some(next) = pending.pop() {
        for child in children.get(next).into_iter().flatten() {
            // The tree is acyclic by construction (a parent must exist first); the set guards anyway.
            if found.insert((*child).to_owned()) {
                pending.push(child);
            }
        }
    }
    found.into_iter().collect()
}

impl Veil {
    /// Decides whether `actor` may perform `action`, on `record` (its id and profile) when the action concerns
    /// one customer. Returns the caller's customer scope for list-like actions.
    pub async fn authorize(
        &self,
        actor: &Actor,
        action: Action,
        record: Option<(&str, &CustomerProfile)>,
    ) -> AppResult<CustomerScope> {
        let scope = self.customer_scope(actor).await?;
        if let Some((id, profile)) = record {
            let linked = match &scope.linked_user {
                Some(user) => self.store().is_linked(id, user).await?,
                None => true,
            };
            if !linked || !in_scope(&scope, profile) {
                self.record_denial(actor, action, Some(id), "outside the caller's scope")
                    .await;
                return Err(AppError::NotFound);
            }
        }
        self.permit_recorded(actor, action, record.map(|(id, _)| id))
            .await?;
        Ok(scope)
    }

    /// [`permit`], recording a refusal in the audit trail.
    pub async fn permit_recorded(
        &self,
        actor: &Actor,
        action: Action,
        customer: Option<&str>,
    ) -> AppResult<()> {
        let decision = permit(actor, action);
        if let Err(AppError::Forbidden(reason)) = &decision {
            self.record_denial(actor, action, customer, reason).await;
        }
        decision
    }

    pub(crate) async fn record_denial(
        &self,
        actor: &Actor,
        action: Action,
        customer: Option<&str>,
        why: &str,
    ) {
        use crate::audit::EventExt;
        let entry = crate::audit::event(
            Some(actor),
            action.audit_name(),
            crate::audit::Outcome::Denied,
        )
        .customers(customer.map(str::to_owned))
        .detail(serde_json::json!({"reason": why}));
        self.record_best_effort(&[entry]).await;
    }

    /// Links a customer to a service user so they can serve it (admins, and managers for customers in their
    /// scope). Tickets will create these links when they are assigned.
    pub async fn link_service_user(
        &self,
        actor: &Actor,
        customer_id: crate::ids::CustomerId,
        service_user: crate::ids::UserId,
        reason: &str,
    ) -> AppResult<()> {
        let id = customer_id.to_string();
        let row = self
            .store()
            .masked_customer(&id)
            .await?
            .ok_or(AppError::NotFound)?;
        self.authorize(actor, Action::CustomerTransfer, Some((&id, &row.profile)))
            .await?;
        let user = self
            .store()
            .user_by_id(&service_user.to_string())
            .await?
            .filter(|user| user.role == Role::Service.as_str() && !user.disabled)
            .ok_or_else(|| {
                AppError::Validation(vec![crate::error::FieldError::new(
                    "user",
                    "not_service",
                    "no such active service user",
                )])
            })?;
        self.store()
            .link_service_user(&id, &user.id, reason, crate::now_ms())
            .await?;
        use crate::audit::EventExt;
        self.record(&[crate::audit::event(Some(actor), "customer.link_service", crate::audit::Outcome::Ok)
            .customers([id.clone()])
            .detail(serde_json::json!({"service_user": user.id, "reason": crate::notes::mask_text(reason).body}))])
            .await?;
        Ok(())
    }

    /// Which customers `actor` can see at all.
    pub async fn customer_scope(&self, actor: &Actor) -> AppResult<CustomerScope> {
        Ok(match actor.role {
            Role::Admin => CustomerScope::default(),
            // A manager without a team manages nobody's customers (not everybody's).
            Role::Manager => CustomerScope {
                owner_id: None,
                linked_user: None,
                teams: Some(match &actor.team {
                    Some(team) => team_and_descendants(team, &*self.team_parents().await?),
                    None => Vec::new(),
                }),
            },
            Role::Sales => CustomerScope {
                owner_id: Some(actor.user_id.to_string()),
                teams: None,
                linked_user: None,
            },
            Role::Service => CustomerScope {
                owner_id: None,
                teams: None,
                linked_user: Some(actor.user_id.to_string()),
            },
            Role::Dpo | Role::Auditor => CustomerScope {
                owner_id: None,
                teams: Some(Vec::new()),
                linked_user: None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_permissions_table() {
        use Action::*;
        let expected: &[(Role, &[Action])] = &[
            (
                Role::Admin,
                &[
                    CustomerList,
                    CustomerRead,
                    CustomerCreate,
                    CustomerUpdate,
                    CustomerErase,
                    CustomerTransfer,
                    NoteRead,
                    NoteWrite,
                    PolicyRead,
                    PolicyChange,
                    UserManage,
                    TeamManage,
                    AuditVerify,
                    IncidentManage,
                    SecurityRead,
                    ConsentRead,
                    ConsentWrite,
                    UnmaskRequest,
                    UnmaskApprove,
                    Reveal,
                    BackupRead,
                    BackupManage,
                    InteractionRead,
                    InteractionWrite,
                    TicketRead,
                    TicketWrite,
                    TicketAssign,
                    ProductRead,
                    ProductManage,
                    OrderRead,
                    OrderWrite,
                    LoyaltyRead,
                    LoyaltyRedeem,
                    FeedbackWrite,
                    FeedbackRead,
                    SurveyManage,
                    DealRead,
                    DealWrite,
                    TaskRead,
                    TaskWrite,
                    PoolRead,
                    PoolClaim,
                    PoolRelease,
                    TemplateRead,
                    TemplateManage,
                    MessageSend,
                    IndustryFieldManage,
                ],
            ),
            (
                Role::Manager,
                &[
                    DealRead,
                    DealWrite,
                    TaskRead,
                    TaskWrite,
                    PoolRead,
                    PoolClaim,
                    PoolRelease,
                    TemplateRead,
                    TemplateManage,
                    MessageSend,
                    ProductRead,
                    ProductManage,
                    OrderRead,
                    OrderWrite,
                    LoyaltyRead,
                    LoyaltyRedeem,
                    InteractionRead,
                    InteractionWrite,
                    TicketRead,
                    TicketWrite,
                    TicketAssign,
                    CustomerList,
                    CustomerRead,
                    CustomerCreate,
                    CustomerUpdate,
                    CustomerErase,
                    CustomerTransfer,
                    NoteRead,
                    NoteWrite,
                    ConsentRead,
                    ConsentWrite,
                    UnmaskRequest,
                    UnmaskApprove,
                    Reveal,
                    FeedbackWrite,
                    FeedbackRead,
                    SurveyManage,
                ],
            ),
            (
                Role::Sales,
                &[
                    DealRead,
                    DealWrite,
                    TaskRead,
                    TaskWrite,
                    PoolRead,
                    PoolClaim,
                    PoolRelease,
                    TemplateRead,
                    MessageSend,
                    ProductRead,
                    OrderRead,
                    OrderWrite,
                    LoyaltyRead,
                    LoyaltyRedeem,
                    InteractionRead,
                    InteractionWrite,
                    TicketRead,
                    TicketWrite,
                    TicketAssign,
                    CustomerList,
                    CustomerRead,
                    CustomerCreate,
                    CustomerUpdate,
                    NoteRead,
                    NoteWrite,
                    ConsentRead,
                    ConsentWrite,
                    UnmaskRequest,
                    Reveal,
                    FeedbackWrite,
                    FeedbackRead,
                ],
            ),
            (
                Role::Dpo,
                &[
                    PolicyRead,
                    AuditRead,
                    AuditVerify,
                    SubjectReport,
                    IncidentManage,
                    SecurityRead,
                    ConsentRead,
                    UnmaskRequest,
                    UnmaskApprove,
                    Reveal,
                    BackupRead,
                ],
            ),
            (
                Role::Auditor,
                &[
                    PolicyRead,
                    AuditRead,
                    AuditVerify,
                    SecurityRead,
                    ConsentRead,
                    BackupRead,
                ],
            ),
            (
                Role::Service,
                &[
                    TaskRead,
                    TaskWrite,
                    TemplateRead,
                    MessageSend,
                    ProductRead,
                    OrderRead,
                    LoyaltyRead,
                    LoyaltyRedeem,
                    InteractionRead,
                    InteractionWrite,
                    TicketRead,
                    TicketWrite,
                    CustomerList,
                    CustomerRead,
                    NoteRead,
                    NoteWrite,
                    ConsentRead,
                    UnmaskRequest,
                    Reveal,
                    FeedbackWrite,
                ],
            ),
        ];
        for (role, allowed) in expected {
            for action in Action::ALL {
                assert_eq!(
                    role_permits(*role, action).is_ok(),
                    allowed.contains(&action),
                    "{role} {action:?}"
                );
            }
        }
    }

    #[test]
    fn descendants_follow_the_tree() {
        let parents: HashMap<String, Option<String>> = [
            ("sales", None),
            ("east", Some("sales")),
            ("shanghai", Some("east")),
            ("west", Some("sales")),
            ("support", None),
        ]
        .into_iter()
        .map(|(team, parent)| (team.to_owned(), parent.map(str::to_owned)))
        .collect();
        assert_eq!(
            team_and_descendants("east", &parents),
            vec!["east", "shanghai"]
        );
        assert_eq!(
            team_and_descendants("sales", &parents),
            vec!["east", "sales", "shanghai", "west"]
        );
        assert_eq!(team_and_descendants("unknown", &parents), vec!["unknown"]);
    }
}
