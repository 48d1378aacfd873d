//! Container images for tests, built locally (no registry can be reached): a busybox
//! image from Debian's static busybox, imported with `docker import`.

use anyhow::{Context, Result, bail, ensure};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The busybox image the container tests run: busybox at /bin/busybox with its
/// applets linked (sh, httpd, wget, nc, …).
pub const BUSYBOX: &str = "rk-test-busybox:1";

/// A static busybox binary: `$RK_BUSYBOX`, else Debian's busybox-static, fetched
/// once with `apt-get download` and unpacked into a cache folder under the temp dir.
pub fn busybox_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("RK_BUSYBOX") {
        return Ok(PathBuf::from(path));
    }
    let cache = std::env::temp_dir().join("rk-busybox-static");
    let binary = cache.join("bin/busybox");
    if binary.exists() {
        return Ok(binary);
    }
    let work = std::env::temp_dir().join(format!("rk-busybox-download-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let download = || {
        Command::new("apt-get")
            .args(["download", "busybox-static"])
            .current_dir(&work)
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !download() {
        // A machine whose package lists were never fetched.
        let _ = Command::new("apt-get").arg("update").stdout(Stdio::null()).status();
        ensure!(download(), "cannot fetch busybox-static with apt-get; set RK_BUSYBOX to a static busybox binary");
    }
    let deb = std::fs::read_dir(&work)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .context("apt-get download left no .deb")?;
    let unpacked = work.join("root");
    let status = Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked).status()?;
    ensure!(status.success(), "dpkg-deb -x {} failed", deb.display());
    // Another test process may have won the race; either copy is fine.
    let _ = std::fs::rename(&unpacked, &cache);
    let _ = std::fs::remove_dir_all(&work);
    ensure!(binary.exists(), "busybox-static has no bin/busybox");
    Ok(binary)
}

/// Makes sure [`BUSYBOX`] exists in the local Docker Engine; returns its name.
pub fn ensure_busybox_image() -> Result<&'static str> {
    let present = Command::new("docker")
        .args(["image", "inspect", BUSYBOX])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("run docker")?
        .success();
    if present {
        return Ok(BUSYBOX);
    }
    let busybox = std::fs::read(busybox_binary()?)?;
    let tar = rk_node_agent::runtime::docker::busybox_rootfs(&busybox)?;
    let mut child = Command::new("docker")
        .args(["import", "--change", r#"CMD ["sh"]"#, "--change"])
        .arg("ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .args(["-", BUSYBOX])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .context("run docker import")?;
    child.stdin.take().context("docker import has no stdin")?.write_all(&tar)?;
    if !child.wait()?.success() {
        bail!("docker import of {BUSYBOX} failed");
    }
    Ok(BUSYBOX)
}
