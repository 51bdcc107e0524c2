//! Load drivers: many concurrent clients, latencies per request.

use crate::Args;
use crate::dataset::Dataset;
use crate::server::Server;
use anyhow::{Context, Result, bail};
use carefront_synth::PatientGenerator;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Default, Clone)]
pub struct Figures {
    pub requests: u64,
    pub errors: u64,
    pub elapsed: Duration,
    latencies_us: Vec<u64>,
}

impl Figures {
    pub fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
        sorted[rank] as f64 / 1000.0
    }
}

/// Signs in through the form, as a browser does; returns the cookie header.
async fn sign_in(
    client: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
) -> Result<String> {
    let page = client.get(format!("{base}/login")).send().await?;
    let login_cookie = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("cf_login_csrf="))
        .and_then(|v| v.split(';').next())
        .context("no sign-in cookie")?
        .to_string();
    let html = page.text().await?;
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).context("no csrf field")? + marker.len();
    let csrf = &html[start..start + 64];
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("csrf", csrf)
        .append_pair("username", username)
        .append_pair("password", password)
        .finish();
    let res = client
        .post(format!("{base}/login"))
        .header("cookie", login_cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await?;
    let session = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("cf_session="))
        .and_then(|v| v.split(';').next())
        .context("sign-in failed")?
        .to_string();
    Ok(session)
}

/// Runs `clients` loops for `seconds`, each issuing GETs for the paths that
/// `path_for(client, i)` names.
async fn drive(
    client: reqwest::Client,
    base: &str,
    cookie: &str,
    args: &Args,
    path_for: Arc<dyn Fn(usize, u64) -> String + Send + Sync>,
) -> Result<Figures> {
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let (client, base, cookie, path_for) = (
            client.clone(),
            base.to_string(),
            cookie.to_string(),
            path_for.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut f = Figures::default();
            let mut i = 0u64;
            while Instant::now() < deadline {
                let url = format!("{base}{}", path_for(c, i));
                let t = Instant::now();
                let ok = match client.get(&url).header("cookie", &cookie).send().await {
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                f.latencies_us.push(t.elapsed().as_micros() as u64);
                f.requests += 1;
                f.errors += u64::from(!ok);
                i += 1;
            }
            f
        }));
    }
    let mut total = Figures::default();
    for t in tasks {
        let f = t.await?;
        total.requests += f.requests;
        total.errors += f.errors;
        total.latencies_us.extend(f.latencies_us);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

/// The front desk's search box, with family names of generated patients.
pub async fn patient_search(server: &Server, data: &Dataset, args: &Args) -> Result<Figures> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let staff = carefront_synth::demo_clinic(args.seed).staff;
    let desk = staff
        .iter()
        .find(|s| s.role == carefront_domain::Role::FrontDesk)
        .context("no front desk user in the demo clinic")?;
    let cookie = sign_in(&client, &server.base, &desk.username, &desk.password).await?;
    let generator = PatientGenerator::new(args.seed);
    let size = args.size.max(1);
    let path_for = Arc::new(move |c: usize, i: u64| {
        let index = (i.wrapping_mul(7919) + c as u64 * 104_729) % size;
        let p = generator.patient(index);
        let q: String = form_urlencoded::byte_serialize(p.family.as_bytes()).collect();
        format!("/patients?q={q}")
    });
    let figures = drive(client, &server.base, &cookie, args, path_for).await?;
    if figures.requests == 0 {
        bail!("no request completed against {}", data.display);
    }
    Ok(figures)
}
