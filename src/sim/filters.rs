//! Filter and pagination semantics shared by every `Read*`: values OR within
//! a filter, filters AND together, an absent filter matches everything.

use std::collections::BTreeMap;

use base64::Engine;

use crate::oapi::model::TagFilter;

use super::error::{SimError, SimResult};

/// `None` matches anything; otherwise the value must be in the list.
pub fn any<T: PartialEq>(filter: &Option<Vec<T>>, value: &T) -> bool {
    filter.as_ref().is_none_or(|f| f.contains(value))
}

/// Like [`any`] for a value that may be absent (an absent value never
/// matches a present filter).
pub fn any_opt(filter: &Option<Vec<String>>, value: Option<&str>) -> bool {
    match filter {
        None => true,
        Some(f) => value.is_some_and(|v| f.iter().any(|x| x == v)),
    }
}

/// True when any of `values` is in the filter.
pub fn any_of_many<'a>(
    filter: &Option<Vec<String>>,
    mut values: impl Iterator<Item = &'a str>,
) -> bool {
    match filter {
        None => true,
        Some(f) => values.any(|v| f.iter().any(|x| x == v)),
    }
}

pub fn flag(filter: Option<bool>, value: bool) -> bool {
    filter.is_none_or(|f| f == value)
}

/// Shell-style `*` and `?` matching, as the ImageNames filter accepts.
pub fn wildcard(pattern: &str, s: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = s.chars().collect();
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

pub fn any_wildcard(filter: &Option<Vec<String>>, value: &str) -> bool {
    filter
        .as_ref()
        .is_none_or(|f| f.iter().any(|p| wildcard(p, value)))
}

/// Ids in a filter must at least look like ids of their kind
/// (`prefix-` and hex digits): a malformed one is an error (4105), an
/// unknown well-formed one simply matches nothing.
pub fn well_formed(ids: &Option<Vec<String>>, prefix: &str) -> SimResult<()> {
    for id in ids.iter().flatten() {
        let ok = id
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|hex| hex.len() >= 8 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
        if !ok {
            return Err(SimError::invalid_code(
                "4105",
                format!("`{id}` is not a well-formed {prefix}- id"),
            ));
        }
    }
    Ok(())
}

/// `TagKeys`: has one of the keys; `TagValues`: has one of the values;
/// `Tags` (`KEY=VALUE`): has one of the pairs.
pub fn tags(filter: &impl TagFilter, tags: Option<&BTreeMap<String, String>>) -> bool {
    let empty = BTreeMap::new();
    let tags = tags.unwrap_or(&empty);
    let keys_ok = filter
        .tag_keys()
        .is_none_or(|keys| keys.iter().any(|k| tags.contains_key(k)));
    let values_ok = filter
        .tag_values()
        .is_none_or(|values| values.iter().any(|v| tags.values().any(|x| x == v)));
    let pairs_ok = filter.tags().is_none_or(|pairs| {
        pairs.iter().any(|pair| match pair.split_once('=') {
            Some((k, v)) => tags.get(k).is_some_and(|x| x == v),
            None => tags.contains_key(pair),
        })
    });
    keys_ok && values_ok && pairs_ok
}

/// Cuts one page out of `items`. The token is opaque base64, as on the real
/// API; it carries the offset of the next page.
pub fn paginate<T>(
    items: Vec<T>,
    token: Option<&str>,
    per_page: Option<i64>,
) -> SimResult<(Vec<T>, Option<String>)> {
    let per_page = match per_page {
        None => 100,
        Some(n) if (1..=1000).contains(&n) => n as usize,
        Some(n) => {
            return Err(SimError::invalid_value(format!(
                "ResultsPerPage must be between 1 and 1000, not {n}"
            )));
        }
    };
    let engine = base64::engine::general_purpose::STANDARD;
    let start = match token.filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => engine
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.strip_prefix("offset:")
                    .and_then(|n| n.parse::<usize>().ok())
            })
            .ok_or_else(|| SimError::invalid_value(format!("NextPageToken `{t}` is not valid")))?,
    };
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(per_page).collect();
    let end = start + page.len();
    let next = (end < total).then(|| engine.encode(format!("offset:{end}")));
    Ok((page, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard("Ubuntu*", "Ubuntu-22.04"));
        assert!(wildcard("*22.04*", "Ubuntu-22.04-x"));
        assert!(wildcard("a?c", "abc"));
        assert!(!wildcard("a?c", "abbc"));
        assert!(!wildcard("Ubuntu*", "Debian-12"));
        assert!(wildcard("exact", "exact"));
    }

    #[test]
    fn pages() {
        let items: Vec<i32> = (0..5).collect();
        let (p1, t1) = paginate(items.clone(), None, Some(2)).unwrap();
        assert_eq!(p1, vec![0, 1]);
        let (p2, t2) = paginate(items.clone(), t1.as_deref(), Some(2)).unwrap();
        assert_eq!(p2, vec![2, 3]);
        let (p3, t3) = paginate(items.clone(), t2.as_deref(), Some(2)).unwrap();
        assert_eq!(p3, vec![4]);
        assert!(t3.is_none());
        assert!(paginate(items.clone(), Some("garbage!"), None).is_err());
        assert!(paginate(items, None, Some(0)).is_err());
    }
}
