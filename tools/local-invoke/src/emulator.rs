//! One Runtime Interface Emulator process with one bootstrap, on loopback ports of its own.
//!
//! Lambda's runtime API is what the bootstrap talks to; the emulator adds the invoke endpoint
//! that `sam local invoke` posts to. Each instance is a warm function: invoke it as often as you
//! like, then [`Emulator::stop`] it and read what it printed (the runtime's START/END/REPORT lines
//! and the function's own logs, in order).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::InvokeError;

/// What the invoke endpoint answered: 200 with the function's result (or its `errorType` body
/// when the handler failed), 502 when the bootstrap crashed.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Invocation {
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Why an emulator is not ready.
enum Ready {
    Exited,
    TimedOut,
}

#[derive(Debug)]
pub struct Emulator {
    child: Child,
    invoke_url: String,
    log_path: PathBuf,
    http: reqwest::Client,
}

/// The lowest port the kernel hands out for outgoing connections (Linux's
/// `ip_local_port_range`; 32768 when it cannot be read).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// Two loopback ports that were free a moment ago, different, and below the range the kernel
/// gives outgoing connections: a port picked with `bind(0)` comes from that range, and an outgoing
/// connection (the gateway's, a bootstrap's) could take it before the emulator listens on it.
/// Both are held while the second is picked.
fn free_ports() -> Result<(u16, u16), InvokeError> {
    let high = ephemeral_low().max(12_000);
    let low = high - 10_000;
    let mut seed = u64::from(std::process::id())
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
        | 1;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        low + (seed % u64::from(high - low)) as u16
    };
    let mut held = Vec::new();
    for _ in 0..200 {
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", next())) {
            held.push(listener);
            if let [first, second] = held.as_slice() {
                return Ok((first.local_addr()?.port(), second.local_addr()?.port()));
            }
        }
    }
    Err(InvokeError::Io(std::io::Error::other(
        "no free loopback port below the ephemeral range",
    )))
}

impl Emulator {
    /// Starts `emulator` serving `bootstrap` with exactly `env` (plus Lambda's `PATH` and `TZ`),
    /// writing everything both print to `log_path`.
    pub async fn start(
        emulator: &Path,
        bootstrap: &Path,
        env: &[(String, String)],
        log_path: &Path,
    ) -> Result<Self, InvokeError> {
        if !emulator.is_file() {
            return Err(InvokeError::NoEmulator(emulator.to_owned()));
        }
        if !bootstrap.is_file() {
            return Err(InvokeError::NoBootstrap(bootstrap.to_owned()));
        }
        // Should a port still be taken before the emulator listens on it, the emulator exits at
        // once, and another pair is tried, three times at most.
        for _ in 0..3 {
            let (invoke_port, runtime_port) = free_ports()?;
            let log = std::fs::File::create(log_path)?;
            let child = Command::new(emulator)
                .arg("--runtime-interface-emulator-address")
                .arg(format!("127.0.0.1:{invoke_port}"))
                .arg("--runtime-api-address")
                .arg(format!("127.0.0.1:{runtime_port}"))
                .arg(bootstrap)
                .env_clear()
                .env("PATH", "/usr/local/bin:/usr/bin:/bin")
                .env("TZ", ":UTC")
                .envs(env.iter().map(|(k, v)| (k, v)))
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .kill_on_drop(true)
                .spawn()?;
            let mut emulator = Self {
                child,
                invoke_url: format!(
                    "http://127.0.0.1:{invoke_port}/2015-03-31/functions/function/invocations"
                ),
                log_path: log_path.to_owned(),
                http: reqwest::Client::new(),
            };
            match emulator.wait_ready(invoke_port, 10).await {
                Ok(()) => return Ok(emulator),
                Err(Ready::Exited) => {
                    let printed = std::fs::read_to_string(log_path).unwrap_or_default();
                    if !printed.contains("address already in use") {
                        let start = printed.len().saturating_sub(1_000);
                        let tail = printed.get(start..).unwrap_or(&printed);
                        return Err(InvokeError::Exited(tail.to_owned()));
                    }
                }
                Err(Ready::TimedOut) => return Err(InvokeError::NotReady(10)),
            }
        }
        Err(InvokeError::NotReady(10))
    }

    /// Waits until the invoke endpoint accepts connections, or the emulator exits.
    async fn wait_ready(&mut self, port: u16, seconds: u64) -> Result<(), Ready> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
        while tokio::time::Instant::now() < deadline {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return Err(Ready::Exited);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(Ready::TimedOut)
    }

    /// The bootstrap's process id, once the emulator has started it (at the first invoke).
    pub fn bootstrap_pid(&self) -> Option<u32> {
        let emulator = self.child.id()?;
        let tasks = std::fs::read_dir(format!("/proc/{emulator}/task")).ok()?;
        tasks
            .flatten()
            .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
            .flat_map(|c| c.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .find_map(|pid| pid.parse().ok())
    }

    /// Posts one event, as `sam local invoke -e` does, and waits for the answer.
    pub async fn invoke(&self, event: &[u8]) -> Result<Invocation, InvokeError> {
        let resp = self
            .http
            .post(&self.invoke_url)
            .body(event.to_vec())
            .timeout(Duration::from_secs(60))
            .send()
            .await?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await?.to_vec();
        Ok(Invocation { status, body })
    }

    /// Stops the emulator and its bootstrap and returns everything they printed.
    pub async fn stop(mut self) -> Result<String, InvokeError> {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
        Ok(tokio::fs::read_to_string(&self.log_path).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_ports_differ_and_are_never_ones_the_kernel_gives_outgoing_connections() {
        let low = ephemeral_low();
        for _ in 0..50 {
            let (a, b) = free_ports().unwrap();
            assert_ne!(a, b);
            assert!(a < low && b < low, "{a}, {b} (ephemeral from {low})");
        }
    }
}
