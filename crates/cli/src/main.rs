//! `carefront`: the one binary. Serves the staff web app and the FHIR API,
//! and administers the database from the command line.

use anyhow::{Context, Result, anyhow, bail};
use carefront_domain::Role;
use carefront_domain::audit::{Action, AuditEntry, Outcome};
use carefront_domain::directory::Organization;
use carefront_domain::security::{check_password, check_username};
use carefront_server::auth::{hash_password, issue_token, random_secret};
use carefront_server::{AppState, Config, demo};
use carefront_store::{Db, NewUser, new_id};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::BufRead;
use std::process::ExitCode;

// glibc's malloc took a third of the server's CPU under load; with the
// "override" feature mimalloc also serves SQLite's allocations.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its stable option numbering; the
/// binding names no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// A server frees and reuses megabytes with every slot search. Handed back
/// to the system a second later (mimalloc's purge: `madvise`, then page
/// faults to take them again), they cost searches stalls of tens of
/// milliseconds now and then; `serve` keeps what it freed for reuse, so its
/// memory stays at its busiest level.
fn keep_freed_memory() {
    // SAFETY: sets a plain option; mimalloc reads options atomically.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

mod import;

#[derive(Parser)]
#[command(
    name = "carefront",
    version,
    about = "Carefront: the clinic front office in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct DbArgs {
    /// sqlite://FILE (embedded, the default) or postgres://USER@HOST/DB
    #[arg(
        long = "database",
        env = "CAREFRONT_DATABASE_URL",
        default_value = "sqlite://carefront.db"
    )]
    url: String,
}

#[derive(Args, Clone)]
struct OrgArg {
    /// Organization id; may be left out when the database holds one organization.
    #[arg(long)]
    org: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the staff web application and the FHIR API (applies migrations first).
    Serve {
        #[command(flatten)]
        db: DbArgs,
        /// Address to listen on.
        #[arg(long, env = "CAREFRONT_LISTEN", default_value = "127.0.0.1:8080")]
        listen: String,
        /// Seed the demo clinic if the database has no organization yet.
        #[arg(long)]
        demo: bool,
        /// Minutes without activity after which staff are signed out.
        #[arg(long, env = "CAREFRONT_IDLE_TIMEOUT_SECS", default_value_t = 900)]
        idle_timeout_secs: i64,
        /// Failed sign-ins in a row that lock an account.
        #[arg(long, env = "CAREFRONT_LOCKOUT_FAILURES", default_value_t = 5)]
        lockout_failures: u32,
        /// How long a locked account stays locked.
        #[arg(long, env = "CAREFRONT_LOCKOUT_SECS", default_value_t = 900)]
        lockout_secs: i64,
        /// Mark cookies Secure (set when users reach Carefront over HTTPS).
        #[arg(long, env = "CAREFRONT_SECURE_COOKIES")]
        secure_cookies: bool,
        /// Seconds without a touch after which a self check-in kiosk goes
        /// back to its start screen, forgetting what was entered.
        #[arg(long, env = "CAREFRONT_KIOSK_IDLE_SECS", default_value_t = carefront_domain::visit::DEFAULT_KIOSK_IDLE_SECONDS)]
        kiosk_idle_secs: i64,
    },
    /// Apply database migrations.
    Migrate {
        #[command(flatten)]
        db: DbArgs,
    },
    /// Create an organization (a clinic or practice).
    Org {
        #[command(subcommand)]
        command: OrgCommand,
    },
    /// Manage staff users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage API bearer tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Inspect the audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Import data from files (patients from CSV or FHIR).
    Import {
        #[command(subcommand)]
        command: import::ImportCommand,
    },
    /// Add generated (synthetic) demo data.
    Demo {
        #[command(flatten)]
        db: DbArgs,
        /// Patients to add.
        #[arg(long, default_value_t = demo::DEFAULT_PATIENTS)]
        patients: u64,
        /// Seed for the generator: the same seed gives the same data.
        #[arg(long, default_value_t = demo::DEFAULT_SEED)]
        seed: u64,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    Create {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        name: String,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a staff user. Without --password-stdin a random password is printed.
    Add {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        org: OrgArg,
        #[arg(long)]
        username: String,
        /// front_desk, lead, clinician, billing, admin or auditor
        #[arg(long)]
        role: Role,
        /// Full name shown in the app; defaults to the username.
        #[arg(long)]
        display_name: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token; the token is the last line printed (shown only once).
    Create {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        org: OrgArg,
        #[arg(long)]
        name: String,
        #[arg(long)]
        role: Role,
    },
    /// Revoke a token by its id, or every live token with this name.
    Revoke {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        org: OrgArg,
        id_or_name: String,
    },
    /// List tokens.
    List {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        org: OrgArg,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify the hash chain: exit 0 with the count when intact.
    Verify {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        org: OrgArg,
    },
}

/// Exit code when `audit verify` finds a broken chain.
const EXIT_CHAIN_BROKEN: u8 = 3;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            // One line naming what was wrong, instead of clap's full usage.
            let rendered = e.to_string();
            let reason = rendered.lines().next().unwrap_or("invalid arguments");
            eprintln!("{reason} (see `carefront --help`)");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAREFRONT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("CAREFRONT_LOG_FORMAT").is_ok_and(|f| f == "json") {
        logs.json().init();
    } else {
        logs.init();
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn open(db: &DbArgs) -> Result<Db> {
    let conn = Db::connect(&db.url)
        .await
        .with_context(|| format!("cannot open database {}", redact(&db.url)))?;
    conn.migrate().await.context("cannot apply migrations")?;
    // Shown only when this build's search keys differ from the stored ones.
    let bar = ProgressBar::hidden().with_style(patients_bar_style());
    bar.set_message("indexing");
    let rebuilt = conn
        .rebuild_stale_keys(|done, total| {
            if bar.is_hidden() {
                bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(4));
            }
            bar.set_length(total);
            bar.set_position(done);
        })
        .await
        .context("cannot rebuild the search index")?;
    bar.finish_and_clear();
    if rebuilt > 0 {
        tracing::info!(
            records = rebuilt,
            "search index rebuilt for this build's rules"
        );
    }
    Ok(conn)
}

/// Hides a password in a database URL before it is printed.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}://{user}:***{}", &url[..scheme], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

async fn org_id(db: &Db, chosen: &OrgArg) -> Result<String> {
    let orgs = db.organizations().await?;
    match (&chosen.org, orgs.as_slice()) {
        (Some(id), _) => orgs
            .iter()
            .find(|(o, _)| o == id)
            .map(|(o, _)| o.clone())
            .ok_or_else(|| anyhow!("no organization with id {id}")),
        (None, [(only, _)]) => Ok(only.clone()),
        (None, []) => bail!(
            "the database has no organization yet: run `carefront org create --name NAME` or `carefront demo`"
        ),
        (None, _) => bail!(
            "the database holds several organizations; choose one with --org ({})",
            orgs.iter()
                .map(|(id, name)| format!("{id} = {name}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn system(action: Action) -> AuditEntry {
    AuditEntry::new("system", action, Outcome::Success).detail("carefront command line")
}

fn print_sign_ins(staff: &[carefront_synth::DemoStaff]) {
    println!("Demo sign-ins (synthetic clinic; passwords are for the demo only):");
    for s in staff {
        println!(
            "  {:<11} {:<24} password: {}",
            s.role.code(),
            s.username,
            s.password
        );
    }
}

async fn seed_demo(
    db: &Db,
    seed: u64,
    patients: u64,
) -> Result<(String, Vec<carefront_synth::DemoStaff>)> {
    let (org_id, staff) = demo::seed_clinic(db, seed).await?;
    add_patients(db, &org_id, seed, patients).await?;
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template(
            "{msg:>10} [{bar:40}] {pos}/{len} appointments ({per_sec}, {eta} left)",
        )
        .expect("the template is valid")
        .progress_chars("=> "),
    );
    bar.set_message("booking");
    demo::seed_schedule(db, &org_id, seed, jiff::Timestamp::now(), |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .await?;
    bar.finish_with_message("done");
    Ok((org_id, staff))
}

fn patients_bar_style() -> ProgressStyle {
    ProgressStyle::with_template(
        "{msg:>10} [{bar:40}] {pos}/{len} patients ({per_sec}, {eta} left)",
    )
    .expect("the template is valid")
    .progress_chars("=> ")
}

async fn add_patients(db: &Db, org_id: &str, seed: u64, patients: u64) -> Result<()> {
    let bar = ProgressBar::new(patients).with_style(patients_bar_style());
    bar.set_message("generating");
    demo::add_patients(db, org_id, seed, patients, |n| bar.set_position(n)).await?;
    bar.finish_with_message("done");
    Ok(())
}

async fn run(command: Command) -> Result<ExitCode> {
    match command {
        Command::Serve {
            db,
            listen,
            demo: with_demo,
            idle_timeout_secs,
            lockout_failures,
            lockout_secs,
            secure_cookies,
            kiosk_idle_secs,
        } => {
            if idle_timeout_secs < 1 {
                bail!("--idle-timeout-secs must be at least 1");
            }
            if kiosk_idle_secs < 10 {
                bail!("--kiosk-idle-secs must be at least 10");
            }
            keep_freed_memory();
            let conn = open(&db).await?;
            if with_demo {
                if conn.organizations().await?.is_empty() {
                    let (_, staff) =
                        seed_demo(&conn, demo::DEFAULT_SEED, demo::DEFAULT_PATIENTS).await?;
                    print_sign_ins(&staff);
                } else {
                    println!(
                        "The database already holds an organization; the demo clinic was not seeded again."
                    );
                    print_sign_ins(&carefront_synth::demo_clinic(demo::DEFAULT_SEED).staff);
                }
            }
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            let addr = listener.local_addr()?;
            println!(
                "Carefront is serving http://{addr}/ (database {})",
                redact(&db.url)
            );
            let config = Config {
                idle_timeout_secs,
                lockout: carefront_domain::security::LockoutPolicy {
                    max_failures: lockout_failures,
                    lock_seconds: lockout_secs,
                },
                secure_cookies,
                kiosk_idle_secs,
            };
            carefront_server::serve(listener, AppState::new(conn, config)).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate { db } => {
            open(&db).await?;
            println!("Migrations applied to {}", redact(&db.url));
            Ok(ExitCode::SUCCESS)
        }
        Command::Org {
            command: OrgCommand::Create { db, name },
        } => {
            let conn = open(&db).await?;
            let org = Organization {
                name,
                phone: None,
                address: None,
                active: true,
            }
            .validate()?;
            let id = new_id();
            let mut tx = conn.begin(&id).await?;
            tx.create(&id, &org, "system").await?;
            let payers = tx.seed_payers("system").await?;
            tx.audit(
                system(Action::Create)
                    .resource("Organization", Some(&id))
                    .detail(format!(
                        "carefront command line; {payers} common payers seeded"
                    )),
            )
            .await?;
            tx.commit().await?;
            println!("{id}");
            Ok(ExitCode::SUCCESS)
        }
        Command::User {
            command:
                UserCommand::Add {
                    db,
                    org,
                    username,
                    role,
                    display_name,
                    password_stdin,
                },
        } => {
            let username = check_username(&username)?;
            let (password, generated) = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("cannot read the password from standard input")?;
                (line.trim_end_matches(['\r', '\n']).to_string(), false)
            } else {
                (random_secret()[..20].to_string(), true)
            };
            check_password(&password)?;
            let conn = open(&db).await?;
            let org_id = org_id(&conn, &org).await?;
            let user = NewUser {
                display_name: display_name.unwrap_or_else(|| username.clone()),
                username,
                role,
                password_hash: hash_password(&password),
            };
            let mut tx = conn.begin(&org_id).await?;
            let created = tx.create_user(&new_id(), &user).await?;
            tx.audit(
                system(Action::UserCreate)
                    .resource("User", Some(&created.id))
                    .detail(format!("added {} as {role}", created.username)),
            )
            .await?;
            tx.commit().await?;
            println!("Created user {} ({})", created.username, role.label());
            if generated {
                println!("Initial password: {password}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Token { command } => token(command).await,
        Command::Import { command } => import::run(command).await,
        Command::Audit {
            command: AuditCommand::Verify { db, org },
        } => {
            let conn = open(&db).await?;
            let org_id = org_id(&conn, &org).await?;
            let spinner = ProgressBar::new_spinner();
            let result = conn
                .verify_audit_chain(&org_id, |n| {
                    spinner.set_message(format!("{n} events verified"))
                })
                .await?;
            spinner.finish_and_clear();
            match result {
                Ok(stats) => {
                    println!("Audit chain intact: {} events verified.", stats.verified);
                    Ok(ExitCode::SUCCESS)
                }
                Err(brk) => {
                    println!("Audit chain BROKEN at event {}: {}", brk.seq, brk.reason);
                    Ok(ExitCode::from(EXIT_CHAIN_BROKEN))
                }
            }
        }
        Command::Demo { db, patients, seed } => {
            let conn = open(&db).await?;
            if conn.organizations().await?.is_empty() {
                let (_, staff) = seed_demo(&conn, seed, patients).await?;
                print_sign_ins(&staff);
            } else {
                let org_id = org_id(&conn, &OrgArg { org: None }).await?;
                add_patients(&conn, &org_id, seed, patients).await?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn token(command: TokenCommand) -> Result<ExitCode> {
    match command {
        TokenCommand::Create {
            db,
            org,
            name,
            role,
        } => {
            let name = name.trim().to_string();
            if name.is_empty() || name.len() > 100 {
                bail!("--name must be 1 to 100 characters");
            }
            let conn = open(&db).await?;
            let org_id = org_id(&conn, &org).await?;
            let (token, secret) =
                issue_token(&conn, &org_id, &name, role, system(Action::TokenCreate)).await?;
            println!(
                "Token {} created for role {} (id {}). It is shown only once:",
                token.name, role, token.id
            );
            println!("{secret}");
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::Revoke {
            db,
            org,
            id_or_name,
        } => {
            let conn = open(&db).await?;
            let org_id = org_id(&conn, &org).await?;
            let mut tx = conn.begin(&org_id).await?;
            let revoked = tx.revoke_tokens(&id_or_name).await?;
            if revoked == 0 {
                bail!("no live token has the id or name '{id_or_name}'");
            }
            tx.audit(system(Action::TokenRevoke).resource("ApiToken", Some(&id_or_name)))
                .await?;
            tx.commit().await?;
            println!("Revoked {revoked} token(s).");
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::List { db, org } => {
            let conn = open(&db).await?;
            let org_id = org_id(&conn, &org).await?;
            for t in conn.tokens(&org_id).await? {
                let status = if t.revoked_at_us.is_some() {
                    "revoked"
                } else {
                    "live"
                };
                println!("{}  {:<24} {:<11} {status}", t.id, t.name, t.role.code());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The option number is mimalloc's purge delay (its default is a
    /// second), and `serve` turns purging off.
    #[test]
    fn serve_keeps_freed_memory() {
        // SAFETY: reads a plain option.
        let read = || unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(read(), 1000);
        }
        keep_freed_memory();
        assert_eq!(read(), -1);
    }
}
