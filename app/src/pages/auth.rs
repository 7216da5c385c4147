use leptos::prelude::*;
use leptos_meta::Title;

use model::accounts::TWO_FACTOR_CODE_REQUIRED;

use crate::error::PortalError;
use crate::{
    components::forms::{ActionError, CsrfField, SubmitButton},
    session::{use_auth, SignIn, SignUp},
};

#[component]
pub fn SignInPage() -> impl IntoView {
    let sign_in = ServerAction::<SignIn>::new();
    // The code field appears once the server says this account needs one, and stays (a wrong
    // code answers differently but still needs the field).
    let need_code = RwSignal::new(false);
    let next = leptos_router::hooks::use_query_map()
        .with_untracked(|q| q.get("next"))
        .unwrap_or_default();
    Effect::new(move |_| {
        if let Some(Err(e)) = sign_in.value().get() {
            if e.message == TWO_FACTOR_CODE_REQUIRED {
                need_code.set(true);
            }
        }
    });
    view! {
        <Title text="Sign in"/>
        <section class="card narrow">
            <h1>"Sign in"</h1>
            <ActionForm action=sign_in attr:class="form" attr:data-test="sign-in-form">
                <CsrfField/>
                <label>"Email"
                    <input type="email" name="email" required autocomplete="email" maxlength="254"/>
                </label>
                <label>"Password"
                    <input type="password" name="password" required autocomplete="current-password" maxlength="256"/>
                </label>
                // The page that sent the person here, to go back to afterwards.
                <input type="hidden" name="next" value=next/>
                <Show when=move || need_code.get()>
                    <label>"Authentication code"
                        // Not `inputmode="numeric"`: a phone would then offer digits only, and
                        // recovery codes have letters.
                        <input type="text" name="code" required autofocus autocomplete="one-time-code"
                            autocapitalize="off" spellcheck="false" maxlength="32" data-test="sign-in-code"
                            placeholder="123456 or a recovery code"/>
                    </label>
                </Show>
                <ActionError action=sign_in/>
                <SubmitButton action=sign_in label="Sign in" busy_label="Signing in…"/>
            </ActionForm>
            <p class="muted">"New here? " <a href="/signup">"Create an account"</a>
                " · " <a href="/reset" data-test="forgot-password">"Forgot your password?"</a></p>
        </section>
    }
}

#[component]
pub fn SignUpPage() -> impl IntoView {
    let auth = use_auth();
    let sign_up = ServerAction::<SignUp>::new();
    let site_key = move || {
        Suspend::new(async move {
            auth.info.await.ok().and_then(|i| i.turnstile_site_key).map(|key| {
                view! {
                    // In the body, not the head: the head's tags are the preload links'
                    // (`ssr::preload`), and the page's own would be hydrated out of order.
                    <script src="https://challenges.cloudflare.com/turnstile/v0/api.js" async defer></script>
                    <div class="cf-turnstile" data-sitekey=key data-response-field-name="turnstile"></div>
                }
            })
        })
    };
    view! {
        <Title text="Create an account"/>
        <section class="card narrow">
            <h1>"Create an account"</h1>
            <ActionForm action=sign_up attr:class="form" attr:data-test="sign-up-form">
                <CsrfField/>
                <label>"Email"
                    <input type="email" name="email" required autocomplete="email" maxlength="254"/>
                </label>
                <label>"Username"
                    <input type="text" name="username" required autocomplete="username"
                        maxlength="100" pattern="[A-Za-z0-9_\\-]+" title="Letters, digits, _ and - only (no spaces)"
                        title="Letters, digits, '_' and '-'"/>
                    <small class="muted">"Teammates invite you to pools by this name."</small>
                </label>
                <label>"Password"
                    <input type="password" name="password" required autocomplete="new-password"
                        minlength="8" maxlength="256"/>
                    <small class="muted">"At least 8 characters and hard to guess: a few uncommon words together work well, or a password manager's."</small>
                </label>
                <Suspense>{site_key}</Suspense>
                <ActionError action=sign_up/>
                <SubmitButton action=sign_up label="Create account" busy_label="Creating…"/>
            </ActionForm>
            <p class="muted">"Already have an account? " <a href="/signin">"Sign in"</a></p>
        </section>
    }
}

/// Asks for a password reset link (the answer is the same whether or not an account uses the
/// address). Rate-limited like sign-in.
#[server(prefix = "/_fn", endpoint = "request_password_reset")]
pub async fn request_password_reset(csrf: String, email: String) -> Result<String, PortalError> {
    use crate::ssr::portal;
    let state = portal::state()?;
    let session = portal::session().await?;
    portal::check_csrf(&session, &csrf).await?;
    domain::accounts::recovery::request(&state.db, &state.config, &email).await?;
    Ok("If an account uses that address, a link to set a new password is on its way. It works for an hour.".into())
}

/// Follows a reset link: the new password, then every session of the account ends.
#[server(prefix = "/_fn", endpoint = "reset_password")]
pub async fn reset_password(
    csrf: String,
    token: String,
    password: String,
) -> Result<(), PortalError> {
    use crate::ssr::portal;
    let state = portal::state()?;
    let session = portal::session().await?;
    portal::check_csrf(&session, &csrf).await?;
    domain::accounts::recovery::reset(
        &state.db,
        &state.config,
        &state.revocations,
        &token,
        &password,
    )
    .await?;
    Ok(())
}

/// `/reset`: ask for a link; `/reset?token=…` (the link): choose the new password.
#[component]
pub fn ResetPasswordPage() -> impl IntoView {
    let ask = ServerAction::<RequestPasswordReset>::new();
    let reset = ServerAction::<ResetPassword>::new();
    let token = leptos_router::hooks::use_query_map()
        .with_untracked(|q| q.get("token"))
        .filter(|t| !t.is_empty());
    view! {
        <Title text="Reset your password"/>
        <section class="card narrow" data-test="reset-password">
            <h1>"Reset your password"</h1>
            {match token {
                None => view! {
                    <p class="muted">"We mail a link to the account's address; it works for an hour."</p>
                    <ActionForm action=ask attr:class="form" attr:data-test="reset-ask">
                        <CsrfField/>
                        <label>"Email"
                            <input type="email" name="email" required autocomplete="email" maxlength="254"/>
                        </label>
                        <ActionError action=ask/>
                        {move || ask.value().get().and_then(Result::ok).map(|m| view! { <p class="alert alert-ok" role="status" data-test="reset-asked">{m}</p> })}
                        <SubmitButton action=ask label="Send the link" busy_label="Sending…"/>
                    </ActionForm>
                }.into_any(),
                Some(token) => view! {
                    {move || match reset.value().get() {
                        Some(Ok(())) => view! {
                            <p class="alert alert-ok" role="status" data-test="reset-done">"Your password is set, and every session was signed out."</p>
                            <a class="btn" href="/signin">"Sign in"</a>
                        }.into_any(),
                        _ => {
                            let token = token.clone();
                            view! {
                                <ActionForm action=reset attr:class="form" attr:data-test="reset-form">
                                    <CsrfField/>
                                    <input type="hidden" name="token" value=token/>
                                    <label>"New password"
                                        <input type="password" name="password" required minlength="8" maxlength="256" autocomplete="new-password"/>
                                    </label>
                                    <ActionError action=reset/>
                                    <SubmitButton action=reset label="Set the password" busy_label="Setting…"/>
                                </ActionForm>
                            }.into_any()
                        }
                    }}
                }.into_any(),
            }}
            <p class="muted"><a href="/signin">"Back to signing in"</a></p>
        </section>
    }
}
