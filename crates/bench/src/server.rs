//! A real `carefront serve` process for the duration of a scenario.

use anyhow::{Context, Result, bail};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct Server {
    child: Child,
    pub base: String,
}

/// The `carefront` binary beside this one, built first if it is missing.
pub fn carefront_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("the harness has no directory")?;
    let bin = dir.join("carefront");
    if !bin.exists() {
        let profile = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "-p", "carefront"]);
        if profile == "release" {
            build.arg("--release");
        }
        if !build.status()?.success() {
            bail!("building the carefront binary failed");
        }
    }
    Ok(bin)
}

impl Server {
    pub async fn start(database_url: &str) -> Result<Server> {
        let mut child = Command::new(carefront_binary()?)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database",
                database_url,
            ])
            .env("CAREFRONT_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("cannot start carefront serve")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let base = tokio::task::spawn_blocking(move || -> Result<String> {
            for line in BufReader::new(stdout).lines() {
                let line = line?;
                if let Some(rest) = line.strip_prefix("Carefront is serving ") {
                    let url = rest.split_whitespace().next().unwrap_or_default();
                    return Ok(url.trim_end_matches('/').to_string());
                }
            }
            bail!("carefront serve exited before it was ready")
        })
        .await??;
        Ok(Server { child, base })
    }

    /// `n` servers on one database, as behind a load balancer; none is
    /// left running when one fails to start.
    pub async fn start_several(database_url: &str, n: usize) -> Result<Vec<Server>> {
        let mut servers = Vec::with_capacity(n);
        for _ in 0..n {
            match Server::start(database_url).await {
                Ok(s) => servers.push(s),
                Err(e) => {
                    for s in servers {
                        let _ = s.stop().await;
                    }
                    return Err(e);
                }
            }
        }
        Ok(servers)
    }

    /// CPU time the server has used so far (`None` off Linux).
    pub fn cpu_seconds(&self) -> Option<f64> {
        process_cpu_seconds(self.child.id())
    }

    /// Stops the server; returns its peak resident set size in bytes.
    pub async fn stop(mut self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let peak_kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        self.child.kill()?;
        self.child.wait()?;
        Ok(peak_kib * 1024)
    }
}

/// A process's CPU time (user and system) from `/proc/<pid>/stat`, in
/// seconds; `None` where there is no such file. The times are in clock
/// ticks of `USER_HZ`, which Linux fixes at 100 for user space.
pub fn process_cpu_seconds(pid: u32) -> Option<f64> {
    const USER_HZ: f64 = 100.0;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: count fields after its ')'.
    let (_, after_name) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

#[cfg(test)]
mod tests {
    use super::process_cpu_seconds;

    #[test]
    fn own_cpu_time_grows_with_work() {
        let Some(before) = process_cpu_seconds(std::process::id()) else {
            return; // not Linux
        };
        let mut x = 0u64;
        let spin = std::time::Instant::now();
        while spin.elapsed() < std::time::Duration::from_millis(150) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let after = process_cpu_seconds(std::process::id()).unwrap_or(before);
        assert!(after > before, "CPU time {before} s did not grow ({x})");
    }
}
