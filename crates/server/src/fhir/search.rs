//! Search parameters: one table per resource drives both the query and the
//! CapabilityStatement, so what is advertised is what is implemented.

use super::outcome::{FhirError, Issue};
use carefront_store::{Filter, Page};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

pub const DEFAULT_COUNT: i64 = 20;
pub const MAX_COUNT: i64 = 100;

/// A search parameter that narrows a query of type `T`.
pub struct SearchParam<T> {
    pub name: &'static str,
    /// The FHIR search parameter type (`string`, `token`, `reference`, `date`).
    pub kind: &'static str,
    pub doc: &'static str,
    pub apply: fn(&mut T, &str) -> Result<(), String>,
}

/// Paging parameters, advertised beside each resource's own.
pub const PAGING: [(&str, &str); 2] = [
    (
        "_count",
        "Page size: default 20, at most 100; 0 returns only the total.",
    ),
    (
        "_offset",
        "Number of matches to skip; the `next` link carries it.",
    ),
];

/// A parsed query string: the page and the search parameters in the order
/// given (for the `self` and `next` links).
#[derive(Debug, Clone)]
pub struct Query {
    pub page: Page,
    pub params: Vec<(String, String)>,
}

/// Applies every parameter of `raw` to `target`. Unknown parameters,
/// modifiers and comma-separated alternatives are refused rather than
/// ignored: a filter silently dropped would return records the client did
/// not ask for.
pub fn parse<T>(
    raw: Option<&str>,
    defs: &[&[SearchParam<T>]],
    target: &mut T,
) -> Result<Query, FhirError> {
    let mut query = Query {
        page: Page {
            offset: 0,
            count: DEFAULT_COUNT,
        },
        params: Vec::new(),
    };
    let mut issues = Vec::new();
    for (name, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        let bad = |msg: &str| Issue::new("invalid", format!("search parameter '{name}': {msg}"));
        match name.as_ref() {
            "_format" => {}
            "_count" => match value.parse::<i64>() {
                Ok(n) if n >= 0 => query.page.count = n.min(MAX_COUNT),
                _ => issues.push(bad("must be a whole number, 0 or more")),
            },
            "_offset" => match value.parse::<i64>() {
                Ok(n) if n >= 0 => query.page.offset = n,
                _ => issues.push(bad("must be a whole number, 0 or more")),
            },
            _ if name.contains(':') => issues.push(bad("modifiers are not supported")),
            _ if value.contains(',') => {
                issues.push(bad("alternatives separated by ',' are not supported"))
            }
            _ => match defs.iter().flat_map(|d| d.iter()).find(|d| d.name == name) {
                None => issues.push(bad("not supported on this resource type")),
                Some(def) => match (def.apply)(target, &value) {
                    Ok(()) => query.params.push((name.to_string(), value.to_string())),
                    Err(msg) => issues.push(bad(&msg)),
                },
            },
        }
    }
    if issues.is_empty() {
        Ok(query)
    } else {
        Err(FhirError::Invalid(issues))
    }
}

/// The instants a date search covers, as `[from, until)` microseconds.
/// Prefixes `eq` (default), `ge`, `gt`, `le` and `lt` are understood; a
/// value covers its whole precision (`2024-03` is all of March, UTC).
pub fn date_bounds(value: &str) -> Result<(Option<i64>, Option<i64>), String> {
    let (prefix, text) = match value.get(..2) {
        Some(p) if p.bytes().all(|b| b.is_ascii_alphabetic()) => (p, &value[2..]),
        _ => ("eq", value),
    };
    let (start, end) = date_range(text).ok_or_else(|| {
        format!("'{text}' is not a FHIR date (2024, 2024-03, 2024-03-05) or instant with time zone")
    })?;
    match prefix {
        "eq" => Ok((Some(start), Some(end))),
        "ge" => Ok((Some(start), None)),
        "gt" => Ok((Some(end), None)),
        "le" => Ok((None, Some(end))),
        "lt" => Ok((None, Some(start))),
        other => Err(format!(
            "prefix '{other}' is not supported (use eq, ge, gt, le, lt)"
        )),
    }
}

/// Narrows the window `[from, until)` to a date search value (see
/// [`date_bounds`]); repeated parameters intersect.
pub fn narrow_window(
    from: &mut Option<Timestamp>,
    until: &mut Option<Timestamp>,
    value: &str,
) -> Result<(), String> {
    let (start, end) = date_bounds(value)?;
    let at = |us: i64| Timestamp::from_microsecond(us).map_err(|e| e.to_string());
    if let Some(s) = start.map(at).transpose()? {
        *from = Some(from.map_or(s, |f| f.max(s)));
    }
    if let Some(e) = end.map(at).transpose()? {
        *until = Some(until.map_or(e, |u| u.min(e)));
    }
    Ok(())
}

fn date_range(text: &str) -> Option<(i64, i64)> {
    if text.contains('T') {
        let t: jiff::Timestamp = text.parse().ok()?;
        let width = if text.contains('.') { 1 } else { 1_000_000 };
        return Some((t.as_microsecond(), t.as_microsecond() + width));
    }
    let parts: Vec<i16> = text
        .split('-')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let (start, span) = match parts[..] {
        [y] if text.len() == 4 => (Date::new(y, 1, 1).ok()?, 1.year()),
        [y, m] if text.len() == 7 => (Date::new(y, i8::try_from(m).ok()?, 1).ok()?, 1.month()),
        [y, m, d] if text.len() == 10 => (
            Date::new(y, i8::try_from(m).ok()?, i8::try_from(d).ok()?).ok()?,
            1.day(),
        ),
        _ => return None,
    };
    let us = |d: Date| {
        d.to_zoned(TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp().as_microsecond())
    };
    Some((us(start)?, us(start.checked_add(span).ok()?)?))
}

/// Splits a token `system|code` (or a bare `code`). Returns the code when
/// the system is absent or `system`, and `None` when it names another
/// system (which matches nothing here).
pub fn token<'v>(value: &'v str, system: &str) -> Option<&'v str> {
    match value.split_once('|') {
        None => Some(value),
        Some((s, code)) if s == system => Some(code),
        Some(_) => None,
    }
}

/// The id in a reference search value: `Kind/id` or a bare `id`.
pub fn reference<'v>(value: &'v str, kind: &str) -> Result<&'v str, String> {
    match value.split_once('/') {
        None if !value.is_empty() => Ok(value),
        _ => super::json::reference_id(value, kind)
            .ok_or_else(|| format!("must be a {kind} id or '{kind}/id'")),
    }
}

/// A filter that matches no record (ids are never empty).
pub fn nothing() -> Filter {
    Filter::Id(String::new())
}

/// `_id` and `_lastUpdated`, which every stored resource supports.
pub const COMMON: &[SearchParam<Vec<Filter>>] = &[
    SearchParam {
        name: "_id",
        kind: "token",
        doc: "The logical id.",
        apply: |f, v| {
            f.push(Filter::Id(v.to_string()));
            Ok(())
        },
    },
    SearchParam {
        name: "_lastUpdated",
        kind: "date",
        doc: "When the resource last changed; prefixes eq, ge, gt, le, lt.",
        apply: |f, v| {
            let (from, until) = date_bounds(v)?;
            f.extend(from.map(Filter::UpdatedAtLeast));
            f.extend(until.map(Filter::UpdatedBefore));
            Ok(())
        },
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_cover_their_precision() {
        let day = 86_400_000_000;
        let (from, until) = date_bounds("2024-03-05").unwrap();
        assert_eq!(until.unwrap() - from.unwrap(), day);
        assert_eq!(date_bounds("le2024-03-05").unwrap(), (None, until));
        assert_eq!(date_bounds("gt2024-03-05").unwrap(), (until, None));
        let (from, until) = date_bounds("2024-02").unwrap();
        assert_eq!(until.unwrap() - from.unwrap(), 29 * day);
        assert!(date_bounds("ge2024-03-05T10:00:00Z").is_ok());
        assert!(date_bounds("2024-03-05T10:00:00").is_err(), "needs a zone");
        assert!(date_bounds("ne2024").is_err());
        assert!(date_bounds("2024-13").is_err());
    }

    #[test]
    fn date_windows_intersect() {
        let (mut from, mut until) = (None, None);
        narrow_window(&mut from, &mut until, "ge2024-03-01").unwrap();
        narrow_window(&mut from, &mut until, "lt2024-03-05").unwrap();
        narrow_window(&mut from, &mut until, "ge2024-02-01").unwrap();
        assert_eq!(from.unwrap().to_string(), "2024-03-01T00:00:00Z");
        assert_eq!(until.unwrap().to_string(), "2024-03-05T00:00:00Z");
        assert!(narrow_window(&mut from, &mut until, "ne2024").is_err());
    }

    #[test]
    fn tokens_and_references() {
        assert_eq!(token("a|b", "a"), Some("b"));
        assert_eq!(token("b", "a"), Some("b"));
        assert_eq!(token("x|b", "a"), None);
        assert_eq!(reference("Location/1", "Location"), Ok("1"));
        assert_eq!(reference("1", "Location"), Ok("1"));
        assert!(reference("Patient/1", "Location").is_err());
    }
}
