//! Customer filters (owner, team, tag, industry) for listings, and saved segments: a user's named filters, used to
//! list customers and to scope unmask requests (`"scope": {"segment": "…"}`).
//!
//! A filter only narrows: the caller's access scope (own customers, team tree, linked customers) always applies
//! first, so a salesperson filtering by another owner sees nothing rather than someone else's customers.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use veil_store::{CustomerFilter, SegmentRow};

use crate::audit::{event, EventExt, Outcome};
use crate::authz::Action;
use crate::error::{AppError, AppResult, FieldError};
use crate::users::Actor;
use crate::{format_time, now_ms, Veil};

/// Longest filter value or segment name, in characters.
const MAX_TEXT: usize = 100;
/// Most segments one user keeps.
const MAX_SEGMENTS: usize = 100;

/// What a listing is narrowed to; every given criterion must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListFilter {
    /// Owning user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Owning team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// A tag the customer carries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Industry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub industry: Option<String>,
}

impl ListFilter {
    /// The store's filter, after checking each value (empty strings count as not given).
    pub fn validated(&self) -> AppResult<CustomerFilter> {
        let mut errors = Vec::new();
        let mut check = |name: &str, value: &Option<String>| -> Option<String> {
            let value = value
                .as_deref()
                .map(str::trim)
                .filter(|value| !value.is_empty())?;
            if value.chars().count() > MAX_TEXT || value.chars().any(char::is_control) {
                errors.push(FieldError::new(
                    name,
                    "invalid",
                    format!("at most {MAX_TEXT} characters, no control characters"),
                ));
                return None;
            }
            Some(value.to_owned())
        };
        let filter = CustomerFilter {
            owner: check("owner", &self.owner),
            team: check("team", &self.team),
            tag: check("tag", &self.tag),
            industry: check("industry", &self.industry),
        };
        if let Some(owner) = &filter.owner {
            if owner.parse::<crate::ids::UserId>().is_err() {
                errors.push(FieldError::new("owner", "invalid", "is not a user id"));
            }
        }
        if errors.is_empty() {
            Ok(filter)
        } else {
            Err(AppError::Validation(errors))
        }
    }

    fn from_store(filter: CustomerFilter) -> Self {
        Self {
            owner: filter.owner,
            team: filter.team,
            tag: filter.tag,
            industry: filter.industry,
        }
    }
}

/// A segment to save.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SegmentInput {
    /// Its name (unique among the caller's segments).
    pub name: String,
    /// The filter.
    #[serde(default)]
    pub filter: ListFilter,
}

/// A saved segment.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SegmentView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// The filter.
    pub filter: ListFilter,
    /// Saved at.
    pub created_at: String,
}

fn view(row: SegmentRow) -> AppResult<SegmentView> {
    let filter: CustomerFilter = serde_json::from_str(&row.filter)
        .map_err(|_| AppError::Internal("a stored segment filter does not parse".to_owned()))?;
    Ok(SegmentView {
        id: row.id,
        name: row.name,
        filter: ListFilter::from_store(filter),
        created_at: format_time(row.created_at),
    })
}

impl Veil {
    /// Saves one of the caller's segments. Only users who can list customers keep segments.
    pub async fn save_segment(
        &self,
        actor: &Actor,
        input: &SegmentInput,
    ) -> AppResult<SegmentView> {
        self.authorize(actor, Action::CustomerList, None).await?;
        let name = input.name.trim();
        if name.is_empty() || name.chars().count() > MAX_TEXT || name.chars().any(char::is_control)
        {
            return Err(AppError::Validation(vec![FieldError::new(
                "name",
                "invalid",
                format!("1 to {MAX_TEXT} characters, no control characters"),
            )]));
        }
        // A label, not a place for personal data: anything the scanner finds in it is masked before it is stored.
        let name = crate::notes::mask_text(name).body;
        let name = name.as_str();
        let filter = input.filter.validated()?;
        let owner_id = actor.user_id.to_string();
        if self.store().segments_of(&owner_id).await?.len() >= MAX_SEGMENTS {
            return Err(AppError::Conflict(format!(
                "you already keep {MAX_SEGMENTS} segments; delete one first"
            )));
        }
        let row = SegmentRow {
            id: uuid::Uuid::now_v7().to_string(),
            name: name.to_owned(),
            owner_id,
            filter: serde_json::to_string(&filter)
                .map_err(|error| AppError::Internal(format!("segment filter: {error}")))?,
            created_at: now_ms(),
        };
        let entry = event(Some(actor), "segment.create", Outcome::Ok)
            .detail(serde_json::json!({"segment": row.id, "name": row.name, "filter": filter}));
        if !self.store().insert_segment(&row, &[entry]).await? {
            return Err(AppError::Conflict(format!(
                "you already have a segment named {name:?}"
            )));
        }
        view(row)
    }

    /// The caller's segments by name.
    pub async fn segments(&self, actor: &Actor) -> AppResult<Vec<SegmentView>> {
        self.authorize(actor, Action::CustomerList, None).await?;
        self.store()
            .segments_of(&actor.user_id.to_string())
            .await?
            .into_iter()
            .map(view)
            .collect()
    }

    /// Deletes one of the caller's segments (requests made from it keep their resolved customers).
    pub async fn delete_segment(&self, actor: &Actor, id: &str) -> AppResult<()> {
        self.authorize(actor, Action::CustomerList, None).await?;
        let entry = event(Some(actor), "segment.delete", Outcome::Ok)
            .detail(serde_json::json!({"segment": id}));
        if self
            .store()
            .delete_segment(id, &actor.user_id.to_string(), &[entry])
            .await?
        {
            Ok(())
        } else {
            Err(AppError::NotFound)
        }
    }

    /// One of the caller's segments' filter; `None` when the caller has no segment of that id.
    pub async fn segment_filter(&self, actor: &Actor, id: &str) -> AppResult<Option<ListFilter>> {
        match self.store().segment(id).await? {
            Some(row) if row.owner_id == actor.user_id.to_string() => Ok(Some(view(row)?.filter)),
            _ => Ok(None),
        }
    }

    /// The customers of one of the caller's segments inside the caller's scope, ids ascending, at most `limit`
    /// (callers ask for one more than they accept, so an oversized segment is reported rather than cut); `None`
    /// when the caller has no segment of that id.
    pub(crate) async fn segment_members(
        &self,
        actor: &Actor,
        id: &str,
        limit: usize,
    ) -> AppResult<Option<Vec<String>>> {
        let Some(filter) = self.segment_filter(actor, id).await? else {
            return Ok(None);
        };
        let scope = self.authorize(actor, Action::CustomerList, None).await?;
        let ids = self
            .store()
            .customer_ids_matching(&scope, &filter.validated()?, limit as i64)
            .await?;
        Ok(Some(ids))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::both_backends;
    use crate::customers::CustomerInput;
    use crate::governance::UnmaskRequestInput;
    use crate::users::Role;
    use crate::{AppError, CustomerId};

    fn customer(phone: &str, tags: &[&str], industry: &str) -> CustomerInput {
        CustomerInput {
            name: Some("分段".to_owned()),
            phone: Some(phone.to_owned()),
            tags: Some(tags.iter().map(|tag| (*tag).to_owned()).collect()),
            industry: Some(industry.to_owned()),
            ..CustomerInput::default()
        }
    }

    fn ids(page: crate::customers::CustomerPage) -> BTreeSet<CustomerId> {
        page.items.iter().map(|view| view.id).collect()
    }

    fn tag(tag: &str) -> ListFilter {
        ListFilter {
            tag: Some(tag.to_owned()),
            ..ListFilter::default()
        }
    }

    fn request(scope: serde_json::Value) -> UnmaskRequestInput {
        serde_json::from_value(serde_json::json!({
            "purpose": "customer_service", "purpose_detail": "call back about the order",
            "legal_basis": "consent", "jurisdiction": "CN", "scope": scope, "fields": ["phone"],
            "mode": "view", "duration_minutes": 60
        }))
        .unwrap()
    }

    both_backends!(filters_narrow_listings_inside_the_scope, |harness| {
        let admin = harness.actor("boss", Role::Admin, None).await;
        let alice = harness.actor("alice", Role::Sales, Some("east")).await;
        let bob = harness.actor("bob", Role::Sales, Some("east")).await;
        let carol = harness.actor("carol", Role::Sales, Some("west")).await;
        let mia = harness.actor("mia", Role::Manager, Some("east")).await;
        let veil = &harness.veil;
        let create = |actor: Actor, input: CustomerInput| async move {
            veil.create_customer(&actor, &input, false)
                .await
                .unwrap()
                .id
        };
        let a1 = create(alice.clone(), customer("13811110001", &["vip"], "finance")).await;
        let a2 = create(
            alice.clone(),
            customer("13811110002", &["vip2"], "education"),
        )
        .await;
        let b1 = create(
            bob.clone(),
            customer("13811110003", &["vip", "new"], "finance"),
        )
        .await;
        let c1 = create(carol.clone(), customer("13811110004", &["vip"], "finance")).await;
        let list = |actor: Actor, filter: ListFilter| async move {
            ids(veil
                .list_customers_where(&actor, &filter, None, 50)
                .await
                .unwrap())
        };

        // A tag matches whole elements: `vip` is not `vip2`.
        assert_eq!(
            list(admin.clone(), tag("vip")).await,
            BTreeSet::from([a1, b1, c1])
        );
        assert_eq!(list(admin.clone(), tag("vip2")).await, BTreeSet::from([a2]));
        let by_owner = ListFilter {
            owner: Some(bob.user_id.to_string()),
            ..ListFilter::default()
        };
        assert_eq!(
            list(admin.clone(), by_owner.clone()).await,
            BTreeSet::from([b1])
        );
        let finance_east = ListFilter {
            team: Some("east".to_owned()),
            industry: Some("finance".to_owned()),
            ..ListFilter::default()
        };
        assert_eq!(
            list(admin.clone(), finance_east.clone()).await,
            BTreeSet::from([a1, b1])
        );
        // The scope applies first: a filter never widens what a user sees.
        assert!(list(alice.clone(), by_owner).await.is_empty());
        assert_eq!(list(alice.clone(), tag("vip")).await, BTreeSet::from([a1]));
        let west = ListFilter {
            team: Some("west".to_owned()),
            ..ListFilter::default()
        };
        assert!(list(mia.clone(), west).await.is_empty());
        assert_eq!(
            list(mia.clone(), finance_east).await,
            BTreeSet::from([a1, b1])
        );
        // Empty values are no filter; a malformed owner is a precise error.
        assert_eq!(
            list(alice.clone(), tag(" ")).await,
            BTreeSet::from([a1, a2])
        );
        let bad = ListFilter {
            owner: Some("bob".to_owned()),
            ..ListFilter::default()
        };
        match harness
            .veil
            .list_customers_where(&admin, &bad, None, 50)
            .await
        {
            Err(AppError::Validation(errors)) => assert_eq!(errors[0].field, "owner"),
            other => panic!("expected a validation error, got {other:?}"),
        }
    });

    both_backends!(segments_scope_unmask_requests, |harness| {
        let alice = harness.actor("alice", Role::Sales, Some("east")).await;
        let bob = harness.actor("bob", Role::Sales, Some("east")).await;
        let dora = harness.actor("dora", Role::Dpo, None).await;
        let a1 = harness
            .veil
            .create_customer(&alice, &customer("13911110001", &["vip"], "finance"), false)
            .await
            .unwrap()
            .id;
        harness
            .veil
            .create_customer(&alice, &customer("13911110002", &[], "finance"), false)
            .await
            .unwrap();
        // Bob's VIP customer is outside Alice's scope, so never in her segment.
        harness
            .veil
            .create_customer(&bob, &customer("13911110003", &["vip"], "finance"), false)
            .await
            .unwrap();
        let input = SegmentInput {
            name: "VIP".to_owned(),
            filter: tag("vip"),
        };
        let saved = harness.veil.save_segment(&alice, &input).await.unwrap();
        let labelled = harness
            .veil
            .save_segment(
                &alice,
                &SegmentInput {
                    name: "回访 13911110001".to_owned(),
                    filter: tag("vip"),
                },
            )
            .await
            .unwrap();
        assert!(!labelled.name.contains("13911110001"), "{}", labelled.name);
        harness
            .veil
            .delete_segment(&alice, &labelled.id)
            .await
            .unwrap();
        assert!(matches!(
            harness.veil.save_segment(&alice, &input).await,
            Err(AppError::Conflict(_))
        ));
        assert!(matches!(
            harness.veil.save_segment(&dora, &input).await,
            Err(AppError::Forbidden(_))
        ));
        assert_eq!(harness.veil.segments(&alice).await.unwrap().len(), 1);
        assert!(harness.veil.segments(&bob).await.unwrap().is_empty());
        assert_eq!(
            harness.veil.segment_filter(&bob, &saved.id).await.unwrap(),
            None
        );

        let made = harness
            .veil
            .create_unmask_request(
                &alice,
                None,
                &request(serde_json::json!({"segment": saved.id})),
            )
            .await
            .unwrap();
        assert_eq!(made.customer_ids, vec![a1.to_string()]);
        assert_eq!(made.segment.as_deref(), Some(saved.id.as_str()));
        let stored = harness
            .veil
            .get_unmask_request(&alice, &made.id)
            .await
            .unwrap();
        assert_eq!(stored.segment.as_deref(), Some(saved.id.as_str()));

        // Someone else's segment, or a segment and ids at once, are refused with the field named.
        for (actor, scope, field) in [
            (
                &bob,
                serde_json::json!({"segment": saved.id}),
                "scope.segment",
            ),
            (
                &alice,
                serde_json::json!({"segment": saved.id, "customer_ids": [a1.to_string()]}),
                "scope",
            ),
        ] {
            match harness
                .veil
                .create_unmask_request(actor, None, &request(scope))
                .await
            {
                Err(AppError::Validation(errors)) => {
                    assert!(
                        errors.iter().any(|error| error.field == field),
                        "{errors:?}"
                    )
                }
                other => panic!("expected a validation error, got {other:?}"),
            }
        }
        // A segment that matches nobody in scope cannot scope a request.
        let empty = harness
            .veil
            .save_segment(
                &alice,
                &SegmentInput {
                    name: "nobody".to_owned(),
                    filter: tag("no-such-tag"),
                },
            )
            .await
            .unwrap();
        match harness
            .veil
            .create_unmask_request(
                &alice,
                None,
                &request(serde_json::json!({"segment": empty.id})),
            )
            .await
        {
            Err(AppError::Validation(errors)) => assert_eq!(errors[0].field, "scope.segment"),
            other => panic!("expected a validation error, got {other:?}"),
        }

        assert!(matches!(
            harness.veil.delete_segment(&bob, &saved.id).await,
            Err(AppError::NotFound)
        ));
        harness
            .veil
            .delete_segment(&alice, &saved.id)
            .await
            .unwrap();
        assert_eq!(harness.veil.segments(&alice).await.unwrap().len(), 1);
        // The request keeps the customers it was made for.
        let kept = harness
            .veil
            .get_unmask_request(&alice, &made.id)
            .await
            .unwrap();
        assert_eq!(kept.customer_ids, vec![a1.to_string()]);
        let filter = veil_store::AuditFilter {
            action: Some("segment.".to_owned()),
            ..veil_store::AuditFilter::default()
        };
        let actions: Vec<String> = harness
            .veil
            .store()
            .query_audit(&filter, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|entry| entry.event.action)
            .collect();
        // Newest first.
        assert_eq!(
            actions,
            [
                "segment.delete",
                "segment.create",
                "segment.delete",
                "segment.create",
                "segment.create"
            ]
        );
    });
}
