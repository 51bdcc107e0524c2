//! The `carefront` command, run as a real process against the backend under
//! test (SQLite, or PostgreSQL with CAREFRONT_TEST_POSTGRES).

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn carefront(args: &[&str], url: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_carefront"))
        .args(args)
        .env("CAREFRONT_DATABASE_URL", url)
        .env("CAREFRONT_LOG", "warn")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

async fn fresh_url() -> String {
    carefront_store::testing::fresh_url().await.unwrap()
}

#[tokio::test]
async fn help_lists_every_subcommand() {
    let out = carefront(&["--help"], "sqlite://unused.db");
    assert!(out.status.success());
    let text = stdout(&out);
    for sub in ["serve", "migrate", "user", "token", "audit", "demo"] {
        assert!(text.contains(sub), "--help does not list {sub}");
    }
}

#[tokio::test]
async fn bad_arguments_fail_with_one_line_naming_the_problem() {
    let url = fresh_url().await;
    let out = carefront(
        &["user", "add", "--username", "x1", "--role", "wizard"],
        &url,
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("wizard"));
    let out = carefront(&["serve", "--frobnicate"], &url);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--frobnicate"));
}

#[tokio::test]
async fn users_tokens_and_audit_verification_from_the_command_line() {
    let url = fresh_url().await;
    // No organization yet: a clear error, nothing created.
    let out = carefront(
        &["token", "create", "--name", "ehr", "--role", "admin"],
        &url,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no organization"));

    let out = carefront(
        &["org", "create", "--name", "Riverside Family Practice"],
        &url,
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let mut child = Command::new(env!("CARGO_BIN_EXE_carefront"))
        .args([
            "user",
            "add",
            "--username",
            "Maria.Lopez",
            "--role",
            "front_desk",
            "--password-stdin",
        ])
        .env("CAREFRONT_DATABASE_URL", &url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a sufficiently long password\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("maria.lopez"));

    let out = carefront(
        &["user", "add", "--username", "maria.lopez", "--role", "lead"],
        &url,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("taken"));

    let out = carefront(
        &["token", "create", "--name", "ehr", "--role", "admin"],
        &url,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).trim().lines().last().unwrap().to_string();
    assert!(token.starts_with("cft_"));

    let out = carefront(&["token", "revoke", "ehr"], &url);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&carefront(&["token", "list"], &url)).contains("revoked"));

    let out = carefront(&["audit", "verify"], &url);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("intact: 4 events"),
        "{}",
        stdout(&out)
    );

    // Tamper with the trail directly in the database.
    let db = carefront_store::Db::connect(&url).await.unwrap();
    db.execute_unchecked("UPDATE audit_events SET detail = 'nothing to see' WHERE seq = 2")
        .await
        .unwrap();
    let out = carefront(&["audit", "verify"], &url);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stdout(&out).contains("BROKEN at event 2"),
        "{}",
        stdout(&out)
    );
}

#[tokio::test]
async fn demo_adds_patients_deterministically_and_migrate_is_repeatable() {
    let url = fresh_url().await;
    for _ in 0..2 {
        let out = carefront(&["migrate"], &url);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let out = carefront(&["demo", "--patients", "30", "--seed", "7"], &url);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("frontdesk"));
    let out = carefront(&["demo", "--patients", "20", "--seed", "7"], &url);
    assert!(out.status.success(), "{}", stderr(&out));
    let db = carefront_store::Db::connect(&url).await.unwrap();
    let org_id = db.organizations().await.unwrap()[0].0.clone();
    let (_, total) = db
        .search::<carefront_domain::patient::Patient>(
            &org_id,
            &[],
            carefront_store::Page {
                offset: 0,
                count: 0,
            },
        )
        .await
        .unwrap();
    assert_eq!(total, 50);

    // The demo clinic opens with its appointment book filled: every
    // provider has templates, and visits lie before and after now, all
    // within the database's claims.
    let templates = db.templates(&org_id, None).await.unwrap();
    let practitioners = carefront_synth::demo_clinic(7).practitioners.len();
    let with_templates: std::collections::BTreeSet<_> = templates
        .iter()
        .map(|t| t.value.practitioner_id.clone())
        .collect();
    assert_eq!(with_templates.len(), practitioners);
    let now = jiff::Timestamp::now();
    let (past, _) = db
        .appointments(
            &org_id,
            &carefront_store::AppointmentQuery {
                until: Some(now),
                ..Default::default()
            },
            carefront_store::Page {
                offset: 0,
                count: 1,
            },
        )
        .await
        .unwrap();
    let (future, _) = db
        .appointments(
            &org_id,
            &carefront_store::AppointmentQuery {
                from: Some(now),
                ..Default::default()
            },
            carefront_store::Page {
                offset: 0,
                count: 1,
            },
        )
        .await
        .unwrap();
    assert!(!past.is_empty() && !future.is_empty());
    assert_eq!(
        db.check_claims(&org_id).await.unwrap(),
        Vec::<String>::new()
    );
}

/// Minimal HTTP/1.1 GET, enough to probe a served process.
fn http_get(addr: &str, path: &str) -> String {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[tokio::test]
async fn serve_demo_prints_its_address_and_sign_ins_and_answers() {
    use std::io::BufRead;
    let url = fresh_url().await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_carefront"))
        .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
        .env("CAREFRONT_DATABASE_URL", &url)
        .env("CAREFRONT_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    let addr = loop {
        let line = lines.next().expect("serve exited early").unwrap();
        if let Some(rest) = line.strip_prefix("Carefront is serving http://") {
            break rest.split('/').next().unwrap().to_string();
        }
        printed.push(line);
    };
    let _server = KillOnDrop(child);
    assert!(
        printed
            .iter()
            .any(|l| l.contains("frontdesk") && l.contains("password:"))
    );
    assert!(http_get(&addr, "/healthz").ends_with("ok\n"));
    assert!(http_get(&addr, "/readyz").contains("200 OK"));
    assert!(http_get(&addr, "/login").contains("<h1>Sign in</h1>"));
}

/// Stops a served process when the test ends, passed or failed.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
