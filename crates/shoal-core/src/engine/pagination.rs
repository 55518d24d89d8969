//! Opaque cursors for the list methods: a base64 offset. Lists may vary by principal but never
//! by session, so an offset into the principal's list is stable across replicas.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::jsonrpc::{self, RpcError};

/// One page of `items` starting at `cursor`, and the cursor of the next page.
pub(crate) fn page<T>(
    items: Vec<T>,
    cursor: Option<&str>,
    page_size: usize,
) -> Result<(Vec<T>, Option<String>), RpcError> {
    let start = match cursor {
        None => 0,
        Some(cursor) => decode(cursor)
            .ok_or_else(|| jsonrpc::rpc_error(jsonrpc::INVALID_PARAMS, "invalid cursor"))?,
    };
    if start > items.len() {
        return Err(jsonrpc::rpc_error(
            jsonrpc::INVALID_PARAMS,
            "invalid cursor",
        ));
    }
    let page_size = page_size.max(1);
    let end = start.saturating_add(page_size).min(items.len());
    let next = (end < items.len()).then(|| encode(end));
    Ok((
        items.into_iter().skip(start).take(end - start).collect(),
        next,
    ))
}

fn encode(offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("o:{offset}"))
}

fn decode(cursor: &str) -> Option<usize> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    std::str::from_utf8(&bytes)
        .ok()?
        .strip_prefix("o:")?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_every_item_once() {
        let items: Vec<u32> = (0..7).collect();
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let (items, next) = page(items.clone(), cursor.as_deref(), 3).unwrap();
            seen.extend(items);
            match next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, (0..7).collect::<Vec<_>>());
    }

    #[test]
    fn exact_multiple_has_no_empty_last_page() {
        let (first, next) = page(vec![1, 2], None, 2).unwrap();
        assert_eq!((first, next), (vec![1, 2], None));
    }

    #[test]
    fn rejects_forged_cursors() {
        assert_eq!(
            page(vec![1], Some("nope"), 2).unwrap_err().code,
            jsonrpc::INVALID_PARAMS
        );
        assert!(page(vec![1], Some(&encode(5)), 2).is_err());
    }
}
