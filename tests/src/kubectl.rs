//! Running the real kubectl binaries (the versions installed beside `kubectl`) against
//! a test cluster, each run with its own discovery cache.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// Where the versioned kubectl binaries live (`kubectl.1.27` … `kubectl.1.33`).
pub fn binary(minor: u32) -> Result<PathBuf> {
    let name = format!("kubectl.1.{minor}");
    let dirs = ["/usr/lib/google-cloud-sdk/bin", "/usr/bin", "/usr/local/bin"];
    dirs.iter()
        .map(|d| Path::new(d).join(&name))
        .find(|p| p.exists())
        .with_context(|| format!("{name} is not installed (the kubectl package ships kubectl.1.27 … kubectl.1.33)"))
}

/// One kubectl version bound to a kubeconfig, with a private cache directory.
pub struct Kubectl {
    pub bin: PathBuf,
    pub kubeconfig: PathBuf,
    cache: tempfile::TempDir,
}

/// The result of one kubectl run.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Kubectl {
    pub fn new(minor: u32, kubeconfig: PathBuf) -> Result<Self> {
        Ok(Self { bin: binary(minor)?, kubeconfig, cache: tempfile::tempdir()? })
    }

    /// kubectl with `args`, its output piped, ready to spawn.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.cache.path())
            .env("HOME", self.cache.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Runs kubectl to completion (60 s at most), feeding `stdin` if given.
    pub async fn run(&self, args: &[&str], stdin: Option<&str>) -> Result<Output> {
        use tokio::io::AsyncWriteExt;
        let mut child = self.command(args).spawn()?;
        let mut input = child.stdin.take().context("stdin")?;
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).await?;
        }
        drop(input);
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .with_context(|| format!("kubectl {args:?} did not finish in 60 s"))??;
        Ok(Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Runs kubectl and requires success; returns stdout.
    pub async fn ok(&self, args: &[&str]) -> Result<String> {
        self.ok_with(args, None).await
    }

    pub async fn ok_with(&self, args: &[&str], stdin: Option<&str>) -> Result<String> {
        let out = self.run(args, stdin).await?;
        if out.code != 0 {
            bail!("kubectl {args:?} exited {}: {}{}", out.code, out.stdout, out.stderr);
        }
        Ok(out.stdout)
    }

    /// Starts a long-running kubectl (e.g. `get -w`); lines of its stdout arrive on
    /// the returned reader.
    pub fn spawn(
        &self,
        args: &[&str],
    ) -> Result<(tokio::process::Child, tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>)> {
        use tokio::io::AsyncBufReadExt;
        let mut child = self.command(args).spawn()?;
        let out = child.stdout.take().context("stdout")?;
        Ok((child, tokio::io::BufReader::new(out).lines()))
    }
}
