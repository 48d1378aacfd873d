//! `rkctl cp SRC DEST`: copies a file or a directory between this machine and a
//! container, as `kubectl cp` does: `tar` runs in the container (it needs one) over
//! exec, and this side packs or unpacks the archive as it streams.
//!
//! One side is `POD:PATH` (or `NAMESPACE/POD:PATH`), the other a local path. The copy
//! is named DEST, as with `cp -r` (into DEST when DEST is an existing directory).
//! Unpacking never writes outside DEST: entries with absolute paths or `..` are
//! refused, and symbolic links are skipped with a note (kubectl skips them too).

use crate::Session;
use crate::cli::CpArgs;
use crate::error::Error;
use crate::exec::{Input, Sink};
use std::io::{Read, Write};
use std::path::{Component, Path};

/// A `[NAMESPACE/]POD:PATH` argument.
#[derive(Debug, PartialEq, Eq)]
struct Remote<'a> {
    namespace: Option<&'a str>,
    pod: &'a str,
    path: &'a str,
}

/// The remote side named by `spec`, if it names one (`pod:path`, `ns/pod:path`).
fn remote(spec: &str) -> Option<Remote<'_>> {
    let (left, path) = spec.split_once(':')?;
    let (namespace, pod) = match left.split_once('/') {
        Some((ns, pod)) => (Some(ns), pod),
        None => (None, left),
    };
    let valid = !path.is_empty() && !pod.is_empty() && !pod.contains('/') && namespace.is_none_or(|n| !n.is_empty());
    valid.then_some(Remote { namespace, pod, path })
}

pub async fn run(mut s: Session, args: &CpArgs) -> Result<(), Error> {
    match (remote(&args.src), remote(&args.dest)) {
        (Some(from), None) => {
            if let Some(ns) = from.namespace {
                s.namespace = ns.to_string();
            }
            download(&s, args.container.as_deref(), &from, Path::new(&args.dest)).await
        }
        (None, Some(to)) => {
            if let Some(ns) = to.namespace {
                s.namespace = ns.to_string();
            }
            upload(&s, args.container.as_deref(), Path::new(&args.src), &to).await
        }
        (Some(_), Some(_)) => Err(Error::Usage(
            "copying between two containers is not supported: copy to this machine first, then on".into(),
        )),
        (None, None) => {
            Err(Error::Usage("one of SRC and DEST must be in a container: POD:PATH or NAMESPACE/POD:PATH".into()))
        }
    }
}

/// (the directory, the last component) of a container path.
fn split_remote(path: &str) -> Result<(String, String), Error> {
    let trimmed = path.trim_end_matches('/');
    let (dir, base) = match trimmed.rsplit_once('/') {
        Some(("", base)) => ("/".to_string(), base.to_string()),
        Some((dir, base)) => (dir.to_string(), base.to_string()),
        None => (".".to_string(), trimmed.to_string()),
    };
    if base.is_empty() || base == "." || base == ".." {
        return Err(Error::Usage(format!("{path:?} does not name a file or directory to copy")));
    }
    Ok((dir, base))
}

async fn download(s: &Session, container: Option<&str>, from: &Remote<'_>, dest: &Path) -> Result<(), Error> {
    let (dir, base) = split_remote(from.path)?;
    let root = if dest.is_dir() { dest.join(&base) } else { dest.to_path_buf() };
    let command = ["tar", "cf", "-", "-C", dir.as_str(), base.as_str()];
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    // The archive is unpacked on a thread of its own as it arrives.
    let name = base.clone();
    let unpack =
        tokio::task::spawn_blocking(move || unpack(ChannelReader { rx, buf: Vec::new(), pos: 0 }, &name, &root));
    let ran = crate::exec::run_with(s, from.pod, container, &command, Input::None, Sink::Chunks(tx)).await;
    let unpacked = unpack.await.map_err(|e| Error::Usage(format!("unpacking stopped: {e}")))?;
    ran?;
    let skipped = unpacked?;
    for link in skipped {
        crate::output::eprint_line(&format!("skipping symlink {link:?}: rkctl cp does not copy links"));
    }
    Ok(())
}

/// Unpacks the archive of `base` into `root` (the copy's new name); returns the links
/// it skipped.
fn unpack(reader: impl Read, base: &str, root: &Path) -> Result<Vec<String>, Error> {
    let io = |what: &str, e: std::io::Error| Error::Usage(format!("{what}: {e}"));
    let mut archive = tar::Archive::new(reader);
    let mut skipped = Vec::new();
    for entry in archive.entries().map_err(|e| io("reading the archive", e))? {
        let mut entry = entry.map_err(|e| io("reading the archive", e))?;
        let path = entry.path().map_err(|e| io("a name in the archive", e))?.into_owned();
        let shown = path.display().to_string();
        let rest = path
            .strip_prefix(base)
            .map_err(|_| Error::Usage(format!("the archive from the container holds {shown:?}, outside {base:?}")))?;
        if rest.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(Error::Usage(format!("refusing {shown:?} from the container: it leaves the destination")));
        }
        let target = if rest.as_os_str().is_empty() { root.to_path_buf() } else { root.join(rest) };
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            skipped.push(shown);
            continue;
        }
        if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| io(&parent.display().to_string(), e))?;
        }
        entry.unpack(&target).map_err(|e| io(&target.display().to_string(), e))?;
    }
    Ok(skipped)
}

async fn upload(s: &Session, container: Option<&str>, src: &Path, to: &Remote<'_>) -> Result<(), Error> {
    let meta = std::fs::symlink_metadata(src).map_err(|e| Error::Usage(format!("{}: {e}", src.display())))?;
    if !meta.is_file() && !meta.is_dir() {
        return Err(Error::Usage(format!("{}: only files and directories can be copied", src.display())));
    }
    let (dir, base) = split_remote(to.path)?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    let src = src.to_path_buf();
    // Packed on a thread of its own, as the container takes it.
    let pack = tokio::task::spawn_blocking(move || pack(ChannelWriter { tx }, &src, &base));
    let command = ["tar", "xmf", "-", "-C", dir.as_str()];
    let ran = crate::exec::run_with(s, to.pod, container, &command, Input::Chunks(rx), Sink::Print).await;
    let packed = pack.await.map_err(|e| Error::Usage(format!("packing stopped: {e}")))?;
    ran?;
    packed
}

/// Packs `src` (a file or a directory) as `base` into `out`.
fn pack(out: impl Write, src: &Path, base: &str) -> Result<(), Error> {
    let io = |e: std::io::Error| Error::Usage(format!("{}: {e}", src.display()));
    let mut builder = tar::Builder::new(out);
    // Links are archived as links (not followed), as tar does.
    builder.follow_symlinks(false);
    if src.is_dir() {
        builder.append_dir_all(base, src).map_err(io)?;
    } else {
        builder.append_path_with_name(src, base).map_err(io)?;
    }
    builder.into_inner().map_err(io)?.flush().map_err(io)
}

/// Reads the chunks of a channel as one stream (on a blocking thread).
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rx.blocking_recv() {
                Some(chunk) => {
                    self.buf = chunk;
                    self.pos = 0;
                }
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Writes into a channel as chunks (on a blocking thread).
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(data.to_vec())
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the container stopped reading"))?;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_specs_and_local_paths() {
        assert_eq!(remote("web:/tmp/x"), Some(Remote { namespace: None, pod: "web", path: "/tmp/x" }));
        assert_eq!(remote("dev/web:x"), Some(Remote { namespace: Some("dev"), pod: "web", path: "x" }));
        for local in ["/tmp/a:b", "file.txt", "web:", ":x", "/web:x", "a/b/c:x"] {
            assert_eq!(remote(local), None, "{local}");
        }
        assert_eq!(split_remote("/tmp/x/").unwrap(), ("/tmp".to_string(), "x".to_string()));
        assert_eq!(split_remote("/x").unwrap(), ("/".to_string(), "x".to_string()));
        assert_eq!(split_remote("x").unwrap(), (".".to_string(), "x".to_string()));
        assert!(split_remote("/").is_err() && split_remote("/tmp/..").is_err());
    }

    #[test]
    fn archives_round_trip_and_never_leave_the_destination() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("a.txt"), "alpha").unwrap();
        std::fs::write(src.join("sub/b.txt"), "beta").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.join("link")).unwrap();
        let mut packed = Vec::new();
        pack(&mut packed, &src, "copy").unwrap();
        let root = dir.path().join("out");
        let skipped = unpack(&packed[..], "copy", &root).unwrap();
        assert_eq!(std::fs::read_to_string(root.join("a.txt")).unwrap(), "alpha");
        assert_eq!(std::fs::read_to_string(root.join("sub/b.txt")).unwrap(), "beta");
        assert_eq!(skipped, ["copy/link"]);
        assert!(!root.join("link").exists());

        // An archive naming something outside the copy is refused, and writes nothing.
        let mut evil = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_size(4);
        header.set_mode(0o644);
        header.set_cksum();
        evil.append_data(&mut header, "copy/ok", &b"fine"[..]).unwrap();
        let mut raw = evil.into_inner().unwrap();
        // A second entry whose name escapes (written by hand: tar::Builder refuses "..").
        let mut bad = tar::Header::new_old();
        bad.as_old_mut().name[..13].copy_from_slice(b"copy/../../x\0");
        bad.set_size(0);
        bad.set_mode(0o644);
        bad.set_cksum();
        let end = raw.len() - 1024;
        raw.truncate(end);
        raw.extend_from_slice(bad.as_bytes());
        raw.extend_from_slice(&[0u8; 1024]);
        let out = dir.path().join("out2");
        let err = unpack(&raw[..], "copy", &out).unwrap_err();
        assert!(err.to_string().contains("leaves the destination"), "{err}");
        assert!(!dir.path().join("x").exists());
    }
}
