//! Two servers on one database (two pools, two routers, as two processes
//! would have): nothing that matters lives in one server's memory.

mod common;

use axum::http::StatusCode;
use carefront_domain::Role;
use carefront_domain::security::LockoutPolicy;
use carefront_server::{AppState, Config, router};
use carefront_store::Db;
use common::*;
use tower::ServiceExt;

async fn second_server(app: &TestApp, config: Config) -> axum::Router {
    let db = Db::connect(&app.url).await.unwrap();
    router(AppState::new(db, config))
}

#[tokio::test]
async fn a_session_opened_on_one_server_works_and_ends_on_the_other() {
    let app = TestApp::new().await;
    let other = second_server(&app, Config::default()).await;
    let cookie = app.sign_in(Role::FrontDesk).await;
    let res = other
        .clone()
        .oneshot(get("/today", Some(&cookie)))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    let csrf = app.csrf(&cookie).await;
    let logout = axum::http::Request::post("/logout")
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(form_body(&[("csrf", &csrf)])))
        .unwrap();
    assert_eq!(
        other.clone().oneshot(logout).await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
    let res = app.send(get("/today", Some(&cookie))).await;
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "signed out on B must be signed out on A"
    );
}

#[tokio::test]
async fn failed_sign_ins_count_across_servers() {
    let config = Config {
        lockout: LockoutPolicy {
            max_failures: 4,
            lock_seconds: 600,
        },
        ..Config::default()
    };
    let app = TestApp::with_config(config.clone()).await;
    let other_state = AppState::new(Db::connect(&app.url).await.unwrap(), config);
    let s = app.staff(Role::Lead).clone();
    // Four failures at once, two on each server: none may be lost.
    let attempts = (0..4).map(|i| {
        let state = if i % 2 == 0 {
            app.state.clone()
        } else {
            other_state.clone()
        };
        let (org_id, username) = (app.org_id.clone(), s.username.clone());
        tokio::spawn(async move {
            carefront_server::auth::sign_in(
                &state,
                &org_id,
                &username,
                "wrong password, again",
                None,
            )
            .await
        })
    });
    for attempt in attempts.collect::<Vec<_>>() {
        assert!(attempt.await.unwrap().is_err());
    }
    let (status, _) = app.try_sign_in(&s.username, &s.password).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "four failures over two servers lock the account"
    );
}

#[tokio::test]
async fn concurrent_audited_requests_on_two_servers_keep_one_valid_chain() {
    let app = TestApp::new().await;
    let other = second_server(&app, Config::default()).await;
    let cookie = app.sign_in(Role::FrontDesk).await;
    let before = app.audit_count().await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let router = if i % 2 == 0 {
            app.app.clone()
        } else {
            other.clone()
        };
        let cookie = cookie.clone();
        tasks.push(tokio::spawn(async move {
            let res = router
                .oneshot(get("/patients?q=a", Some(&cookie)))
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert!(app.audit_count().await > before);
    let verified = app
        .db
        .verify_audit_chain(&app.org_id, |_| {})
        .await
        .unwrap()
        .unwrap();
    assert_eq!(verified.verified, app.audit_count().await);
}
