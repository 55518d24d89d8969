//! `RedisCluster::start_with_replicas` and both kinds of `failover`: the replica is promoted,
//! a replicated key is still there, the cluster is ok; a killed master rejoins as a replica.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)]

mod common;

use common::command;
use shoal_testkit::redis_cluster::{Failover, MASTERS, RedisCluster};

/// The shard (index into `ports()`) that owns `key`, by asking each master.
async fn shard_of(cluster: &RedisCluster, key: &str) -> usize {
    for (shard, &port) in cluster.ports().iter().enumerate() {
        if !command(port, &format!("GET {key}"))
            .await
            .starts_with("-MOVED")
        {
            return shard;
        }
    }
    panic!("no master owns {key}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_then_hard_failover_promote_the_replica_and_keep_replicated_keys() {
    let mut cluster = RedisCluster::start_with_replicas().await;
    assert_eq!(cluster.ports().len(), MASTERS);
    assert!(cluster.replica_ports().iter().all(Option::is_some));
    let key = "failover-key";
    let shard = shard_of(&cluster, key).await;
    let master = cluster.ports()[shard];
    let replica = cluster.replica_ports()[shard].unwrap();
    assert_eq!(command(master, &format!("SET {key} one")).await, "+OK\r\n");

    let graceful = cluster.failover(shard, Failover::Graceful).await;
    println!("graceful failover: {graceful:?}");
    assert_eq!(
        (graceful.old_master, graceful.new_master),
        (master, replica)
    );
    assert_eq!(cluster.ports()[shard], replica);
    assert_eq!(cluster.replica_ports()[shard], Some(master));
    assert!(
        command(master, "INFO replication")
            .await
            .contains("role:slave")
    );
    assert_eq!(
        command(replica, &format!("GET {key}")).await,
        "$3\r\none\r\n"
    );

    // Replicated before the kill (`WAIT 1`: one replica acknowledged it), so it survives.
    assert_eq!(command(replica, &format!("SET {key} two")).await, "+OK\r\n");
    assert_eq!(command(replica, "WAIT 1 2000").await, ":1\r\n");
    let hard = cluster.failover(shard, Failover::Hard).await;
    println!("hard failover: {hard:?}");
    assert_eq!((hard.old_master, hard.new_master), (replica, master));
    assert_eq!(cluster.ports()[shard], master);
    assert_eq!(cluster.replica_ports()[shard], None);
    assert!(
        command(master, "INFO replication")
            .await
            .contains("role:master")
    );
    assert_eq!(
        command(master, &format!("GET {key}")).await,
        "$3\r\ntwo\r\n"
    );
    for &port in cluster.ports() {
        assert!(
            command(port, "CLUSTER INFO")
                .await
                .contains("cluster_state:ok")
        );
    }

    cluster.rejoin(shard).await;
    assert_eq!(cluster.replica_ports()[shard], Some(replica));
    assert!(
        command(replica, "INFO replication")
            .await
            .contains("role:slave")
    );
}

#[tokio::test]
async fn the_plain_cluster_has_no_replicas() {
    let cluster = RedisCluster::start().await;
    assert_eq!(cluster.ports().len(), MASTERS);
    assert!(cluster.replica_ports().iter().all(Option::is_none));
    for &port in cluster.ports() {
        let info = command(port, "CLUSTER INFO").await;
        assert!(info.contains("cluster_known_nodes:3"), "{info}");
    }
}
