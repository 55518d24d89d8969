//! Session reads of many concurrent requests on one connection (sent as pipelines, the reads of
//! one session in a pipeline sharing one `HGETALL`, and the record memo answering most of
//! them): each gets its own session's record (or none), in a single Redis server and in a
//! Redis Cluster, and a session deleted on another replica is gone for every read sent after
//! the delete returned.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use futures::future::join_all;
use shoal_core::host::SessionStore;
use shoal_core::ids::SessionId;
use shoal_core::session::SessionRecord;
use shoal_testkit::redis::RedisServer;
use shoal_testkit::redis_cluster::RedisCluster;

/// Concurrent reads.
const READS: usize = 600;
/// Sessions they spread over; the even ones exist.
const SESSIONS: usize = 40;

/// Sessions of distinct principals, some created, some only named.
fn records(count: usize) -> Vec<SessionRecord> {
    (0..count)
        .map(|i| {
            SessionRecord::new(
                Some(format!("principal-{i}")),
                "2025-11-25",
                serde_json::json!({"index": i}),
                serde_json::json!({"name": "t", "version": "1"}),
            )
        })
        .collect()
}

async fn every_read_gets_its_own_record(url: &str) {
    let prefix = common::unique_prefix();
    let host = Arc::new(common::host(url, &prefix, "reader").await);
    let sessions = records(SESSIONS);
    for record in sessions.iter().step_by(2) {
        host.create_session(record, 0).await.unwrap();
    }
    let reads = (0..READS).map(|i| {
        let host = host.clone();
        let record = sessions[i % sessions.len()].clone();
        tokio::spawn(async move {
            let read = host.session(&record.id).await.unwrap();
            (i % SESSIONS, record, read)
        })
    });
    for outcome in join_all(reads).await {
        let (index, record, read) = outcome.unwrap();
        if index % 2 == 0 {
            assert_eq!(read.as_ref(), Some(&record), "session {index}");
        } else {
            assert_eq!(read, None, "session {index} was never created");
        }
    }
    // Ids that were never anywhere.
    let unknown = join_all((0..50).map(|_| {
        let id = SessionId::random();
        let host = host.clone();
        async move { host.session(&id).await.unwrap() }
    }))
    .await;
    assert!(unknown.iter().all(Option::is_none));
}

#[tokio::test]
async fn concurrent_reads_each_get_their_own_session() {
    let redis = RedisServer::start().await;
    every_read_gets_its_own_record(&redis.url()).await;
}

#[tokio::test]
async fn concurrent_reads_each_get_their_own_session_in_a_cluster() {
    let cluster = RedisCluster::start().await;
    every_read_gets_its_own_record(&cluster.url()).await;
}

#[tokio::test]
async fn a_session_deleted_on_another_replica_is_gone_for_every_later_read() {
    let redis = RedisServer::start().await;
    let prefix = common::unique_prefix();
    let reader = Arc::new(common::host(&redis.url(), &prefix, "reader").await);
    let deleter = common::host(&redis.url(), &prefix, "deleter").await;
    for round in 0..20 {
        let record = records(1).remove(0);
        reader.create_session(&record, 0).await.unwrap();
        // Keep the reader busy with other reads of it (memoized) while the delete happens.
        let busy: Vec<_> = (0..200)
            .map(|_| {
                let reader = reader.clone();
                let id = record.id.clone();
                tokio::spawn(async move { reader.session(&id).await.unwrap() })
            })
            .collect();
        assert!(deleter.delete_session(&record.id).await.unwrap());
        let after = join_all((0..20).map(|_| reader.session(&record.id))).await;
        for read in after {
            assert_eq!(read.unwrap(), None, "round {round}: read after the delete");
        }
        join_all(busy).await;
    }
}
