//! Carefront's HTTP edge: the staff web application, the FHIR R4 API and the
//! operations endpoints, served by one axum router over [`AppState`].
//!
//! Request flow: `ops::track` (metrics) → security headers → the area's
//! authentication (`auth`) → `access::guard` (role may use the route's
//! [`Area`]) → handler → store. Patient-data reads are audited by
//! `audit::record` from the note the handler attaches to its response;
//! writes append their audit event inside their own transaction.

pub mod access;
pub mod audit;
pub mod auth;
pub mod demo;
pub mod fhir;
pub mod ops;
pub mod ui;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use carefront_domain::audit::RepeatedReads;
use carefront_domain::security::LockoutPolicy;
use carefront_store::{AuditWriter, BookingWriter, Db};
use fhir::operations::appointment_find::cache::KeptAnswers;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

pub use access::{RouteSpec, route_specs};

/// Largest request body accepted, for forms and FHIR resources alike.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Config {
    /// Idle time after which a staff session ends.
    pub idle_timeout_secs: i64,
    pub lockout: LockoutPolicy,
    /// Mark cookies `Secure`; on when Carefront is served over TLS (directly
    /// or behind a TLS-terminating proxy).
    pub secure_cookies: bool,
    /// Seconds without a touch after which a self check-in kiosk returns to
    /// its start screen and forgets what was entered.
    pub kiosk_idle_secs: i64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 15 * 60,
            lockout: LockoutPolicy::default(),
            secure_cookies: false,
            kiosk_idle_secs: carefront_domain::visit::DEFAULT_KIOSK_IDLE_SECONDS,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    /// Appends read audits with group commit (see `carefront_store::AuditWriter`).
    pub audit: AuditWriter,
    /// Writes single bookings with group commit (see `carefront_store::BookingWriter`).
    pub bookings: BookingWriter,
    /// `Appointment/$find` answers this server keeps between requests.
    pub find_answers: Arc<KeptAnswers>,
    /// The reads of open lists this server logged lately (`AuditNote::once_per_window`).
    pub repeated_reads: Arc<Mutex<RepeatedReads>>,
}

impl AppState {
    /// Must be called inside a Tokio runtime: it starts the audit and
    /// booking writers.
    pub fn new(db: Db, config: Config) -> Self {
        let (bookings, audit) = BookingWriter::start_with_audit(db.clone());
        Self {
            audit,
            bookings,
            db,
            config: Arc::new(config),
            find_answers: Arc::default(),
            repeated_reads: Arc::default(),
        }
    }
}

pub fn router(state: AppState) -> Router {
    let app = access::routes(state.clone())
        .merge(ui::public_routes())
        .merge(ui::kiosk::routes(state.clone()))
        .merge(fhir::routes(state.clone()))
        .merge(ops::routes());
    app.fallback(ui::not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(ops::security_headers))
        .layer(axum::middleware::from_fn(ops::track))
        .with_state(state)
}

/// Serves until the process is stopped.
pub async fn serve(listener: tokio::net::TcpListener, state: AppState) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
