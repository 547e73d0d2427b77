//! Recommendations (个性化服务): "customers who bought X also bought Y", then popular products of the customer's
//! preferred categories, then popular products overall.
//!
//! The method is item-to-item collaborative filtering over purchase history (a purchase = a product on a paid
//! order, counted once per customer). The similarity of products i and j is the cosine of their buyer sets,
//! `|B(i) ∩ B(j)| / sqrt(|B(i)| · |B(j)|)`; a candidate's score is the sum of its similarities to the products the
//! customer bought. Products the customer already bought and inactive products are never recommended. When that
//! yields fewer than asked, the list is filled with the most-bought products of the customer's preferred
//! categories (weighted by how many units they bought there, plus categories named in their tags), then with the
//! most-bought products overall.
//!
//! [`recommend`] is pure, fed by [`veil_store::Store::purchase_stats`] in the service and by synthetic data in
//! the offline evaluation (`cargo run -p veil-bench --bin recommend-eval`, see `docs/crm.md`).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use veil_store::CoPurchaseRow;

use crate::audit::EventExt;
use crate::authz::Action;
use crate::error::AppResult;
use crate::ids::CustomerId;
use crate::orders::{product_view, ProductView};
use crate::users::Actor;
use crate::Veil;

/// Most recommendations per request.
pub const MAX_RECOMMENDATIONS: usize = 50;

/// Why a product is recommended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Bought by customers who bought what this customer bought.
    AlsoBought,
    /// Popular in a category the customer prefers.
    PopularInCategory,
    /// Popular overall.
    Popular,
}

/// What [`recommend`] works from.
#[derive(Debug, Clone, Copy)]
pub struct RecommendationInput<'a> {
    /// The customer's purchased products and units of each.
    pub history: &'a [(String, i64)],
    /// Distinct customers who bought both a product of `history` (`source`) and another (`candidate`).
    pub co_purchases: &'a [CoPurchaseRow],
    /// Distinct buyers per product.
    pub buyers: &'a HashMap<String, i64>,
    /// The products that may be recommended (active ones), with their category.
    pub catalogue: &'a HashMap<String, String>,
    /// Categories the customer asked for or is known to like (e.g. from tags), besides their purchases.
    pub preferred_categories: &'a [String],
}

/// One recommendation.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// The product.
    pub product_id: String,
    /// Cosine score for `also_bought`; the category weight for `popular_in_category`; 0 for `popular`.
    pub score: f64,
    /// Why.
    pub reason: Reason,
    /// For `also_bought`: the customer's products that contributed most, strongest first (at most 3).
    pub because: Vec<String>,
}

/// A candidate's similarities to the customer's products: `(similarity, source product)`.
type Contributions<'a> = Vec<(f64, &'a str)>;

/// The top `limit` products for a customer (see the module documentation for the method). Deterministic: ties
/// are broken by product id.
pub fn recommend(input: RecommendationInput<'_>, limit: usize) -> Vec<Scored> {
    let bought: HashSet<&str> = input.history.iter().map(|(id, _)| id.as_str()).collect();
    let eligible = |id: &str| !bought.contains(id) && input.catalogue.contains_key(id);
    let buyers = |id: &str| input.buyers.get(id).copied().unwrap_or(0);
    // Candidate → (score, contributions by source).
    let mut scores: HashMap<&str, (f64, Contributions<'_>)> = HashMap::new();
    for row in input.co_purchases {
        if !bought.contains(row.source.as_str()) || !eligible(&row.candidate) || row.customers <= 0
        {
            continue;
        }
        let norm = ((buyers(&row.source).max(1) * buyers(&row.candidate).max(1)) as f64).sqrt();
        let similarity = row.customers as f64 / norm;
        let entry = scores.entry(row.candidate.as_str()).or_default();
        entry.0 += similarity;
        entry.1.push((similarity, row.source.as_str()));
    }
    let mut ranked: Vec<(&str, f64, Contributions<'_>)> = scores
        .into_iter()
        .map(|(id, (score, sources))| (id, score, sources))
        .collect();
    ranked.sort_by(|left, right| right.1.total_cmp(&left.1).then_with(|| left.0.cmp(right.0)));
    let mut picked: Vec<Scored> = ranked
        .into_iter()
        .take(limit)
        .map(|(id, score, mut sources)| {
            sources.sort_by(|left, right| {
                right.0.total_cmp(&left.0).then_with(|| left.1.cmp(right.1))
            });
            Scored {
                product_id: id.to_owned(),
                score,
                reason: Reason::AlsoBought,
                because: sources
                    .into_iter()
                    .take(3)
                    .map(|(_, source)| source.to_owned())
                    .collect(),
            }
        })
        .collect();
    if picked.len() >= limit {
        return picked;
    }
    // Fallbacks, most-bought first.
    let mut popular: Vec<&str> = input
        .catalogue
        .keys()
        .map(String::as_str)
        .filter(|id| eligible(id))
        .collect();
    popular.sort_by(|left, right| {
        buyers(right)
            .cmp(&buyers(left))
            .then_with(|| left.cmp(right))
    });
    let mut weights: BTreeMap<&str, f64> = BTreeMap::new();
    for (id, units) in input.history {
        if let Some(category) = input.catalogue.get(id) {
            *weights.entry(category.as_str()).or_default() += *units as f64;
        }
    }
    for category in input.preferred_categories {
        *weights.entry(category.as_str()).or_default() += 1.0;
    }
    let mut taken: HashSet<String> = picked
        .iter()
        .map(|scored| scored.product_id.clone())
        .collect();
    let mut in_category: Vec<(&str, f64)> = popular
        .iter()
        .filter_map(|id| {
            let weight = *weights.get(input.catalogue[*id].as_str())?;
            Some((*id, weight))
        })
        .collect();
    // Stable: within a weight the popularity order stays.
    in_category.sort_by(|left, right| right.1.total_cmp(&left.1));
    for (id, weight) in in_category {
        if picked.len() >= limit {
            return picked;
        }
        if taken.insert(id.to_owned()) {
            picked.push(Scored {
                product_id: id.to_owned(),
                score: weight,
                reason: Reason::PopularInCategory,
                because: Vec::new(),
            });
        }
    }
    for id in popular {
        if picked.len() >= limit {
            break;
        }
        if taken.insert(id.to_owned()) {
            picked.push(Scored {
                product_id: id.to_owned(),
                score: 0.0,
                reason: Reason::Popular,
                because: Vec::new(),
            });
        }
    }
    picked
}

/// The popularity baseline of the offline evaluation: the most-bought products the customer has not bought.
pub fn most_popular(
    history: &[(String, i64)],
    buyers: &HashMap<String, i64>,
    catalogue: &HashMap<String, String>,
    limit: usize,
) -> Vec<String> {
    let bought: HashSet<&str> = history.iter().map(|(id, _)| id.as_str()).collect();
    let mut popular: Vec<(&str, i64)> = catalogue
        .keys()
        .filter(|id| !bought.contains(id.as_str()))
        .map(|id| (id.as_str(), buyers.get(id).copied().unwrap_or(0)))
        .collect();
    popular.sort_by(|left, right| right.1.cmp(&left.1).then_with(|| left.0.cmp(right.0)));
    popular
        .into_iter()
        .take(limit)
        .map(|(id, _)| id.to_owned())
        .collect()
}

/// One recommendation as readers see it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecommendationView {
    /// The product.
    pub product: ProductView,
    /// See [`Scored::score`].
    pub score: f64,
    /// Why.
    pub reason: Reason,
    /// For `also_bought`: ids of the customer's products behind it.
    pub because: Vec<String>,
}

/// A customer's recommendations.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecommendationList {
    /// Customer id.
    pub customer_id: String,
    /// `item_cosine` (the method in the module documentation).
    pub method: String,
    /// Best first.
    pub items: Vec<RecommendationView>,
}

impl Veil {
    /// Recommendations for a customer the caller can see.
    pub async fn recommendations(
        &self,
        actor: &Actor,
        customer_id: CustomerId,
        limit: u32,
    ) -> AppResult<RecommendationList> {
        let customer = customer_id.to_string();
        let row = self
            .customer_for(actor, &customer, Action::OrderRead)
            .await?;
        let limit = (limit as usize).clamp(1, MAX_RECOMMENDATIONS);
        let stats = self.store().purchase_stats(&customer).await?;
        let products: HashMap<String, veil_store::ProductRow> = self
            .store()
            .list_products(None, true, 100_000)
            .await?
            .into_iter()
            .map(|product| (product.id.clone(), product))
            .collect();
        let catalogue: HashMap<String, String> = products
            .iter()
            .map(|(id, product)| (id.clone(), product.category.clone()))
            .collect();
        let categories: HashSet<&str> = catalogue.values().map(String::as_str).collect();
        let tags: Vec<String> = serde_json::from_str(&row.profile.tags).unwrap_or_default();
        let preferred: Vec<String> = tags
            .into_iter()
            .map(|tag| tag.to_lowercase())
            .filter(|tag| categories.contains(tag.as_str()))
            .collect();
        let buyers: HashMap<String, i64> = stats.buyers.into_iter().collect();
        let scored = recommend(
            RecommendationInput {
                history: &stats.history,
                co_purchases: &stats.co_purchases,
                buyers: &buyers,
                catalogue: &catalogue,
                preferred_categories: &preferred,
            },
            limit,
        );
        self.record(&[crate::audit::event(
            Some(actor),
            "recommendation.read",
            crate::audit::Outcome::Ok,
        )
        .customers([customer.clone()])
        .detail(serde_json::json!({"items": scored.len()}))])
            .await?;
        Ok(RecommendationList {
            customer_id: customer,
            method: "item_cosine".to_owned(),
            items: scored
                .into_iter()
                .filter_map(|scored| {
                    Some(RecommendationView {
                        product: product_view(products.get(&scored.product_id)?.clone()),
                        score: scored.score,
                        reason: scored.reason,
                        because: scored.because,
                    })
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| (*item).to_owned()).collect()
    }

    /// Baskets of customers → (co-purchase rows for `history`, buyers). Mirrors the store's query.
    fn stats(baskets: &[&[&str]], history: &[&str]) -> (Vec<CoPurchaseRow>, HashMap<String, i64>) {
        let mut buyers: HashMap<String, i64> = HashMap::new();
        let mut co: BTreeMap<(String, String), i64> = BTreeMap::new();
        for basket in baskets {
            for product in *basket {
                *buyers.entry((*product).to_owned()).or_default() += 1;
                if history.contains(product) {
                    for other in basket.iter().filter(|other| *other != product) {
                        *co.entry(((*product).to_owned(), (*other).to_owned()))
                            .or_default() += 1;
                    }
                }
            }
        }
        let rows = co
            .into_iter()
            .map(|((source, candidate), customers)| CoPurchaseRow {
                source,
                candidate,
                customers,
            })
            .collect();
        (rows, buyers)
    }

    fn catalogue(items: &[(&str, &str)]) -> HashMap<String, String> {
        items
            .iter()
            .map(|(id, category)| ((*id).to_owned(), (*category).to_owned()))
            .collect()
    }

    fn check(
        baskets: &[&[&str]],
        history: &[&str],
        products: &[(&str, &str)],
        preferred: &[&str],
        limit: usize,
        expected: &[(&str, Reason)],
    ) {
        let (co_purchases, buyers) = stats(baskets, history);
        let history: Vec<(String, i64)> = history.iter().map(|id| ((*id).to_owned(), 1)).collect();
        let catalogue = catalogue(products);
        let preferred = strings(preferred);
        let got = recommend(
            RecommendationInput {
                history: &history,
                co_purchases: &co_purchases,
                buyers: &buyers,
                catalogue: &catalogue,
                preferred_categories: &preferred,
            },
            limit,
        );
        let got: Vec<(&str, Reason)> = got
            .iter()
            .map(|scored| (scored.product_id.as_str(), scored.reason))
            .collect();
        assert_eq!(got, expected);
    }

    const PRODUCTS: &[(&str, &str)] = &[
        ("phone", "digital"),
        ("case", "digital"),
        ("charger", "digital"),
        ("cream", "beauty"),
        ("serum", "beauty"),
        ("mask", "beauty"),
        ("tea", "food"),
    ];

    #[test]
    fn also_bought_ranks_by_cosine() {
        use Reason::*;
        // The case goes with the phone every time; the charger half the time; tea is bought by everyone, so
        // its co-occurrence is high but its cosine is diluted.
        let baskets: &[&[&str]] = &[
            &["phone", "case", "tea"],
            &["phone", "case", "charger", "tea"],
            &["cream", "serum", "tea"],
            &["cream", "serum", "tea"],
            &["mask", "tea"],
            &["tea"],
        ];
        check(
            baskets,
            &["phone"],
            PRODUCTS,
            &[],
            3,
            &[
                ("case", AlsoBought),
                ("charger", AlsoBought),
                ("tea", AlsoBought),
            ],
        );
        // Without co-purchases, a cream buyer's category comes first, then overall popularity.
        check(
            &[&["serum", "tea"], &["tea", "phone"], &["mask"]],
            &["cream"],
            PRODUCTS,
            &[],
            4,
            &[
                ("mask", PopularInCategory),
                ("serum", PopularInCategory),
                ("tea", Popular),
                ("phone", Popular),
            ],
        );
    }

    #[test]
    fn never_recommends_bought_or_inactive_products() {
        use Reason::*;
        let baskets: &[&[&str]] = &[&["phone", "case", "charger"], &["phone", "case"]];
        // `case` is not in the catalogue (inactive): skipped, even though it is the strongest match.
        let active: Vec<(&str, &str)> = PRODUCTS
            .iter()
            .copied()
            .filter(|(id, _)| *id != "case")
            .collect();
        check(
            baskets,
            &["phone", "charger"],
            &active,
            &[],
            2,
            &[("cream", Popular), ("mask", Popular)],
        );
        check(
            baskets,
            &["phone"],
            &active,
            &[],
            1,
            &[("charger", AlsoBought)],
        );
    }

    #[test]
    fn recorded_preferences_pick_the_fallback_category() {
        use Reason::*;
        let baskets: &[&[&str]] = &[&["tea"], &["tea"], &["serum"], &["phone"]];
        check(
            baskets,
            &[],
            PRODUCTS,
            &["beauty"],
            2,
            &[("serum", PopularInCategory), ("cream", PopularInCategory)],
        );
        check(baskets, &[], PRODUCTS, &[], 1, &[("tea", Popular)]);
    }

    #[test]
    fn popularity_baseline_skips_bought_products() {
        let buyers: HashMap<String, i64> = [("tea", 5), ("phone", 3), ("case", 3)]
            .map(|(id, count)| (id.to_owned(), count))
            .into();
        let history = vec![("tea".to_owned(), 1)];
        assert_eq!(
            most_popular(&history, &buyers, &catalogue(PRODUCTS), 3),
            strings(&["case", "phone", "charger"])
        );
    }
}
