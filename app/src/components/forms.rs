//! Form pieces: the CSRF field every form carries, and how an action's error is shown (and
//! cleared once the form is edited again, by its `SubmitButton`).

use crate::error::PortalError;
use leptos::{prelude::*, server_fn::ServerFn};

use crate::session::use_auth;

/// The hidden field with the session's CSRF token.
///
/// Reads the session resource synchronously (a nested `Suspense` per form made hydration
/// fragile), which leaves two gaps, both closed here: on the server a form may render before
/// the session resource has loaded — hydration keeps whatever value the HTML has, so an empty
/// one stayed empty and the form was refused as expired (seen in the browser tests) — so the
/// server falls back to the token the middleware put in the request; in the browser the
/// resource empties while it reloads on navigation, so the field keeps the last token it had.
#[component]
pub fn CsrfField() -> impl IntoView {
    let auth = use_auth();
    #[cfg(feature = "ssr")]
    let known = crate::ssr::portal::page_csrf().unwrap_or_default();
    #[cfg(not(feature = "ssr"))]
    let known = String::new();
    let last = StoredValue::new(known);
    let csrf = move || match auth.info.get().and_then(Result::ok) {
        Some(info) => {
            last.set_value(info.csrf.clone());
            info.csrf
        }
        None => last.get_value(),
    };
    view! { <input type="hidden" name="csrf" value=csrf/> }
}

/// What a person should read when a server function fails.
pub fn error_message(err: &PortalError) -> String {
    err.message.clone()
}

/// Makes a page that failed to load answer with the failure's own status when rendered on the
/// server: an unknown or foreign id is a 404 page, not a 200 page that says so (search engines,
/// monitors and scripts read the status). In the browser it does nothing.
pub fn answer_status(error: &PortalError) {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        if let Ok(status) = http::StatusCode::from_u16(error.status) {
            response.set_status(status);
        }
    }
    #[cfg(not(feature = "ssr"))]
    let _ = error;
}

/// A page's data that failed to load: the message, with the failure's status as the page's.
#[component]
pub fn LoadFailed(error: PortalError) -> impl IntoView {
    answer_status(&error);
    view! { <p class="alert alert-error">{error.message}</p> }
}

/// The error of the last submission of `action`, if it failed, as an alert.
#[component]
pub fn ActionError<I>(action: ServerAction<I>) -> impl IntoView
where
    I: ServerFn<Error = PortalError> + Clone + Send + Sync + 'static,
    I::Output: Clone + Send + Sync + 'static,
{
    move || {
        action.value().get().and_then(|r| r.err()).map(|e| {
            view! { <p class="alert alert-error" role="alert">{error_message(&e)}</p> }
        })
    }
}

/// A submit button that shows progress and cannot be pressed twice while its action runs. When
/// the action succeeds its form is reset, so what was just sent does not linger as if it had
/// not been (`keep` for forms that show settings, whose fields are the current values).
#[component]
pub fn SubmitButton<I>(
    action: ServerAction<I>,
    label: &'static str,
    busy_label: &'static str,
    #[prop(optional)] class: &'static str,
    #[prop(optional)] keep: bool,
    /// Disabled while this holds (the form cannot succeed as it is, and the page says why).
    #[prop(optional, into)]
    blocked: Option<Signal<bool>>,
) -> impl IntoView
where
    I: ServerFn + Clone + Send + Sync + 'static,
    I::Output: Clone + Send + Sync + 'static,
    I::Error: Clone + Send + Sync + 'static,
{
    let pending = action.pending();
    let blocked = move || blocked.is_some_and(|b| b.get());
    let button = NodeRef::<leptos::html::Button>::new();
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        let succeeded = action.value().with(|v| matches!(v, Some(Ok(_))));
        if succeeded && !keep {
            if let Some(form) = button.get_untracked().and_then(|b| b.form()) {
                form.reset();
            }
        }
    });
    // What the last answer said (an error, a "saved") is about what was sent then: once the person
    // edits the form again it is stale, and goes.
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        use wasm_bindgen::{closure::Closure, JsCast};
        let Some(form) = button.get().and_then(|b| b.form()) else {
            return;
        };
        let clear = Closure::<dyn Fn()>::new(move || {
            let answered = action.value().try_with_untracked(Option::is_some);
            if answered == Some(true) && action.pending().try_get_untracked() == Some(false) {
                action.value().try_set(None);
            }
        });
        let _ = form.add_event_listener_with_callback("input", clear.as_ref().unchecked_ref());
        // Taken off again (and the closure freed) when the button's view goes.
        let listener = send_wrapper::SendWrapper::new((form, clear));
        on_cleanup(move || {
            let (form, clear) = listener.take();
            let _ =
                form.remove_event_listener_with_callback("input", clear.as_ref().unchecked_ref());
        });
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = keep;
    view! {
        <button type="submit" node_ref=button class=format!("btn {class}") disabled=move || pending.get() || blocked()>
            {move || if pending.get() { busy_label } else { label }}
        </button>
    }
}

/// Copies `text` to the clipboard and says so (needs JavaScript; the value stays selectable).
/// `test` names the button for the browser tests.
#[component]
pub fn CopyButton(text: String, #[prop(into)] test: String) -> impl IntoView {
    let copied = RwSignal::new(false);
    let copy = move |_| {
        #[cfg(feature = "hydrate")]
        {
            let clipboard = window().navigator().clipboard();
            let _ = clipboard.write_text(&text);
            copied.set(true);
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = &text;
    };
    view! {
        <button type="button" class="btn btn-sm" data-test=test on:click=copy>
            {move || if copied.get() { "Copied ✓" } else { "Copy" }}
        </button>
    }
}
