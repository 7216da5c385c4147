//! The file manager of machines on node daemons, on the machine's page: browse the volume
//! (`/home/container` inside), open folders, edit a text file, upload and download, make a
//! folder, copy, pack into a `.tar.gz` and unpack, delete. Works whether the machine runs or
//! not. The rules are the domain's (`domain::compute::volume`); paths are confined by the node.

use leptos::prelude::*;

use crate::components::deferred::{Deferred, LoadingCard};
use crate::components::forms::{ActionError, CsrfField, SubmitButton};
use crate::error::PortalError;
use crate::session::use_auth;
use model::compute::{EntryKind, VolumeEntry, VolumeListing, VpsState};

/// A page of the folder `path` (relative to the volume's root).
#[server(prefix = "/_fn", endpoint = "volume_list")]
pub async fn volume_list(
    id: String,
    path: String,
    offset: u64,
) -> Result<VolumeListing, PortalError> {
    use crate::ssr::portal;
    let portal::SignedIn { state, user, .. } = portal::signed_in(None).await?;
    Ok(domain::compute::volume::list(&state, &user.id, &id, &path, offset, None).await?)
}

/// What one change to a volume does, as the file manager's forms name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileOp {
    /// Make folder `target` in `path`.
    Folder,
    /// Delete `path`.
    Delete,
    /// Copy `path` to `target`.
    Copy,
    /// Pack `path` into `target`.tar.gz.
    Compress,
    /// Unpack archive `path` into folder `target`.
    Decompress,
}

impl FileOp {
    pub const fn as_str(self) -> &'static str {
        match self {
            FileOp::Folder => "folder",
            FileOp::Delete => "delete",
            FileOp::Copy => "copy",
            FileOp::Compress => "compress",
            FileOp::Decompress => "decompress",
        }
    }
}

/// One change to the volume ([`FileOp`]). Answers what happened, for the page to say.
#[server(prefix = "/_fn", endpoint = "volume_change")]
pub async fn volume_change(
    csrf: String,
    id: String,
    op: FileOp,
    path: String,
    target: Option<String>,
) -> Result<String, PortalError> {
    use crate::ssr::portal;
    use domain::compute::volume;
    let portal::SignedIn { state, user, .. } = portal::signed_in(Some(&csrf)).await?;
    let target = target.unwrap_or_default();
    let (state, user) = (&state, user.id.as_str());
    match op {
        FileOp::Folder => {
            // `path` is the folder it goes in, `target` its name.
            let full = join(&path, target.trim());
            volume::make_folder(state, user, &id, &full).await?;
            Ok(format!("Made folder {full}"))
        }
        FileOp::Delete => {
            volume::remove(state, user, &id, &path).await?;
            Ok(format!("Deleted {path}"))
        }
        FileOp::Copy => {
            volume::copy(state, user, &id, &path, &target).await?;
            Ok(format!("Copied {path} to {target}"))
        }
        FileOp::Compress => {
            let archive = volume::compress(state, user, &id, &path, &target).await?;
            Ok(format!(
                "Packed {} into {archive}",
                if path.is_empty() { "everything" } else { &path }
            ))
        }
        FileOp::Decompress => {
            volume::decompress(state, user, &id, &path, &target).await?;
            Ok(format!(
                "Unpacked {path} into {}",
                if target.is_empty() { "/" } else { &target }
            ))
        }
    }
}

/// A text file's content for the editor.
#[server(prefix = "/_fn", endpoint = "volume_read")]
pub async fn volume_read(id: String, path: String) -> Result<String, PortalError> {
    use crate::ssr::portal;
    let portal::SignedIn { state, user, .. } = portal::signed_in(None).await?;
    Ok(domain::compute::volume::read_text(&state, &user.id, &id, &path).await?)
}

/// Saves the editor's text over the file.
#[server(prefix = "/_fn", endpoint = "volume_save")]
pub async fn volume_save(
    csrf: String,
    id: String,
    path: String,
    content: String,
) -> Result<String, PortalError> {
    use crate::ssr::portal;
    let portal::SignedIn { state, user, .. } = portal::signed_in(Some(&csrf)).await?;
    let file = domain::fleet::driver::FileStream::whole(content.into_bytes());
    domain::compute::volume::write(&state, &user.id, &id, &path, file).await?;
    Ok(format!("Saved {path}"))
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

fn is_archive(name: &str) -> bool {
    name.ends_with(".tar.gz") || name.ends_with(".tgz") || name.ends_with(".tar")
}

/// What the form under the list is for, when one is open.
#[derive(Clone, PartialEq)]
enum Pending {
    Copy(String),
    Pack(String),
    Unpack(String),
}

/// The file manager as the machine page shows it: its code is a WASM module of its own (group
/// `files`), fetched once the page has hydrated (`components::deferred`) instead of with the
/// page, which it would make ~20 % heavier for a card most machines (those without a volume)
/// never show.
#[component]
pub fn LazyFileManager(
    id: String,
    state: Signal<VpsState>,
    settled: RwSignal<bool>,
) -> impl IntoView {
    view! {
        <Deferred settled
            placeholder=|| view! { <LoadingCard title="Files" test="files-loading"/> }
            load=move || {
                let id = id.clone();
                async move { crate::split_call!(file_manager(id, state)) }
            }/>
    }
}

#[cfg_attr(
    feature = "hydrate",
    ::leptos::wasm_split::wasm_split(files, wasm_split_path = ::leptos::wasm_split)
)]
fn file_manager(id: String, state: Signal<VpsState>) -> AnyView {
    view! { <FileManager id state/> }.into_any()
}

#[component]
pub fn FileManager(
    id: String,
    /// The machine's live state: the folder is read again when it changes (a machine being
    /// created has no files to show yet).
    state: Signal<VpsState>,
) -> impl IntoView {
    let cwd = RwSignal::new(String::new());
    let offset = RwSignal::new(0u64);
    let change = ServerAction::<VolumeChange>::new();
    let save = ServerAction::<VolumeSave>::new();
    let uploaded = RwSignal::new(0u32);
    let editing = RwSignal::new(None::<Editing>);
    let pending = RwSignal::new(None::<Pending>);
    // Read in the browser only: the folder changes between the server's render and hydration.
    let listing = LocalResource::new({
        let id = id.clone();
        move || {
            change.version().get();
            save.version().get();
            uploaded.get();
            state.get();
            volume_list(id.clone(), cwd.get(), offset.get())
        }
    });
    // After a change, the form that asked for it closes.
    Effect::new(move |_| {
        if change.value().get().is_some_and(|r| r.is_ok()) {
            pending.set(None);
        }
    });
    let open = move |path: String| {
        cwd.set(path);
        offset.set(0);
        pending.set(None);
    };
    let edit = {
        let id = id.clone();
        move |path: String| {
            let id = id.clone();
            editing.set(Some((path.clone(), None)));
            leptos::task::spawn_local(async move {
                let content = volume_read(id, path.clone()).await.map_err(|e| e.message);
                // `try_`: the page may have gone while the file was read.
                editing.try_set(Some((path, Some(content))));
            });
        }
    };
    let id_for_rows = id.clone();
    let id_tools = id.clone();
    let id_pending = id.clone();
    let id_editor = id.clone();
    view! {
        <section class="card file-manager" data-test="file-manager">
            <h2>"Files"</h2>
            <p class="muted">"The machine's volume, "<code>"/home/container"</code>" inside. Changes apply at once, whether the machine runs or not."</p>
            {move || change.value().get().and_then(Result::ok).map(|m| view! { <p class="alert alert-ok" data-test="fm-status">{m}</p> })}
            <ActionError action=change/>
            // The listing is the browser's (a LocalResource, never read on the server), so it is
            // a plain reactive closure, not a Suspense: a Suspense hydrating in the browser
            // expects the content the server would have resolved, finds the empty fallback the
            // server rendered instead, and panics. Until the first listing arrives this renders
            // nothing on both sides; a reload keeps the previous listing until the new one lands.
            {move || listing.get().is_none().then(|| view! { <p class="muted" data-test="fm-loading">"Loading the folder…"</p> })}
            <div class="fm-listing">
                {move || {
                    let id = id_for_rows.clone();
                    let edit = edit.clone();
                    listing.get().map(|answer| match answer {
                        Err(e) => view! { <p class="alert alert-error" data-test="fm-error">{e.message}</p> }.into_any(),
                        Ok(l) => view! { <FolderView id l cwd offset change pending open edit/> }.into_any(),
                    })
                }}
            </div>
            {move || pending.get().map(|p| view! { <PendingForm id=id_pending.clone() p change pending/> })}
            <Tools id=id_tools cwd change uploaded/>
            {move || editing.get().map(|(path, content)| view! { <Editor id=id_editor.clone() path content save editing/> })}
        </section>
    }
}

/// The form a row's Copy…, Pack… or Unpack… opens: where to, with a sensible default.
#[component]
fn PendingForm(
    id: String,
    p: Pending,
    change: ServerAction<VolumeChange>,
    pending: RwSignal<Option<Pending>>,
) -> impl IntoView {
    let (op, path, label, field, value, button) = match p {
        Pending::Copy(path) => (
            FileOp::Copy.as_str(),
            path.clone(),
            format!("Copy {path} to"),
            "Destination",
            format!("{path}-copy"),
            "Copy",
        ),
        Pending::Pack(path) => (
            FileOp::Compress.as_str(),
            path.clone(),
            format!(
                "Pack {} into",
                if path.is_empty() {
                    "everything".to_owned()
                } else {
                    path.clone()
                }
            ),
            "Archive name (.tar.gz is added)",
            format!(
                "{}-backup",
                path.rsplit('/')
                    .next()
                    .filter(|n| !n.is_empty())
                    .unwrap_or("volume")
            ),
            "Pack",
        ),
        Pending::Unpack(path) => (
            FileOp::Decompress.as_str(),
            path.clone(),
            format!("Unpack {path} into"),
            "Folder (empty: the root)",
            path.trim_end_matches(".tar.gz")
                .trim_end_matches(".tgz")
                .trim_end_matches(".tar")
                .to_owned(),
            "Unpack",
        ),
    };
    view! {
        <ActionForm action=change attr:class="form form-row" attr:data-test="fm-pending-form">
            <CsrfField/>
            <input type="hidden" name="id" value=id/>
            <input type="hidden" name="op" value=op/>
            <input type="hidden" name="path" value=path/>
            <label>{label}" — "{field} <input type="text" name="target" value=value data-test="fm-target"/></label>
            <SubmitButton action=change label=button busy_label="Working…"/>
            <button type="button" class="btn btn-ghost" on:click=move |_| pending.set(None)>"Cancel"</button>
        </ActionForm>
    }
}

/// Making a folder and uploading a file into the folder shown.
#[component]
fn Tools(
    id: String,
    cwd: RwSignal<String>,
    change: ServerAction<VolumeChange>,
    /// Counts finished uploads, so the listing is read again.
    uploaded: RwSignal<u32>,
) -> impl IntoView {
    let upload_status = RwSignal::new(None::<Result<String, String>>);
    let auth = use_auth();
    let csrf = move || {
        auth.info
            .get_untracked()
            .and_then(Result::ok)
            .map(|i| i.csrf)
            .unwrap_or_default()
    };
    let file_input = NodeRef::<leptos::html::Input>::new();
    let on_upload = {
        let id = id.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            #[cfg(feature = "hydrate")]
            {
                let Some(file) = file_input
                    .get()
                    .and_then(|i| i.files())
                    .and_then(|f| f.get(0))
                else {
                    upload_status.set(Some(Err("Choose a file first".into())));
                    return;
                };
                let path = join(&cwd.get_untracked(), &file.name());
                super::inside::start_upload(
                    format!("/portal/machines/{id}/volume"),
                    path,
                    file,
                    csrf(),
                    upload_status,
                    Some(uploaded),
                );
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = (&id, file_input, csrf(), upload_status, uploaded);
        }
    };
    view! {
        <div class="fm-tools">
            <ActionForm action=change attr:class="form form-row" attr:data-test="fm-folder-form">
                <CsrfField/>
                <input type="hidden" name="id" value=id/>
                <input type="hidden" name="op" value=FileOp::Folder.as_str()/>
                <input type="hidden" name="path" value=move || cwd.get()/>
                <label>"New folder" <input type="text" name="target" required placeholder="plugins" data-test="fm-folder-name"/></label>
                <SubmitButton action=change label="Make folder" busy_label="Making…" class="btn-ghost"/>
            </ActionForm>
            <form class="form form-row" data-test="fm-upload-form" on:submit=on_upload>
                <label>"Upload here" <input type="file" node_ref=file_input required data-test="fm-upload-file"/></label>
                <button type="submit" class="btn btn-ghost">"Upload"</button>
            </form>
            {move || upload_status.get().map(|s| match s {
                Ok(m) => view! { <p class="alert alert-ok" data-test="fm-upload-status">{m}</p> }.into_any(),
                Err(m) => view! { <p class="alert alert-error" role="alert" data-test="fm-upload-status">{m}</p> }.into_any(),
            })}
        </div>
    }
}

/// The file open in the editor: its path, and its text once loaded (or why it could not be).
type Editing = (String, Option<Result<String, String>>);

/// The editor of the file opened from the listing: its text, saved in place.
#[component]
fn Editor(
    id: String,
    path: String,
    content: Option<Result<String, String>>,
    save: ServerAction<VolumeSave>,
    editing: RwSignal<Option<Editing>>,
) -> impl IntoView {
    view! {
        <div class="fm-editor" data-test="fm-editor">
            <h3>{format!("Editing {path}")}</h3>
            {match content {
                None => view! { <p class="muted">"Loading…"</p> }.into_any(),
                Some(Err(m)) => view! { <p class="alert alert-error">{m}</p> }.into_any(),
                Some(Ok(text)) => view! {
                    <ActionForm action=save attr:class="form" attr:data-test="fm-save-form">
                        <CsrfField/>
                        <input type="hidden" name="id" value=id/>
                        <input type="hidden" name="path" value=path.clone()/>
                        <textarea name="content" rows="14" spellcheck="false" data-test="fm-editor-text">{text}</textarea>
                        <div class="form-row">
                            <SubmitButton action=save label="Save" busy_label="Saving…" keep=true/>
                            <button type="button" class="btn btn-ghost" on:click=move |_| editing.set(None)>"Close"</button>
                        </div>
                    </ActionForm>
                }.into_any(),
            }}
            {move || save.value().get().and_then(Result::ok).map(|m| view! { <p class="alert alert-ok" data-test="fm-saved">{m}</p> })}
            <ActionError action=save/>
        </div>
    }
}

/// The folder's entries with their actions, the usage line and paging.
#[component]
fn FolderView(
    id: String,
    l: VolumeListing,
    cwd: RwSignal<String>,
    offset: RwSignal<u64>,
    change: ServerAction<VolumeChange>,
    pending: RwSignal<Option<Pending>>,
    open: impl Fn(String) + Clone + Send + Sync + 'static,
    edit: impl Fn(String) + Clone + Send + Sync + 'static,
) -> impl IntoView {
    let usage = match l.size_limit {
        Some(limit) => format!(
            "{} of {} used",
            crate::components::format::bytes(l.used_bytes),
            crate::components::format::bytes(limit)
        ),
        None => format!("{} used", crate::components::format::bytes(l.used_bytes)),
    };
    let percent = l
        .size_limit
        .filter(|l| *l > 0)
        .map(|limit| (l.used_bytes as f64 / limit as f64 * 100.0).min(100.0));
    let here = l.path.clone();
    let open_crumb = open.clone();
    let next = l.next_offset;
    let shown = format!(
        "{}–{} of {}",
        l.offset.saturating_add(u64::from(!l.files.is_empty())),
        l.offset.saturating_add(l.files.len() as u64),
        l.total
    );
    let rows = l.files.into_iter().map(|f: VolumeEntry| {
        let path = join(&here, &f.name);
        let (open, edit) = (open.clone(), edit.clone());
        let folder = f.kind == EntryKind::Directory;
        let name_cell = if folder {
            let target = path.clone();
            view! { <button type="button" class="link" data-test="fm-open" on:click=move |_| open(target.clone())>{format!("{}/", f.name)}</button> }.into_any()
        } else if f.kind == EntryKind::File {
            let target = path.clone();
            view! { <button type="button" class="link" data-test="fm-edit" on:click=move |_| edit(target.clone())>{f.name.clone()}</button> }.into_any()
        } else {
            view! { <span>{format!("{} ({})", f.name, f.kind.as_str())}</span> }.into_any()
        };
        let download = (f.kind == EntryKind::File).then(|| {
            let href = format!("/portal/machines/{id}/volume?path={}", urlencoding(&path));
            view! { <a class="btn btn-ghost btn-small" href=href download="" data-test="fm-download">"Download"</a> }
        });
        let archive = is_archive(&f.name);
        let (p1, p2, p3) = (path.clone(), path.clone(), path.clone());
        let id_row = id.clone();
        view! {
            <tr data-test="fm-row" data-name=f.name.clone()>
                <td data-label="Name">{name_cell}</td>
                <td data-label="Size" class="num">{if folder { "—".to_owned() } else { crate::components::format::bytes(f.size) }}</td>
                <td class="actions">
                    {download}
                    <button type="button" class="btn btn-ghost btn-small" on:click=move |_| pending.set(Some(Pending::Copy(p1.clone())))>"Copy…"</button>
                    {if archive {
                        view! { <button type="button" class="btn btn-ghost btn-small" data-test="fm-unpack" on:click=move |_| pending.set(Some(Pending::Unpack(p2.clone())))>"Unpack…"</button> }.into_any()
                    } else {
                        view! { <button type="button" class="btn btn-ghost btn-small" data-test="fm-pack" on:click=move |_| pending.set(Some(Pending::Pack(p2.clone())))>"Pack…"</button> }.into_any()
                    }}
                    <ActionForm action=change attr:class="inline-form">
                        <CsrfField/>
                        <input type="hidden" name="id" value=id_row/>
                        <input type="hidden" name="op" value=FileOp::Delete.as_str()/>
                        <input type="hidden" name="path" value=p3/>
                        <button type="submit" class="btn btn-danger btn-small" data-test="fm-delete">"Delete"</button>
                    </ActionForm>
                </td>
            </tr>
        }
    }).collect_view();
    let empty = l.total == 0;
    // The root, then each folder on the way to this one (rendered with the listing, in the
    // browser: the folder is client state).
    let mut crumbs = vec![(String::new(), "/".to_owned())];
    let mut walked = String::new();
    for part in l.path.split('/').filter(|p| !p.is_empty()) {
        walked = join(&walked, part);
        crumbs.push((walked.clone(), part.to_owned()));
    }
    let crumbs = crumbs
        .into_iter()
        .map(|(target, label)| {
            let open = open_crumb.clone();
            view! { <button type="button" class="link" on:click=move |_| open(target.clone())>{label}</button> }
        })
        .collect_view();
    view! {
        <nav class="crumbs" aria-label="Folder" data-test="fm-crumbs">{crumbs}</nav>
        <p class="fm-usage" data-test="fm-usage">
            {usage}
            {percent.map(|p| view! { <span class="bar" role="img" aria-label=format!("{p:.0}% of the disk")><span style=format!("width:{p:.1}%")></span></span> })}
        </p>
        {if empty {
            view! { <p class="muted" data-test="fm-empty">"This folder is empty."</p> }.into_any()
        } else {
            view! {
                <table class="table fm-table">
                    <thead><tr><th>"Name"</th><th class="num">"Size"</th><th></th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
                <p class="muted fm-paging">
                    {shown}
                    {move || (offset.get() > 0).then(|| view! { <button type="button" class="btn btn-ghost btn-small" on:click=move |_| offset.update(|o| *o = o.saturating_sub(PAGE))>"Previous"</button> })}
                    {next.map(|n| view! { <button type="button" class="btn btn-ghost btn-small" on:click=move |_| offset.set(n)>"Next"</button> })}
                </p>
            }.into_any()
        }}
        {move || (!cwd.get().is_empty()).then(|| {
            let here = cwd.get();
            let up = here.rsplit_once('/').map(|(p, _)| p.to_owned()).unwrap_or_default();
            view! { <p><button type="button" class="link" data-test="fm-up" on:click=move |_| cwd.set(up.clone())>"↑ Up one folder"</button></p> }
        })}
        <p><button type="button" class="btn btn-ghost btn-small" data-test="fm-pack-all" on:click=move |_| pending.set(Some(Pending::Pack(cwd.get_untracked())))>"Pack this folder…"</button></p>
    }
}

/// The page size the portal asks for (the domain's default).
pub const PAGE: u64 = 200;

/// Percent-encodes a path for a query string (the browser's `encodeURIComponent`, without it).
fn urlencoding(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
