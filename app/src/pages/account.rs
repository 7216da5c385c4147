//! Who you are and what you have: your limits and how much of each is in use; the password (changed with the current one, which signs out
//! every other session and API sign-in) and "sign out everywhere"; and two-factor sign-in: set
//! up with a QR code, confirmed with a code, recovery codes shown once, turned off with the
//! password and a code.

use crate::components::data;
use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

use crate::components::forms::{ActionError, CopyButton, CsrfField, LoadFailed, SubmitButton};
use crate::components::guard::RequireUser;
use crate::components::meter::{Gauge, Meter};
use crate::error::PortalError;
use model::money::usd4;

/// Whether two-factor sign-in is on, and how many recovery codes are left.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TwoFactorStatus {
    pub on: bool,
    pub recovery_codes_left: i64,
}

/// A new key for an authenticator app, pending until a code confirms it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TwoFactorKey {
    pub secret: String,
    pub otpauth_uri: String,
    /// The QR code of `otpauth_uri`, an SVG document made on the server.
    pub qr_svg: String,
}

#[server(prefix = "/_fn", endpoint = "two_factor")]
pub async fn load_two_factor() -> Result<TwoFactorStatus, PortalError> {
    use domain::accounts::totp;
    let s = crate::ssr::portal::signed_in(None).await?;
    Ok(TwoFactorStatus {
        on: s.user.two_factor,
        recovery_codes_left: totp::recovery_codes_left(&s.state.db, &s.user.id).await?,
    })
}

/// The account's limits with their use (`GET /api/quotas`).
#[server(prefix = "/_fn", endpoint = "account_limits")]
pub async fn load_limits() -> Result<model::compute::Quotas, PortalError> {
    let s = crate::ssr::portal::signed_in(None).await?;
    Ok(domain::compute::quotas::of_account(&s.state, &s.user.id).await?)
}

#[server(prefix = "/_fn", endpoint = "two_factor_setup")]
pub async fn set_up_two_factor(csrf: String) -> Result<TwoFactorKey, PortalError> {
    use domain::accounts::totp;
    let s = crate::ssr::portal::signed_in(Some(&csrf)).await?;
    let e = totp::setup(&s.state.db, &s.state.config, &s.user).await?;
    Ok(TwoFactorKey {
        secret: e.secret,
        otpauth_uri: e.uri,
        qr_svg: e.qr_svg,
    })
}

/// Turns it on; answers the recovery codes, shown this once.
#[server(prefix = "/_fn", endpoint = "two_factor_enable")]
pub async fn enable_two_factor(csrf: String, code: String) -> Result<Vec<String>, PortalError> {
    use domain::accounts::totp;
    let s = crate::ssr::portal::signed_in(Some(&csrf)).await?;
    Ok(totp::enable(&s.state.db, &s.user, &code).await?)
}

#[server(prefix = "/_fn", endpoint = "two_factor_disable")]
pub async fn disable_two_factor(
    csrf: String,
    password: String,
    code: String,
) -> Result<(), PortalError> {
    use domain::accounts::totp;
    let s = crate::ssr::portal::signed_in(Some(&csrf)).await?;
    totp::disable(&s.state.db, &s.user, &password, &code).await?;
    Ok(())
}

/// Changes the password; this browser stays signed in, every other session and JWT ends.
#[server(prefix = "/_fn", endpoint = "change_password")]
pub async fn change_password(
    csrf: String,
    current_password: String,
    new_password: String,
) -> Result<(), PortalError> {
    use domain::accounts::{credentials, users};
    let s = crate::ssr::portal::signed_in(Some(&csrf)).await?;
    credentials::change_password(
        &s.state.db,
        &s.state.revocations,
        &s.user,
        &current_password,
        &new_password,
    )
    .await?;
    // This session takes the new version (and a new id), so only the others end.
    let user = users::get(&s.state.db, &s.user.id).await?;
    crate::ssr::portal::sign_in(&s.session, &user).await?;
    Ok(())
}

/// Asks to change the sign-in email: a link goes to the new address.
#[server(prefix = "/_fn", endpoint = "change_email")]
pub async fn change_email(
    csrf: String,
    email: String,
    password: String,
) -> Result<String, PortalError> {
    use domain::accounts::account;
    let s = crate::ssr::portal::signed_in(Some(&csrf)).await?;
    account::request_email_change(&s.state.db, &s.state.config, &s.user, &password, &email).await?;
    Ok(email.trim().to_lowercase())
}

/// The account's email change waiting for its link, and what deleting the account would need
/// first: (pending new email, blockers, balance µUSD).
#[server(prefix = "/_fn", endpoint = "account_changes")]
pub async fn account_changes() -> Result<(Option<String>, Vec<String>, i64), PortalError> {
    use domain::accounts::account;
    let s = crate::ssr::portal::signed_in(None).await?;
    let pending = account::pending_email_change(&s.state.db, &s.user.id).await?;
    let closure = account::closure(&s.state.db, &s.user).await?;
    Ok((
        pending.map(|p| p.0),
        closure.blockers,
        closure.balance_micros,
    ))
}

/// Deletes the account, signs out and goes to the front page.
#[server(prefix = "/_fn", endpoint = "delete_account")]
pub async fn delete_account(
    csrf: String,
    password: String,
    #[server(default)] understood: Option<String>,
) -> Result<(), PortalError> {
    use domain::accounts::account;
    let s = crate::ssr::portal::signed_in(Some(&csrf)).await?;
    if understood.is_none() {
        return Err(PortalError::invalid(
            "Tick the box to say you understand what deleting does",
        ));
    }
    account::delete(&s.state.db, &s.state.revocations, &s.user, &password).await?;
    crate::ssr::portal::sign_out(&s.session).await?;
    leptos_axum::redirect("/?account=deleted");
    Ok(())
}

/// Follows an email-change link (a button on the page, so link checkers that open mail links
/// do not confirm it by themselves).
#[server(prefix = "/_fn", endpoint = "confirm_email")]
pub async fn confirm_email(csrf: String, token: String) -> Result<String, PortalError> {
    let state = crate::ssr::portal::state()?;
    let session = crate::ssr::portal::session().await?;
    crate::ssr::portal::check_csrf(&session, &csrf).await?;
    let user = domain::accounts::account::confirm_email(&state.db, &state.config, &token).await?;
    Ok(user.email)
}

/// Ends every session and JWT of the account, this one too (and with `revoke_tokens`, every
/// access token), then goes to the sign-in page.
#[server(prefix = "/_fn", endpoint = "sign_out_everywhere")]
pub async fn sign_out_everywhere(
    csrf: String,
    #[server(default)] revoke_tokens: Option<String>,
) -> Result<(), PortalError> {
    use domain::accounts::credentials;
    let s = crate::ssr::portal::signed_in(Some(&csrf)).await?;
    credentials::sign_out_everywhere(
        &s.state.db,
        &s.state.revocations,
        &s.user.id,
        revoke_tokens.is_some(),
    )
    .await?;
    crate::ssr::portal::sign_out(&s.session).await?;
    leptos_axum::redirect("/signin");
    Ok(())
}

/// Who you are and what you have.
#[component]
pub fn AccountPage() -> impl IntoView {
    view! {
        <Title text="Account"/>
        <RequireUser signed_in=|me| view! {
            <section class="page-head"><h1>"Account"</h1></section>
            <section class="card">
                <dl class="facts">
                    <dt>"Username"</dt><dd data-test="account-username">{me.username.clone()}</dd>
                    <dt>"Email"</dt><dd data-test="account-email">{me.email.clone()}</dd>
                    <dt>"Balance"</dt><dd data-test="account-balance">{format!("${}", usd4(me.balance.0))}</dd>
                    <dt>"User id"</dt><dd><code>{me.id.clone()}</code></dd>
                    {me.is_admin.then(|| view! { <dt>"Role"</dt><dd>"Operator"</dd> })}
                </dl>
            </section>
            <LimitsCard/>
            <EmailCard current=me.email.clone()/>
            <PasswordCard/>
            <TwoFactorCard/>
            <DeleteCard/>
        }/>
    }
}

/// The sign-in email: changed through a link sent to the new address.
#[component]
fn EmailCard(current: String) -> impl IntoView {
    let change = ServerAction::<ChangeEmail>::new();
    let state = data::load(move || change.version().get(), |_| account_changes());
    view! {
        <section class="card" data-test="email-card">
            <h2>"Sign-in email"</h2>
            <p class="muted">{format!("You sign in with {current}. A new address takes effect when you open the link we send to it.")}</p>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    state.await.ok().and_then(|(pending, ..)| pending).map(|p| view! {
                        <p class="alert alert-ok" role="status" data-test="email-pending">
                            {format!("Waiting for you to open the link sent to {p} (valid 24 hours).")}
                        </p>
                    })
                })}
            </Transition>
            <ActionForm action=change attr:class="form" attr:data-test="change-email">
                <CsrfField/>
                <label>"New email"
                    <input type="email" name="email" required maxlength="254" autocomplete="email"/>
                </label>
                <label>"Password"
                    <input type="password" name="password" required autocomplete="current-password" maxlength="256"/>
                </label>
                <ActionError action=change/>
                <SubmitButton action=change label="Send the link" busy_label="Sending…"/>
            </ActionForm>
        </section>
    }
}

/// Deleting the account: what it does and what must go first, said before the button.
#[component]
fn DeleteCard() -> impl IntoView {
    let delete = ServerAction::<DeleteAccount>::new();
    let state = data::load(|| (), |_| account_changes());
    view! {
        <section class="card" data-test="delete-card">
            <h2>"Delete the account"</h2>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match state.await {
                        Err(e) => view! { <LoadFailed error=e/> }.into_any(),
                        Ok((_, blockers, balance)) => view! {
                            <p class="muted">"Your email and username are released, and every browser session, API sign-in and API token ends. Your SSH keys, alert addresses and pool memberships are removed. Payment and activity records stay with the operator, as accounting requires."</p>
                            {(balance > 0).then(|| view! {
                                <p class="alert" data-test="delete-balance">
                                    {format!("Your balance of {} is not paid out by deleting: ask the operator for a refund first.", crate::components::format::money(balance))}
                                </p>
                            })}
                            {if blockers.is_empty() {
                                view! {
                                    <details class="confirm">
                                        <summary class="btn btn-danger" data-test="delete-account">"Delete my account…"</summary>
                                        <ActionForm action=delete attr:class="form" attr:data-test="delete-account-form">
                                            <CsrfField/>
                                            <label>"Password"
                                                <input type="password" name="password" required autocomplete="current-password" maxlength="256"/>
                                            </label>
                                            <label class="check"><input type="checkbox" name="understood" value="yes" required/>"I understand this cannot be undone"</label>
                                            <ActionError action=delete/>
                                            <SubmitButton action=delete label="Delete my account" busy_label="Deleting…" class="btn-danger"/>
                                        </ActionForm>
                                    </details>
                                }.into_any()
                            } else {
                                view! {
                                    <p>"Before the account can go:"</p>
                                    <ul data-test="delete-blockers">
                                        {blockers.into_iter().map(|b| view! { <li>{b}</li> }).collect_view()}
                                    </ul>
                                }.into_any()
                            }}
                        }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// `/account/email?token=…`: the page an email-change link opens.
#[component]
pub fn ConfirmEmailPage() -> impl IntoView {
    let confirm = ServerAction::<ConfirmEmail>::new();
    let token = leptos_router::hooks::use_query_map()
        .with_untracked(|q| q.get("token").unwrap_or_default());
    view! {
        <Title text="Confirm your email"/>
        <section class="card narrow" data-test="confirm-email">
            <h1>"Confirm your new email"</h1>
            {move || match confirm.value().get() {
                Some(Ok(email)) => view! {
                    <p class="alert alert-ok" role="status" data-test="email-confirmed">{format!("Done: you sign in with {email} from now on.")}</p>
                    <a class="btn" href="/account">"Go to your account"</a>
                }.into_any(),
                _ => {
                    let token = token.clone();
                    view! {
                    <p class="muted">"Your account will sign in with the address this link was sent to."</p>
                    <ActionForm action=confirm attr:class="form">
                        <CsrfField/>
                        <input type="hidden" name="token" value=token.clone()/>
                        <ActionError action=confirm/>
                        <SubmitButton action=confirm label="Confirm" busy_label="Confirming…"/>
                    </ActionForm>
                }.into_any() }
            }}
        </section>
    }
}

/// What the account may hold and how much of it is in use, one meter per limit (as Hetzner's
/// Limits page shows them): a customer sees a refusal coming, and whom to ask.
#[component]
fn LimitsCard() -> impl IntoView {
    let limits = data::load(|| (), |_| load_limits());
    view! {
        <section class="card" data-test="limits">
            <h2>"Limits"</h2>
            <p class="muted">"What this account may hold at once; stopped machines count too (they keep their place). Need more? Ask your provider: an operator can raise any of these for your account."</p>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match limits.await {
                        Err(e) => view! { <LoadFailed error=e/> }.into_any(),
                        Ok(q) => q.items.into_iter().map(|item| view! {
                            <Meter label=limit_label(&item.name) gauge=Gauge { used: item.used, limit: item.limit } unit=item.unit/>
                        }).collect_view().into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// A limit's name in a person's words.
fn limit_label(name: &str) -> &'static str {
    match name {
        "machines" => "Machines",
        "vcpu" => "vCPU",
        "memory" => "Memory",
        "disk" => "Disk",
        "ipv4" => "Public IPv4 addresses",
        "consoles" => "Open consoles and screens",
        "background_commands" => "Background commands",
        _ => "Other",
    }
}

#[component]
fn TwoFactorCard() -> impl IntoView {
    let set_up = ServerAction::<SetUpTwoFactor>::new();
    let enable = ServerAction::<EnableTwoFactor>::new();
    let disable = ServerAction::<DisableTwoFactor>::new();
    let status = data::load(
        move || (enable.version().get(), disable.version().get()),
        |_| load_two_factor(),
    );
    let fresh_codes = move || enable.value().get().and_then(Result::ok);
    view! {
        <section class="card" data-test="two-factor">
            <h2>"Two-factor sign-in"</h2>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match status.await {
                        Err(e) => view! { <LoadFailed error=e/> }.into_any(),
                        Ok(s) if s.on => view! {
                            <p data-test="two-factor-on">
                                <strong>"On."</strong>
                                " Signing in asks for a code from your authenticator app after the password. "
                                {format!("{} recovery code{} left.", s.recovery_codes_left,
                                    if s.recovery_codes_left == 1 { "" } else { "s" })}
                            </p>
                            {move || fresh_codes().map(|codes| view! { <RecoveryCodes codes/> })}
                            <details>
                                <summary>"Turn two-factor sign-in off"</summary>
                                <ActionForm action=disable attr:class="form" attr:data-test="two-factor-disable">
                                    <CsrfField/>
                                    <label>"Password"
                                        <input type="password" name="password" required autocomplete="current-password" maxlength="256"/>
                                    </label>
                                    <label>"Authentication code or recovery code"
                                        <input type="text" name="code" required autocomplete="one-time-code" maxlength="32"/>
                                    </label>
                                    <ActionError action=disable/>
                                    <SubmitButton action=disable label="Turn off" busy_label="Turning off…" class="btn-danger"/>
                                </ActionForm>
                            </details>
                        }.into_any(),
                        Ok(_) => view! {
                            <p data-test="two-factor-off">
                                "Off. With it on, signing in also asks for a 6-digit code from an authenticator app on your phone (any TOTP app), so a stolen password alone is not enough."
                            </p>
                            {move || match set_up.value().get() {
                                Some(Ok(key)) => view! { <EnrolForm key enable/> }.into_any(),
                                _ => view! {
                                    <ActionForm action=set_up attr:class="form inline" attr:data-test="two-factor-setup">
                                        <CsrfField/>
                                        <ActionError action=set_up/>
                                        <SubmitButton action=set_up label="Set up two-factor sign-in" busy_label="Making a key…"/>
                                    </ActionForm>
                                }.into_any(),
                            }}
                        }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

/// The password and the account's sessions.
#[component]
fn PasswordCard() -> impl IntoView {
    let change = ServerAction::<ChangePassword>::new();
    let everywhere = ServerAction::<SignOutEverywhere>::new();
    let changed = move || matches!(change.value().get(), Some(Ok(())));
    view! {
        <section class="card" data-test="password-card">
            <h2>"Password and sessions"</h2>
            <ActionForm action=change attr:class="form" attr:data-test="change-password">
                <CsrfField/>
                <label>"Current password"
                    <input type="password" name="current_password" required autocomplete="current-password" maxlength="256"/>
                </label>
                <label>"New password (8 characters or more, hard to guess)"
                    <input type="password" name="new_password" required autocomplete="new-password" minlength="8" maxlength="256"/>
                </label>
                <ActionError action=change/>
                {move || changed().then(|| view! {
                    <p class="alert alert-ok" role="status" data-test="password-changed">
                        "Password changed. Every other browser and API sign-in has been signed out; API tokens keep working."
                    </p>
                })}
                <SubmitButton action=change label="Change password" busy_label="Changing…"/>
            </ActionForm>
            <details class="confirm">
                <summary class="btn btn-ghost" data-test="sign-out-everywhere">"Sign out everywhere…"</summary>
                <ActionForm action=everywhere attr:class="form" attr:data-test="sign-out-everywhere-form">
                    <CsrfField/>
                    <p class="muted">"Ends every browser session and API sign-in of this account, this one too, and closes open consoles. Use it if you lost a device or think someone else signed in."</p>
                    <label class="check"><input type="checkbox" name="revoke_tokens" value="yes"/>"Also revoke every API token (scripts using them stop working)"</label>
                    <ActionError action=everywhere/>
                    <SubmitButton action=everywhere label="Sign out everywhere" busy_label="Signing out…" class="btn-danger"/>
                </ActionForm>
            </details>
        </section>
    }
}

/// Step two: the key as a QR code and as text, and the code that proves the app has it.
#[component]
fn EnrolForm(key: TwoFactorKey, enable: ServerAction<EnableTwoFactor>) -> impl IntoView {
    view! {
        <div class="enrol">
            <div class="qr" inner_html=key.qr_svg.clone() aria-label="QR code of the key"></div>
            <div>
                <p>"1. Scan this QR code with your authenticator app, or type the key in:"</p>
                <p><code data-test="two-factor-secret">{key.secret.clone()}</code>
                    " " <CopyButton text=key.secret.clone() test="copy-two-factor-secret"/></p>
                <p>"2. Enter the 6-digit code the app shows:"</p>
                <ActionForm action=enable attr:class="form inline" attr:data-test="two-factor-enable">
                    <CsrfField/>
                    <input type="text" name="code" required autocomplete="one-time-code" inputmode="numeric"
                        pattern="[0-9 ]{6,7}" title="The 6 digits your authenticator app shows" maxlength="7" placeholder="123456" aria-label="Authentication code"/>
                    <SubmitButton action=enable label="Turn on" busy_label="Checking…"/>
                    <ActionError action=enable/>
                </ActionForm>
            </div>
        </div>
    }
}

#[component]
fn RecoveryCodes(codes: Vec<String>) -> impl IntoView {
    let all = codes.join("\n");
    view! {
        <div class="alert alert-ok" data-test="recovery-codes">
            <p><strong>"Your recovery codes"</strong>
                " — each signs you in once if you lose your phone. They are shown only now: keep them somewhere safe."</p>
            <ul class="codes">{codes.into_iter().map(|c| view! { <li><code>{c}</code></li> }).collect_view()}</ul>
            <CopyButton text=all test="copy-recovery-codes"/>
        </div>
    }
}
