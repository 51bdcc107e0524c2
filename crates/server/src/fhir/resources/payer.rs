//! Organization, both kinds: the tenant's own organization and the payers
//! of its payer directory (`type` `pay`, identified by their electronic
//! payer ID). They live in two tables; the tenant's id is always the
//! organization id, and no payer's id ever is, so each interaction goes to
//! the right one by the id alone. Payers are created, updated and deleted
//! by administrators; the tenant is only read and updated.

use crate::AppState;
use crate::fhir::bundle::{bundle, match_entry};
use crate::fhir::capability;
use crate::fhir::json::{Issues, Obj};
use crate::fhir::outcome::{FhirError, Issue};
use crate::fhir::resource::{self, FhirResource, resource_json};
use crate::fhir::search::{self, SearchParam, token};
use crate::fhir::{Ctx, finish, json_response, note};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use carefront_domain::audit::Action;
use carefront_domain::coverage::{Coverage, Payer};
use carefront_domain::directory::Organization;
use carefront_domain::{Area, ValidationErrors};
use carefront_store::{Db, Filter, Page, StoreError};
use serde_json::{Value, json};

/// The identifier system of electronic payer IDs (X12 270/271, 837).
pub const PAYER_ID_SYSTEM: &str = "http://carefront.example/fhir/sid/payer-id";
pub const ORGANIZATION_TYPE_SYSTEM: &str =
    "http://terminology.hl7.org/CodeSystem/organization-type";

const KIND: &str = "Organization";

impl FhirResource for Payer {
    const READ: Area = Area::DirectoryRead;
    const WRITE: Area = Area::Admin;
    const ELEMENTS: &'static [&'static str] = &["active", "name", "identifier", "type"];
    // Searched through [`OrgSearch`], which covers the tenant too.
    const SEARCH: &'static [SearchParam<Vec<Filter>>] = &[];
    const DOC: &'static str = "";

    fn to_fhir(&self) -> Value {
        json!({
            "active": self.active,
            "name": self.name,
            "identifier": [{ "system": PAYER_ID_SYSTEM, "value": self.payer_id }],
            "type": [{ "coding": [{
                "system": ORGANIZATION_TYPE_SYSTEM,
                "code": "pay",
                "display": "Payer",
            }] }],
        })
    }

    fn from_fhir(r: &Obj, issues: &mut Issues) -> Self {
        let mut payer_id = None;
        for identifier in r.objects("identifier", &["system", "value"], issues) {
            let system = identifier.string("system", issues);
            if system.as_deref() != Some(PAYER_ID_SYSTEM) {
                let path = identifier.child("system");
                issues.push(Issue::at(
                    "not-supported",
                    &path,
                    format!("{path} must be {PAYER_ID_SYSTEM}; other identifiers are not kept"),
                ));
            } else if payer_id.is_some() {
                issues.push(Issue::at(
                    "not-supported",
                    &identifier.path,
                    "a payer keeps one payer ID",
                ));
            } else {
                payer_id = Some(identifier.string("value", issues).unwrap_or_default());
            }
        }
        if payer_id.is_none() {
            let path = r.child("identifier");
            issues.push(Issue::at(
                "required",
                &path,
                format!(
                    "{path} needs the payer's electronic payer ID (system {PAYER_ID_SYSTEM}); \
                     only payers are created here, the clinic's own Organization exists already"
                ),
            ));
        }
        for t in r.objects("type", &["coding", "text"], issues) {
            let codings = t.objects("coding", &["system", "code", "display"], issues);
            let is_payer = codings.iter().any(|c| {
                c.string("system", issues).as_deref() == Some(ORGANIZATION_TYPE_SYSTEM)
                    && c.string("code", issues).as_deref() == Some("pay")
            });
            if !is_payer {
                let path = t.child("coding");
                issues.push(Issue::at(
                    "code-invalid",
                    &path,
                    format!("{path} must be {ORGANIZATION_TYPE_SYSTEM} code 'pay'"),
                ));
            }
        }
        Payer {
            name: r.string("name", issues).unwrap_or_default(),
            payer_id: payer_id.unwrap_or_default(),
            active: r.boolean("active", issues).unwrap_or(true),
        }
    }

    fn validated(self) -> Result<Self, ValidationErrors> {
        self.validate()
    }

    fn expression(field: &str) -> String {
        match field {
            "payer_id" => {
                format!("Organization.identifier.where(system='{PAYER_ID_SYSTEM}').value")
            }
            other => format!("Organization.{other}"),
        }
    }

    async fn check_delete(db: &Db, org_id: &str, id: &str) -> Result<(), FhirError> {
        let using = [Filter::Eq("payer_ref", id.into())];
        let none = Page {
            offset: 0,
            count: 0,
        };
        let (_, n) = db.search::<Coverage>(org_id, &using, none).await?;
        if n == 0 {
            return Ok(());
        }
        Err(FhirError::Conflict(Issue::new(
            "conflict",
            format!("Organization/{id} is the payer of {n} coverage(s); mark it inactive instead."),
        )))
    }
}

/// Filters for each kind of organization; `None` leaves that kind out.
struct OrgSearch {
    tenant: Option<Vec<Filter>>,
    payers: Option<Vec<Filter>>,
}

impl OrgSearch {
    fn both(&mut self, f: impl Fn() -> Filter) {
        for list in [&mut self.tenant, &mut self.payers].into_iter().flatten() {
            list.push(f());
        }
    }

    fn only_payers(&mut self, f: Filter) {
        self.tenant = None;
        if let Some(list) = &mut self.payers {
            list.push(f);
        }
    }

    fn nothing(&mut self) {
        self.tenant = None;
        self.payers = None;
    }

    /// Applies one of the common parameters (`_id`, `_lastUpdated`) to both.
    fn common(&mut self, name: &str, value: &str) -> Result<(), String> {
        let def = search::COMMON
            .iter()
            .find(|p| p.name == name)
            .expect("a common search parameter");
        for list in [&mut self.tenant, &mut self.payers].into_iter().flatten() {
            (def.apply)(list, value)?;
        }
        Ok(())
    }
}

const SEARCH: &[SearchParam<OrgSearch>] = &[
    SearchParam {
        name: "name",
        kind: "string",
        doc: "Starts with, ignoring case.",
        apply: |s, v| {
            s.both(|| Filter::Prefix(&["name"], v.to_string()));
            Ok(())
        },
    },
    SearchParam {
        name: "type",
        kind: "token",
        doc: "http://terminology.hl7.org/CodeSystem/organization-type|pay (or pay): the payer \
            directory. No other type is assigned.",
        apply: |s, v| {
            match token(v, ORGANIZATION_TYPE_SYSTEM) {
                Some("pay") => s.tenant = None,
                _ => s.nothing(),
            }
            Ok(())
        },
    },
    SearchParam {
        name: "identifier",
        kind: "token",
        doc: "A payer ID: http://carefront.example/fhir/sid/payer-id|60054 or the bare value.",
        apply: |s, v| {
            match token(v, PAYER_ID_SYSTEM) {
                Some(id) => s.only_payers(Filter::Eq("payer_id", id.to_uppercase().into())),
                None => s.nothing(),
            }
            Ok(())
        },
    },
    SearchParam {
        name: "active",
        kind: "token",
        doc: "true or false.",
        apply: |s, v| {
            match v {
                "true" | "false" => s.both(|| Filter::Eq("active", (v == "true").into())),
                _ => s.nothing(),
            }
            Ok(())
        },
    },
    SearchParam {
        name: "_id",
        kind: "token",
        doc: "The logical id.",
        apply: |s, v| s.common("_id", v),
    },
    SearchParam {
        name: "_lastUpdated",
        kind: "date",
        doc: "When the resource last changed; prefixes eq, ge, gt, le, lt.",
        apply: |s, v| s.common("_lastUpdated", v),
    },
];

const DOC: &str = "The clinic's own organization (the tenant; its id is the organization \
    id; read and updated, never created or deleted; keeps name, active, one phone and one \
    address) and the payer directory: payers are Organizations with type \
    http://terminology.hl7.org/CodeSystem/organization-type|pay and one identifier with \
    system http://carefront.example/fhir/sid/payer-id (the electronic payer ID), plus name \
    and active. Payers are created, updated and deleted by administrators; a payer that \
    coverages refer to cannot be deleted (409), mark it inactive. Searches list the tenant \
    first, then payers by name.";

pub fn capability_entry() -> Value {
    capability::entry(
        KIND,
        DOC,
        &[
            "read",
            "vread",
            "update",
            "history-instance",
            "search-type",
            "create",
            "delete",
        ],
        true,
        &[SEARCH],
    )
}

pub fn register(router: Router<AppState>) -> Router<AppState> {
    router
        .route("/Organization", get(search_type).post(create))
        .route("/Organization/{id}", get(read).put(update).delete(delete))
        .route("/Organization/{id}/_history", get(history))
        .route("/Organization/{id}/_history/{vid}", get(vread))
}

fn is_tenant(ctx: &Ctx, id: &str) -> bool {
    id == ctx.org()
}

async fn read(ctx: Ctx, Path(id): Path<String>) -> Response {
    if is_tenant(&ctx, &id) {
        resource::read::<Organization>(ctx, Path(id)).await
    } else {
        resource::read::<Payer>(ctx, Path(id)).await
    }
}

async fn vread(ctx: Ctx, path: Path<(String, String)>) -> Response {
    if is_tenant(&ctx, &path.0.0) {
        resource::vread::<Organization>(ctx, path).await
    } else {
        resource::vread::<Payer>(ctx, path).await
    }
}

async fn history(ctx: Ctx, Path(id): Path<String>, query: RawQuery) -> Response {
    if is_tenant(&ctx, &id) {
        resource::history::<Organization>(ctx, Path(id), query).await
    } else {
        resource::history::<Payer>(ctx, Path(id), query).await
    }
}

async fn update(ctx: Ctx, Path(id): Path<String>, headers: HeaderMap, body: Body) -> Response {
    if is_tenant(&ctx, &id) {
        resource::update::<Organization>(ctx, Path(id), headers, body).await
    } else {
        resource::update::<Payer>(ctx, Path(id), headers, body).await
    }
}

async fn create(ctx: Ctx, headers: HeaderMap, body: Body) -> Response {
    resource::create::<Payer>(ctx, headers, body).await
}

async fn delete(ctx: Ctx, Path(id): Path<String>) -> Response {
    if is_tenant(&ctx, &id) {
        let note = note(Action::Delete, KIND, Some(&id), "delete");
        return finish(
            note,
            Err(FhirError::MethodNotAllowed(format!(
                "Organization/{id} is the clinic's own organization; it is updated, never deleted."
            ))),
        );
    }
    resource::delete::<Payer>(ctx, Path(id)).await
}

async fn search_type(ctx: Ctx, RawQuery(q): RawQuery) -> Response {
    let what = format!("search {}", q.as_deref().unwrap_or_default());
    let note = note(Action::Search, KIND, None, what.trim_end());
    let result = async {
        ctx.require(Area::DirectoryRead)?;
        let mut s = OrgSearch {
            tenant: Some(Vec::new()),
            payers: Some(Vec::new()),
        };
        let query = search::parse(q.as_deref(), &[SEARCH], &mut s)?;
        let page = query.page;
        let db = &ctx.state.db;
        let one = Page {
            offset: 0,
            count: 1,
        };
        let (tenant, tenant_total) = match &s.tenant {
            Some(f) => db.search::<Organization>(ctx.org(), f, one).await?,
            None => (Vec::new(), 0),
        };
        // The tenant comes first, then the payers; the page spans both.
        let show_tenant = page.count > 0 && page.offset < tenant_total;
        let payer_page = Page {
            offset: (page.offset - tenant_total).max(0),
            count: page.count - i64::from(show_tenant),
        };
        let (payers, payer_total) = match &s.payers {
            Some(f) => db.search::<Payer>(ctx.org(), f, payer_page).await?,
            None => (Vec::new(), 0),
        };
        let entry =
            |id: &str, resource: Value| match_entry(format!("{}/{KIND}/{id}", ctx.base), resource);
        let entries = tenant
            .iter()
            .filter(|_| show_tenant)
            .map(|v| entry(&v.id, resource_json(v)))
            .chain(payers.iter().map(|v| entry(&v.id, resource_json(v))))
            .collect();
        let url = format!("{}/{KIND}", ctx.base);
        let total = tenant_total + payer_total;
        Ok(json_response(
            StatusCode::OK,
            bundle("searchset", &url, &query, total, entries),
        ))
    };
    finish(note, result.await)
}

/// Whether `id` is a live payer of the directory (what `Organization/{id}`
/// in a Coverage must name).
pub async fn payer_exists(db: &Db, org_id: &str, id: &str) -> Result<bool, StoreError> {
    match db.get::<Payer>(org_id, id).await {
        Ok(_) => Ok(true),
        Err(StoreError::NotFound | StoreError::Gone) => Ok(false),
        Err(e) => Err(e),
    }
}
