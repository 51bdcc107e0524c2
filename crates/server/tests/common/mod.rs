//! Test harness: a fresh database of the backend under test (SQLite, or
//! PostgreSQL when CAREFRONT_TEST_POSTGRES is set) with the demo clinic, and
//! the router, callable in-process or served on a real port.
#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use carefront_domain::Role;
use carefront_server::{AppState, Config, demo, router};
use carefront_store::Db;
use carefront_synth::DemoStaff;
use http_body_util::BodyExt;
use tower::ServiceExt;

pub struct TestApp {
    pub db: Db,
    pub url: String,
    pub org_id: String,
    pub staff: Vec<DemoStaff>,
    pub state: AppState,
    pub app: Router,
}

impl TestApp {
    pub async fn new() -> TestApp {
        Self::with_config(Config::default()).await
    }

    pub async fn with_config(config: Config) -> TestApp {
        let (db, url) = carefront_store::testing::fresh_database().await.unwrap();
        let (org_id, staff) = demo::seed_clinic(&db, demo::DEFAULT_SEED).await.unwrap();
        demo::add_patients(&db, &org_id, demo::DEFAULT_SEED, 40, |_| {})
            .await
            .unwrap();
        let state = AppState::new(db.clone(), config);
        let app = router(state.clone());
        TestApp {
            db,
            url,
            org_id,
            staff,
            state,
            app,
        }
    }

    pub fn staff(&self, role: Role) -> &DemoStaff {
        self.staff.iter().find(|s| s.role == role).unwrap()
    }

    pub async fn send(&self, req: Request<Body>) -> Response<Body> {
        self.app.clone().oneshot(req).await.unwrap()
    }

    /// Serves the app on 127.0.0.1 with an ephemeral port; returns the base URL.
    pub async fn spawn(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = self.state.clone();
        tokio::spawn(async move { carefront_server::serve(listener, state).await.unwrap() });
        format!("http://{addr}")
    }

    /// Signs in through the form like a browser; returns the session cookie.
    pub async fn sign_in(&self, role: Role) -> String {
        let s = self.staff(role).clone();
        let (status, cookie) = self.try_sign_in(&s.username, &s.password).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "sign-in as {role} failed");
        cookie.expect("a session cookie")
    }

    /// Returns the status and, on success, the `cf_session=...` cookie pair.
    pub async fn try_sign_in(
        &self,
        username: &str,
        password: &str,
    ) -> (StatusCode, Option<String>) {
        let page = self.send(get("/login", None)).await;
        let login_cookie = set_cookie(&page, "cf_login_csrf").unwrap();
        let html = body_text(page).await;
        let csrf = hidden_value(&html, "csrf").unwrap();
        let form = form_body(&[
            ("csrf", &csrf),
            ("username", username),
            ("password", password),
            ("next", "/"),
        ]);
        let res = self
            .send(
                Request::post("/login")
                    .header(header::COOKIE, login_cookie)
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from(form))
                    .unwrap(),
            )
            .await;
        (res.status(), set_cookie(&res, "cf_session"))
    }

    /// The CSRF token of a signed-in session, read from a page's forms.
    pub async fn csrf(&self, cookie: &str) -> String {
        let html = body_text(self.send(get("/", Some(cookie))).await).await;
        hidden_value(&html, "csrf").unwrap()
    }

    pub async fn post_form(
        &self,
        path: &str,
        cookie: &str,
        fields: &[(&str, &str)],
    ) -> Response<Body> {
        self.send(
            Request::post(path)
                .header(header::COOKIE, cookie)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form_body(fields)))
                .unwrap(),
        )
        .await
    }

    pub async fn audit_count(&self) -> i64 {
        self.db
            .audit_events(&self.org_id, &Default::default(), 0, 1)
            .await
            .unwrap()
            .1
    }
}

pub fn get(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::empty()).unwrap()
}

pub fn form_body(fields: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        s.append_pair(k, v);
    }
    s.finish()
}

/// The `name=value` pair of a Set-Cookie header.
pub fn set_cookie(res: &Response<Body>, name: &str) -> Option<String> {
    res.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().to_string())
        .find(|pair| pair.starts_with(&format!("{name}=")) && pair.len() > name.len() + 1)
}

pub async fn body_text(res: Response<Body>) -> String {
    String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

pub fn hidden_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

pub fn location(res: &Response<Body>) -> String {
    res.headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Calling the FHIR API in-process with bearer tokens.
pub mod fhir_api {
    use super::TestApp;
    use axum::body::Body;
    use axum::http::{Method, Request, Response, StatusCode, header};
    use carefront_domain::Role;
    use carefront_domain::audit::{Action, AuditEntry, AuditEvent, Outcome};
    use carefront_server::auth::issue_token;
    use carefront_store::AuditFilter;
    use http_body_util::BodyExt;
    use serde_json::Value;

    pub const BASE: &str = "/fhir/R4";

    /// A bearer token for `role`, named `{role}-client` (audited as
    /// `token:{role}-client`).
    pub async fn token(app: &TestApp, role: Role) -> String {
        let creator = AuditEntry::new("system", Action::TokenCreate, Outcome::Success);
        let name = format!("{role}-client");
        issue_token(&app.db, &app.org_id, &name, role, creator)
            .await
            .unwrap()
            .1
    }

    pub struct Call {
        pub method: Method,
        pub path: String,
        pub token: Option<String>,
        pub headers: Vec<(header::HeaderName, String)>,
        pub body: Option<String>,
    }

    /// A request to `BASE` + `path`.
    pub fn call(method: Method, path: &str, token: &str) -> Call {
        Call {
            method,
            path: format!("{BASE}{path}"),
            token: Some(token.to_string()),
            headers: Vec::new(),
            body: None,
        }
    }

    impl Call {
        pub fn json(mut self, body: &Value) -> Self {
            self.body = Some(body.to_string());
            self.header(header::CONTENT_TYPE, "application/fhir+json")
        }

        pub fn header(mut self, name: header::HeaderName, value: &str) -> Self {
            self.headers.push((name, value.to_string()));
            self
        }

        pub fn request(self) -> Request<Body> {
            let mut b = Request::builder().method(self.method).uri(self.path);
            if let Some(t) = self.token {
                b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
            }
            for (name, value) in self.headers {
                b = b.header(name, value);
            }
            b.body(self.body.map(Body::from).unwrap_or_default())
                .unwrap()
        }
    }

    pub struct Answer {
        pub status: StatusCode,
        pub headers: header::HeaderMap,
        pub body: Value,
    }

    impl Answer {
        pub fn header(&self, name: header::HeaderName) -> &str {
            self.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
        }

        /// The OperationOutcome's first issue as (code, expression).
        pub fn issue(&self) -> (&str, &str) {
            assert_eq!(
                self.body["resourceType"], "OperationOutcome",
                "{}",
                self.body
            );
            let issue = &self.body["issue"][0];
            (
                issue["code"].as_str().unwrap(),
                issue["expression"][0].as_str().unwrap_or_default(),
            )
        }

        /// Every issue's expression.
        pub fn expressions(&self) -> Vec<&str> {
            self.body["issue"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|i| i["expression"][0].as_str())
                .collect()
        }

        /// A Bundle link's URL, relative to `BASE`.
        pub fn link(&self, relation: &str) -> Option<String> {
            let links = self.body["link"].as_array()?;
            let link = links.iter().find(|l| l["relation"] == relation)?;
            let url = link["url"].as_str()?;
            Some(url[url.find(BASE).unwrap() + BASE.len()..].to_string())
        }

        /// The ids of a Bundle's resources, in order.
        pub fn ids(&self) -> Vec<String> {
            self.body["entry"]
                .as_array()
                .map(|entries| {
                    entries
                        .iter()
                        .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
                        .collect()
                })
                .unwrap_or_default()
        }
    }

    pub async fn answer(res: Response<Body>) -> Answer {
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn send(app: &TestApp, c: Call) -> Answer {
        answer(app.send(c.request()).await).await
    }

    pub async fn get_as(app: &TestApp, token: &str, path: &str) -> Answer {
        send(app, call(Method::GET, path, token)).await
    }

    pub async fn audit_events(app: &TestApp, filter: AuditFilter) -> Vec<AuditEvent> {
        app.db
            .audit_events(&app.org_id, &filter, 0, 10_000)
            .await
            .unwrap()
            .0
    }
}
