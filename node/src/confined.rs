//! Paths that cannot escape a volume.
//!
//! Every file operation starts from a handle on the volume's directory and resolves the rest with
//! the kernel's help: `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS
//! | RESOLVE_NO_XDEV` opens directories and files, and the final step is always an `*at` call on
//! the parent's handle that does not follow a link (`O_NOFOLLOW`, `AT_SYMLINK_NOFOLLOW`, `unlinkat`,
//! `renameat`). So `..`, an absolute path, a symlink planted by an archive or by the container
//! itself, or a directory swapped for a link between two calls never reaches outside: the kernel
//! refuses the lookup (`ELOOP`/`EXDEV`) and the caller gets "Invalid path: path traversal detected".
//!
//! Paths are checked lexically first as well (`..` anywhere is refused outright, a leading `/`
//! means the volume's root), so an obviously hostile path fails before any system call.
//!
//! Symlinks inside a volume are kept (game servers and archives contain them) but never followed
//! by the daemon: listing shows them as `symlink`, deleting removes the link, copying copies the
//! link, reading or writing through one is refused. Inside the container they resolve in the
//! container's own filesystem, which is the container's business.
//!
//! Writes are staged: content goes to a hidden temporary file beside the target and is renamed
//! over it only when complete, so a failed or refused upload (quota, dropped connection) leaves
//! the old file as it was.

use std::{
    fs::File,
    io::{Read, Write},
    os::fd::{AsFd, AsRawFd, OwnedFd},
    path::Path,
};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// What can go wrong with a path or a file operation, in the words the reference uses where it
/// has them.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("Invalid path: path traversal detected")]
    Traversal,
    #[error("Path not found: {0}")]
    NotFound(String),
    #[error("Not a directory: {0}")]
    NotADirectory(String),
    #[error("Is a directory: {0}")]
    IsADirectory(String),
    #[error("Invalid path: {0}")]
    Invalid(String),
    #[error("Disk limit exceeded: the volume may hold {limit} bytes and this would need {needed} more than the {free} free")]
    Quota { limit: u64, free: u64, needed: u64 },
    #[error("Invalid archive: {0}")]
    Archive(String),
    #[error("Failed to {op}: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl FsError {
    fn io(op: &'static str, e: impl Into<std::io::Error>) -> Self {
        Self::Io {
            op,
            source: e.into(),
        }
    }
}

type Result<T> = std::result::Result<T, FsError>;

/// The longest path accepted, in components: deeper trees are refused rather than walked.
const MAX_DEPTH: usize = 64;

/// Prefix of the daemon's own temporary files; listing hides them.
pub const STAGING_PREFIX: &str = ".hangar-staging-";

/// A path inside a volume, checked lexically: no `..`, no NUL, no empty or over-long name. The
/// empty path is the volume's root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolPath(Vec<String>);

impl VolPath {
    pub fn parse(raw: &str) -> Result<Self> {
        if raw.contains('\0') {
            return Err(FsError::Invalid("a path may not contain a NUL byte".into()));
        }
        let mut parts = Vec::new();
        for part in raw.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(FsError::Traversal),
                name if name.len() > 255 => {
                    return Err(FsError::Invalid("a name is longer than 255 bytes".into()))
                }
                name => parts.push(name.to_owned()),
            }
        }
        if parts.len() > MAX_DEPTH {
            return Err(FsError::Invalid(format!(
                "a path may be at most {MAX_DEPTH} levels deep"
            )));
        }
        Ok(Self(parts))
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn parts(&self) -> &[String] {
        &self.0
    }

    /// The path as written back to clients: components joined by `/`, no leading slash.
    pub fn display(&self) -> String {
        self.0.join("/")
    }

    pub fn join(&self, name: &str) -> Self {
        let mut parts = self.0.clone();
        parts.push(name.to_owned());
        Self(parts)
    }

    /// `other` is this path or lies beneath it.
    pub fn contains(&self, other: &VolPath) -> bool {
        other.0.len() >= self.0.len() && other.0[..self.0.len()] == self.0[..]
    }

    fn split_leaf(&self) -> Result<(&[String], &str)> {
        match self.0.split_last() {
            Some((leaf, parent)) => Ok((parent, leaf)),
            None => Err(FsError::Invalid(
                "this operation needs a path below the volume's root".into(),
            )),
        }
    }
}

fn resolve() -> ResolveFlags {
    ResolveFlags::BENEATH
        | ResolveFlags::NO_SYMLINKS
        | ResolveFlags::NO_MAGICLINKS
        | ResolveFlags::NO_XDEV
}

/// Whether `rel` under `dir` reaches a symlink on the way, checked one component at a time
/// from `dir` (each prefix before it is a real folder, so no link is followed to find out). Only
/// chooses the error message; the kernel has already refused the lookup.
fn leads_through_link(dir: rustix::fd::BorrowedFd<'_>, rel: &str) -> bool {
    let mut prefix = String::new();
    for part in rel.split('/').filter(|p| !p.is_empty() && *p != ".") {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(part);
        match rustix::fs::statat(dir, prefix.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => match FileType::from_raw_mode(st.st_mode) {
                FileType::Symlink => return true,
                FileType::Directory => {}
                _ => return false,
            },
            Err(_) => return false,
        }
    }
    false
}

/// Maps a lookup's error: a link or an escape on the way is traversal, whatever else it is.
fn lookup_error(e: Errno, path: &str, op: &'static str) -> FsError {
    match e {
        Errno::LOOP | Errno::XDEV => FsError::Traversal,
        Errno::NOENT => FsError::NotFound(path.to_owned()),
        Errno::NOTDIR => FsError::NotADirectory(path.to_owned()),
        Errno::ISDIR => FsError::IsADirectory(path.to_owned()),
        other => FsError::io(op, other),
    }
}

/// What a directory entry is, without following it; an entry as listings show it (the wire
/// types, shared with Hangar's driver).
pub use model::compute::{EntryKind as Kind, VolumeEntry as Entry};

/// What a file type is as a listing shows it.
fn kind_of(file_type: FileType) -> Kind {
    match file_type {
        FileType::RegularFile => Kind::File,
        FileType::Directory => Kind::Directory,
        FileType::Symlink => Kind::Symlink,
        _ => Kind::Other,
    }
}

/// Something that decides whether `n` more bytes may be written: a volume's quota.
pub trait Budget {
    fn reserve(&self, n: u64) -> Result<()>;
    fn release(&self, n: u64);
}

/// No limit: for walks that only read.
pub struct Unlimited;

impl Budget for Unlimited {
    fn reserve(&self, _: u64) -> Result<()> {
        Ok(())
    }
    fn release(&self, _: u64) {}
}

/// A volume's directory, opened once per operation.
pub struct Tree {
    root: OwnedFd,
}

impl Tree {
    /// Opens the volume at `dir` (a directory, not a link).
    pub fn open(dir: &Path) -> Result<Self> {
        let root = rustix::fs::open(
            dir,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .map_err(|e| FsError::io("open the volume", e))?;
        Ok(Self { root })
    }

    fn open_at(
        &self,
        dir: impl AsFd,
        rel: &str,
        flags: OFlags,
        mode: Mode,
        shown: &str,
    ) -> Result<OwnedFd> {
        let dir = dir.as_fd();
        rustix::fs::openat2(
            dir,
            rel,
            flags | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            mode,
            resolve(),
        )
        .map_err(|e| match e {
            // O_DIRECTORY | O_NOFOLLOW on a link answers ENOTDIR: say what it really is.
            Errno::NOTDIR if leads_through_link(dir, rel) => FsError::Traversal,
            e => lookup_error(e, shown, "open"),
        })
    }

    /// A handle on the directory at `parts`.
    fn dir(&self, parts: &[String]) -> Result<OwnedFd> {
        let rel = if parts.is_empty() {
            ".".to_owned()
        } else {
            parts.join("/")
        };
        self.open_at(
            &self.root,
            &rel,
            OFlags::DIRECTORY | OFlags::RDONLY,
            Mode::empty(),
            &rel,
        )
    }

    /// Creates the directories at `parts` that are missing (like `mkdir -p`), one component at a
    /// time from the root, and answers a handle on the last.
    fn make_dirs(&self, parts: &[String]) -> Result<OwnedFd> {
        let mut current = self.dir(&[])?;
        for (i, name) in parts.iter().enumerate() {
            let shown = parts[..=i].join("/");
            match rustix::fs::mkdirat(&current, name.as_str(), Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(lookup_error(e, &shown, "create a folder")),
            }
            current = self.open_at(
                &current,
                name,
                OFlags::DIRECTORY | OFlags::RDONLY,
                Mode::empty(),
                &shown,
            )?;
        }
        Ok(current)
    }

    /// What is at `path`, without following a link; `None` when nothing is.
    pub fn kind(&self, path: &VolPath) -> Result<Option<(Kind, u64)>> {
        if path.is_root() {
            return Ok(Some((Kind::Directory, 0)));
        }
        let (parent, leaf) = path.split_leaf()?;
        let dir = match self.dir(parent) {
            Ok(dir) => dir,
            Err(FsError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        match rustix::fs::statat(&dir, leaf, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some((
                kind_of(FileType::from_raw_mode(st.st_mode)),
                st.st_size as u64,
            ))),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(lookup_error(e, &path.display(), "inspect")),
        }
    }

    /// Creates the folder at `path` and any missing above it.
    pub fn create_dir(&self, path: &VolPath) -> Result<()> {
        self.make_dirs(path.parts()).map(drop)
    }

    /// The entries of the directory at `path`, sorted with folders first, then by name. The
    /// daemon's own staging files are left out.
    pub fn list(&self, path: &VolPath) -> Result<Vec<Entry>> {
        Ok(self.list_page(path, 0, usize::MAX)?.0)
    }

    /// One page of [`Tree::list`], and how many entries the folder has. Names and kinds come
    /// from the directory itself (`d_type`), so ordering 10,000 entries costs no `stat`; only
    /// the page's entries are looked at for their size and time.
    pub fn list_page(
        &self,
        path: &VolPath,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Entry>, usize)> {
        let dir = self.dir(path.parts())?;
        let mut names = Vec::new();
        let reader = rustix::fs::Dir::read_from(&dir).map_err(|e| FsError::io("list", e))?;
        for entry in reader {
            let entry = entry.map_err(|e| FsError::io("list", e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "." || name == ".." || name.starts_with(STAGING_PREFIX) {
                continue;
            }
            let is_dir = match entry.file_type() {
                FileType::Unknown => {
                    rustix::fs::statat(&dir, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW)
                        .map(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
                        .unwrap_or(false)
                }
                t => t == FileType::Directory,
            };
            names.push((is_dir, name));
        }
        names.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let total = names.len();
        let mut entries = Vec::new();
        for (_, name) in names.into_iter().skip(offset).take(limit) {
            let Ok(st) = rustix::fs::statat(&dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) else {
                continue; // removed while listing
            };
            let kind = kind_of(FileType::from_raw_mode(st.st_mode));
            entries.push(Entry {
                name,
                kind,
                size: if kind == Kind::Directory {
                    0
                } else {
                    st.st_size as u64
                },
                modified: st.st_mtime,
            });
        }
        Ok((entries, total))
    }

    /// Opens the regular file at `path` for reading; its size.
    ///
    /// The daemon never opens anything else: a container can plant a FIFO in its volume (an open
    /// for reading waits for a writer, for ever) or a device node (opening one acts on the host's
    /// device). So the path is first opened with `O_PATH`, which opens nothing (no read, no
    /// side effect, no wait), checked with `fstat` on that handle, and only a regular file is
    /// then opened for reading, through the same handle's `/proc/self/fd` entry: the inode that
    /// was checked, whatever the path points at by then.
    pub fn open_file(&self, path: &VolPath) -> Result<(File, u64)> {
        if path.is_root() {
            return Err(FsError::IsADirectory("/".into()));
        }
        let shown = path.display();
        let handle = self.open_at(&self.root, &shown, OFlags::PATH, Mode::empty(), &shown)?;
        let st = rustix::fs::fstat(&handle).map_err(|e| FsError::io("read", e))?;
        match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => {}
            FileType::Directory => return Err(FsError::IsADirectory(shown)),
            _ => return Err(FsError::Invalid(format!("{shown} is not a regular file"))),
        }
        let reopened = rustix::fs::open(
            format!("/proc/self/fd/{}", handle.as_raw_fd()),
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .map_err(|e| FsError::io("read", e))?;
        Ok((File::from(reopened), st.st_size as u64))
    }

    /// Starts writing the file at `path` (parents are created): the content goes to a staging
    /// file that replaces the target on [`Staged::commit`].
    pub fn stage(&self, path: &VolPath) -> Result<Staged> {
        let (parent, leaf) = path.split_leaf()?;
        let dir = self.make_dirs(parent)?;
        if let Ok(st) = rustix::fs::statat(&dir, leaf, AtFlags::SYMLINK_NOFOLLOW) {
            match FileType::from_raw_mode(st.st_mode) {
                FileType::RegularFile => {}
                FileType::Directory => return Err(FsError::IsADirectory(path.display())),
                // Writing "through" a link is how Wings' symlink advisories began: refused.
                FileType::Symlink => return Err(FsError::Traversal),
                _ => {
                    return Err(FsError::Invalid(format!(
                        "{} is not a regular file",
                        path.display()
                    )))
                }
            }
        }
        let staging = format!("{STAGING_PREFIX}{}", uuid::Uuid::new_v4().simple());
        let fd = self.open_at(
            &dir,
            &staging,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL,
            Mode::from_raw_mode(0o644),
            &path.display(),
        )?;
        Ok(Staged {
            dir,
            staging,
            leaf: leaf.to_owned(),
            file: Some(File::from(fd)),
            committed: false,
        })
    }

    /// Writes `content` to `path` at once, within `budget`.
    /// Only the growth over the file it replaces counts against the budget, so a file can be
    /// rewritten at the same size on a full volume.
    pub fn write(&self, path: &VolPath, content: &[u8], budget: &dyn Budget) -> Result<()> {
        let len = content.len() as u64;
        let old = match self.kind(path)? {
            Some((Kind::File, size)) => size,
            _ => 0,
        };
        let mut staged = self.stage(path)?;
        let grow = len.saturating_sub(old);
        budget.reserve(grow)?;
        let written = staged
            .file()
            .write_all(content)
            .map_err(|e| FsError::io("write the file", e))
            .and_then(|()| staged.commit());
        match written {
            Ok(replaced) => {
                // What the write changed is len - replaced; grow is already counted.
                budget.release((replaced + grow).saturating_sub(len));
                Ok(())
            }
            Err(e) => {
                budget.release(grow);
                Err(e)
            }
        }
    }

    /// Deletes what is at `path`: a file, a link (not what it points to) or a folder with
    /// everything in it, never following a link on the way down. Answers the bytes freed.
    pub fn remove(&self, path: &VolPath) -> Result<u64> {
        let (parent, leaf) = path.split_leaf()?;
        let dir = self.dir(parent)?;
        remove_entry(&dir, leaf, &path.display())
    }

    /// Bytes held by the tree at `path` (regular files' sizes; links and folders count nothing).
    pub fn size(&self, path: &VolPath) -> Result<u64> {
        let mut total = 0u64;
        self.walk(path, &mut |_, kind, size| {
            if kind == Kind::File {
                total += size;
            }
            Ok(())
        })?;
        Ok(total)
    }

    /// Visits everything at and under `path`, parents before children, with paths relative to
    /// `path` (the start itself is visited with an empty path when it is a folder).
    pub fn walk(
        &self,
        path: &VolPath,
        visit: &mut dyn FnMut(&VolPath, Kind, u64) -> Result<()>,
    ) -> Result<()> {
        match self.kind(path)? {
            None => Err(FsError::NotFound(path.display())),
            Some((Kind::Directory, _)) => {
                let dir = self.dir(path.parts())?;
                visit(&VolPath(Vec::new()), Kind::Directory, 0)?;
                walk_dir(&dir, &VolPath(Vec::new()), visit, 0)
            }
            Some((kind, size)) => visit(&VolPath(Vec::new()), kind, size),
        }
    }

    /// Copies `from` to `to` (a file, a link as a link, or a folder with its contents), within
    /// `budget`. Refuses to copy a folder into itself and to replace an existing folder.
    pub fn copy(&self, from: &VolPath, to: &VolPath, budget: &dyn Budget) -> Result<()> {
        if to.is_root() {
            return Err(FsError::Invalid(
                "the destination may not be the volume's root".into(),
            ));
        }
        if from.contains(to) {
            return Err(FsError::Invalid(
                "a folder cannot be copied into itself".into(),
            ));
        }
        match self.kind(to)? {
            Some((Kind::Directory, _)) => {
                return Err(FsError::Invalid(format!(
                    "{} already exists; delete it first or choose another destination",
                    to.display()
                )))
            }
            Some((Kind::Symlink, _)) => return Err(FsError::Traversal),
            _ => {}
        }
        // Reserve the whole copy first: a copy that would not fit changes nothing.
        let needed = self.size(from)?;
        budget.reserve(needed)?;
        let copied = self.copy_reserved(from, to);
        if copied.is_err() {
            budget.release(needed);
        }
        copied
    }

    fn copy_reserved(&self, from: &VolPath, to: &VolPath) -> Result<()> {
        let mut steps = Vec::new();
        self.walk(from, &mut |rel, kind, _| {
            steps.push((rel.clone(), kind));
            Ok(())
        })?;
        for (rel, kind) in steps {
            let source = VolPath([from.parts(), rel.parts()].concat());
            let target = VolPath([to.parts(), rel.parts()].concat());
            match kind {
                Kind::Directory => self.create_dir(&target)?,
                Kind::File => {
                    let (mut input, _) = self.open_file(&source)?;
                    let mut staged = self.stage(&target)?;
                    std::io::copy(&mut input, staged.file()).map_err(|e| FsError::io("copy", e))?;
                    staged.commit()?;
                }
                Kind::Symlink => {
                    let (parent, leaf) = source.split_leaf()?;
                    let link = rustix::fs::readlinkat(self.dir(parent)?, leaf, Vec::new())
                        .map_err(|e| lookup_error(e, &source.display(), "copy a link"))?;
                    let (tparent, tleaf) = target.split_leaf()?;
                    let dir = self.make_dirs(tparent)?;
                    rustix::fs::symlinkat(link.as_c_str(), &dir, tleaf)
                        .map_err(|e| lookup_error(e, &target.display(), "copy a link"))?;
                }
                Kind::Other => {} // sockets and fifos a container made are not copied
            }
        }
        Ok(())
    }

    /// Creates a symlink at `path` pointing at `target` (verbatim, never resolved by the daemon):
    /// archives carry them.
    pub fn symlink(&self, path: &VolPath, target: &str) -> Result<()> {
        let (parent, leaf) = path.split_leaf()?;
        let dir = self.make_dirs(parent)?;
        match rustix::fs::symlinkat(target, &dir, leaf) {
            Ok(()) => Ok(()),
            Err(Errno::EXIST) => Err(FsError::Invalid(format!(
                "{} already exists",
                path.display()
            ))),
            Err(e) => Err(lookup_error(e, &path.display(), "create a link")),
        }
    }

    /// The target of the link at `path`, as written.
    pub fn read_link(&self, path: &VolPath) -> Result<String> {
        let (parent, leaf) = path.split_leaf()?;
        let link = rustix::fs::readlinkat(self.dir(parent)?, leaf, Vec::new())
            .map_err(|e| lookup_error(e, &path.display(), "read a link"))?;
        Ok(link.to_string_lossy().into_owned())
    }
}

fn walk_dir(
    dir: &OwnedFd,
    rel: &VolPath,
    visit: &mut dyn FnMut(&VolPath, Kind, u64) -> Result<()>,
    depth: usize,
) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(FsError::Invalid(format!(
            "the tree is more than {MAX_DEPTH} levels deep"
        )));
    }
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir).map_err(|e| FsError::io("walk", e))? {
        let entry = entry.map_err(|e| FsError::io("walk", e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name != "." && name != ".." && !name.starts_with(STAGING_PREFIX) {
            names.push(name);
        }
    }
    names.sort();
    for name in names {
        let Ok(st) = rustix::fs::statat(dir, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) else {
            continue;
        };
        let kind = kind_of(FileType::from_raw_mode(st.st_mode));
        let child = rel.join(&name);
        visit(&child, kind, st.st_size as u64)?;
        if kind == Kind::Directory {
            let sub = rustix::fs::openat2(
                dir,
                name.as_str(),
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
                Mode::empty(),
                resolve(),
            )
            .map_err(|e| lookup_error(e, &child.display(), "walk"))?;
            walk_dir(&sub, &child, visit, depth + 1)?;
        }
    }
    Ok(())
}

/// Removes `name` in `dir` without following links; bytes freed.
fn remove_entry(dir: &OwnedFd, name: &str, shown: &str) -> Result<u64> {
    let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| lookup_error(e, shown, "delete"))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        rustix::fs::unlinkat(dir, name, AtFlags::empty())
            .map_err(|e| lookup_error(e, shown, "delete"))?;
        return Ok(
            if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile {
                st.st_size as u64
            } else {
                0
            },
        );
    }
    // A folder: opened with no link following, so a link swapped in for it is refused rather
    // than emptied (the "recursive delete through a link" advisory).
    let sub = rustix::fs::openat2(
        dir,
        name,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
        resolve(),
    )
    .map_err(|e| lookup_error(e, shown, "delete"))?;
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(&sub).map_err(|e| FsError::io("delete", e))? {
        let entry = entry.map_err(|e| FsError::io("delete", e))?;
        let child = entry.file_name().to_string_lossy().into_owned();
        if child != "." && child != ".." {
            names.push(child);
        }
    }
    let mut freed = 0;
    for child in names {
        freed += remove_entry(&sub, &child, &format!("{shown}/{child}"))?;
    }
    rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)
        .map_err(|e| lookup_error(e, shown, "delete"))?;
    Ok(freed)
}

/// A file being written: content goes to a staging file in the target's folder, renamed over the
/// target on commit and removed if dropped uncommitted.
pub struct Staged {
    dir: OwnedFd,
    staging: String,
    leaf: String,
    file: Option<File>,
    committed: bool,
}

impl Staged {
    pub fn file(&mut self) -> &mut File {
        self.file.as_mut().expect("open until committed")
    }

    /// Takes the file out (for async writing); [`Staged::commit`] still renames it.
    pub fn take_file(&mut self) -> File {
        self.file.take().expect("open until committed")
    }

    /// Puts the staged file in place; answers the size of the regular file it replaced (0 when
    /// there was none).
    pub fn commit(mut self) -> Result<u64> {
        if let Some(file) = self.file.take() {
            file.sync_data()
                .map_err(|e| FsError::io("write the file", e))?;
        }
        let replaced =
            match rustix::fs::statat(&self.dir, self.leaf.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile => {
                    st.st_size as u64
                }
                Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                    return Err(FsError::IsADirectory(self.leaf.clone()))
                }
                _ => 0,
            };
        // renameat replaces a link at the target with the file rather than writing through it.
        rustix::fs::renameat(
            &self.dir,
            self.staging.as_str(),
            &self.dir,
            self.leaf.as_str(),
        )
        .map_err(|e| lookup_error(e, &self.leaf, "write the file"))?;
        self.committed = true;
        Ok(replaced)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = rustix::fs::unlinkat(&self.dir, self.staging.as_str(), AtFlags::empty());
        }
    }
}

/// Reads a whole small file: for tests and for the JSON write route's round trips.
pub fn read_to_vec(tree: &Tree, path: &VolPath) -> Result<Vec<u8>> {
    let (mut file, size) = tree.open_file(path)?;
    let mut out = Vec::with_capacity(size as usize);
    file.read_to_end(&mut out)
        .map_err(|e| FsError::io("read", e))?;
    Ok(out)
}
