//! Compressing a volume's files into an archive in the volume, and unpacking one.
//!
//! Formats: `tar.gz` (also `.tgz`) and `tar`. Unpacking reads the archive twice: the first pass
//! only looks at the headers and refuses the whole archive — before anything is written — when
//! an entry would land outside the destination (`..`, an absolute path, a path through a link the
//! archive itself plants), is a device, fifo or hard link, or when the entries are too many or
//! would unpack to more than the configured cap or the volume's free space (a zip/tar bomb is
//! refused, not half unpacked). The second pass writes through the confined operations, so even
//! a link planted by the container between the two passes is refused by the kernel.

use std::io::{Read, Write};

use flate2::{read::GzDecoder, write::GzEncoder, Compression};
use tar::{EntryType, Header};

use crate::confined::{Budget, FsError, Kind, Tree, VolPath};

type Result<T> = std::result::Result<T, FsError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    TarGz,
    Tar,
}

impl Format {
    /// The format a client names (`tar.gz`, `tgz`, `tar`).
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "tar.gz" | "tgz" => Ok(Self::TarGz),
            "tar" => Ok(Self::Tar),
            other => Err(FsError::Archive(format!(
                "unsupported format {other:?}: use \"tar.gz\" or \"tar\""
            ))),
        }
    }

    /// The format an archive's name says it has.
    pub fn of_name(name: &str) -> Result<Self> {
        if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Ok(Self::TarGz)
        } else if name.ends_with(".tar") {
            Ok(Self::Tar)
        } else {
            Err(FsError::Archive(
                "unsupported archive: the name must end in .tar.gz, .tgz or .tar".into(),
            ))
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::TarGz => "tar.gz",
            Self::Tar => "tar",
        }
    }
}

/// Caps on what one archive may unpack to.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    pub entries: u64,
    pub bytes: u64,
}

/// Counts what goes into the volume against its budget as it is written.
struct Metered<'a, W> {
    inner: W,
    budget: &'a dyn Budget,
    written: &'a std::cell::Cell<u64>,
}

impl<W: Write> Write for Metered<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.budget
            .reserve(buf.len() as u64)
            .map_err(std::io::Error::other)?;
        match self.inner.write(buf) {
            Ok(n) => {
                self.budget.release((buf.len() - n) as u64);
                self.written.set(self.written.get() + n as u64);
                Ok(n)
            }
            Err(e) => {
                self.budget.release(buf.len() as u64);
                Err(e)
            }
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Packs `from` (a folder as itself, the volume's root as its contents, or one file) into a new
/// archive at `out`; answers its size.
/// Links are stored as links. The archive replaces a file of the same name when complete.
pub fn compress(
    tree: &Tree,
    from: &VolPath,
    out: &VolPath,
    format: Format,
    budget: &dyn Budget,
) -> Result<u64> {
    let mut steps = Vec::new();
    tree.walk(from, &mut |rel, kind, size| {
        steps.push((rel.clone(), kind, size));
        Ok(())
    })?;
    let single_file = steps.len() == 1 && steps[0].1 != Kind::Directory;
    let mut staged = tree.stage(out)?;
    let written = std::cell::Cell::new(0);
    let metered = Metered {
        inner: staged.file(),
        budget,
        written: &written,
    };
    let packed = match format {
        Format::TarGz => {
            let mut builder = tar::Builder::new(GzEncoder::new(metered, Compression::default()));
            append_all(tree, &mut builder, from, out, &steps, single_file)
                .and_then(|()| builder.into_inner().map_err(write_error))
                .and_then(|gz| gz.finish().map_err(write_error).map(drop))
        }
        Format::Tar => {
            let mut builder = tar::Builder::new(metered);
            append_all(tree, &mut builder, from, out, &steps, single_file)
                .and_then(|()| builder.into_inner().map_err(write_error).map(drop))
        }
    };
    if let Err(e) = packed {
        // The staging file goes with `staged`; so does what it counted.
        budget.release(written.get());
        return Err(e);
    }
    let size = staged.file().metadata().map(|m| m.len()).unwrap_or(0);
    let replaced = staged.commit()?;
    budget.release(replaced);
    Ok(size)
}

/// Appends the walked entries of `from` to `builder`, skipping `out` itself.
fn append_all<W: Write>(
    tree: &Tree,
    builder: &mut tar::Builder<W>,
    from: &VolPath,
    out: &VolPath,
    steps: &[(VolPath, Kind, u64)],
    single_file: bool,
) -> Result<()> {
    for (rel, kind, size) in steps {
        let full = VolPath::parse(&format!("{}/{}", from.display(), rel.display()))?;
        if &full == out {
            continue; // an older archive of the same name is being replaced, not packed
        }
        // A folder is packed as itself (`world/...`, as `tar czf x world` would), the volume's
        // root as its contents, a file under its own name.
        let top = from.parts().last().cloned();
        let name = match (&top, single_file, rel.is_root()) {
            (Some(leaf), true, _) => leaf.clone(),
            (None, _, true) => continue,
            (None, _, false) => rel.display(),
            (Some(leaf), false, true) => leaf.clone(),
            (Some(leaf), false, false) => format!("{leaf}/{}", rel.display()),
        };
        let mut header = Header::new_gnu();
        header.set_mtime(crate::now().max(0) as u64);
        let appended = match kind {
            Kind::Directory => {
                header.set_entry_type(EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder.append_data(&mut header, format!("{name}/"), std::io::empty())
            }
            Kind::File => {
                let (file, _) = tree.open_file(&full)?;
                header.set_entry_type(EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(*size);
                // A file that grows while it is packed is cut at its size at the walk.
                builder.append_data(&mut header, &name, file.take(*size))
            }
            Kind::Symlink => {
                let target = tree.read_link(&full)?;
                header.set_entry_type(EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                builder.append_link(&mut header, &name, target)
            }
            Kind::Other => continue,
        };
        appended.map_err(write_error)?;
    }
    Ok(())
}

/// An I/O error from the archive writer, or the quota refusal the metered file wrapped in one.
fn write_error(e: std::io::Error) -> FsError {
    if e.get_ref().is_some_and(|inner| inner.is::<FsError>()) {
        if let Some(Ok(inner)) = e.into_inner().map(|inner| inner.downcast::<FsError>()) {
            return *inner;
        }
        return FsError::Archive("the archive could not be written".into());
    }
    FsError::Io {
        op: "write the archive",
        source: e,
    }
}

enum Planned {
    Dir(VolPath),
    File(VolPath, u64),
    Link(VolPath, String),
}

fn reader(tree: &Tree, archive: &VolPath, format: Format) -> Result<Box<dyn Read>> {
    let (file, _) = tree.open_file(archive)?;
    Ok(match format {
        Format::TarGz => Box::new(GzDecoder::new(std::io::BufReader::new(file))),
        Format::Tar => Box::new(std::io::BufReader::new(file)),
    })
}

fn bad(e: std::io::Error) -> FsError {
    FsError::Archive(format!("it could not be read: {e}"))
}

/// Reads the headers only and decides whether the archive may be unpacked at `dest`.
fn plan(
    tree: &Tree,
    archive: &VolPath,
    format: Format,
    dest: &VolPath,
    caps: Caps,
) -> Result<(Vec<Planned>, u64)> {
    let mut tar = tar::Archive::new(reader(tree, archive, format)?);
    let mut plan = Vec::new();
    let mut links: Vec<VolPath> = Vec::new();
    let mut total = 0u64;
    for entry in tar.entries().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        if plan.len() as u64 >= caps.entries {
            return Err(FsError::Archive(format!(
                "it has more than {} entries",
                caps.entries
            )));
        }
        let raw = String::from_utf8(entry.path_bytes().into_owned())
            .map_err(|_| FsError::Archive("an entry's name is not UTF-8".into()))?;
        if raw.starts_with('/') {
            return Err(FsError::Traversal);
        }
        let rel = VolPath::parse(&raw)?;
        if rel.is_root() {
            continue;
        }
        // An entry under a link the archive planted would be written through that link.
        if links.iter().any(|link| link.contains(&rel)) {
            return Err(FsError::Traversal);
        }
        let target = VolPath::parse(&format!("{}/{}", dest.display(), rel.display()))?;
        let header = entry.header();
        match header.entry_type() {
            EntryType::Directory => plan.push(Planned::Dir(target)),
            EntryType::Regular | EntryType::Continuous => {
                let size = header.size().map_err(bad)?;
                total = total.saturating_add(size);
                if total > caps.bytes {
                    return Err(FsError::Archive(format!(
                        "it unpacks to more than {} bytes",
                        caps.bytes
                    )));
                }
                plan.push(Planned::File(target, size));
            }
            EntryType::Symlink => {
                let link = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                links.push(rel);
                plan.push(Planned::Link(target, link));
            }
            EntryType::Link => {
                return Err(FsError::Archive(format!(
                    "{raw} is a hard link, which is not unpacked"
                )))
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                return Err(FsError::Archive(format!(
                    "{raw} is a device or fifo, which is not unpacked"
                )))
            }
            // Metadata entries (pax headers and the like) carry no file of their own.
            _ => {}
        }
    }
    Ok((plan, total))
}

/// Unpacks `archive` into the folder `dest` (created when missing), within `budget` and `caps`.
pub fn decompress(
    tree: &Tree,
    archive: &VolPath,
    dest: &VolPath,
    budget: &dyn Budget,
    caps: Caps,
) -> Result<()> {
    let format = Format::of_name(&archive.display())?;
    let (planned, total) = plan(tree, archive, format, dest, caps)?;
    // The whole unpacked size is reserved before the first byte is written.
    budget.reserve(total)?;
    let mut reserved = total;
    let unpacked = (|| -> Result<()> {
        tree.create_dir(dest)?;
        let mut tar = tar::Archive::new(reader(tree, archive, format)?);
        let mut planned = planned.into_iter();
        for entry in tar.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            let kind = entry.header().entry_type();
            let wanted = matches!(
                kind,
                EntryType::Directory
                    | EntryType::Regular
                    | EntryType::Continuous
                    | EntryType::Symlink
            );
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            if !wanted || VolPath::parse(&raw)?.is_root() {
                continue;
            }
            match planned.next() {
                Some(Planned::Dir(path)) => tree.create_dir(&path)?,
                Some(Planned::File(path, size)) => {
                    let mut staged = tree.stage(&path)?;
                    std::io::copy(&mut (&mut entry).take(size), staged.file()).map_err(|e| {
                        FsError::Io {
                            op: "unpack",
                            source: e,
                        }
                    })?;
                    reserved -= size;
                    budget.release(staged.commit()?);
                }
                Some(Planned::Link(path, target)) => {
                    if let Some((Kind::File | Kind::Symlink, _)) = tree.kind(&path)? {
                        budget.release(tree.remove(&path)?);
                    }
                    tree.symlink(&path, &target)?;
                }
                None => return Err(FsError::Archive("it changed while it was unpacked".into())),
            }
        }
        Ok(())
    })();
    if unpacked.is_err() {
        budget.release(reserved);
    }
    unpacked
}
