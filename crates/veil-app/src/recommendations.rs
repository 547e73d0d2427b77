//! Recommendations (个性化服务): "customers who bought X also bought Y", then popular products of the customer's
//! preferred categories, then popular products overall.
//!
//! The method is item-to-item collaborative filtering over purchase history (a purchase = a product on a paid
//! order, counted once per customer), with neighbour lists. The similarity of products i and j is the cosine of
//! their buyer sets, `|B(i) ∩ B(j)| / sqrt(|B(i)| · |B(j)|)`; each product i keeps a neighbour list, the
//! [`NEIGHBOUR_DEPTH`] products most similar to it ([`neighbour_lists`]); a candidate's score is the sum of its
//! similarities to the products the customer bought on whose lists it is. Products the customer already bought
//! and inactive products are never recommended. When that yields fewer than asked, the list is filled with the
//! most-bought products of the customer's preferred categories (weighted by how many units they bought there, plus
//! categories named in their tags), then with the most-bought products overall.
//!
//! A product with at most [`NEIGHBOUR_DEPTH`] co-purchased products has all of them on its list, so for a customer
//! whose products all have complete lists the result is that of the plain item cosine over every pair; otherwise
//! a product that is on none of their products' lists is not recommended, and a candidate's score leaves out its
//! similarity to the products whose lists it is not on (see `docs/crm.md`, "Neighbour lists").
//!
//! [`recommend`] is pure, fed in the service by [`Veil::recommendation_inputs`] (the neighbour rows of the
//! customer's products and what the fallbacks can reach) and by synthetic data in the offline evaluation
//! (`cargo run -p veil-bench --bin recommend-eval`, see `docs/crm.md`).

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use veil_store::{CoPurchaseRow, RankedProduct};

use crate::audit::EventExt;
use crate::authz::Action;
use crate::error::AppResult;
use crate::ids::CustomerId;
use crate::orders::{product_view, ProductView};
use crate::users::Actor;
use crate::Veil;

/// Most recommendations per request.
pub const MAX_RECOMMENDATIONS: usize = 50;

/// Products on each product's neighbour list ([`veil_store::NEIGHBOUR_DEPTH`]).
pub const NEIGHBOUR_DEPTH: usize = veil_store::NEIGHBOUR_DEPTH as usize;

/// Rises tested and lists recomputed per transaction by [`Veil::refresh_product_neighbours`]: few, because on
/// PostgreSQL purchase changes wait for each transaction, and on SQLite every other write does.
const NEIGHBOUR_BATCH: i64 = 16;

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

/// Each product's neighbour list: the `depth` products most similar to it, best first, from the co-purchase
/// counts `pairs` (`(product, other, customers)`, both directions) and the buyers per product. For a fixed
/// product the cosine order of its partners j is that of `customers² / buyers(j)`, ties by product id; pairs with
/// no customers are left out. The store keeps the same lists (`Store::refresh_product_neighbours`, the same
/// floating-point expression); this computes them afresh, for the offline evaluation and the tests.
pub fn neighbour_lists<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str, i64)>,
    buyers: impl Fn(&str) -> i64,
    depth: usize,
) -> BTreeMap<String, Vec<String>> {
    let mut partners: BTreeMap<&str, Vec<(f64, &str)>> = BTreeMap::new();
    for (product, other, customers) in pairs {
        let other_buyers = buyers(other);
        if customers <= 0 || other_buyers <= 0 {
            continue;
        }
        let key = customers as f64 * customers as f64 / other_buyers as f64;
        partners.entry(product).or_default().push((key, other));
    }
    partners
        .into_iter()
        .map(|(product, mut list)| {
            list.sort_by(|left, right| {
                right.0.total_cmp(&left.0).then_with(|| left.1.cmp(right.1))
            });
            let list = list
                .into_iter()
                .take(depth)
                .map(|(_, other)| other.to_owned())
                .collect();
            (product.to_owned(), list)
        })
        .collect()
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
        let tags: Vec<String> = serde_json::from_str(&row.profile.tags).unwrap_or_default();
        let tags: Vec<String> = tags.into_iter().map(|tag| tag.to_lowercase()).collect();
        let inputs = self.recommendation_inputs(&customer, &tags, limit).await?;
        let scored = recommend(inputs.as_input(), limit);
        let wanted: Vec<String> = scored
            .iter()
            .map(|scored| scored.product_id.clone())
            .collect();
        let products: HashMap<String, veil_store::ProductRow> = self
            .store()
            .products_by_ids(&wanted)
            .await?
            .into_iter()
            .map(|product| (product.id.clone(), product))
            .collect();
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

/// The slice of the purchase statistics that decides one customer's top `limit` (see
/// [`Veil::recommendation_inputs`]), in the shape [`recommend`] reads.
#[derive(Debug, Clone, Default)]
pub struct RecommendationInputs {
    /// The customer's products and units.
    pub history: Vec<(String, i64)>,
    /// Co-purchase rows from the customer's products to the preselected candidates.
    pub co_purchases: Vec<CoPurchaseRow>,
    /// Buyers of every product named here.
    pub buyers: HashMap<String, i64>,
    /// The preselected products that may be recommended, with their category.
    pub catalogue: HashMap<String, String>,
    /// Tags of the customer that name a category of active products.
    pub preferred_categories: Vec<String>,
}

impl RecommendationInputs {
    /// As [`recommend`]'s input.
    pub fn as_input(&self) -> RecommendationInput<'_> {
        RecommendationInput {
            history: &self.history,
            co_purchases: &self.co_purchases,
            buyers: &self.buyers,
            catalogue: &self.catalogue,
            preferred_categories: &self.preferred_categories,
        }
    }
}

/// Fallback products fetched beyond `2 · limit` (and, for the full method, "also bought" candidates beyond
/// `limit`, so that scores equal up to rounding in SQL rank the same as in Rust).
const CANDIDATE_MARGIN: usize = 10;

impl Veil {
    /// What [`recommend`] needs to pick a customer's top `limit`, read with index lookups only, so that no request
    /// reads the whole pair table or catalogue:
    /// - the customer's products with their buyers and category;
    /// - the neighbour lists of those products with their pair counts and the candidates' buyers now
    ///   ([`veil_store::Store::neighbour_rows`]: about [`NEIGHBOUR_DEPTH`] rows per product), which are every "also
    ///   bought" candidate of the method;
    /// - when those candidates are fewer than `limit`, for each category the customer bought in or names in a tag,
    ///   and overall, the `2 · limit + margin` most-bought products they have not bought. [`recommend`] consumes at
    ///   most `limit` of the fallback order after skipping at most `limit` already picked, so it never reads past
    ///   these prefixes and the result equals that over the full catalogue (tested against it).
    pub async fn recommendation_inputs(
        &self,
        customer: &str,
        tags: &[String],
        limit: usize,
    ) -> AppResult<RecommendationInputs> {
        let store = self.store();
        let history = store.purchase_history(customer).await?;
        let rows = store.neighbour_rows(customer).await?;
        let mut candidates: BTreeMap<String, RankedProduct> = BTreeMap::new();
        let mut co_purchases = Vec::with_capacity(rows.len());
        for row in rows {
            if !history.iter().any(|item| item.product_id == row.candidate) {
                candidates
                    .entry(row.candidate.clone())
                    .or_insert_with(|| RankedProduct {
                        product_id: row.candidate.clone(),
                        category: row.category,
                        buyers: row.buyers,
                    });
            }
            co_purchases.push(CoPurchaseRow {
                source: row.source,
                candidate: row.candidate,
                customers: row.customers,
            });
        }
        self.complete_inputs(
            customer,
            tags,
            limit,
            history,
            co_purchases,
            candidates.into_values().collect(),
        )
        .await
    }

    /// The inputs of the plain item cosine, without neighbour lists: the best `limit + margin` "also bought"
    /// candidates over every pair row of the customer's products, ranked in SQL
    /// ([`veil_store::Store::co_purchase_candidates`], by the cosine order without a square root), with the pair
    /// rows behind those; the fallbacks as in [`Veil::recommendation_inputs`]. Equal to it when the lists of the
    /// customer's products are complete. Sums every pair row of the customer's products (~50 ms at 1,000,000
    /// orders): `recommend-bench` uses it to measure what the neighbour lists change.
    pub async fn full_recommendation_inputs(
        &self,
        customer: &str,
        tags: &[String],
        limit: usize,
    ) -> AppResult<RecommendationInputs> {
        let store = self.store();
        let history = store.purchase_history(customer).await?;
        let weights: Vec<(String, f64)> = history
            .iter()
            .map(|item| {
                (
                    item.product_id.clone(),
                    1.0 / (item.buyers.max(1) as f64).sqrt(),
                )
            })
            .collect();
        let candidates = store
            .co_purchase_candidates(customer, &weights, (limit + CANDIDATE_MARGIN) as i64)
            .await?;
        let candidate_ids: Vec<String> = candidates
            .iter()
            .map(|candidate| candidate.product_id.clone())
            .collect();
        let co_purchases = store.co_purchases_with(customer, &candidate_ids).await?;
        self.complete_inputs(customer, tags, limit, history, co_purchases, candidates)
            .await
    }

    /// Adds to the "also bought" rows and `candidates` (active products the customer has not bought) the customer's
    /// history and, when the candidates are fewer than `limit`, the prefixes of the fallback orders.
    async fn complete_inputs(
        &self,
        customer: &str,
        tags: &[String],
        limit: usize,
        history: Vec<veil_store::HistoryItem>,
        co_purchases: Vec<CoPurchaseRow>,
        candidates: Vec<RankedProduct>,
    ) -> AppResult<RecommendationInputs> {
        let store = self.store();
        let mut inputs = RecommendationInputs {
            co_purchases,
            ..RecommendationInputs::default()
        };
        let mut categories: Vec<String> = Vec::new();
        for item in &history {
            inputs.buyers.insert(item.product_id.clone(), item.buyers);
            if let Some(category) = &item.active_category {
                inputs
                    .catalogue
                    .insert(item.product_id.clone(), category.clone());
                if !categories.contains(category) {
                    categories.push(category.clone());
                }
            }
        }
        let mut ranked = candidates;
        if ranked.len() < limit {
            inputs.preferred_categories = store.active_categories_among(tags).await?;
            for category in &inputs.preferred_categories {
                if !categories.contains(category) {
                    categories.push(category.clone());
                }
            }
            let depth = (2 * limit + CANDIDATE_MARGIN) as i64;
            for category in &categories {
                ranked.extend(
                    store
                        .popular_products(customer, Some(category), depth)
                        .await?,
                );
            }
            ranked.extend(store.popular_products(customer, None, depth).await?);
        }
        for product in ranked {
            inputs
                .buyers
                .insert(product.product_id.clone(), product.buyers);
            inputs
                .catalogue
                .insert(product.product_id, product.category);
        }
        inputs.history = history
            .into_iter()
            .map(|item| (item.product_id, item.units))
            .collect();
        Ok(inputs)
    }

    /// Brings the neighbour lists up to date: tests the products whose buyers fell against the cuts of the lists
    /// they are not on, and recomputes every list marked stale by purchase changes, a few per transaction, until
    /// nothing is left (under a steady stream of orders it keeps going as long as they mark lists). Returns how
    /// many rises and lists it handled.
    pub async fn refresh_product_neighbours(&self) -> AppResult<usize> {
        let mut handled = 0;
        loop {
            let done = self
                .store()
                .refresh_product_neighbours(veil_store::NEIGHBOUR_DEPTH, NEIGHBOUR_BATCH)
                .await?;
            if done == 0 {
                return Ok(handled);
            }
            handled += done;
        }
    }

    /// Runs [`Veil::refresh_product_neighbours`] at start and then every `interval` (the `veil serve` job): a list
    /// changed by a purchase is recomputed within about one interval.
    pub fn spawn_neighbour_refresh(
        veil: std::sync::Arc<Veil>,
        interval: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                match veil.refresh_product_neighbours().await {
                    Ok(0) => {}
                    Ok(lists) => tracing::debug!(lists, "neighbour lists recomputed"),
                    Err(error) => tracing::warn!(%error, "recomputing neighbour lists failed"),
                }
                tokio::time::sleep(interval).await;
            }
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

    /// A small deterministic generator (xorshift) for the equivalence test's purchases.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    // The service's preselected inputs give the same list as the full statistics and catalogue, for every
    // customer and list length: co-purchase ranking, ties, inactive products, category and popularity fallbacks.
    crate::both_backends!(preselected_inputs_rank_like_the_full_data, |harness| {
        use crate::customers::CustomerInput;
        use crate::users::Role;
        let veil = &harness.veil;
        let admin = harness.actor("ada", Role::Admin, None).await;
        let categories = ["digital", "beauty", "food", "books"];
        let mut values = Vec::new();
        for index in 0..40 {
            // Products 5 and 17 are inactive; 38 and 39 are never bought.
            let active = index != 5 && index != 17;
            values.push(format!(
                "('p{index:02}', 'SKU{index:02}', 'product {index}', '{}', 100, 'CNY', {}, 0, 0)",
                categories[index % 4],
                if active { "TRUE" } else { "FALSE" }
            ));
        }
        harness
            .raw_sql(&format!(
                "INSERT INTO product (id, sku, name, category, price_fen, currency, active, created_at, updated_at) \
                 VALUES {}",
                values.join(", ")
            ))
            .await
            .unwrap();
        let inputs: Vec<CustomerInput> = (0..120)
            .map(|index| CustomerInput {
                name: Some(format!(
                    "张{}",
                    "伟芳娜敏静丽强磊军洋".chars().nth(index % 10).unwrap()
                )),
                tags: Some(match index % 7 {
                    0 => vec!["Beauty".to_owned()],
                    1 => vec!["books".to_owned(), "vip".to_owned()],
                    _ => Vec::new(),
                }),
                ..CustomerInput::default()
            })
            .collect();
        let ids = veil.create_customers_batch(&admin, &inputs).await.unwrap();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut bought = Vec::new();
        for (index, id) in ids.iter().enumerate() {
            // Every 9th customer bought nothing; the rest 1–7 products, skewed to the low numbers.
            if index % 9 == 0 {
                continue;
            }
            let mut mine = std::collections::BTreeSet::new();
            for _ in 0..=rng.below(7) {
                let product = rng.below(38).min(rng.below(38));
                mine.insert(product);
            }
            for product in mine {
                bought.push(format!("('{id}', 'p{product:02}', {})", 1 + rng.below(3)));
            }
        }
        harness
            .raw_sql(&format!(
                "INSERT INTO customer_product (customer_id, product_id, units) VALUES {}",
                bought.join(", ")
            ))
            .await
            .unwrap();

        // The refresh job computes every bought product's list; with 40 products and lists of 50 they are
        // complete, so the method equals the plain item cosine over every pair.
        let refreshed = veil.refresh_product_neighbours().await.unwrap();
        let totals = veil.store().kept_purchase_stats().await.unwrap();
        assert_eq!(
            refreshed,
            totals.buyers.len(),
            "every bought product's list"
        );
        let backlog = veil.store().neighbour_backlog().await.unwrap();
        assert_eq!((backlog.lists, backlog.rises), (0, 0));
        let buyers: HashMap<String, i64> = totals.buyers.clone().into_iter().collect();
        let pair_rows = || {
            totals
                .pairs
                .iter()
                .map(|((product, other), customers)| (product.as_str(), other.as_str(), *customers))
        };
        let buyer_count = |id: &str| buyers.get(id).copied().unwrap_or(0);
        let stored = veil.store().product_neighbour_lists().await.unwrap();
        assert_eq!(
            stored,
            neighbour_lists(pair_rows(), buyer_count, NEIGHBOUR_DEPTH)
        );
        for (product, list) in &stored {
            let partners = pair_rows().filter(|(source, _, n)| source == product && *n > 0);
            assert_eq!(list.len(), partners.count(), "{product}'s list is complete");
        }
        let products = veil.store().list_products(None, true, 1000).await.unwrap();
        let full_catalogue: HashMap<String, String> = products
            .iter()
            .map(|product| (product.id.clone(), product.category.clone()))
            .collect();
        let shape = |list: &[Scored]| {
            list.iter()
                .map(|scored| {
                    (
                        scored.product_id.clone(),
                        scored.reason,
                        scored.because.clone(),
                        (scored.score * 1e9).round() as i64,
                    )
                })
                .collect::<Vec<_>>()
        };
        // Lists of 50 (complete here), then of 3 (truncated: the method differs from the plain cosine).
        let mut truncation_changed = 0;
        let mut second_customer = Vec::new();
        for depth in [NEIGHBOUR_DEPTH, 3] {
            if depth != NEIGHBOUR_DEPTH {
                veil.store()
                    .rebuild_product_neighbours(depth as i64)
                    .await
                    .unwrap();
            }
            let lists = neighbour_lists(pair_rows(), buyer_count, depth);
            assert_eq!(veil.store().product_neighbour_lists().await.unwrap(), lists);
            let mut compared = 0;
            for (index, id) in ids.iter().enumerate() {
                let customer = id.to_string();
                let history: Vec<(String, i64)> = totals
                    .bought
                    .iter()
                    .filter(|((who, _), _)| *who == customer)
                    .map(|((_, product), units)| (product.clone(), *units))
                    .collect();
                let all_pairs: Vec<CoPurchaseRow> = totals
                    .pairs
                    .iter()
                    .filter(|((source, _), _)| history.iter().any(|(mine, _)| mine == source))
                    .map(|((source, candidate), customers)| CoPurchaseRow {
                        source: source.clone(),
                        candidate: candidate.clone(),
                        customers: *customers,
                    })
                    .collect();
                let listed: Vec<CoPurchaseRow> = all_pairs
                    .iter()
                    .filter(|row| {
                        lists
                            .get(&row.source)
                            .is_some_and(|list| list.contains(&row.candidate))
                    })
                    .cloned()
                    .collect();
                let tags = inputs[index].tags.clone().unwrap_or_default();
                let tags: Vec<String> = tags.iter().map(|tag| tag.to_lowercase()).collect();
                let preferred: Vec<String> = tags
                    .iter()
                    .filter(|tag| full_catalogue.values().any(|category| category == *tag))
                    .cloned()
                    .collect();
                for limit in [1, 3, 8, 20, 45] {
                    let over = |co_purchases: &[CoPurchaseRow]| {
                        recommend(
                            RecommendationInput {
                                history: &history,
                                co_purchases,
                                buyers: &buyers,
                                catalogue: &full_catalogue,
                                preferred_categories: &preferred,
                            },
                            limit,
                        )
                    };
                    let expected = over(&listed);
                    let plain = over(&all_pairs);
                    let sliced = veil
                        .recommendation_inputs(&customer, &tags, limit)
                        .await
                        .unwrap();
                    let got = recommend(sliced.as_input(), limit);
                    assert_eq!(
                        shape(&got),
                        shape(&expected),
                        "customer {index}, limit {limit}, lists of {depth}"
                    );
                    assert!(!got
                        .iter()
                        .any(|scored| scored.product_id == "p05" || scored.product_id == "p17"));
                    if depth == NEIGHBOUR_DEPTH {
                        // Complete lists: the plain cosine, which the full method ranked in SQL also gives.
                        assert_eq!(
                            shape(&got),
                            shape(&plain),
                            "customer {index}, limit {limit}"
                        );
                        let full = veil
                            .full_recommendation_inputs(&customer, &tags, limit)
                            .await
                            .unwrap();
                        assert_eq!(
                            shape(&recommend(full.as_input(), limit)),
                            shape(&plain),
                            "full method, customer {index}, limit {limit}"
                        );
                        if index == 1 && limit == 8 {
                            second_customer = shape(&got);
                        }
                    } else if shape(&got) != shape(&plain) {
                        truncation_changed += 1;
                    }
                    compared += 1;
                }
            }
            assert_eq!(compared, 600);
        }
        assert!(
            truncation_changed > 50,
            "lists of 3 change many answers ({truncation_changed})"
        );
        // The service answers with the same list (the lists of 50 again).
        veil.store()
            .rebuild_product_neighbours(NEIGHBOUR_DEPTH as i64)
            .await
            .unwrap();
        let listed = veil.recommendations(&admin, ids[1], 8).await.unwrap();
        let listed: Vec<(String, Reason, Vec<String>)> = listed
            .items
            .into_iter()
            .map(|item| (item.product.id, item.reason, item.because))
            .collect();
        let expected: Vec<(String, Reason, Vec<String>)> = second_customer
            .into_iter()
            .map(|(id, reason, because, _)| (id, reason, because))
            .collect();
        assert_eq!(listed.len(), 8);
        assert_eq!(listed, expected);
    });

    // The stale marks are complete: after any change of what customers bought — a purchase, a purchase gone, a
    // customer's purchases all gone in one statement — recomputing only the marked lists gives every list as
    // computed afresh. Lists of 2 out of 14 products, so most are truncated and a buyer count moving a product up
    // or down someone else's list matters.
    crate::both_backends!(neighbour_lists_follow_every_purchase_change, |harness| {
        use crate::customers::CustomerInput;
        use crate::users::Role;
        const DEPTH: usize = 2;
        let veil = &harness.veil;
        let store = veil.store();
        let admin = harness.actor("ada", Role::Admin, None).await;
        let values: Vec<String> = (0..14)
            .map(|index| {
                format!("('q{index:02}', 'SKU{index:02}', 'product {index}', 'digital', 100, 'CNY', TRUE, 0, 0)")
            })
            .collect();
        harness
            .raw_sql(&format!(
                "INSERT INTO product (id, sku, name, category, price_fen, currency, active, created_at, updated_at) \
                 VALUES {}",
                values.join(", ")
            ))
            .await
            .unwrap();
        let inputs: Vec<CustomerInput> = (0..40)
            .map(|_| CustomerInput {
                name: Some("王芳".to_owned()),
                ..CustomerInput::default()
            })
            .collect();
        let ids: Vec<String> = veil
            .create_customers_batch(&admin, &inputs)
            .await
            .unwrap()
            .iter()
            .map(|id| id.to_string())
            .collect();
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let mut bought: std::collections::BTreeSet<(usize, u64)> =
            std::collections::BTreeSet::new();
        for customer in 0..ids.len() {
            for _ in 0..=rng.below(4) {
                bought.insert((customer, rng.below(14).min(rng.below(14))));
            }
        }
        let rows: Vec<String> = bought
            .iter()
            .map(|(customer, product)| format!("('{}', 'q{product:02}', 1)", ids[*customer]))
            .collect();
        harness
            .raw_sql(&format!(
                "INSERT INTO customer_product (customer_id, product_id, units) VALUES {}",
                rows.join(", ")
            ))
            .await
            .unwrap();
        let drain = move || async move {
            while store
                .refresh_product_neighbours(DEPTH as i64, 5)
                .await
                .unwrap()
                > 0
            {}
            let backlog = store.neighbour_backlog().await.unwrap();
            assert_eq!((backlog.lists, backlog.rises), (0, 0));
            store.product_neighbour_lists().await.unwrap()
        };
        let afresh = move || async move {
            let totals = store.kept_purchase_stats().await.unwrap();
            neighbour_lists(
                totals.pairs.iter().map(|((product, other), customers)| {
                    (product.as_str(), other.as_str(), *customers)
                }),
                |id| totals.buyers.get(id).copied().unwrap_or(0),
                DEPTH,
            )
        };
        let mut lists = drain().await;
        assert_eq!(lists, afresh().await, "after the first purchases");
        // Steps that changed a list other than those of the customer's own products: the marks for buyer counts.
        let mut moved_elsewhere = [0usize; 2];
        for step in 0..80 {
            let customer = rng.below(ids.len() as u64) as usize;
            let mine: Vec<u64> = bought
                .iter()
                .filter(|(who, _)| *who == customer)
                .map(|(_, product)| *product)
                .collect();
            let roll = rng.below(10);
            let (sql, kind, touched) = if roll < 5 || mine.is_empty() {
                let product = rng.below(14);
                if !bought.insert((customer, product)) {
                    continue;
                }
                let mut touched = mine.clone();
                touched.push(product);
                (
                    format!(
                        "INSERT INTO customer_product (customer_id, product_id, units) VALUES ('{}', 'q{product:02}', 1)",
                        ids[customer]
                    ),
                    0,
                    touched,
                )
            } else if roll < 9 {
                let product = mine[rng.below(mine.len() as u64) as usize];
                bought.remove(&(customer, product));
                (
                    format!(
                        "DELETE FROM customer_product WHERE customer_id = '{}' AND product_id = 'q{product:02}'",
                        ids[customer]
                    ),
                    1,
                    mine.clone(),
                )
            } else {
                bought.retain(|(who, _)| *who != customer);
                (
                    format!(
                        "DELETE FROM customer_product WHERE customer_id = '{}'",
                        ids[customer]
                    ),
                    1,
                    mine.clone(),
                )
            };
            harness.raw_sql(&sql).await.unwrap();
            let after = drain().await;
            assert_eq!(after, afresh().await, "step {step}: {sql}");
            let own: Vec<String> = touched
                .iter()
                .map(|product| format!("q{product:02}"))
                .collect();
            let elsewhere = after
                .keys()
                .chain(lists.keys())
                .any(|product| !own.contains(product) && after.get(product) != lists.get(product));
            if elsewhere {
                moved_elsewhere[kind] += 1;
            }
            lists = after;
        }
        assert!(
            moved_elsewhere.iter().all(|count| *count > 0),
            "purchases and removals both moved other products' lists: {moved_elsewhere:?}"
        );
        // A rebuild from scratch agrees.
        store
            .rebuild_product_neighbours(DEPTH as i64)
            .await
            .unwrap();
        assert_eq!(store.product_neighbour_lists().await.unwrap(), lists);
    });
}
