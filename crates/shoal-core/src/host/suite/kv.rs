//! The key-value part of the suite: what every host's [`KeyValue`] store must do. Each check
//! writes keys with random ids, so checks may share one store.

use std::time::Duration;

use bytes::Bytes;

use super::record;
use crate::host::{KeyValue, KvKey, KvNamespace, SessionHost};
use crate::ids::SessionId;

const ONE: KvNamespace = KvNamespace::new("suite-one");
const TWO: KvNamespace = KvNamespace::new("suite-two");
/// Named like the host's own session keys, to show that they cannot meet.
const SESSION: KvNamespace = KvNamespace::new("session");

/// Long enough to outlast any check.
const LONG: Duration = Duration::from_secs(60);
/// Short enough to wait out in a check.
const SHORT: Duration = Duration::from_millis(200);

/// A key no other check or run uses.
fn fresh(namespace: KvNamespace) -> KvKey {
    KvKey::new(namespace, SessionId::random().as_str())
}

fn bytes(value: &'static [u8]) -> Bytes {
    Bytes::from_static(value)
}

/// Waits until `key` is absent, polling; panics when it is still there after 10 s (an entry
/// that never expires), never on how fast it went.
async fn until_absent(store: &dyn KeyValue, key: &KvKey) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while store.get(key).await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{key:?} still present 10 s after its expiry"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `put_if_absent` stores once; `get`, `put` and `delete` see and change what is stored;
/// values are bytes, not text.
pub async fn kv_put_get_delete(store: &dyn KeyValue) {
    let key = fresh(ONE);
    assert_eq!(store.get(&key).await.unwrap(), None);
    assert!(
        store
            .put_if_absent(&key, bytes(b"first"), LONG)
            .await
            .unwrap()
    );
    assert!(
        !store
            .put_if_absent(&key, bytes(b"second"), LONG)
            .await
            .unwrap(),
        "a key holding a live entry is not absent"
    );
    assert_eq!(store.get(&key).await.unwrap(), Some(bytes(b"first")));
    let binary = bytes(b"\x00\xff\xfe not utf-8 \x80");
    store.put(&key, binary.clone(), LONG).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap(), Some(binary));
    store.put(&key, Bytes::new(), LONG).await.unwrap();
    assert_eq!(
        store.get(&key).await.unwrap(),
        Some(Bytes::new()),
        "an empty value is a value"
    );
    assert!(store.delete(&key).await.unwrap());
    assert!(!store.delete(&key).await.unwrap());
    assert_eq!(store.get(&key).await.unwrap(), None);
    assert!(
        store
            .put_if_absent(&key, bytes(b"third"), LONG)
            .await
            .unwrap(),
        "a deleted key is absent"
    );
    assert!(store.delete(&key).await.unwrap());
}

/// Entries expire after their TTL, whichever write set it, and an expired entry is absent to
/// every operation; an entry with a longer TTL stays.
pub async fn kv_expiry(store: &dyn KeyValue) {
    let (short, long) = (fresh(ONE), fresh(ONE));
    assert!(
        store
            .put_if_absent(&short, bytes(b"s"), SHORT)
            .await
            .unwrap()
    );
    assert!(store.put_if_absent(&long, bytes(b"l"), LONG).await.unwrap());
    until_absent(store, &short).await;
    assert_eq!(store.take(&short).await.unwrap(), None);
    assert!(!store.delete(&short).await.unwrap());
    assert!(
        store
            .compare_and_swap(&short, Some(b"s"), None, LONG)
            .await
            .unwrap()
            .eq(&false),
        "an expired entry matches nothing"
    );
    assert_eq!(store.get(&long).await.unwrap(), Some(bytes(b"l")));
    assert!(
        store
            .put_if_absent(&short, bytes(b"again"), LONG)
            .await
            .unwrap(),
        "an expired key is absent"
    );

    // Every write sets the expiry anew: `put` and `compare_and_swap` with a short TTL shorten a
    // long one.
    store.put(&long, bytes(b"l2"), SHORT).await.unwrap();
    until_absent(store, &long).await;
    assert!(
        store
            .compare_and_swap(&short, Some(b"again"), Some(bytes(b"s2")), SHORT)
            .await
            .unwrap()
    );
    until_absent(store, &short).await;

    // A TTL of zero is the shortest one, not an eternal entry.
    let zero = fresh(ONE);
    store.put(&zero, bytes(b"z"), Duration::ZERO).await.unwrap();
    until_absent(store, &zero).await;
}

/// `take` hands the value to exactly one of many concurrent callers, then the key is absent.
pub async fn kv_take_is_single_use(store: &dyn KeyValue) {
    const TAKERS: usize = 16;
    for round in 0..5 {
        let key = fresh(ONE);
        assert!(
            store
                .put_if_absent(&key, bytes(b"once"), LONG)
                .await
                .unwrap()
        );
        let takes = (0..TAKERS).map(|_| store.take(&key));
        let taken: Vec<Option<Bytes>> = futures::future::try_join_all(takes).await.unwrap();
        let winners: Vec<&Bytes> = taken.iter().flatten().collect();
        assert_eq!(
            winners,
            vec![&bytes(b"once")],
            "round {round}: exactly one take gets the value"
        );
        assert_eq!(store.take(&key).await.unwrap(), None);
        assert_eq!(store.get(&key).await.unwrap(), None);
    }
}

/// `compare_and_swap`: creates when asked for absence, replaces on a match, deletes with no
/// new value, and changes nothing on a mismatch.
pub async fn kv_compare_and_swap(store: &dyn KeyValue) {
    let key = fresh(ONE);
    let cas = |expected: Option<&'static [u8]>, new: Option<&'static [u8]>| {
        store.compare_and_swap(&key, expected, new.map(bytes), LONG)
    };
    assert!(
        !cas(Some(b"a"), Some(b"b")).await.unwrap(),
        "absent: no match"
    );
    assert_eq!(store.get(&key).await.unwrap(), None);
    assert!(cas(None, Some(b"a")).await.unwrap(), "create if absent");
    assert!(!cas(None, Some(b"b")).await.unwrap(), "present: not absent");
    assert!(!cas(Some(b"x"), Some(b"b")).await.unwrap(), "another value");
    assert!(!cas(Some(b""), None).await.unwrap(), "empty is not absent");
    assert_eq!(store.get(&key).await.unwrap(), Some(bytes(b"a")));
    assert!(cas(Some(b"a"), Some(b"b")).await.unwrap(), "swap");
    assert_eq!(store.get(&key).await.unwrap(), Some(bytes(b"b")));
    assert!(!cas(Some(b"a"), None).await.unwrap(), "the old value");
    assert!(cas(Some(b"b"), None).await.unwrap(), "delete on a match");
    assert_eq!(store.get(&key).await.unwrap(), None);
    assert!(!cas(Some(b"b"), None).await.unwrap());
    assert!(cas(None, None).await.unwrap(), "absent stays absent");
    assert_eq!(store.get(&key).await.unwrap(), None);

    // Concurrent swaps from one value: exactly one wins.
    assert!(cas(None, Some(b"0")).await.unwrap());
    let swaps = (0..16).map(|_| store.compare_and_swap(&key, Some(b"0"), Some(bytes(b"1")), LONG));
    let won = futures::future::try_join_all(swaps).await.unwrap();
    assert_eq!(won.iter().filter(|won| **won).count(), 1, "{won:?}");
    assert!(store.delete(&key).await.unwrap());
}

/// One id in two namespaces is two keys; ids that hosts must escape stay distinct; and an id
/// equal to a session id in a namespace named `session` leaves the session alone.
pub async fn kv_keys_do_not_collide(host: &dyn SessionHost) {
    let id = SessionId::random();
    let (one, two) = (KvKey::new(ONE, id.as_str()), KvKey::new(TWO, id.as_str()));
    assert!(host.put_if_absent(&one, bytes(b"1"), LONG).await.unwrap());
    assert!(host.put_if_absent(&two, bytes(b"2"), LONG).await.unwrap());
    assert_eq!(host.take(&one).await.unwrap(), Some(bytes(b"1")));
    assert_eq!(host.get(&two).await.unwrap(), Some(bytes(b"2")));

    let base = SessionId::random();
    let ids = [
        "", "}", "{", "%7D", "%257D", ":", "a:b", "{a}", "a}b{c", "é", " ",
    ];
    let keys: Vec<KvKey> = ids
        .iter()
        .map(|suffix| KvKey::new(ONE, format!("{base}{suffix}")))
        .collect();
    for (i, key) in keys.iter().enumerate() {
        let stored = host
            .put_if_absent(key, Bytes::from(i.to_string()), LONG)
            .await
            .unwrap();
        assert!(stored, "{key:?} is a key of its own");
    }
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            host.take(key).await.unwrap(),
            Some(Bytes::from(i.to_string())),
            "{key:?}"
        );
    }

    let record = record();
    host.create_session(&record, 0).await.unwrap();
    for suffix in ["", "}:session", "}"] {
        let key = KvKey::new(SESSION, format!("{}{suffix}", record.id));
        host.put(&key, bytes(b"not a session"), LONG).await.unwrap();
        assert_eq!(
            host.take(&key).await.unwrap(),
            Some(bytes(b"not a session"))
        );
    }
    assert_eq!(
        host.session(&record.id).await.unwrap().as_ref(),
        Some(&record)
    );
    assert!(host.delete_session(&record.id).await.unwrap());
    assert_eq!(host.get(&two).await.unwrap(), Some(bytes(b"2")));
    assert!(host.delete(&two).await.unwrap());
}
