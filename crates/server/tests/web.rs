//! The staff web application over HTTP, in-process.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use carefront_domain::audit::Action;
use carefront_domain::security::LockoutPolicy;
use carefront_domain::{Area, Role};
use carefront_server::{Config, route_specs};
use carefront_store::AuditFilter;
use common::*;

#[tokio::test]
async fn signed_in_staff_see_the_shell_with_their_navigation() {
    let app = TestApp::new().await;
    let cookie = app.sign_in(Role::FrontDesk).await;
    let html = body_text(app.send(get("/", Some(&cookie))).await).await;
    assert!(html.contains("href=\"/today\""));
    assert!(html.contains("id=\"global-search\""));
    assert!(
        !html.contains("href=\"/admin\""),
        "front desk must not see Admin"
    );
    assert!(!html.contains("href=\"/audit\""));

    let cookie = app.sign_in(Role::Auditor).await;
    let html = body_text(app.send(get("/", Some(&cookie))).await).await;
    assert!(html.contains("href=\"/audit\""));
    assert!(
        !html.contains("id=\"global-search\""),
        "auditors do not search patients"
    );
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_answer_and_are_audited() {
    let app = TestApp::new().await;
    let s = app.staff(Role::Lead).clone();
    let (status, cookie) = app
        .try_sign_in(&s.username, "not the password at all")
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(cookie.is_none());
    let (status2, _) = app
        .try_sign_in("nobody-here", "not the password at all")
        .await;
    assert_eq!(status2, StatusCode::UNAUTHORIZED);

    let failures = AuditFilter {
        action: Some(Action::SignInFailed),
        ..Default::default()
    };
    let (events, total) = app
        .db
        .audit_events(&app.org_id, &failures, 0, 10)
        .await
        .unwrap();
    assert_eq!(total, 2);
    assert!(events.iter().any(|e| e.entry.actor_name == s.username));
}

#[tokio::test]
async fn the_sign_in_error_does_not_say_which_field_was_wrong() {
    let app = TestApp::new().await;
    let page = app.send(get("/login", None)).await;
    let login_cookie = set_cookie(&page, "cf_login_csrf").unwrap();
    let csrf = hidden_value(&body_text(page).await, "csrf").unwrap();
    let res = app
        .send(
            Request::post("/login")
                .header(header::COOKIE, login_cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form_body(&[
                    ("csrf", &csrf),
                    ("username", "frontdesk"),
                    ("password", "wrong-password-1"),
                ])))
                .unwrap(),
        )
        .await;
    let html = body_text(res).await;
    assert!(html.contains("The username or password is not correct."));
}

#[tokio::test]
async fn repeated_failures_lock_the_account_even_for_the_right_password() {
    let config = Config {
        lockout: LockoutPolicy {
            max_failures: 3,
            lock_seconds: 600,
        },
        ..Config::default()
    };
    let app = TestApp::with_config(config).await;
    let s = app.staff(Role::Billing).clone();
    for _ in 0..3 {
        app.try_sign_in(&s.username, "wrong wrong wrong").await;
    }
    let (status, cookie) = app.try_sign_in(&s.username, &s.password).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(cookie.is_none());
    let locked = AuditFilter {
        action: Some(Action::AccountLocked),
        ..Default::default()
    };
    assert_eq!(
        app.db
            .audit_events(&app.org_id, &locked, 0, 10)
            .await
            .unwrap()
            .1,
        1
    );
}

#[tokio::test]
async fn every_route_admits_exactly_the_roles_of_its_area() {
    let app = TestApp::new().await;
    let specs = route_specs(app.state.clone());
    assert!(specs.len() >= 10);
    // Routes with an `{id}` are called with a demo patient's id (other
    // kinds of record then answer 404, which is not a refusal).
    let patient_id = app
        .db
        .search::<carefront_domain::patient::Patient>(
            &app.org_id,
            &[],
            carefront_store::Page {
                offset: 0,
                count: 1,
            },
        )
        .await
        .unwrap()
        .0[0]
        .id
        .clone();
    for role in Role::ALL {
        let cookie = app.sign_in(role).await;
        let csrf = app.csrf(&cookie).await;
        for spec in &specs {
            if spec.path == "/logout" {
                continue;
            }
            let path = spec.path.replace("{id}", &patient_id);
            let res = if spec.method == Method::GET {
                app.send(get(&path, Some(&cookie))).await
            } else {
                app.post_form(&path, &cookie, &[("csrf", &csrf)]).await
            };
            let allowed = role.may(spec.area);
            let status = res.status();
            if allowed {
                assert_ne!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{role} should reach {} {}",
                    spec.method,
                    spec.path
                );
                assert!(
                    status.as_u16() < 500,
                    "{} {} gave {status}",
                    spec.method,
                    spec.path
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{role} must not reach {} {}",
                    spec.method,
                    spec.path
                );
            }
        }
    }
    // Every refusal is in the audit trail with the role that tried.
    let (denied, _) = app
        .db
        .audit_events(&app.org_id, &AuditFilter::default(), 0, 10_000)
        .await
        .unwrap();
    let refusals = denied
        .iter()
        .filter(|e| {
            e.entry.outcome == carefront_domain::audit::Outcome::Denied
                && e.entry
                    .detail
                    .as_deref()
                    .is_some_and(|d| d.contains("not permitted"))
        })
        .count();
    let expected: usize = Role::ALL
        .iter()
        .map(|r| {
            specs
                .iter()
                .filter(|s| s.path != "/logout" && !r.may(s.area))
                .count()
        })
        .sum();
    assert_eq!(refusals, expected);
}

#[tokio::test]
async fn pages_need_a_session() {
    let app = TestApp::new().await;
    let res = app.send(get("/patients?q=a", None)).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/login?next=%2Fpatients%3Fq%3Da");
    let res = app.send(get("/today", Some("cf_session=forged.0000000000000000000000000000000000000000000000000000000000000000"))).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn forms_without_the_session_csrf_token_change_nothing() {
    let app = TestApp::new().await;
    let cookie = app.sign_in(Role::Admin).await;
    let users_before = app.db.users(&app.org_id).await.unwrap().len();
    let audit_before = app.audit_count().await;
    let fields = [
        ("username", "newperson"),
        ("display_name", "New Person"),
        ("role", "front_desk"),
        ("password", "a long enough password"),
    ];
    let res = app.post_form("/admin/users", &cookie, &fields).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let mut with_bad = fields.to_vec();
    with_bad.push(("csrf", "0000"));
    let res = app.post_form("/admin/users", &cookie, &with_bad).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // Right token, but sent from another site.
    let csrf = app.csrf(&cookie).await;
    let mut good = fields.to_vec();
    good.push(("csrf", &csrf));
    let res = app
        .send(
            Request::post("/admin/users")
                .header(header::COOKIE, &cookie)
                .header(header::ORIGIN, "https://evil.example")
                .header(header::HOST, "localhost")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form_body(&good)))
                .unwrap(),
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.db.users(&app.org_id).await.unwrap().len(), users_before);
    assert_eq!(app.audit_count().await, audit_before);

    let res = app.post_form("/admin/users", &cookie, &good).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.db.users(&app.org_id).await.unwrap().len(),
        users_before + 1
    );
}

#[tokio::test]
async fn invalid_new_user_names_each_field_and_writes_nothing() {
    let app = TestApp::new().await;
    let cookie = app.sign_in(Role::Admin).await;
    let csrf = app.csrf(&cookie).await;
    let users_before = app.db.users(&app.org_id).await.unwrap().len();
    let audit_before = app.audit_count().await;
    let res = app
        .post_form(
            "/admin/users",
            &cookie,
            &[
                ("csrf", &csrf),
                ("username", "a b"),
                ("display_name", " "),
                ("role", "wizard"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = body_text(res).await;
    for field in [
        "new-username-error",
        "new-display_name-error",
        "new-role-error",
        "new-password-error",
    ] {
        assert!(html.contains(field), "missing error for {field}");
    }
    assert_eq!(app.db.users(&app.org_id).await.unwrap().len(), users_before);
    assert_eq!(app.audit_count().await, audit_before);

    // A taken username is reported on the field too.
    let res = app
        .post_form(
            "/admin/users",
            &cookie,
            &[
                ("csrf", &csrf),
                ("username", "frontdesk"),
                ("display_name", "Dup"),
                ("role", "lead"),
                ("password", "a long enough password"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert!(body_text(res).await.contains("is already taken"));
    assert_eq!(app.db.users(&app.org_id).await.unwrap().len(), users_before);
}

#[tokio::test]
async fn sign_out_ends_the_session_on_the_server() {
    let app = TestApp::new().await;
    let cookie = app.sign_in(Role::Lead).await;
    let csrf = app.csrf(&cookie).await;
    let res = app.post_form("/logout", &cookie, &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/login?signed_out=1");
    // The old cookie, replayed, no longer works.
    let res = app.send(get("/today", Some(&cookie))).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(location(&res).starts_with("/login"));
}

#[tokio::test]
async fn idle_sessions_end_and_say_so() {
    let app = TestApp::with_config(Config {
        idle_timeout_secs: 1,
        ..Config::default()
    })
    .await;
    let cookie = app.sign_in(Role::FrontDesk).await;
    assert_eq!(
        app.send(get("/today", Some(&cookie))).await.status(),
        StatusCode::OK
    );
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let res = app.send(get("/today", Some(&cookie))).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(location(&res).starts_with("/login?expired=1"));
    let expired = AuditFilter {
        action: Some(Action::SessionExpired),
        ..Default::default()
    };
    assert_eq!(
        app.db
            .audit_events(&app.org_id, &expired, 0, 10)
            .await
            .unwrap()
            .1,
        1
    );
    let notice = body_text(app.send(get("/login?expired=1", None)).await).await;
    assert!(
        notice.contains("You were signed out after 1 second without activity."),
        "{notice}"
    );
}

#[tokio::test]
async fn patient_search_audits_every_patient_shown() {
    let app = TestApp::new().await;
    let cookie = app.sign_in(Role::FrontDesk).await;
    let patients = app
        .db
        .search::<carefront_domain::patient::Patient>(
            &app.org_id,
            &[],
            carefront_store::Page {
                offset: 0,
                count: 1,
            },
        )
        .await
        .unwrap()
        .0;
    let family = patients[0].value.family.clone();
    let res = app
        .send(get(
            &format!("/patients?q={}", urlencode(&family)),
            Some(&cookie),
        ))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = body_text(res).await;
    assert!(html.contains(&maud::html! { (family) }.into_string()));
    let filter = AuditFilter {
        action: Some(Action::Search),
        patient_id: Some(patients[0].id.clone()),
        ..Default::default()
    };
    let (events, total) = app
        .db
        .audit_events(&app.org_id, &filter, 0, 10)
        .await
        .unwrap();
    assert_eq!(total, 1);
    assert_eq!(events[0].entry.actor_name, "frontdesk");
    assert_eq!(events[0].entry.role.as_deref(), Some("front_desk"));
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn auditors_filter_and_export_the_log() {
    let app = TestApp::new().await;
    app.try_sign_in("frontdesk", "wrong password here").await;
    let cookie = app.sign_in(Role::Auditor).await;
    let html = body_text(
        app.send(get("/audit?action=sign_in_failed", Some(&cookie)))
            .await,
    )
    .await;
    assert!(html.contains("1 event(s)."), "{html}");
    let res = app
        .send(get("/audit/export.csv?user=frontdesk", Some(&cookie)))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()[header::CONTENT_TYPE],
        "text/csv; charset=utf-8"
    );
    let csv = body_text(res).await;
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("seq,time_utc,user,role,action")
    );
    assert!(csv.contains(",frontdesk,"));
    assert!(csv.contains("sign_in_failed"));
    let exports = AuditFilter {
        action: Some(Action::Export),
        ..Default::default()
    };
    assert_eq!(
        app.db
            .audit_events(&app.org_id, &exports, 0, 10)
            .await
            .unwrap()
            .1,
        1
    );

    let res = app.send(get("/audit?from=yesterday", Some(&cookie))).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body_text(res).await.contains("from: must be a date"));
}

#[tokio::test]
async fn unknown_routes_oversized_bodies_and_ops_endpoints() {
    let app = TestApp::new().await;
    assert_eq!(
        app.send(get("/no/such/page", None)).await.status(),
        StatusCode::NOT_FOUND
    );
    let cookie = app.sign_in(Role::Admin).await;
    let huge = "x".repeat(carefront_server::MAX_BODY_BYTES + 10);
    let res = app
        .post_form(
            "/admin/users",
            &cookie,
            &[("csrf", "x"), ("username", &huge)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        body_text(app.send(get("/healthz", None)).await).await,
        "ok\n"
    );
    assert_eq!(
        app.send(get("/readyz", None)).await.status(),
        StatusCode::OK
    );
    let metrics = body_text(app.send(get("/metrics", None)).await).await;
    assert!(metrics.contains("http_requests_total"));
    assert!(metrics.contains("route=\"/healthz\""));
    let _ = Area::Home;
}

#[tokio::test]
async fn admins_set_registration_rules_and_bad_ones_change_nothing() {
    use carefront_domain::patient::RegistrationRules;
    let app = TestApp::new().await;
    let cookie = app.sign_in(Role::Admin).await;
    let csrf = app.csrf(&cookie).await;
    let before = app.audit_count().await;
    let res = app
        .post_form(
            "/admin/registration",
            &cookie,
            &[
                ("csrf", &csrf),
                ("phone_region", "XX"),
                ("require_email", "on"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body_text(res)
            .await
            .contains("phone region must be a two-letter country code")
    );
    assert_eq!(
        app.db
            .setting::<RegistrationRules>(&app.org_id)
            .await
            .unwrap(),
        RegistrationRules::default()
    );
    assert_eq!(app.audit_count().await, before);

    let res = app
        .post_form(
            "/admin/registration",
            &cookie,
            &[
                ("csrf", &csrf),
                ("phone_region", "ca"),
                ("require_email", "on"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let rules = app
        .db
        .setting::<RegistrationRules>(&app.org_id)
        .await
        .unwrap();
    assert_eq!(
        rules,
        RegistrationRules {
            phone_region: "CA".into(),
            require_phone: false,
            require_email: true,
            require_address: false
        }
    );
    assert_eq!(app.audit_count().await, before + 1);
}
