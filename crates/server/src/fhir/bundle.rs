//! `searchset` and `history` Bundles with `total` and paging links.

use super::search::Query;
use serde_json::{Value, json};

/// A page of `total` matches as a Bundle of `kind`. `url` is the absolute
/// URL the query was made on; `self` repeats the query and `next` appears
/// only when more matches follow.
pub fn bundle(kind: &str, url: &str, query: &Query, total: i64, entries: Vec<Value>) -> Value {
    let page = query.page;
    let link = |relation: &str, offset: i64| {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &query.params {
            q.append_pair(k, v);
        }
        q.append_pair("_count", &page.count.to_string());
        q.append_pair("_offset", &offset.to_string());
        json!({ "relation": relation, "url": format!("{url}?{}", q.finish()) })
    };
    let mut links = vec![link("self", page.offset)];
    if page.count > 0 && page.offset + page.count < total {
        links.push(link("next", page.offset + page.count));
    }
    json!({
        "resourceType": "Bundle",
        "type": kind,
        "total": total,
        "link": links,
        "entry": entries,
    })
}

/// A search match.
pub fn match_entry(full_url: String, resource: Value) -> Value {
    json!({ "fullUrl": full_url, "resource": resource, "search": { "mode": "match" } })
}
