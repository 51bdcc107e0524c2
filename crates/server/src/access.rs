//! The staff application's route table. Every route is registered with the
//! [`Area`] it belongs to; registration wraps it in the session check and the
//! role guard, so no route can be added without declaring who may use it.

use crate::auth::{Principal, require_session};
use crate::{AppState, audit, ui};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use carefront_domain::Area;
use carefront_domain::audit::{Action, Outcome};

/// One staff route: what the role-by-route test walks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: Method,
    pub path: &'static str,
    pub area: Area,
}

struct Table {
    state: AppState,
    specs: Vec<RouteSpec>,
    router: Router<AppState>,
}

impl Table {
    fn add(
        mut self,
        method: Method,
        path: &'static str,
        area: Area,
        handler: MethodRouter<AppState>,
    ) -> Self {
        self.specs.push(RouteSpec { method, path, area });
        let guarded = handler.route_layer(from_fn_with_state((self.state.clone(), area), guard));
        self.router = self.router.route(path, guarded);
        self
    }
}

fn table(state: AppState) -> Table {
    let t = Table {
        state,
        specs: Vec::new(),
        router: Router::new(),
    };
    t.add(Method::GET, "/", Area::Home, get(ui::pages::home))
        .add(Method::GET, "/today", Area::Today, get(ui::pages::today))
        .add(
            Method::GET,
            "/schedule",
            Area::Schedule,
            get(ui::schedule::day),
        )
        .add(
            Method::GET,
            "/schedule/week",
            Area::Schedule,
            get(ui::schedule::week),
        )
        .add(
            Method::GET,
            "/schedule/types.css",
            Area::Schedule,
            get(ui::schedule::types_css),
        )
        .add(
            Method::GET,
            "/schedule/find",
            Area::Schedule,
            get(ui::slot_finder::page),
        )
        .add(
            Method::GET,
            "/schedule/book",
            Area::Scheduling,
            get(ui::booking::page),
        )
        .add(
            Method::POST,
            "/schedule/book",
            Area::Scheduling,
            post(ui::booking::submit),
        )
        .add(
            Method::GET,
            "/schedule/series/{id}",
            Area::Schedule,
            get(ui::booking::series_page),
        )
        .add(
            Method::POST,
            "/schedule/waitlist",
            Area::Scheduling,
            post(ui::slot_finder::add_to_waitlist),
        )
        .add(
            Method::POST,
            "/waitlist/{id}/remove",
            Area::Scheduling,
            post(ui::slot_finder::remove_from_waitlist),
        )
        .add(
            Method::GET,
            "/appointments/{id}",
            Area::Schedule,
            get(ui::appointment::page),
        )
        .add(
            Method::POST,
            "/appointments/{id}/status",
            Area::Scheduling,
            post(ui::appointment::set_status),
        )
        .add(
            Method::POST,
            "/appointments/{id}/cancel",
            Area::Scheduling,
            post(ui::appointment::cancel),
        )
        .add(
            Method::GET,
            "/appointments/{id}/reschedule",
            Area::Scheduling,
            get(ui::appointment::reschedule_page),
        )
        .add(
            Method::POST,
            "/appointments/{id}/reschedule",
            Area::Scheduling,
            post(ui::appointment::reschedule),
        )
        .add(
            Method::GET,
            "/patients",
            Area::Patients,
            get(ui::patients::search),
        )
        .add(
            Method::GET,
            "/patients/new",
            Area::Patients,
            get(ui::registration::new_form),
        )
        .add(
            Method::POST,
            "/patients/new",
            Area::Patients,
            post(ui::registration::create),
        )
        .add(
            Method::GET,
            "/patients/{id}",
            Area::Patients,
            get(ui::patient_summary::page),
        )
        .add(
            Method::GET,
            "/patients/{id}/edit",
            Area::Patients,
            get(ui::registration::edit_form),
        )
        .add(
            Method::POST,
            "/patients/{id}/edit",
            Area::Patients,
            post(ui::registration::update),
        )
        .add(
            Method::GET,
            "/patients/{id}/merge",
            Area::PatientMerge,
            get(ui::merge::page),
        )
        .add(
            Method::POST,
            "/patients/{id}/merge",
            Area::PatientMerge,
            post(ui::merge::merge),
        )
        .add(
            Method::POST,
            "/patient-merges/{id}/undo",
            Area::PatientMerge,
            post(ui::merge::undo),
        )
        .add(
            Method::GET,
            "/patients/{id}/coverages/new",
            Area::Patients,
            get(ui::coverage::new_page),
        )
        .add(
            Method::POST,
            "/patients/{id}/coverages/new",
            Area::Patients,
            post(ui::coverage::create),
        )
        .add(
            Method::GET,
            "/coverages/{id}/edit",
            Area::Patients,
            get(ui::coverage::edit_page),
        )
        .add(
            Method::POST,
            "/coverages/{id}/edit",
            Area::Patients,
            post(ui::coverage::update),
        )
        // The only route with a larger body: one card image (see
        // `ui::coverage::UPLOAD_BODY_BYTES`).
        .add(
            Method::POST,
            "/coverages/{id}/cards",
            Area::CoverageCards,
            post(ui::coverage::upload_card).layer(axum::extract::DefaultBodyLimit::max(
                ui::coverage::UPLOAD_BODY_BYTES,
            )),
        )
        .add(
            Method::GET,
            "/coverage-cards/{id}",
            Area::CoverageCards,
            get(ui::coverage::card_image),
        )
        .add(
            Method::GET,
            "/worklists",
            Area::Worklists,
            get(ui::pages::worklists),
        )
        .add(
            Method::GET,
            "/reports",
            Area::Reports,
            get(ui::pages::reports),
        )
        .add(Method::GET, "/admin", Area::Admin, get(ui::admin::page))
        .add(
            Method::GET,
            "/admin/kiosks",
            Area::Admin,
            get(ui::kiosk_admin::page),
        )
        .add(
            Method::POST,
            "/admin/kiosks",
            Area::Admin,
            post(ui::kiosk_admin::create),
        )
        .add(
            Method::POST,
            "/admin/kiosks/{id}/revoke",
            Area::Admin,
            post(ui::kiosk_admin::revoke),
        )
        .add(
            Method::POST,
            "/admin/users",
            Area::Admin,
            post(ui::admin::add_user),
        )
        .add(
            Method::GET,
            "/admin/registration",
            Area::Admin,
            get(ui::settings::page),
        )
        .add(
            Method::POST,
            "/admin/registration",
            Area::Admin,
            post(ui::settings::save),
        )
        .add(
            Method::GET,
            "/admin/instructions",
            Area::Admin,
            get(ui::checkout::templates_page),
        )
        .add(
            Method::POST,
            "/admin/instructions",
            Area::Admin,
            post(ui::checkout::save_template),
        )
        .add(
            Method::GET,
            "/admin/rooms",
            Area::Admin,
            get(ui::room_setup::page),
        )
        .add(
            Method::POST,
            "/admin/rooms",
            Area::Admin,
            post(ui::room_setup::save_checklist),
        )
        .add(
            Method::POST,
            "/admin/rooms/wait",
            Area::Admin,
            post(ui::room_setup::save_wait),
        )
        .add(
            Method::GET,
            "/admin/payers",
            Area::Admin,
            get(ui::coverage::payers_page),
        )
        .add(
            Method::POST,
            "/admin/payers",
            Area::Admin,
            post(ui::coverage::add_payer),
        )
        .add(
            Method::GET,
            "/admin/schedule",
            Area::Admin,
            get(ui::schedule_setup::overview),
        )
        .add(
            Method::GET,
            "/admin/schedule/templates/new",
            Area::Admin,
            get(ui::schedule_setup::new_page::<ui::schedule_setup::Templates>),
        )
        .add(
            Method::POST,
            "/admin/schedule/templates/new",
            Area::Admin,
            post(ui::schedule_setup::create::<ui::schedule_setup::Templates>),
        )
        .add(
            Method::GET,
            "/admin/schedule/templates/{id}/edit",
            Area::Admin,
            get(ui::schedule_setup::edit::<ui::schedule_setup::Templates>),
        )
        .add(
            Method::POST,
            "/admin/schedule/templates/{id}/edit",
            Area::Admin,
            post(ui::schedule_setup::update::<ui::schedule_setup::Templates>),
        )
        .add(
            Method::POST,
            "/admin/schedule/templates/{id}/delete",
            Area::Admin,
            post(ui::schedule_setup::delete::<ui::schedule_setup::Templates>),
        )
        .add(
            Method::GET,
            "/admin/schedule/exceptions/new",
            Area::Admin,
            get(ui::schedule_setup::new_page::<ui::schedule_setup::Exceptions>),
        )
        .add(
            Method::POST,
            "/admin/schedule/exceptions/new",
            Area::Admin,
            post(ui::schedule_setup::create::<ui::schedule_setup::Exceptions>),
        )
        .add(
            Method::GET,
            "/admin/schedule/exceptions/{id}/edit",
            Area::Admin,
            get(ui::schedule_setup::edit::<ui::schedule_setup::Exceptions>),
        )
        .add(
            Method::POST,
            "/admin/schedule/exceptions/{id}/edit",
            Area::Admin,
            post(ui::schedule_setup::update::<ui::schedule_setup::Exceptions>),
        )
        .add(
            Method::POST,
            "/admin/schedule/exceptions/{id}/delete",
            Area::Admin,
            post(ui::schedule_setup::delete::<ui::schedule_setup::Exceptions>),
        )
        .add(
            Method::GET,
            "/admin/schedule/types/new",
            Area::Admin,
            get(ui::schedule_setup::new_page::<ui::schedule_setup::Types>),
        )
        .add(
            Method::POST,
            "/admin/schedule/types/new",
            Area::Admin,
            post(ui::schedule_setup::create::<ui::schedule_setup::Types>),
        )
        .add(
            Method::GET,
            "/admin/schedule/types/{id}/edit",
            Area::Admin,
            get(ui::schedule_setup::edit::<ui::schedule_setup::Types>),
        )
        .add(
            Method::POST,
            "/admin/schedule/types/{id}/edit",
            Area::Admin,
            post(ui::schedule_setup::update::<ui::schedule_setup::Types>),
        )
        .add(
            Method::GET,
            "/admin/schedule/locations/{id}/hours",
            Area::Admin,
            get(ui::schedule_setup::edit::<ui::schedule_setup::Hours>),
        )
        .add(
            Method::POST,
            "/admin/schedule/locations/{id}/hours",
            Area::Admin,
            post(ui::schedule_setup::update::<ui::schedule_setup::Hours>),
        )
        .add(
            Method::GET,
            "/admin/schedule/resources/new",
            Area::Admin,
            get(ui::schedule_setup::new_page::<ui::schedule_setup::Resources>),
        )
        .add(
            Method::POST,
            "/admin/schedule/resources/new",
            Area::Admin,
            post(ui::schedule_setup::create::<ui::schedule_setup::Resources>),
        )
        .add(
            Method::POST,
            "/admin/schedule/resources/rooms",
            Area::Admin,
            post(ui::schedule_setup::add_room),
        )
        .add(
            Method::GET,
            "/admin/schedule/resources/{id}/edit",
            Area::Admin,
            get(ui::schedule_setup::edit::<ui::schedule_setup::Resources>),
        )
        .add(
            Method::POST,
            "/admin/schedule/resources/{id}/edit",
            Area::Admin,
            post(ui::schedule_setup::update::<ui::schedule_setup::Resources>),
        )
        .add(
            Method::GET,
            "/today/events",
            Area::Today,
            get(ui::board::events),
        )
        .add(
            Method::POST,
            "/today/visits/{id}/step",
            Area::VisitFlow,
            post(ui::board::step),
        )
        .add(
            Method::GET,
            "/today/visits/{id}/checkin",
            Area::VisitFlow,
            get(ui::checkin::page),
        )
        .add(
            Method::POST,
            "/today/visits/{id}/checkin",
            Area::VisitFlow,
            post(ui::checkin::submit),
        )
        .add(
            Method::GET,
            "/today/visits/{id}/checkout",
            Area::VisitFlow,
            get(ui::checkout::page),
        )
        .add(
            Method::POST,
            "/today/visits/{id}/checkout",
            Area::VisitFlow,
            post(ui::checkout::complete),
        )
        .add(
            Method::GET,
            "/today/visits/{id}/instructions.pdf",
            Area::VisitFlow,
            get(ui::checkout::instructions),
        )
        .add(
            Method::GET,
            "/today/rooms",
            Area::Today,
            get(ui::rooms::page),
        )
        .add(
            Method::POST,
            "/today/rooms/{id}",
            Area::VisitFlow,
            post(ui::rooms::change),
        )
        .add(
            Method::POST,
            "/today/restock/{id}",
            Area::VisitFlow,
            post(ui::rooms::close_restock),
        )
        .add(Method::GET, "/audit", Area::Audit, get(ui::audit::page))
        .add(
            Method::GET,
            "/audit/export.csv",
            Area::Audit,
            get(ui::audit::export),
        )
        .add(Method::POST, "/logout", Area::Home, post(ui::login::logout))
}

/// Every staff route with its area, for tests and documentation.
pub fn route_specs(state: AppState) -> Vec<RouteSpec> {
    table(state).specs
}

/// The staff application, behind sign-in.
pub fn routes(state: AppState) -> Router<AppState> {
    table(state.clone())
        .router
        .layer(from_fn_with_state(state.clone(), audit::record))
        .layer(from_fn_with_state(state, require_session))
}

/// Refuses a route to a role outside its area, auditing the refusal.
async fn guard(
    State((state, area)): State<(AppState, Area)>,
    req: Request,
    next: Next,
) -> Response {
    let Some(principal) = req.extensions().get::<Principal>().cloned() else {
        return ui::forbidden().into_response();
    };
    if principal.role.may(area) {
        return next.run(req).await;
    }
    let denied = principal
        .entry(Action::Read, Outcome::Denied)
        .detail(format!(
            "{} {} not permitted for role {}",
            req.method(),
            req.uri().path(),
            principal.role
        ));
    if let Err(e) = state.db.audit(&principal.org_id, denied).await {
        return crate::ops::internal_error(e);
    }
    ui::forbidden().into_response()
}
