//! `recommend-eval`: offline evaluation of the recommender (`veil_app::recommendations::recommend`).
//!
//! Generates synthetic shoppers with the demo generator (`veil_app::demo::ShopperGenerator`: preferred
//! categories, popularity within them, complements bought after a product), holds out each shopper's last
//! purchase, trains on everything else (the held-out purchases of every shopper are removed), and reports hit
//! rate@K — the share of shoppers whose held-out product is among the K recommended — for the recommender and
//! for a popularity baseline (the K most-bought products the shopper has not bought). The recommender counts a
//! co-purchase only when the candidate is on the neighbour list of the shopper's product, computed from the
//! training purchases (`--neighbours`, the service's depth by default). Prints one JSON object.
//!
//! Run: `cargo run -p veil-bench --bin recommend-eval -- --shoppers 5000 --k 5` (the figures do not depend on the
//! build profile; `--release` only makes it faster).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use clap::Parser;
use serde_json::json;
use veil_app::demo::{ShopperGenerator, DEMO_PRODUCTS};
use veil_app::recommendations::{
    most_popular, neighbour_lists, recommend, Reason, RecommendationInput, NEIGHBOUR_DEPTH,
};
use veil_store::CoPurchaseRow;

#[derive(Parser)]
struct Args {
    /// Synthetic shoppers.
    #[arg(long, default_value_t = 5000)]
    shoppers: usize,
    /// List length.
    #[arg(long, default_value_t = 5)]
    k: usize,
    /// Generator seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Products on each product's neighbour list.
    #[arg(long, default_value_t = NEIGHBOUR_DEPTH)]
    neighbours: usize,
}

fn main() {
    let args = Args::parse();
    let mut generator = ShopperGenerator::new(args.seed);
    let shoppers: Vec<Vec<usize>> = (0..args.shoppers)
        .map(|_| generator.next_shopper())
        .collect();
    let product_id = |index: usize| DEMO_PRODUCTS[index].0.to_owned();
    let catalogue: HashMap<String, String> = DEMO_PRODUCTS
        .iter()
        .map(|(sku, _, category, _)| ((*sku).to_owned(), (*category).to_owned()))
        .collect();
    // Training purchases: all but each shopper's last.
    let training: Vec<&[usize]> = shoppers
        .iter()
        .map(|purchases| &purchases[..purchases.len() - 1])
        .collect();
    let mut buyers_of: Vec<Vec<usize>> = vec![Vec::new(); DEMO_PRODUCTS.len()];
    for (shopper, purchases) in training.iter().enumerate() {
        for product in purchases.iter() {
            buyers_of[*product].push(shopper);
        }
    }
    let buyers: HashMap<String, i64> = buyers_of
        .iter()
        .enumerate()
        .filter(|(_, list)| !list.is_empty())
        .map(|(product, list)| (product_id(product), list.len() as i64))
        .collect();
    // Every shopper's ordered pairs of training purchases, for the neighbour lists.
    let mut pairs: BTreeMap<(String, String), i64> = BTreeMap::new();
    for purchases in &training {
        for product in purchases.iter() {
            for other in purchases.iter().filter(|other| *other != product) {
                *pairs
                    .entry((product_id(*product), product_id(*other)))
                    .or_default() += 1;
            }
        }
    }
    let lists = neighbour_lists(
        pairs
            .iter()
            .map(|((product, other), customers)| (product.as_str(), other.as_str(), *customers)),
        |id| buyers.get(id).copied().unwrap_or(0),
        args.neighbours,
    );
    let mut hits_model = 0usize;
    let mut hits_popular = 0usize;
    let mut hits_by_reason: BTreeMap<&str, usize> = BTreeMap::new();
    let mut evaluated = 0usize;
    let started = Instant::now();
    for (shopper, purchases) in shoppers.iter().enumerate() {
        let history_items = training[shopper];
        if history_items.is_empty() {
            continue;
        }
        evaluated += 1;
        let held_out = product_id(*purchases.last().expect("every shopper buys at least two"));
        // What the store's `purchase_stats` query returns, from the training purchases.
        let mut co: BTreeMap<(usize, usize), i64> = BTreeMap::new();
        for source in history_items {
            for other in &buyers_of[*source] {
                for candidate in training[*other] {
                    if candidate != source {
                        *co.entry((*source, *candidate)).or_default() += 1;
                    }
                }
            }
        }
        let co_purchases: Vec<CoPurchaseRow> = co
            .into_iter()
            .map(|((source, candidate), customers)| CoPurchaseRow {
                source: product_id(source),
                candidate: product_id(candidate),
                customers,
            })
            .filter(|row| {
                lists
                    .get(&row.source)
                    .is_some_and(|list| list.contains(&row.candidate))
            })
            .collect();
        let history: Vec<(String, i64)> = history_items
            .iter()
            .map(|product| (product_id(*product), 1))
            .collect();
        let recommended = recommend(
            RecommendationInput {
                history: &history,
                co_purchases: &co_purchases,
                buyers: &buyers,
                catalogue: &catalogue,
                preferred_categories: &[],
            },
            args.k,
        );
        if let Some(hit) = recommended
            .iter()
            .find(|scored| scored.product_id == held_out)
        {
            hits_model += 1;
            let reason = match hit.reason {
                Reason::AlsoBought => "also_bought",
                Reason::PopularInCategory => "popular_in_category",
                Reason::Popular => "popular",
            };
            *hits_by_reason.entry(reason).or_default() += 1;
        }
        if most_popular(&history, &buyers, &catalogue, args.k).contains(&held_out) {
            hits_popular += 1;
        }
    }
    let elapsed = started.elapsed();
    let rate = |hits: usize| hits as f64 / evaluated.max(1) as f64;
    println!(
        "{}",
        json!({
            "shoppers": args.shoppers,
            "evaluated": evaluated,
            "products": DEMO_PRODUCTS.len(),
            "k": args.k,
            "seed": args.seed,
            "neighbours": args.neighbours,
            "hit_rate_item_cosine": rate(hits_model),
            "hit_rate_popularity": rate(hits_popular),
            "item_cosine_hits_by_reason": hits_by_reason,
            "mean_ms_per_customer_incl_co_counting": elapsed.as_secs_f64() * 1000.0 / evaluated.max(1) as f64,
        })
    );
}
