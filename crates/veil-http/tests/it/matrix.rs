//! The authorisation matrix: every route of the router × every role × {own record, same team, other team,
//! nonexistent}, checked against one table of expectations. A route without an entry fails the test, so a new
//! endpoint cannot ship without deciding who may call it.

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use veil_app::customers::CustomerInput;
use veil_app::testing::Harness;
use veil_app::users::Role;
use veil_app::{Actor, CustomerId};

use crate::{add_user, Client};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    /// Owned by the caller (for non-sales roles: a customer of the caller's team).
    Own,
    /// Another salesperson's customer in the same team.
    SameTeam,
    /// A customer of another team.
    OtherTeam,
    /// An id that exists nowhere.
    Missing,
}

const RELATIONS: [Relation; 4] = [
    Relation::Own,
    Relation::SameTeam,
    Relation::OtherTeam,
    Relation::Missing,
];

/// Who may see which record.
fn visible(role: Role, relation: Relation) -> bool {
    match role {
        Role::Admin => relation != Relation::Missing,
        Role::Manager => matches!(relation, Relation::Own | Relation::SameTeam),
        Role::Sales => relation == Relation::Own,
        Role::Dpo | Role::Auditor | Role::Service => false,
    }
}

fn works_with_customers(role: Role) -> bool {
    matches!(role, Role::Admin | Role::Manager | Role::Sales)
}

/// The expected status of `method path` for `role` on a record in `relation` (collection routes ignore it).
fn expected(method: &Method, path: &str, role: Role, relation: Relation) -> Option<StatusCode> {
    let on_record = |ok: StatusCode, allowed: bool| {
        if !visible(role, relation) {
            StatusCode::NOT_FOUND
        } else if allowed {
            ok
        } else {
            StatusCode::FORBIDDEN
        }
    };
    let by_role = |ok: StatusCode, allowed: bool| if allowed { ok } else { StatusCode::FORBIDDEN };
    let erase_or_move = matches!(role, Role::Admin | Role::Manager);
    Some(match (method.as_str(), path) {
        ("GET", "/healthz") | ("GET", "/metrics") => StatusCode::OK,
        ("POST", "/api/v1/auth/login") => StatusCode::OK,
        ("POST", "/api/v1/auth/logout") => StatusCode::NO_CONTENT,
        ("GET", "/api/v1/auth/me") => StatusCode::OK,
        ("POST", "/api/v1/auth/mfa/enroll") => StatusCode::OK,
        ("GET", "/api/v1/auth/tokens") => StatusCode::OK,
        ("POST", "/api/v1/auth/tokens") => StatusCode::CREATED,
        // The id is not one of the caller's tokens.
        ("DELETE", "/api/v1/auth/tokens/{id}") => StatusCode::NOT_FOUND,
        // An empty body has no `code`: refused before any MFA state is touched.
        ("POST", "/api/v1/auth/mfa/confirm") | ("POST", "/api/v1/auth/mfa/verify") => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        // Service staff list the customers linked to them (none in this fixture).
        ("GET", "/api/v1/customers") => by_role(
            StatusCode::OK,
            works_with_customers(role) || role == Role::Service,
        ),
        ("POST", "/api/v1/customers") => by_role(StatusCode::CREATED, works_with_customers(role)),
        // Segments belong to those who list customers.
        ("GET", "/api/v1/segments") => by_role(
            StatusCode::OK,
            works_with_customers(role) || role == Role::Service,
        ),
        ("POST", "/api/v1/segments") => by_role(
            StatusCode::CREATED,
            works_with_customers(role) || role == Role::Service,
        ),
        // The id is a customer's, no segment's.
        ("DELETE", "/api/v1/segments/{id}") => by_role(
            StatusCode::NOT_FOUND,
            works_with_customers(role) || role == Role::Service,
        ),
        ("GET", "/api/v1/customers/{id}") => on_record(StatusCode::OK, true),
        ("PATCH", "/api/v1/customers/{id}") => on_record(StatusCode::OK, true),
        ("DELETE", "/api/v1/customers/{id}") => on_record(StatusCode::NO_CONTENT, erase_or_move),
        ("GET", "/api/v1/customers/{id}/notes") => on_record(StatusCode::OK, true),
        ("POST", "/api/v1/customers/{id}/notes") => on_record(StatusCode::CREATED, true),
        ("POST", "/api/v1/customers/{id}/transfer") => on_record(StatusCode::OK, erase_or_move),
        ("GET", "/api/v1/customers/{id}/transfers") => on_record(StatusCode::OK, true),
        ("GET", "/api/v1/policies") => by_role(
            StatusCode::OK,
            matches!(role, Role::Admin | Role::Dpo | Role::Auditor),
        ),
        ("GET", "/api/v1/teams") => StatusCode::OK,
        ("POST", "/api/v1/teams") => by_role(StatusCode::CREATED, role == Role::Admin),
        ("GET", "/api/v1/audit") => {
            by_role(StatusCode::OK, matches!(role, Role::Dpo | Role::Auditor))
        }
        ("GET", "/api/v1/audit/verify")
        | ("GET", "/api/v1/audit/checkpoints")
        | ("POST", "/api/v1/audit/checkpoints")
        | ("GET", "/api/v1/audit/public-key") => by_role(
            StatusCode::OK,
            matches!(role, Role::Admin | Role::Dpo | Role::Auditor),
        ),
        // The report works from the audit trail alone (erased customers included), so it does not depend on
        // whether the record is visible; only the DPO may ask.
        ("GET", "/api/v1/subjects/{id}/report") => by_role(StatusCode::OK, role == Role::Dpo),
        // Partner exchange is run by admins and the DPO. The id is a customer's, no partner's.
        ("GET", "/api/v1/partners") => {
            by_role(StatusCode::OK, matches!(role, Role::Admin | Role::Dpo))
        }
        ("POST", "/api/v1/partners") => {
            by_role(StatusCode::CREATED, matches!(role, Role::Admin | Role::Dpo))
        }
        ("POST", "/api/v1/partners/{id}/retire") => by_role(
            StatusCode::NOT_FOUND,
            matches!(role, Role::Admin | Role::Dpo),
        ),
        // No such partner (its pseudonym domain is unknown): a precise 422 once the role may ask.
        ("POST", "/api/v1/partners/{id}/exports")
        | ("POST", "/api/v1/partners/{id}/reidentify") => by_role(
            StatusCode::UNPROCESSABLE_ENTITY,
            matches!(role, Role::Admin | Role::Dpo),
        ),
        ("GET", "/api/v1/incidents") => {
            by_role(StatusCode::OK, matches!(role, Role::Admin | Role::Dpo))
        }
        // The fixture's reason is empty: refused as invalid once the role may open incidents (a real lock-down
        // here would end the other roles' sessions mid-matrix; the incident tests cover it).
        ("POST", "/api/v1/incidents") => by_role(
            StatusCode::UNPROCESSABLE_ENTITY,
            matches!(role, Role::Admin | Role::Dpo),
        ),
        // No incident is open.
        ("POST", "/api/v1/incidents/{id}/close") => by_role(
            StatusCode::CONFLICT,
            matches!(role, Role::Admin | Role::Dpo),
        ),
        ("GET", "/api/v1/incidents/report") => {
            by_role(StatusCode::OK, matches!(role, Role::Admin | Role::Dpo))
        }
        ("GET", "/api/v1/security/checks") => by_role(
            StatusCode::OK,
            matches!(role, Role::Admin | Role::Dpo | Role::Auditor),
        ),
        ("GET", "/api/v1/security/alerts") => by_role(
            StatusCode::OK,
            matches!(role, Role::Admin | Role::Dpo | Role::Auditor),
        ),
        // The id is no alert's: 404 for those who may acknowledge, 403 before the lookup for the rest.
        ("POST", "/api/v1/security/alerts/{id}/acknowledge") => by_role(
            StatusCode::NOT_FOUND,
            matches!(role, Role::Admin | Role::Dpo),
        ),
        ("GET", "/api/v1/backups") => by_role(
            StatusCode::OK,
            matches!(role, Role::Admin | Role::Dpo | Role::Auditor),
        ),
        ("POST", "/api/v1/backups") => by_role(StatusCode::CREATED, role == Role::Admin),
        // The id is no backup's: 404 for admins, 403 before the lookup for the rest.
        ("POST", "/api/v1/backups/{id}/verify") => {
            by_role(StatusCode::NOT_FOUND, role == Role::Admin)
        }
        // Consents: DPOs and auditors read any customer's (an empty list for an unknown id); the others
        // within their scope.
        ("GET", "/api/v1/customers/{id}/consents") => {
            if matches!(role, Role::Dpo | Role::Auditor) {
                StatusCode::OK
            } else {
                on_record(StatusCode::OK, true)
            }
        }
        ("POST", "/api/v1/customers/{id}/consents") => on_record(
            StatusCode::CREATED,
            matches!(role, Role::Admin | Role::Manager | Role::Sales),
        ),
        // The id is a customer's, not a consent's / request's / grant's: unknown to everyone.
        ("POST", "/api/v1/consents/{id}/withdraw")
        | ("GET", "/api/v1/unmask-requests/{id}")
        | ("POST", "/api/v1/unmask-requests/{id}/recheck")
        | ("POST", "/api/v1/unmask-requests/{id}/approve")
        | ("POST", "/api/v1/unmask-requests/{id}/reject")
        | ("POST", "/api/v1/unmask-requests/{id}/revoke")
        | ("POST", "/api/v1/unmask-requests/{id}/export")
        | ("POST", "/api/v1/unmask-requests/{id}/review")
        | ("POST", "/api/v1/grants/{id}/revoke") => StatusCode::NOT_FOUND,
        ("GET", "/api/v1/unmask-requests") | ("GET", "/api/v1/grants") => StatusCode::OK,
        // The fixture's request has an empty scope: refused as invalid once the role may ask at all.
        ("POST", "/api/v1/unmask-requests") => {
            by_role(StatusCode::UNPROCESSABLE_ENTITY, role != Role::Auditor)
        }
        // Admins and managers (for customers they see) may link; the fixture's body names a real service user.
        ("POST", "/api/v1/customers/{id}/service-links") => {
            on_record(StatusCode::NO_CONTENT, erase_or_move)
        }
        // Interactions and the timeline follow the customer's visibility; service staff see linked customers
        // only (none here).
        ("GET", "/api/v1/customers/{id}/interactions")
        | ("GET", "/api/v1/customers/{id}/timeline") => on_record(StatusCode::OK, true),
        ("POST", "/api/v1/customers/{id}/interactions") => on_record(StatusCode::CREATED, true),
        // Tickets: every role that works with customers lists them (service staff: the ones assigned to them).
        ("GET", "/api/v1/tickets") => by_role(
            StatusCode::OK,
            works_with_customers(role) || role == Role::Service,
        ),
        // The body names sally's fixture customer: admins, east's manager and sally open tickets on it; the
        // service user is not linked to it (404); DPOs and auditors never work with tickets (403).
        ("POST", "/api/v1/tickets") => match role {
            Role::Admin | Role::Manager | Role::Sales => StatusCode::CREATED,
            Role::Service => StatusCode::NOT_FOUND,
            Role::Dpo | Role::Auditor => StatusCode::FORBIDDEN,
        },
        // The id is a customer's, not a ticket's: unknown to every role that works with tickets, refused before
        // the lookup for the rest.
        ("GET", "/api/v1/tickets/{id}")
        | ("PATCH", "/api/v1/tickets/{id}")
        | ("POST", "/api/v1/tickets/{id}/comments")
        | ("POST", "/api/v1/tickets/{id}/assign") => by_role(
            StatusCode::NOT_FOUND,
            works_with_customers(role) || role == Role::Service,
        ),
        // Products: everyone who works with customers reads the catalogue; admins and managers change it. The
        // id is a customer's, no product's.
        ("GET", "/api/v1/products") => by_role(
            StatusCode::OK,
            works_with_customers(role) || role == Role::Service,
        ),
        ("POST", "/api/v1/products") => by_role(StatusCode::CREATED, erase_or_move),
        ("PATCH", "/api/v1/products/{id}") => by_role(StatusCode::NOT_FOUND, erase_or_move),
        // Orders, loyalty and recommendations follow the customer's visibility. A fresh customer has no points,
        // so a redemption is refused as a conflict once it is allowed at all.
        ("GET", "/api/v1/customers/{id}/orders")
        | ("GET", "/api/v1/customers/{id}/loyalty")
        | ("GET", "/api/v1/customers/{id}/recommendations") => on_record(StatusCode::OK, true),
        ("POST", "/api/v1/customers/{id}/orders") => on_record(StatusCode::CREATED, true),
        ("POST", "/api/v1/customers/{id}/loyalty/redeem") => on_record(StatusCode::CONFLICT, true),
        // The id is a customer's, not an order's: unknown to those who enter orders, refused before the lookup
        // for the rest.
        ("POST", "/api/v1/orders/{id}/status") => {
            by_role(StatusCode::NOT_FOUND, works_with_customers(role))
        }
        // Care reminders list the birthdays of the customers the caller may list (service staff: the linked
        // ones), so they follow the customer list: DPOs and auditors never work with customer records.
        // Imports create customers: authorised before the body is read; the matrix's `{}` body maps no name
        // column, so the roles that may create customers get 422.
        ("POST", "/api/v1/imports") => {
            by_role(StatusCode::UNPROCESSABLE_ENTITY, works_with_customers(role))
        }
        ("GET", "/api/v1/reminders") => by_role(
            StatusCode::OK,
            works_with_customers(role) || role == Role::Service,
        ),
        // Feedback staff received about sally's fixture customer: recorded by those who see it; the service user
        // is not linked to it (404); DPOs and auditors never work with customer records (403).
        ("POST", "/api/v1/feedback") => match role {
            Role::Admin | Role::Manager | Role::Sales => StatusCode::CREATED,
            Role::Service => StatusCode::NOT_FOUND,
            Role::Dpo | Role::Auditor => StatusCode::FORBIDDEN,
        },
        // NPS surveys are sent by admins and managers (the body names sally's customer, in east's team tree).
        ("POST", "/api/v1/surveys/nps") => by_role(StatusCode::CREATED, erase_or_move),
        // Survey links are sent by whoever sees the customer, campaigns by admins and managers. The id is a
        // customer's, no survey's or campaign's: unknown to those who may send, refused before the lookup for
        // the rest.
        ("POST", "/api/v1/surveys/{id}/send") => by_role(
            StatusCode::NOT_FOUND,
            works_with_customers(role) || role == Role::Service,
        ),
        ("GET", "/api/v1/surveys/campaigns/{id}")
        | ("POST", "/api/v1/surveys/campaigns/{id}/send") => {
            by_role(StatusCode::NOT_FOUND, erase_or_move)
        }
        // The analysis is for those who own customers: admins, managers (their team tree), salespeople (their own).
        ("GET", "/api/v1/feedback/summary") => by_role(StatusCode::OK, works_with_customers(role)),
        // Reports count what the caller sees (tickets: the ticket list's visibility; loyalty: the customer
        // list's scope), so every role that works with tickets and loyalty accounts gets its own figures.
        ("GET", "/api/v1/reports/tickets") | ("GET", "/api/v1/reports/loyalty") => by_role(
            StatusCode::OK,
            works_with_customers(role) || role == Role::Service,
        ),
        // Leads are customer records: created and listed by those who create and list customers. Converting a
        // record that is already a customer is a conflict once the caller sees it and may change it.
        ("POST", "/api/v1/leads") => by_role(StatusCode::CREATED, works_with_customers(role)),
        ("GET", "/api/v1/leads") => by_role(
            StatusCode::OK,
            works_with_customers(role) || role == Role::Service,
        ),
        ("POST", "/api/v1/leads/{id}/convert") => on_record(StatusCode::CONFLICT, true),
        // Deals and pipelines are for admins, managers and salespeople. The body names sally's fixture customer
        // (east's manager and sally see it). The id is a customer's, not a deal's: unknown to those who work
        // with deals, refused before the lookup for the rest.
        ("GET", "/api/v1/pipelines") | ("GET", "/api/v1/deals") => {
            by_role(StatusCode::OK, works_with_customers(role))
        }
        ("POST", "/api/v1/deals") => by_role(StatusCode::CREATED, works_with_customers(role)),
        ("GET", "/api/v1/deals/{id}")
        | ("PATCH", "/api/v1/deals/{id}")
        | ("POST", "/api/v1/deals/{id}/stage") => {
            by_role(StatusCode::NOT_FOUND, works_with_customers(role))
        }
        // Follow-up tasks: every role that works with customers (service staff included) has them; a task
        // without a customer is the caller's own. The id is no task's.
        ("GET", "/api/v1/tasks") => by_role(
            StatusCode::OK,
            works_with_customers(role) || role == Role::Service,
        ),
        ("POST", "/api/v1/tasks") => by_role(
            StatusCode::CREATED,
            works_with_customers(role) || role == Role::Service,
        ),
        ("PATCH", "/api/v1/tasks/{id}") => by_role(
            StatusCode::NOT_FOUND,
            works_with_customers(role) || role == Role::Service,
        ),
        // The customer pool: admins, managers and salespeople browse and claim; the fixture's customers all have
        // an owner, so a claim is 409 (404 for an id that exists nowhere); release follows the customer's
        // visibility.
        ("GET", "/api/v1/pool") => by_role(StatusCode::OK, works_with_customers(role)),
        ("POST", "/api/v1/pool/{id}/claim") => {
            if !works_with_customers(role) {
                StatusCode::FORBIDDEN
            } else if relation == Relation::Missing {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::CONFLICT
            }
        }
        ("POST", "/api/v1/customers/{id}/release") => {
            on_record(StatusCode::OK, works_with_customers(role))
        }
        ("GET", "/api/v1/customers/{id}/pool")
        | ("GET", "/api/v1/customers/{id}/messages")
        | ("GET", "/api/v1/customers/{id}/surveys") => on_record(StatusCode::OK, true),
        // Message templates: read by everyone who sends messages, managed by admins and managers. The id is a
        // customer's, no template's.
        ("GET", "/api/v1/message-templates") => by_role(
            StatusCode::OK,
            works_with_customers(role) || role == Role::Service,
        ),
        ("POST", "/api/v1/message-templates") => by_role(StatusCode::CREATED, erase_or_move),
        ("GET", "/api/v1/message-templates/{id}") => by_role(
            StatusCode::NOT_FOUND,
            works_with_customers(role) || role == Role::Service,
        ),
        ("PATCH", "/api/v1/message-templates/{id}")
        | ("DELETE", "/api/v1/message-templates/{id}") => {
            by_role(StatusCode::NOT_FOUND, erase_or_move)
        }
        // The fixture's body names no template: a precise 422 once the customer is visible.
        ("POST", "/api/v1/customers/{id}/messages") => {
            on_record(StatusCode::UNPROCESSABLE_ENTITY, true)
        }
        // Industry templates are definitions, no personal data: every signed-in user reads them. Only admins add or
        // remove custom fields; the path's `{key}` is no industry's, so admins get 404.
        ("GET", "/api/v1/industries") => StatusCode::OK,
        ("POST", "/api/v1/industries/{key}/fields")
        | ("DELETE", "/api/v1/industries/{key}/fields/{field}") => {
            by_role(StatusCode::NOT_FOUND, role == Role::Admin)
        }
        // The id is no user's: 404 for admins, 403 before the lookup for the rest.
        ("PUT", "/api/v1/users/{id}/skills") => by_role(StatusCode::NOT_FOUND, role == Role::Admin),
        // The fixture's body names no real customer: invalid for everyone.
        ("POST", "/api/v1/break-glass") => StatusCode::UNPROCESSABLE_ENTITY,
        // Without a recent MFA step-up (and a grant) nobody reveals, whether or not the customer exists.
        ("POST", "/api/v1/customers/{id}/reveal") => StatusCode::FORBIDDEN,
        // The note id is no note's: unknown to every role that may reveal at all.
        ("POST", "/api/v1/customers/{id}/notes/{note_id}/reveal") => {
            by_role(StatusCode::NOT_FOUND, role != Role::Auditor)
        }
        _ => return None,
    })
}

fn body_for(method: &Method, path: &str, fixture: &Fixture, counter: usize) -> Option<Value> {
    match (method.as_str(), path) {
        ("POST", "/api/v1/auth/login") => {
            Some(json!({"username": "ada", "password": crate::PASSWORD}))
        }
        ("POST", "/api/v1/customers") => {
            Some(json!({"name": "矩阵", "phone": format!("1580000{:04}", counter % 10_000)}))
        }
        ("PATCH", "/api/v1/customers/{id}") => Some(json!({"tags": ["matrix"]})),
        ("POST", "/api/v1/customers/{id}/notes") => Some(json!({"body": "回访：客户满意"})),
        ("POST", "/api/v1/customers/{id}/transfer") => {
            Some(json!({"owner": fixture.sam.user_id.to_string(), "reason": "matrix"}))
        }
        ("POST", "/api/v1/teams") => Some(json!({"name": format!("team-{counter}")})),
        ("POST", "/api/v1/partners") => Some(json!({"name": format!("partner-{counter}")})),
        ("POST", "/api/v1/partners/{id}/exports") => Some(json!({
            "recipient": "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
            "fields": ["phone"]
        })),
        ("POST", "/api/v1/partners/{id}/reidentify") => {
            Some(json!({"grant_id": "none", "file": "pseudonym,score\n"}))
        }
        ("POST", "/api/v1/segments") => {
            Some(json!({"name": format!("segment-{counter}"), "filter": {"tag": "vip"}}))
        }
        ("POST", "/api/v1/incidents") => Some(json!({"reason": " "})),
        ("POST", "/api/v1/customers/{id}/consents") => Some(json!({
            "purposes": ["customer_service"], "fields": ["phone"], "recipient": "internal",
            "evidence_sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        })),
        ("POST", "/api/v1/unmask-requests") => Some(json!({
            "purpose": "customer_service", "purpose_detail": "matrix", "legal_basis": "consent",
            "jurisdiction": "CN", "scope": {"customer_ids": []}, "fields": ["phone"], "mode": "view",
            "duration_minutes": 60
        })),
        ("POST", "/api/v1/unmask-requests/{id}/approve")
        | ("POST", "/api/v1/unmask-requests/{id}/reject") => Some(json!({"reason": "matrix"})),
        ("POST", "/api/v1/customers/{id}/reveal")
        | ("POST", "/api/v1/customers/{id}/notes/{note_id}/reveal") => {
            Some(json!({"fields": ["phone"]}))
        }
        ("POST", "/api/v1/break-glass") => {
            Some(json!({"customer_id": "nope", "fields": ["phone"], "reason": "matrix emergency"}))
        }
        ("POST", "/api/v1/unmask-requests/{id}/review") => Some(json!({"reason": "matrix"})),
        ("POST", "/api/v1/customers/{id}/service-links") => {
            Some(json!({"user": fixture.sue.user_id.to_string(), "reason": "matrix"}))
        }
        ("POST", "/api/v1/incidents/{id}/close") => Some(json!({"note": "matrix"})),
        ("POST", "/api/v1/customers/{id}/interactions") => {
            Some(json!({"kind": "call", "duration_minutes": 5, "note": "回访：客户满意"}))
        }
        ("POST", "/api/v1/tickets") => Some(json!({
            "customer_id": fixture.ticket_customer.to_string(), "channel": "phone", "category": "inquiry",
            "subject": "matrix"
        })),
        ("POST", "/api/v1/tickets/{id}/comments") => Some(json!({"body": "matrix"})),
        ("POST", "/api/v1/customers/{id}/release") => Some(json!({"reason": "matrix"})),
        ("POST", "/api/v1/message-templates") => Some(json!({
            "name": format!("matrix-{counter}"), "channel": "sms", "language": "zh", "purpose": "care",
            "body": "{{customer.surname}}{{customer.title}}您好"
        })),
        ("POST", "/api/v1/customers/{id}/messages") => Some(json!({"template": "none"})),
        ("PUT", "/api/v1/users/{id}/skills") => Some(json!({"skills": ["billing"]})),
        ("POST", "/api/v1/industries/{key}/fields") => Some(json!({
            "key": format!("matrix_{counter}"), "label_en": "Matrix", "type": "text"
        })),
        ("POST", "/api/v1/products") => Some(json!({
            "sku": format!("MATRIX-{counter}"), "name": "矩阵商品", "category": "matrix", "price_fen": 1999
        })),
        ("PATCH", "/api/v1/products/{id}") => Some(json!({"price_fen": 2999})),
        ("POST", "/api/v1/customers/{id}/orders") => Some(json!({
            "items": [{"product_id": fixture.product, "quantity": 2}], "status": "paid"
        })),
        ("POST", "/api/v1/orders/{id}/status") => Some(json!({"status": "cancelled"})),
        ("POST", "/api/v1/leads") => Some(json!({
            "name": "线索", "phone": format!("139{counter:08}")
        })),
        ("POST", "/api/v1/deals") => Some(json!({
            "customer_id": fixture.ticket_customer.to_string(), "title": "矩阵商机", "amount_minor": 100
        })),
        ("PATCH", "/api/v1/deals/{id}") => Some(json!({"version": 1, "amount_minor": 200})),
        ("POST", "/api/v1/deals/{id}/stage") => Some(json!({"version": 1, "status": "won"})),
        ("POST", "/api/v1/tasks") => Some(json!({
            "title": "回访", "due_at": "2030-01-01T09:00:00+08:00"
        })),
        ("PATCH", "/api/v1/tasks/{id}") => Some(json!({"done": true})),
        ("POST", "/api/v1/customers/{id}/loyalty/redeem") => Some(json!({"points": 1})),
        ("POST", "/api/v1/feedback") => Some(json!({
            "customer_id": fixture.ticket_customer.to_string(), "kind": "csat", "score": 4,
        })),
        ("POST", "/api/v1/surveys/{id}/send") | ("POST", "/api/v1/surveys/campaigns/{id}/send") => {
            Some(json!({"template": "none"}))
        }
        ("POST", "/api/v1/surveys/nps") => Some(json!({
            "customer_ids": [fixture.ticket_customer.to_string()],
        })),
        // The reports take no body nor parameters.
        ("GET", "/api/v1/reports/tickets") | ("GET", "/api/v1/reports/loyalty") => None,
        ("POST", "/api/v1/security/alerts/{id}/acknowledge") => None,
        ("POST", "/api/v1/backups") => Some(json!({"to": "local"})),
        ("POST", "/api/v1/backups/{id}/verify") => None,
        ("POST", "/api/v1/auth/tokens") => {
            Some(json!({"name": "integration", "scopes": ["customers:read"]}))
        }
        _ if *method == Method::POST || *method == Method::PATCH || *method == Method::PUT => {
            Some(json!({}))
        }
        _ => None,
    }
}

struct Fixture {
    users: Vec<(Role, &'static str)>,
    admin: Actor,
    sally: Actor,
    sam: Actor,
    sue: Actor,
    will: Actor,
    /// A customer of sally's that tickets are opened on.
    ticket_customer: CustomerId,
    /// An active product that orders are entered with.
    product: String,
}

async fn fixture(harness: &Harness) -> Fixture {
    let users = vec![
        (Role::Admin, "ada"),
        (Role::Dpo, "dora"),
        (Role::Manager, "mona"),
        (Role::Sales, "sally"),
        (Role::Service, "sue"),
        (Role::Auditor, "audrey"),
    ];
    for (role, name) in &users {
        let team = match role {
            Role::Manager | Role::Sales | Role::Service => Some("east"),
            _ => None,
        };
        add_user(harness, name, *role, team).await;
    }
    add_user(harness, "sam", Role::Sales, Some("east")).await;
    add_user(harness, "will", Role::Sales, Some("west")).await;
    let admin = harness.veil.actor_by_username("ada").await.unwrap();
    let sally = harness.veil.actor_by_username("sally").await.unwrap();
    let ticket_customer = harness
        .veil
        .create_customer(
            &admin,
            &CustomerInput {
                name: Some("工单客户".to_owned()),
                owner: Some(sally.user_id.to_string()),
                ..CustomerInput::default()
            },
            true,
        )
        .await
        .unwrap()
        .id;
    let product = harness
        .veil
        .create_product(
            &admin,
            &veil_app::orders::ProductInput {
                sku: "MATRIX-FIXTURE".to_owned(),
                name: "矩阵商品".to_owned(),
                category: "matrix".to_owned(),
                price_fen: 1999,
                currency: None,
                active: None,
            },
        )
        .await
        .unwrap()
        .id;
    Fixture {
        admin,
        sally,
        ticket_customer,
        product,
        sam: harness.veil.actor_by_username("sam").await.unwrap(),
        sue: harness.veil.actor_by_username("sue").await.unwrap(),
        will: harness.veil.actor_by_username("will").await.unwrap(),
        users,
    }
}

/// Fresh customers for one case: (sally's, sam's, will's).
async fn customers(harness: &Harness, fixture: &Fixture, counter: usize) -> [CustomerId; 3] {
    let mut ids = Vec::new();
    for (index, owner) in [&fixture.sally, &fixture.sam, &fixture.will]
        .into_iter()
        .enumerate()
    {
        let input = CustomerInput {
            name: Some("客户".to_owned()),
            phone: Some(format!("13{}{:08}", 5 + index, counter)),
            owner: Some(owner.user_id.to_string()),
            ..CustomerInput::default()
        };
        ids.push(
            harness
                .veil
                .create_customer(&fixture.admin, &input, true)
                .await
                .unwrap()
                .id,
        );
    }
    [ids[0], ids[1], ids[2]]
}

pub async fn run(harness: &Harness) {
    let fixture = fixture(harness).await;
    let (public, identity) = veil_app::backup::archive::generate_identity();
    harness
        .veil
        .set_backup_settings(veil_app::backup::BackupSettings {
            directory: harness.dir.path().join("backups"),
            encryption: Some(veil_app::backup::Encryption::Recipients(
                veil_app::backup::archive::parse_recipients(&public).unwrap(),
            )),
            decryption: Some(veil_app::backup::Decryption::Identities(identity)),
            max_age_days: veil_app::backup::DEFAULT_MAX_AGE_DAYS,
            object_storage: None,
        });
    let client = Client::new(harness).await;
    let (_, openapi) = veil_http::routes();
    let mut routes: BTreeSet<(String, String)> = BTreeSet::new();
    for (path, item) in openapi.paths.paths.iter() {
        let item = serde_json::to_value(item).unwrap();
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                routes.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    assert!(routes.len() >= 15, "{routes:?}");
    let mut counter = 0usize;
    let mut checked = 0usize;
    for (method_name, path) in &routes {
        let method: Method = method_name.parse().unwrap();
        assert!(
            expected(&method, path, Role::Admin, Relation::Own).is_some(),
            "route {method_name} {path} has no entry in the authorisation matrix"
        );
        let per_record = path.contains("{id}");
        for (role, username) in &fixture.users {
            let relations: &[Relation] = if per_record {
                &RELATIONS
            } else {
                &[Relation::Own]
            };
            for relation in relations {
                counter += 1;
                let [own_sales, same_team, other_team] =
                    customers(harness, &fixture, counter).await;
                let target = match relation {
                    Relation::Own => own_sales,
                    Relation::SameTeam => same_team,
                    Relation::OtherTeam => other_team,
                    Relation::Missing => CustomerId::new(),
                };
                let token = client.login(username).await;
                let uri = path.replace("{id}", &target.to_string());
                let public = matches!(
                    path.as_str(),
                    "/healthz" | "/metrics" | "/api/v1/auth/login"
                );
                let reply = client
                    .send(
                        method.clone(),
                        &uri,
                        (!public).then_some(token.as_str()),
                        body_for(&method, path, &fixture, counter),
                    )
                    .await;
                let want = expected(&method, path, *role, *relation).unwrap();
                assert_eq!(
                    reply.status, want,
                    "{method_name} {path} as {role} on {relation:?}: {}",
                    reply.raw
                );
                // Zero leaks: nothing of a record the caller may not see appears in any response — except that
                // the audit trail names the (opaque) ids of every customer an action concerned, which is what
                // DPOs and auditors read it for; it never holds their personal data.
                let audit_route =
                    path.starts_with("/api/v1/audit") || path.starts_with("/api/v1/subjects");
                for (id, rel) in [
                    (same_team, Relation::SameTeam),
                    (other_team, Relation::OtherTeam),
                ] {
                    if !visible(*role, rel) && !audit_route {
                        assert!(
                            !reply.raw.contains(&id.to_string()),
                            "{method_name} {path} as {role} leaks a {rel:?} record: {}",
                            reply.raw
                        );
                    }
                }
                checked += 1;
            }
        }
        // The unauthenticated caller is refused everywhere but the public routes.
        let uri = path.replace("{id}", &CustomerId::new().to_string());
        let anonymous = client
            .send(
                method.clone(),
                &uri,
                None,
                body_for(&method, path, &fixture, counter),
            )
            .await;
        if !matches!(
            path.as_str(),
            "/healthz" | "/metrics" | "/api/v1/auth/login"
        ) {
            assert_eq!(
                anonymous.status,
                StatusCode::UNAUTHORIZED,
                "{method_name} {path} without a token"
            );
        }
    }
    assert!(checked > 100, "{checked} cases");
}
