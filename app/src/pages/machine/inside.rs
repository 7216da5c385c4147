//! Inside a machine, on its page: run a command (its output shown; long ones as background
//! commands with live status and cancel), and move files in and out. The rules are the domain's
//! (`domain::compute::exec`): running machines (containers, and VMs over SSH), the
//! destructive-command guard, output caps, audit. Uploads go to `/portal/machines/:id/files` (session + CSRF token header; the
//! browser sends the file as it is), downloads are a plain GET form.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::components::deferred::{Deferred, LoadingCard};
use crate::components::forms::{ActionError, CsrfField, SubmitButton};
use crate::error::PortalError;
use crate::session::use_auth;
use model::compute::{CommandJob, ExecResult};

/// How a command from the page went: its output, or the background command started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunOutcome {
    Done(ExecResult),
    Started(String),
}

/// Runs a command in the machine (`background` = "on" starts it as a background command).
#[server(prefix = "/_fn", endpoint = "run_command")]
pub async fn run_command(
    csrf: String,
    id: String,
    command: String,
    timeout_seconds: String,
    background: Option<String>,
) -> Result<RunOutcome, PortalError> {
    use crate::ssr::portal;
    use domain::compute::exec::{self, Command};
    let portal::SignedIn { state, user, .. } = portal::signed_in(Some(&csrf)).await?;
    domain::compute::instances::get(&state.db, &user.id, &id).await?;
    let timeout = match timeout_seconds.trim() {
        "" => None,
        t => Some(
            t.parse::<u64>()
                .map_err(|_| PortalError::invalid("Timeout: a whole number of seconds, e.g. 30"))?,
        ),
    };
    let cmd = Command::check(&state, &user.id, Some(&id), &command, timeout).await?;
    if background.is_some() {
        let job = exec::start(&state, &user.id, &id, &cmd).await?;
        return Ok(RunOutcome::Started(job.job_id));
    }
    Ok(RunOutcome::Done(
        exec::run(&state, &user.id, &id, &cmd).await?,
    ))
}

/// The machine's background commands, newest first.
#[server(prefix = "/_fn", endpoint = "command_jobs")]
pub async fn command_jobs(id: String) -> Result<Vec<CommandJob>, PortalError> {
    use crate::ssr::portal;
    let portal::SignedIn { state, user, .. } = portal::signed_in(None).await?;
    let jobs = domain::compute::exec::jobs(&state.db, &user.id, &id).await?;
    Ok(jobs
        .into_iter()
        .map(|j| CommandJob {
            job_id: j.job_id,
            command: j.command,
            status: j.status,
            stdout: j.stdout,
            stderr: j.stderr,
            exit_code: j.exit_code,
            reason: j.reason,
            created_at: j.created_at,
        })
        .collect())
}

#[server(prefix = "/_fn", endpoint = "cancel_command")]
pub async fn cancel_command(csrf: String, id: String, job_id: String) -> Result<(), PortalError> {
    use crate::ssr::portal;
    let portal::SignedIn { state, user, .. } = portal::signed_in(Some(&csrf)).await?;
    domain::compute::exec::cancel(&state, &user.id, &id, &job_id).await?;
    Ok(())
}

/// The "Run a command" and "Files" cards of a machine (they answer while it runs). Their code is
/// a module of its own (group `inside`), fetched once the page has hydrated
/// (`components::deferred`): both cards need the browser (a command's output and the list of
/// background commands are the browser's reads; uploads stream from it).
#[component]
pub fn LazyInsideCards(id: String, settled: RwSignal<bool>) -> impl IntoView {
    view! {
        <Deferred settled
            placeholder=|| view! {
                <LoadingCard title="Run a command" test="command-loading"/>
                <LoadingCard title="Files" test="files-loading"/>
            }
            load=move || {
                let id = id.clone();
                async move { crate::split_call!(inside_cards(id)) }
            }/>
    }
}

#[cfg_attr(
    feature = "hydrate",
    ::leptos::wasm_split::wasm_split(inside, wasm_split_path = ::leptos::wasm_split)
)]
fn inside_cards(id: String) -> AnyView {
    view! {
        <CommandCard id=id.clone()/>
        <FilesCard id/>
    }
    .into_any()
}

#[component]
fn CommandCard(id: String) -> impl IntoView {
    let run = ServerAction::<RunCommand>::new();
    let cancel = ServerAction::<CancelCommand>::new();
    // Re-read the background commands after each action, and every second while one is open.
    let tick = RwSignal::new(0u32);
    // Loaded in the browser only (a live list: it changes between the server's render and
    // hydration, so it is not part of the server-rendered page).
    let jobs = LocalResource::new({
        let id = id.clone();
        move || {
            run.version().get();
            cancel.version().get();
            tick.get();
            command_jobs(id.clone())
        }
    });
    // Whether the list last shown has a command still going (set where the list renders).
    let any_open = RwSignal::new(false);
    #[cfg(feature = "hydrate")]
    {
        let handle = set_interval_with_handle(
            move || {
                if any_open.get_untracked() {
                    tick.update(|t| *t += 1);
                }
            },
            std::time::Duration::from_millis(1000),
        );
        if let Ok(handle) = handle {
            on_cleanup(move || handle.clear());
        }
    }
    let id_form = id.clone();
    view! {
        <section class="card" data-test="command-card">
            <h2>"Run a command"</h2>
            <p class="muted">"Runs as root with "<code>"sh -c"</code>". Destructive commands (such as "<code>"rm -rf /"</code>", "<code>"mkfs"</code>", "<code>"reboot"</code>") are refused; use the power buttons to stop or restart."</p>
            <ActionForm action=run attr:class="form" attr:data-test="command-form">
                <CsrfField/>
                <input type="hidden" name="id" value=id_form/>
                <label>"Command" <textarea name="command" rows="2" required placeholder="df -h /"></textarea></label>
                <div class="form-row">
                    <label>"Timeout (seconds)" <input type="number" name="timeout_seconds" min="1" value="30"/></label>
                    <label class="check"><input type="checkbox" name="background"/>"In the background"</label>
                    <SubmitButton action=run label="Run" busy_label="Running…" keep=true/>
                </div>
            </ActionForm>
            <ActionError action=run/>
            {move || run.value().get().and_then(Result::ok).map(|outcome| match outcome {
                RunOutcome::Done(out) => view! { <CommandResult out/> }.into_any(),
                RunOutcome::Started(job) => view! {
                    <p class="alert alert-ok" data-test="command-started">{format!("Started in the background (job {job}); its status is below.")}</p>
                }.into_any(),
            })}
            <ActionError action=cancel/>
            <Transition fallback=|| ()>
                {move || {
                    let vps_id = id.clone();
                    Suspend::new(async move {
                        let list = jobs.await.unwrap_or_default();
                        any_open.set(list.iter().any(CommandJob::open));
                        (!list.is_empty()).then(|| view! { <JobsTable vps_id jobs=list cancel/> })
                    })
                }}
            </Transition>
        </section>
    }
}

#[component]
fn CommandResult(out: ExecResult) -> impl IntoView {
    let status = match (out.timed_out, out.exit_code) {
        (true, _) => "killed after its timeout".to_owned(),
        (false, Some(code)) => format!("exit code {code}"),
        (false, None) => "no exit code".to_owned(),
    };
    view! {
        <div class="command-output" data-test="command-output">
            <p class="muted"><span data-test="command-exit">{status}</span>{format!(" · {} ms", out.duration_ms)}
                {out.truncated.then_some(" · output cut at 1 MiB per stream")}</p>
            <pre class="terminal" data-test="command-stdout">{out.stdout}</pre>
            {(!out.stderr.is_empty()).then(|| view! { <pre class="terminal terminal-err" data-test="command-stderr">{out.stderr}</pre> })}
        </div>
    }
}

#[component]
fn JobsTable(
    vps_id: String,
    jobs: Vec<CommandJob>,
    cancel: ServerAction<CancelCommand>,
) -> impl IntoView {
    view! {
        <h3>"Background commands"</h3>
        <div class="table-wrap"><table class="table" data-test="command-jobs">
            <thead><tr><th>"Command"</th><th>"Status"</th><th>"Output"</th><th></th></tr></thead>
            <tbody>{jobs.into_iter().map(|j| {
                let open = j.open();
                let vps_id = vps_id.clone();
                let status_class = format!("status status-{}", if open { "busy" } else if j.status == model::compute::CommandStatus::Done { "active" } else { "expired" });
                let detail = match (j.exit_code, &j.reason) {
                    (_, Some(r)) => r.clone(),
                    (Some(c), None) => format!("exit code {c}"),
                    (None, None) => String::new(),
                };
                view! {
                    <tr data-test="command-job" data-status=j.status.as_str()>
                        <td data-label="Command"><code>{j.command.clone()}</code></td>
                        <td data-label="Status"><span class=status_class>{j.status.as_str()}</span><br/><small class="muted">{detail}</small></td>
                        <td data-label="Output">{
                            let output = format!("{}{}", j.stdout, j.stderr);
                            if output.is_empty() {
                                view! { <span class="muted">"—"</span> }.into_any()
                            } else {
                                view! { <pre class="terminal terminal-small">{output}</pre> }.into_any()
                            }
                        }</td>
                        <td>{open.then(|| view! {
                            <ActionForm action=cancel attr:class="inline-form">
                                <CsrfField/>
                                <input type="hidden" name="id" value=vps_id/>
                                <input type="hidden" name="job_id" value=j.job_id.clone()/>
                                <button type="submit" class="btn btn-sm btn-danger" data-test="cancel-command">"Cancel"</button>
                            </ActionForm>
                        })}</td>
                    </tr>
                }
            }).collect_view()}</tbody>
        </table></div>
    }
}

#[component]
fn FilesCard(id: String) -> impl IntoView {
    let status = RwSignal::new(None::<Result<String, String>>);
    let upload_path = NodeRef::<leptos::html::Input>::new();
    let upload_file = NodeRef::<leptos::html::Input>::new();
    let auth = use_auth();
    let csrf = move || {
        auth.info
            .get_untracked()
            .and_then(Result::ok)
            .map(|i| i.csrf)
            .unwrap_or_default()
    };
    let on_upload = {
        let id = id.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            #[cfg(feature = "hydrate")]
            {
                let path = upload_path.get().map(|i| i.value()).unwrap_or_default();
                match upload_file
                    .get()
                    .and_then(|i| i.files())
                    .and_then(|f| f.get(0))
                {
                    Some(file) => start_upload(
                        format!("/portal/machines/{id}/files"),
                        path,
                        file,
                        csrf(),
                        status,
                        None,
                    ),
                    None => status.set(Some(Err("Choose a file first".into()))),
                }
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = (&id, upload_path, upload_file, csrf(), status);
        }
    };
    let download_action = format!("/portal/machines/{id}/files");
    let download_status = RwSignal::new(None::<String>);
    let download_path = NodeRef::<leptos::html::Input>::new();
    // A file that cannot be had (missing, too large, the machine stopped) is said here, on the
    // page, instead of the browser leaving for a bare error page: the download is asked for
    // once to see the answer, and only a good one is handed to the browser to save.
    let on_download = {
        let url = download_action.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            #[cfg(feature = "hydrate")]
            {
                let path = download_path.get().map(|i| i.value()).unwrap_or_default();
                let url = format!("{url}?path={}", js_sys::encode_uri_component(&path));
                download_status.set(None);
                leptos::task::spawn_local(async move {
                    if let Err(message) = check_download(&url).await {
                        download_status.try_set(Some(message));
                    } else if let Some(window) = web_sys::window() {
                        let _ = window.location().set_href(&url);
                    }
                });
            }
            #[cfg(not(feature = "hydrate"))]
            let _ = (&url, download_path, download_status);
        }
    };
    view! {
        <section class="card" data-test="files-card">
            <h2>"Files"</h2>
            <form class="form form-row" data-test="upload-form" on:submit=on_upload>
                <label>"Upload to (absolute path)" <input type="text" name="path" node_ref=upload_path required placeholder="/root/script.sh"/></label>
                <label>"File" <input type="file" name="file" node_ref=upload_file required/></label>
                <button type="submit" class="btn">"Upload"</button>
            </form>
            {move || status.get().map(|s| match s {
                Ok(m) => view! { <p class="alert alert-ok" data-test="upload-status">{m}</p> }.into_any(),
                Err(m) => view! { <p class="alert alert-error" role="alert" data-test="upload-status">{m}</p> }.into_any(),
            })}
            <form class="form form-row" method="get" action=download_action data-test="download-form" on:submit=on_download>
                <label>"Download (absolute path)" <input type="text" name="path" node_ref=download_path required placeholder="/etc/hostname"/></label>
                <button type="submit" class="btn btn-ghost">"Download"</button>
            </form>
            {move || download_status.get().map(|m| view! { <p class="alert alert-error" role="alert" data-test="download-status">{m}</p> })}
            <p class="muted">"Uploading needs JavaScript; files up to the operator's limit (64 MiB by default). The file's folder must exist."</p>
        </section>
    }
}

/// Asks for `url` and stops as soon as the answer's status is known: `Ok` when the file is there
/// to download, the server's message otherwise.
#[cfg(feature = "hydrate")]
async fn check_download(url: &str) -> Result<(), String> {
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;
    let window = web_sys::window().ok_or("No window")?;
    let abort = web_sys::AbortController::new().map_err(|_| "Could not start the download")?;
    let init = web_sys::RequestInit::new();
    init.set_signal(Some(&abort.signal()));
    let response = JsFuture::from(window.fetch_with_str_and_init(url, &init))
        .await
        .map_err(|_| "Could not reach the server; check your connection".to_owned())?;
    let response: web_sys::Response = response
        .dyn_into()
        .map_err(|_| "Could not start the download".to_owned())?;
    if response.ok() {
        // The browser downloads it for real next; this copy is not needed.
        abort.abort();
        return Ok(());
    }
    let text = match response.text() {
        Ok(p) => JsFuture::from(p).await.ok().and_then(|t| t.as_string()),
        Err(_) => None,
    };
    Err(text
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| format!("The download failed ({})", response.status())))
}

/// Sends the chosen file as the request body of `PUT <url>?path=<path>` (the browser streams it;
/// the page never reads it); `done` is bumped when it is in.
#[cfg(feature = "hydrate")]
pub(super) fn start_upload(
    url: String,
    path: String,
    file: web_sys::File,
    csrf: String,
    status: RwSignal<Option<Result<String, String>>>,
    done: Option<RwSignal<u32>>,
) {
    use wasm_bindgen::JsCast;
    use wasm_bindgen_futures::JsFuture;
    status.set(Some(Ok("Uploading…".into())));
    leptos::task::spawn_local(async move {
        let run = async {
            let failed = |_| "Could not start the upload".to_owned();
            let init = web_sys::RequestInit::new();
            init.set_method("PUT");
            init.set_body(&file);
            let headers = web_sys::Headers::new().map_err(failed)?;
            headers.set("x-csrf-token", &csrf).map_err(failed)?;
            init.set_headers(&headers);
            let url = format!("{url}?path={}", js_sys::encode_uri_component(&path));
            let window = web_sys::window().ok_or("No window")?;
            let response = JsFuture::from(window.fetch_with_str_and_init(&url, &init))
                .await
                .map_err(|_| "Could not reach the server; check your connection".to_owned())?;
            let response: web_sys::Response = response.dyn_into().map_err(failed)?;
            if response.ok() {
                if let Some(done) = done {
                    done.try_update(|n| *n += 1);
                }
                return Ok(format!("Uploaded {path}"));
            }
            let text = match response.text() {
                Ok(p) => JsFuture::from(p).await.ok().and_then(|t| t.as_string()),
                Err(_) => None,
            };
            Err(text
                .and_then(|t| serde_json::from_slice::<PortalError>(t.as_bytes()).ok())
                .map(|e| e.message)
                .unwrap_or_else(|| format!("Upload failed ({})", response.status())))
        };
        // `try_`: the person may have left the page while the file went up.
        status.try_set(Some(run.await));
    });
}
