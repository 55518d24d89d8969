//! The Redis host on a three-master Redis Cluster (`redis-cluster://…`): the shared host suite,
//! two hosts ("nodes") sharing sessions across masters, and where sessions' keys land.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use fred::prelude::{Builder, ClientLike, Config};
use fred::types::{ClusterHash, CustomCommand, Value};
use futures::StreamExt;
use shoal_core::host::{
    Broadcast, HostError, KeyValue, KvKey, KvNamespace, NodeBus, NodeEvent, ReadFrom, SessionStore,
    StoredEvent, StreamEvent, StreamLog, suite,
};
use shoal_core::ids::{SessionId, StreamId};
use shoal_core::jsonrpc::RequestId;
use shoal_redis::RedisHost;
use shoal_testkit::redis_cluster::RedisCluster;

const PATIENCE: Duration = Duration::from_secs(5);

/// A fresh host under a fresh prefix, connected synchronously (the suite's factory is sync).
fn fresh_host(url: &str) -> RedisHost {
    let config = common::config(url, &common::unique_prefix(), "suite");
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(RedisHost::connect(config))
    })
    .expect("connects to the test cluster")
}

async fn two_nodes(cluster: &RedisCluster) -> (RedisHost, RedisHost) {
    let prefix = common::unique_prefix();
    (
        common::host(&cluster.url(), &prefix, "node-a").await,
        common::host(&cluster.url(), &prefix, "node-b").await,
    )
}

async fn next<S>(events: &mut S) -> Option<Result<StoredEvent, HostError>>
where
    S: futures::Stream<Item = Result<StoredEvent, HostError>> + Unpin,
{
    tokio::time::timeout(PATIENCE, events.next())
        .await
        .expect("the subscription moves within 5 s")
}

fn message(text: &str) -> StreamEvent {
    StreamEvent::Message(text.into())
}

/// A standalone (non-cluster) client of one master: it answers `MOVED` for other slots.
async fn node_client(url: &str) -> fred::clients::Client {
    let client = Builder::from_config(Config::from_url_centralized(url).unwrap())
        .build()
        .unwrap();
    client.init().await.unwrap();
    client
}

async fn raw_on(client: &fred::clients::Client, cmd: &'static str, args: Vec<&str>) -> Value {
    client
        .custom(
            CustomCommand::new_static(cmd, ClusterHash::Random, false),
            args.into_iter().map(Value::from).collect::<Vec<_>>(),
        )
        .await
        .unwrap()
}

/// `CLUSTER NODES` as (slot range start, end, master port) rows.
async fn slot_owners(admin: &fred::clients::Client) -> Vec<(u16, u16, u16)> {
    let nodes = common::raw(admin, "CLUSTER", vec!["NODES"]).await;
    let text = nodes.as_string().unwrap();
    let mut owners = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 9 || !fields[2].contains("master") {
            continue;
        }
        // `127.0.0.1:30001@40001[,hostname]`
        let port: u16 = fields[1]
            .split('@')
            .next()
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap();
        for range in &fields[8..] {
            let (start, end) = range.split_once('-').unwrap_or((range, range));
            owners.push((start.parse().unwrap(), end.parse().unwrap(), port));
        }
    }
    owners
}

async fn keyslot(admin: &fred::clients::Client, key: &str) -> u16 {
    let slot = common::raw(admin, "CLUSTER", vec!["KEYSLOT", key]).await;
    u16::try_from(slot.as_i64().unwrap()).unwrap()
}

fn owner(owners: &[(u16, u16, u16)], slot: u16) -> u16 {
    owners
        .iter()
        .find(|(start, end, _)| (*start..=*end).contains(&slot))
        .map(|(_, _, port)| *port)
        .expect("every slot has a master")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_host_suite() {
    let cluster = RedisCluster::start().await;
    let url = cluster.url();
    suite::run_all(|| fresh_host(&url)).await;
}

#[tokio::test]
async fn sessions_spread_over_the_masters_with_all_their_keys_on_one() {
    let cluster = RedisCluster::start().await;
    let prefix = common::unique_prefix();
    let host = common::host(&cluster.url(), &prefix, "n").await;
    let admin = common::admin(&cluster.url()).await;
    let owners = slot_owners(&admin).await;
    let mut masters = BTreeMap::new();
    for url in cluster.node_urls() {
        let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
        masters.insert(port, node_client(&url).await);
    }
    let mut per_master: BTreeMap<u16, usize> = BTreeMap::new();
    for i in 0..24 {
        let record = common::record();
        host.create_session(&record, 0).await.unwrap();
        let stream = StreamId::random();
        host.append(&record.id, &stream, message("x"))
            .await
            .unwrap();
        let session_key = format!("{prefix}:{{{}}}:session", record.id);
        let stream_key = format!("{prefix}:{{{}}}:stream:{stream}", record.id);
        let slot = keyslot(&admin, &session_key).await;
        assert_eq!(
            keyslot(&admin, &stream_key).await,
            slot,
            "one slot per session"
        );
        let port = owner(&owners, slot);
        // Both keys are on that master itself (a standalone client gets no MOVED there).
        let on_master = &masters[&port];
        let exists = raw_on(on_master, "EXISTS", vec![&session_key, &stream_key]).await;
        assert_eq!(
            exists.as_i64(),
            Some(2),
            "{session_key} and its log on :{port}"
        );
        if i < 6 {
            println!(
                "session {} -> slot {slot:>5} -> master 127.0.0.1:{port}",
                record.id
            );
        }
        *per_master.entry(port).or_default() += 1;
    }
    println!("sessions per master: {per_master:?}");
    // Every script ran on the master of KEYS[1]'s slot at once: no redirection.
    for (port, master) in &masters {
        let stats = raw_on(master, "INFO", vec!["errorstats"]).await;
        let stats = stats.as_string().unwrap_or_default();
        assert!(!stats.contains("MOVED"), "redirections on :{port}: {stats}");
    }
    assert_eq!(
        per_master.len(),
        cluster.ports().len(),
        "24 sessions land on every master: {per_master:?}"
    );
}

#[tokio::test]
async fn kv_entries_spread_over_the_masters_each_with_an_expiry() {
    const NS: KvNamespace = KvNamespace::new("cluster-kv");
    let cluster = RedisCluster::start().await;
    let (a, b) = two_nodes(&cluster).await;
    let prefix = a.config().key_prefix.clone();
    let admin = common::admin(&cluster.url()).await;
    let owners = slot_owners(&admin).await;
    let mut masters = BTreeMap::new();
    for url in cluster.node_urls() {
        let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
        masters.insert(port, node_client(&url).await);
    }
    let ttl = Duration::from_secs(60);
    let mut per_master: BTreeMap<u16, usize> = BTreeMap::new();
    for i in 0..24 {
        let key = KvKey::new(NS, format!("id{i}"));
        let value = Bytes::from(format!("v{i}"));
        // Created by the swap script on one node, taken on the other: one key, one slot.
        assert!(
            a.compare_and_swap(&key, None, Some(value.clone()), ttl)
                .await
                .unwrap()
        );
        let name = format!("{prefix}:kv:{{cluster-kv:id{i}}}");
        let port = owner(&owners, keyslot(&admin, &name).await);
        let on_master = &masters[&port];
        let pttl = raw_on(on_master, "PTTL", vec![&name]).await;
        let pttl = pttl.as_i64().unwrap();
        assert!(pttl > 0 && pttl <= 60_000, "{name} on :{port}: PTTL {pttl}");
        *per_master.entry(port).or_default() += 1;
        let takes = (0..4).flat_map(|_| [a.take(&key), b.take(&key)]);
        let taken = futures::future::try_join_all(takes).await.unwrap();
        assert_eq!(taken.into_iter().flatten().collect::<Vec<_>>(), vec![value]);
    }
    for (port, master) in &masters {
        let stats = raw_on(master, "INFO", vec!["errorstats"]).await;
        let stats = stats.as_string().unwrap_or_default();
        assert!(!stats.contains("MOVED"), "redirections on :{port}: {stats}");
    }
    assert_eq!(
        per_master.len(),
        cluster.ports().len(),
        "24 entries land on every master: {per_master:?}"
    );
}

#[tokio::test]
async fn streams_appended_on_one_node_are_read_live_on_the_other_on_every_master() {
    let cluster = RedisCluster::start().await;
    let (a, b) = two_nodes(&cluster).await;
    // Enough sessions that every master holds some (checked above), each read live on b.
    for _ in 0..9 {
        let record = common::record();
        a.create_session(&record, 0).await.unwrap();
        let stream = StreamId::random();
        a.append(&record.id, &stream, message("before"))
            .await
            .unwrap();
        let mut sub = b
            .subscribe(&record.id, &stream, ReadFrom::After(0))
            .await
            .unwrap();
        let sent = [
            message("before"),
            message(r#"{"jsonrpc":"2.0","method":"notifications/progress"}"#),
            StreamEvent::Disconnect,
            message("ünïcödé ✓"),
            StreamEvent::End,
        ];
        for event in &sent[1..] {
            a.append(&record.id, &stream, event.clone()).await.unwrap();
        }
        for (i, event) in sent.iter().enumerate() {
            let got = next(&mut sub.events).await.unwrap().unwrap();
            assert_eq!(got.seq, i as u64 + 1);
            assert_eq!(&got.event, event);
        }
        assert!(next(&mut sub.events).await.is_none(), "ends after End");
    }
}

#[tokio::test]
async fn a_live_reader_waits_for_appends_from_the_other_node() {
    let cluster = RedisCluster::start().await;
    let (a, b) = two_nodes(&cluster).await;
    let record = common::record();
    a.create_session(&record, 0).await.unwrap();
    let stream = record.standalone_stream.clone();
    let mut sub = b
        .subscribe(&record.id, &stream, ReadFrom::Tail)
        .await
        .unwrap();
    // The reader is idle (waiting for a wake-up) when each append comes: the wake-up, not the
    // 30 s re-read, must carry it across the cluster.
    for i in 1..=5 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        a.append(&record.id, &stream, message(&format!("{i}")))
            .await
            .unwrap();
        let got = tokio::time::timeout(Duration::from_secs(2), sub.events.next())
            .await
            .expect("woken within 2 s")
            .unwrap()
            .unwrap();
        assert_eq!(got.seq, i);
    }
}

#[tokio::test]
async fn concurrent_writers_on_two_nodes_get_gapless_positions() {
    let cluster = RedisCluster::start().await;
    let (a, b) = two_nodes(&cluster).await;
    let record = common::record();
    a.create_session(&record, 0).await.unwrap();
    let stream = StreamId::random();
    let writes = (0..100).map(|i| {
        let host = if i % 2 == 0 { &a } else { &b };
        host.append(&record.id, &stream, message(&format!("m{i}")))
    });
    let mut seqs = futures::future::try_join_all(writes).await.unwrap();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=100).collect::<Vec<u64>>());
}

#[tokio::test]
async fn a_session_deleted_on_one_node_ends_the_readers_on_the_other() {
    let cluster = RedisCluster::start().await;
    let (a, b) = two_nodes(&cluster).await;
    let record = common::record();
    a.create_session(&record, 0).await.unwrap();
    assert_eq!(b.session(&record.id).await.unwrap().as_ref(), Some(&record));
    let mut sub = b
        .subscribe(&record.id, &record.standalone_stream, ReadFrom::Tail)
        .await
        .unwrap();
    let mut events_b = b.node_events();
    assert!(a.delete_session(&record.id).await.unwrap());
    assert_eq!(b.session(&record.id).await.unwrap(), None);
    assert!(next(&mut sub.events).await.is_none(), "b's reader stops");
    let closed = tokio::time::timeout(PATIENCE, events_b.next())
        .await
        .unwrap();
    assert_eq!(
        closed,
        Some(NodeEvent::Broadcast(Broadcast::SessionClosed(record.id)))
    );
}

#[tokio::test]
async fn the_inbox_reaches_its_node_only_and_broadcasts_reach_all() {
    let cluster = RedisCluster::start().await;
    let (a, b) = two_nodes(&cluster).await;
    let mut events_a = a.node_events();
    let mut events_b = b.node_events();
    let response = NodeEvent::ClientResponse {
        session: SessionId::random(),
        id: RequestId::String("node-b.7".into()),
        outcome: Err(serde_json::json!({"code": -1, "message": "declined"})),
        trace_context: None,
    };
    a.send_to_node(b.node_id(), response.clone()).await.unwrap();
    let broadcast = NodeEvent::Broadcast(Broadcast::ResourceUpdated {
        uri: "test://r".into(),
    });
    b.broadcast(broadcast.clone()).await.unwrap();

    let got_b: Vec<_> = tokio::time::timeout(PATIENCE, (&mut events_b).take(2).collect())
        .await
        .unwrap();
    // Both arrive, in either order: the inbox and the broadcast are two channels, which the
    // cluster may carry through different shards (as the host suite says).
    assert_eq!(got_b.len(), 2, "{got_b:?}");
    assert!(got_b.contains(&response), "{got_b:?}");
    assert!(got_b.contains(&broadcast), "{got_b:?}");
    let got_a = tokio::time::timeout(PATIENCE, events_a.next())
        .await
        .unwrap();
    assert_eq!(
        got_a,
        Some(broadcast),
        "a sees the broadcast, not b's inbox"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), events_a.next())
            .await
            .is_err(),
        "nothing else reaches a"
    );
    // Liveness keys live in any slot too.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(a.node_alive(b.node_id()).await.unwrap());
}

#[tokio::test]
async fn scripts_are_loaded_again_after_a_master_loses_its_cache() {
    let cluster = RedisCluster::start().await;
    let (a, b) = two_nodes(&cluster).await;
    let records: Vec<_> = (0..9).map(|_| common::record()).collect();
    for record in &records {
        a.create_session(record, 0).await.unwrap();
    }
    // As after a failover to a replica that never saw `SCRIPT LOAD`.
    for url in cluster.node_urls() {
        let master = node_client(&url).await;
        raw_on(&master, "SCRIPT", vec!["FLUSH"]).await;
    }
    for record in &records {
        assert_eq!(b.session(&record.id).await.unwrap().as_ref(), Some(record));
        assert_eq!(
            b.append(&record.id, &record.standalone_stream, message("m"))
                .await,
            Ok(1)
        );
    }
}
