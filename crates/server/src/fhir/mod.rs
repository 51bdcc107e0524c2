//! FHIR R4 API at `/fhir/R4`.

use crate::AppState;
use axum::Router;

pub fn routes(_state: AppState) -> Router<AppState> {
    Router::new()
}
