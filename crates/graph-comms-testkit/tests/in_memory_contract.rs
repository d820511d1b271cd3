//! The in-memory store keeps the whole `CallStore` contract.

use std::sync::Arc;

use graph_comms_handler::{CallStore, InMemoryCallStore};
use graph_comms_testkit::store_contract;

fn store() -> Arc<dyn CallStore> {
    Arc::new(InMemoryCallStore::new())
}

#[tokio::test]
async fn in_memory_first_write_must_be_version_one() {
    store_contract::first_write_must_be_version_one(store()).await;
}

#[tokio::test]
async fn in_memory_stale_write_is_refused_and_changes_nothing() {
    store_contract::stale_write_is_refused_and_changes_nothing(store()).await;
}

#[tokio::test]
async fn in_memory_load_returns_what_was_saved() {
    store_contract::load_returns_what_was_saved(store()).await;
}

#[tokio::test]
async fn in_memory_delete_is_compare_and_set() {
    store_contract::delete_is_compare_and_set(store()).await;
}

#[tokio::test]
async fn in_memory_due_lists_exactly_the_due_calls() {
    store_contract::due_lists_exactly_the_due_calls(store()).await;
}

#[tokio::test]
async fn in_memory_ended_records_are_forgotten_after_expiry() {
    store_contract::ended_records_are_forgotten_after_expiry(store()).await;
}

#[tokio::test]
async fn in_memory_count_counts_stored_calls() {
    store_contract::count_counts_stored_calls(store()).await;
}

#[tokio::test]
async fn in_memory_whole_contract_on_one_store() {
    store_contract::run_all(store()).await;
}

#[test]
fn in_memory_two_writers_lose_no_update() {
    store_contract::no_lost_updates_with_two_writers(64, || async { store() });
}

#[tokio::test]
async fn in_memory_store_keeps_the_shared_contract() {
    graph_comms_testkit::shared_contract::run_all(std::sync::Arc::new(graph_comms_handler::InMemoryCallStore::new()))
        .await;
}
