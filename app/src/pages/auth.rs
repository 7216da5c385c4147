use leptos::prelude::*;
use leptos_meta::Title;

use model::accounts::TWO_FACTOR_CODE_REQUIRED;

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
            <p class="muted">"New here? " <a href="/signup">"Create an account"</a></p>
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
