//! The generic REST interactions over any stored [`Record`]: read, vread,
//! search, create, update, delete and instance history. A resource type
//! joins the API by implementing [`FhirResource`] and being registered in
//! `fhir::routes`.

use super::bundle::{bundle, match_entry};
use super::json::{Issues, Obj, instant};
use super::outcome::{FhirError, Issue};
use super::search::{self, SearchParam};
use super::{Ctx, finish, note};
use crate::AppState;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use carefront_domain::audit::{Action, Outcome};
use carefront_domain::directory::Versioned;
use carefront_domain::{Area, ValidationErrors};
use carefront_store::{Db, Filter, HistoryEntry, Record, StoreError, new_id};
use serde_json::{Value, json};
use std::future::Future;

/// A stored record served as a FHIR resource.
pub trait FhirResource: Record {
    /// Who may read it, and who may change it.
    const READ: Area;
    const WRITE: Area;
    /// False for resources clients may not create or delete (the tenant's
    /// own Organization).
    const CREATE_DELETE: bool = true;
    /// The top-level elements [`FhirResource::from_fhir`] reads.
    const ELEMENTS: &'static [&'static str];
    const SEARCH: &'static [SearchParam<Vec<Filter>>];
    /// For the CapabilityStatement.
    const DOC: &'static str;

    /// The resource's elements, without `resourceType`, `id` and `meta`.
    fn to_fhir(&self) -> Value;
    /// Reads the resource; problems with elements go to `issues`.
    fn from_fhir(resource: &Obj, issues: &mut Issues) -> Self;
    /// The domain's validation (normalizing the value).
    fn validated(self) -> Result<Self, ValidationErrors>;
    /// The FHIRPath of a domain field named in a validation error.
    fn expression(field: &str) -> String;

    /// Business rules that need the store, such as references that must
    /// resolve (422 when broken).
    fn check_references(
        &self,
        _db: &Db,
        _org_id: &str,
    ) -> impl Future<Output = Result<(), FhirError>> + Send {
        async { Ok(()) }
    }

    /// The patient whose data this record is, for the audit trail: every
    /// read, search result and write of it is audited with this patient id.
    fn patient_of(&self, _id: &str) -> Option<String> {
        None
    }

    /// Refuses to delete a record others still refer to (409).
    fn check_delete(
        _db: &Db,
        _org_id: &str,
        _id: &str,
    ) -> impl Future<Output = Result<(), FhirError>> + Send {
        async { Ok(()) }
    }
}

/// The interactions registered for `R`, named as in the CapabilityStatement.
pub fn interactions<R: FhirResource>() -> Vec<&'static str> {
    let mut list = vec!["read", "vread", "update", "history-instance", "search-type"];
    if R::CREATE_DELETE {
        list.extend(["create", "delete"]);
    }
    list
}

pub fn register<R: FhirResource>(router: Router<AppState>) -> Router<AppState> {
    let kind = R::KIND;
    let (mut by_type, mut by_id) = (get(search_type::<R>), get(read::<R>).put(update::<R>));
    if R::CREATE_DELETE {
        by_type = by_type.post(create::<R>);
        by_id = by_id.delete(delete::<R>);
    }
    router
        .route(&format!("/{kind}"), by_type)
        .route(&format!("/{kind}/{{id}}"), by_id)
        .route(&format!("/{kind}/{{id}}/_history"), get(history::<R>))
        .route(&format!("/{kind}/{{id}}/_history/{{vid}}"), get(vread::<R>))
}

/// The full resource: `resourceType`, `id`, `meta` and its elements.
pub fn resource_json<R: FhirResource>(v: &Versioned<R>) -> Value {
    let mut json = v.value.to_fhir();
    json["resourceType"] = json!(R::KIND);
    json["id"] = json!(v.id);
    json["meta"] =
        json!({ "versionId": v.version.to_string(), "lastUpdated": instant(v.updated_at_us) });
    json
}

pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// A version from the history as a record.
fn versioned<R: FhirResource>(id: &str, h: &HistoryEntry<R>) -> Versioned<R> {
    Versioned {
        id: id.to_string(),
        version: h.version,
        updated_at_us: h.changed_at_us,
        value: h.value.clone(),
    }
}

/// Store errors about one resource, with messages naming it.
pub fn about(kind: &str, id: &str) -> impl Fn(StoreError) -> FhirError {
    let name = format!("{kind}/{id}");
    move |e| match e {
        StoreError::NotFound => FhirError::NotFound(format!("{name} is not known.")),
        StoreError::Gone => FhirError::Gone(format!("{name} was deleted.")),
        other => other.into(),
    }
}

pub async fn read<R: FhirResource>(ctx: Ctx, Path(id): Path<String>) -> Response {
    let mut note = note(Action::Read, R::KIND, Some(&id), "read");
    let result = async {
        ctx.require(R::READ)?;
        let db = &ctx.state.db;
        let v = db
            .get::<R>(ctx.org(), &id)
            .await
            .map_err(about(R::KIND, &id))?;
        note.patient_id = v.value.patient_of(&id);
        Ok(ctx.version(StatusCode::OK, &v, true))
    }
    .await;
    finish(note, result)
}

async fn history_of<R: FhirResource>(
    ctx: &Ctx,
    id: &str,
) -> Result<Vec<HistoryEntry<R>>, FhirError> {
    ctx.require(R::READ)?;
    let versions = ctx.state.db.history::<R>(ctx.org(), id).await?;
    if versions.is_empty() {
        return Err(about(R::KIND, id)(StoreError::NotFound));
    }
    Ok(versions)
}

pub async fn vread<R: FhirResource>(ctx: Ctx, Path((id, vid)): Path<(String, String)>) -> Response {
    let mut note = note(Action::Read, R::KIND, Some(&id), &format!("vread {vid}"));
    let result = async {
        let versions = history_of::<R>(&ctx, &id).await?;
        note.patient_id = versions[0].value.patient_of(&id);
        let name = format!("{}/{id}", R::KIND);
        let h = versions
            .iter()
            .find(|h| h.version.to_string() == vid)
            .ok_or_else(|| FhirError::NotFound(format!("{name} has no version {vid}.")))?;
        if h.deleted {
            return Err(FhirError::Gone(format!(
                "{name} was deleted in version {vid}."
            )));
        }
        Ok(ctx.version(StatusCode::OK, &versioned(&id, h), true))
    }
    .await;
    finish(note, result)
}

pub async fn history<R: FhirResource>(
    ctx: Ctx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let mut note = note(Action::Read, R::KIND, Some(&id), "history");
    let result = async {
        let versions = history_of::<R>(&ctx, &id).await?;
        note.patient_id = versions[0].value.patient_of(&id);
        let query = search::parse::<()>(q.as_deref(), &[], &mut ())?;
        let (kind, page) = (R::KIND, query.page);
        let entries = versions
            .iter()
            .skip(usize::try_from(page.offset).unwrap_or(usize::MAX))
            .take(usize::try_from(page.count).unwrap_or(0))
            .map(|h| {
                let (method, url, status) = match (h.deleted, h.version) {
                    (true, _) => ("DELETE", format!("{kind}/{id}"), "204 No Content"),
                    (false, 1) => ("POST", kind.to_string(), "201 Created"),
                    (false, _) => ("PUT", format!("{kind}/{id}"), "200 OK"),
                };
                let at = instant(h.changed_at_us);
                json!({
                    "fullUrl": format!("{}/{kind}/{id}", ctx.base),
                    "resource": (!h.deleted).then(|| resource_json(&versioned(&id, h))),
                    "request": { "method": method, "url": url },
                    "response": { "status": status, "etag": etag(h.version), "lastModified": at },
                })
            })
            .collect();
        let url = format!("{}/{kind}/{id}/_history", ctx.base);
        let total = i64::try_from(versions.len()).unwrap_or(i64::MAX);
        let bundle = bundle("history", &url, &query, total, entries);
        Ok(super::json_response(StatusCode::OK, bundle))
    }
    .await;
    finish(note, result)
}

pub async fn search_type<R: FhirResource>(ctx: Ctx, RawQuery(q): RawQuery) -> Response {
    let what = format!("search {}", q.as_deref().unwrap_or_default());
    let note = note(Action::Search, R::KIND, None, what.trim_end());
    let result = async {
        ctx.require(R::READ)?;
        let mut filters = Vec::new();
        let query = search::parse(q.as_deref(), &[R::SEARCH, search::COMMON], &mut filters)?;
        let db = &ctx.state.db;
        let (rows, total) = db.search::<R>(ctx.org(), &filters, query.page).await?;
        let entries = rows
            .iter()
            .map(|v| {
                match_entry(
                    format!("{}/{}/{}", ctx.base, R::KIND, v.id),
                    resource_json(v),
                )
            })
            .collect();
        let url = format!("{}/{}", ctx.base, R::KIND);
        let bundle = bundle("searchset", &url, &query, total, entries);
        let mut response = super::json_response(StatusCode::OK, bundle);
        // Patient data: one note per patient shown, beside the search's own.
        for v in &rows {
            if let Some(patient) = v.value.patient_of(&v.id) {
                let shown = super::note(Action::Search, R::KIND, Some(&v.id), "search result");
                crate::audit::note(&mut response, shown.patient(&patient));
            }
        }
        Ok(response)
    };
    finish(note, result.await)
}

pub async fn create<R: FhirResource>(ctx: Ctx, headers: HeaderMap, body: Body) -> Response {
    let note = note(Action::Create, R::KIND, None, "create");
    let result = async {
        ctx.require(R::WRITE)?;
        let value = read_body::<R>(&headers, body, None).await?;
        value.check_references(&ctx.state.db, ctx.org()).await?;
        let id = new_id();
        let mut tx = ctx.state.db.begin(ctx.org()).await?;
        let saved = tx.create(&id, &value, &ctx.principal.actor_name).await?;
        let mut entry = ctx.entry(Action::Create, R::KIND, &id, "create");
        entry.patient_id = value.patient_of(&id);
        tx.audit(entry).await?;
        tx.commit().await?;
        Ok(ctx.written(StatusCode::CREATED, &saved, &headers))
    };
    finish(note, result.await)
}

pub async fn update<R: FhirResource>(
    ctx: Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let note = note(Action::Update, R::KIND, Some(&id), "update");
    let result = async {
        ctx.require(R::WRITE)?;
        let if_match = if_match(&headers)?;
        let value = read_body::<R>(&headers, body, Some(&id)).await?;
        value.check_references(&ctx.state.db, ctx.org()).await?;
        let name = format!("{}/{id}", R::KIND);
        let mut tx = ctx.state.db.begin(ctx.org()).await?;
        let saved = match tx
            .update(&id, &value, if_match, &ctx.principal.actor_name)
            .await
        {
            Err(StoreError::NotFound) => Err(FhirError::MethodNotAllowed(format!(
                "{name} does not exist; create resources with POST (no update-as-create)."
            ))),
            // Without If-Match, only a concurrent writer can cause this.
            Err(StoreError::VersionConflict { current }) if if_match.is_none() => {
                Err(FhirError::Conflict(Issue::new(
                    "conflict",
                    format!("{name} changed to version {current} meanwhile; try again."),
                )))
            }
            other => other.map_err(about(R::KIND, &id)),
        }?;
        let mut entry = ctx.entry(Action::Update, R::KIND, &id, "update");
        entry.patient_id = value.patient_of(&id);
        tx.audit(entry).await?;
        tx.commit().await?;
        Ok(ctx.written(StatusCode::OK, &saved, &headers))
    };
    finish(note, result.await)
}

pub async fn delete<R: FhirResource>(ctx: Ctx, Path(id): Path<String>) -> Response {
    let note = note(Action::Delete, R::KIND, Some(&id), "delete");
    let result = async {
        ctx.require(R::WRITE)?;
        R::check_delete(&ctx.state.db, ctx.org(), &id).await?;
        let mut tx = ctx.state.db.begin(ctx.org()).await?;
        match tx.delete::<R>(&id, &ctx.principal.actor_name).await {
            // Deleting again changes nothing and succeeds (FHIR http.html);
            // the note records it.
            Err(StoreError::Gone) => Ok(StatusCode::NO_CONTENT.into_response()),
            other => {
                other.map_err(about(R::KIND, &id))?;
                tx.audit(ctx.entry(Action::Delete, R::KIND, &id, "delete"))
                    .await?;
                tx.commit().await?;
                Ok(super::audited(StatusCode::NO_CONTENT.into_response()))
            }
        }
    };
    finish(note, result.await)
}

/// `If-Match: W/"3"` as a version number.
pub fn if_match(headers: &HeaderMap) -> Result<Option<i64>, FhirError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .map(|v| v.trim().trim_start_matches("W/").trim_matches('"'))
        .and_then(|v| v.parse().ok())
        .map(Some)
        .ok_or_else(|| FhirError::invalid("If-Match must be a version ETag such as W/\"3\"."))
}

/// Reads and validates a submitted resource; nothing is written before
/// this succeeds. `id` is the URL's id on update.
async fn read_body<R: FhirResource>(
    headers: &HeaderMap,
    body: Body,
    id: Option<&str>,
) -> Result<R, FhirError> {
    let value = read_json(headers, body).await?;
    check_resource(&value, R::KIND, id)?;
    let mut issues = Vec::new();
    let known = known_elements(R::ELEMENTS);
    let parsed = Obj::new(R::KIND.to_string(), &value, &known, &mut issues)
        .map(|obj| R::from_fhir(&obj, &mut issues));
    match parsed {
        Some(v) if issues.is_empty() => v
            .validated()
            .map_err(|e| FhirError::Invalid(Issue::from_validation(&e, R::expression))),
        _ => Err(FhirError::Invalid(issues)),
    }
}

/// The top-level elements a resource may carry: its own and the ones every
/// resource has.
pub fn known_elements<'a>(elements: &[&'a str]) -> Vec<&'a str> {
    ["resourceType", "id", "meta", "text"]
        .into_iter()
        .chain(elements.iter().copied())
        .collect()
}

/// The JSON body of a FHIR request: its content type and size checked.
pub async fn read_json(headers: &HeaderMap, body: Body) -> Result<Value, FhirError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    if !["application/fhir+json", "application/json"]
        .iter()
        .any(|t| essence.eq_ignore_ascii_case(t))
    {
        return Err(FhirError::UnsupportedMediaType(format!(
            "Send resources as application/fhir+json (Content-Type was '{content_type}')."
        )));
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > crate::MAX_BODY_BYTES) {
        return Err(FhirError::TooLarge);
    }
    let bytes = axum::body::to_bytes(body, crate::MAX_BODY_BYTES)
        .await
        .map_err(|_| FhirError::TooLarge)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        FhirError::Invalid(vec![Issue::new(
            "structure",
            format!("The body is not valid JSON: {e}"),
        )])
    })
}

/// Checks `resourceType`, and on update that `id` equals the URL's.
pub fn check_resource(value: &Value, kind: &str, id: Option<&str>) -> Result<(), FhirError> {
    let found = value.get("resourceType").and_then(Value::as_str);
    if found != Some(kind) {
        return Err(FhirError::invalid(format!(
            "resourceType must be '{kind}' at this endpoint (got {}).",
            found.map_or("none".into(), |k| format!("'{k}'"))
        )));
    }
    if let Some(url_id) = id
        && value.get("id").and_then(Value::as_str) != Some(url_id)
    {
        return Err(FhirError::Invalid(vec![Issue::at(
            "invalid",
            format!("{kind}.id"),
            format!("{kind}.id must be present and equal the id in the URL ('{url_id}')."),
        )]));
    }
    Ok(())
}

impl Ctx {
    /// The audit entry a successful write commits with its data.
    pub fn entry(
        &self,
        action: Action,
        kind: &str,
        id: &str,
        what: &str,
    ) -> carefront_domain::audit::AuditEntry {
        note(action, kind, Some(id), what).entry(&self.principal, Outcome::Success)
    }

    /// One version of a resource, with its ETag and Last-Modified (and
    /// Location when created); without the body when `body` is false.
    pub fn version<R: FhirResource>(
        &self,
        status: StatusCode,
        v: &Versioned<R>,
        body: bool,
    ) -> Response {
        let mut response = match body {
            true => super::json_response(status, resource_json(v)),
            false => status.into_response(),
        };
        let modified = jiff::Timestamp::from_microsecond(v.updated_at_us)
            .map(|t| t.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string());
        let location = format!("{}/{}/{}/_history/{}", self.base, R::KIND, v.id, v.version);
        let headers = [
            (header::ETAG, Some(etag(v.version))),
            (header::LAST_MODIFIED, modified.ok()),
            (
                header::LOCATION,
                (status == StatusCode::CREATED).then_some(location),
            ),
        ];
        for (name, value) in headers {
            if let Some(value) = value.and_then(|v| header::HeaderValue::from_str(&v).ok()) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }

    /// The answer to a write that audited in its transaction, honouring
    /// `Prefer: return=minimal`.
    pub fn written<R: FhirResource>(
        &self,
        status: StatusCode,
        saved: &Versioned<R>,
        headers: &HeaderMap,
    ) -> Response {
        let minimal = headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split([',', ';']).any(|p| p.trim() == "return=minimal"));
        super::audited(self.version(status, saved, !minimal))
    }
}
