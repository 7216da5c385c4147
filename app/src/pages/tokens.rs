//! API tokens: create (value shown once), list, revoke.

use crate::components::data::{self, Data};
use leptos::prelude::*;

use crate::error::PortalError;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

use crate::components::format::when;
use crate::components::forms::{ActionError, CopyButton, CsrfField, LoadFailed, SubmitButton};
use crate::components::guard::RequireUser;
use model::accounts::{CreatedToken, Scope, TokenView};
use model::money::usd4;

/// What the tokens page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokensData {
    pub tokens: Vec<TokenView>,
    /// A token created by the last submission, shown once and then forgotten by the server.
    pub new_token: Option<CreatedToken>,
}

#[server(prefix = "/_fn", endpoint = "tokens")]
pub async fn load_tokens() -> Result<TokensData, PortalError> {
    use crate::ssr::portal;
    use domain::accounts::tokens;
    let portal::SignedIn {
        state,
        session,
        user,
    } = portal::signed_in(None).await?;
    let new_token = session
        .remove::<CreatedToken>(portal::SESSION_NEW_TOKEN)
        .await
        .ok()
        .flatten();
    if new_token.is_some() {
        // Rendering may outlive the session middleware's save (streamed pages do), so
        // persist the removal now: the value must never be shown twice.
        session.save().await.map_err(|_| PortalError::internal())?;
    }
    let list = tokens::list(&state.db, &user.id).await?;
    Ok(TokensData {
        tokens: list.into_iter().map(TokenView::from).collect(),
        new_token,
    })
}

/// Creates a token; `spend_limit` is USD, empty for none; each scope box sends its name when
/// ticked (`read` is always given).
#[server(prefix = "/_fn", endpoint = "create_token")]
pub async fn create_token(
    csrf: String,
    name: String,
    spend_limit: String,
    #[server(default)] machines: Option<String>,
    #[server(default)] inside: Option<String>,
    #[server(default)] spend: Option<String>,
    #[server(default)] metrics: Option<String>,
) -> Result<(), PortalError> {
    use crate::ssr::portal;
    use domain::accounts::tokens;
    let portal::SignedIn {
        state,
        session,
        user,
    } = portal::signed_in(Some(&csrf)).await?;
    let limit = match spend_limit.trim() {
        "" => None,
        text => {
            let usd: f64 = text
                .trim_start_matches('$')
                .parse()
                .map_err(|_| PortalError::invalid("Spend limit must be a number of dollars"))?;
            Some(model::money::micros_from_usd(usd).map_err(PortalError::invalid)?)
        }
    };
    // `metrics` is an operator's scope: a customer's form has no such box.
    let metrics = metrics.filter(|_| user.is_admin);
    let ticked: Vec<String> = [machines, inside, spend, metrics]
        .into_iter()
        .flatten()
        .collect();
    let scopes = tokens::Scopes::from_names(&ticked)?;
    let (token, value) = tokens::create(&state.db, &user.id, &name, limit, scopes).await?;
    session
        .insert(
            portal::SESSION_NEW_TOKEN,
            tokens::created_view(token, value),
        )
        .await
        .map_err(|_| PortalError::internal())?;
    Ok(())
}

#[server(prefix = "/_fn", endpoint = "revoke_token")]
pub async fn revoke_token(csrf: String, id: String) -> Result<(), PortalError> {
    use crate::ssr::portal;
    use domain::accounts::tokens;
    let portal::SignedIn { state, user, .. } = portal::signed_in(Some(&csrf)).await?;
    tokens::revoke(&state.db, &state.revocations, &user.id, &id).await?;
    Ok(())
}

#[component]
pub fn TokensPage() -> impl IntoView {
    // Created here, once per page, not inside the signed-in branch: that branch may render more
    // than once while the session loads, and `load_tokens` hands out the new value only once.
    let create = ServerAction::<CreateToken>::new();
    let revoke = ServerAction::<RevokeToken>::new();
    let data = data::load(
        move || (create.version().get(), revoke.version().get()),
        |_| load_tokens(),
    );
    view! {
        <Title text="API tokens"/>
        <RequireUser signed_in=move |me| view! { <Tokens create revoke data operator=me.is_admin/> }/>
    }
}

#[component]
fn Tokens(
    create: ServerAction<CreateToken>,
    revoke: ServerAction<RevokeToken>,
    data: Data<Result<TokensData, PortalError>>,
    /// Operators may also give a token the `metrics` scope (Prometheus).
    operator: bool,
) -> impl IntoView {
    view! {
        <section class="page-head">
            <h1>"API tokens"</h1>
            <p class="muted">
                "Tokens start with " <code>"vtk_"</code> " and work wherever a JWT does: "
                <code>"Authorization: Bearer vtk_…"</code>
                ". A spend limit caps what a token can ever cause to be charged."
            </p>
        </section>
        <section class="card">
            <h2>"New token"</h2>
            <ActionForm action=create attr:class="form form-row" attr:data-test="create-token-form">
                <CsrfField/>
                <label>"Name"
                    <input type="text" name="name" required maxlength="100" placeholder="ci-deploy"/>
                </label>
                <label>"Spend limit (USD, optional)"
                    <input type="number" name="spend_limit" min="0" step="0.01" placeholder="no limit"/>
                </label>
                <fieldset class="scopes" data-test="token-scopes">
                    <legend>"What it may do"</legend>
                    <label class="check"><input type="checkbox" checked disabled/>{Scope::Read.describe()}</label>
                    {[Scope::Machines, Scope::Inside, Scope::Spend].into_iter().map(|s| view! {
                        <label class="check">
                            <input type="checkbox" name=s.as_str() value=s.as_str() checked/>
                            {s.describe()}
                        </label>
                    }).collect_view()}
                    {operator.then(|| view! {
                        <label class="check" data-test="scope-metrics">
                            <input type="checkbox" name="metrics" value="metrics"/>
                            {Scope::Metrics.describe()}" (leave the others unticked for a Prometheus scrape token)"
                        </label>
                    })}
                    <p class="muted small">"No token can create tokens, change the password or two-factor sign-in, or reach operator pages: those need you, signed in."</p>
                </fieldset>
                <SubmitButton action=create label="Create token" busy_label="Creating…"/>
            </ActionForm>
            <ActionError action=create/>
        </section>
        <Transition fallback=|| view! { <p class="muted">"Loading tokens…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(e) => view! { <LoadFailed error=e/> }.into_any(),
                    Ok(TokensData { tokens, new_token }) => {
                        view! {
                            {new_token.map(|t| view! {
                                <section class="card highlight" data-test="new-token">
                                    <h2>{format!("Token “{}” created", t.name)}</h2>
                                    <p>"Copy it now: this is the only time it is shown."</p>
                                    <pre class="secret" data-test="new-token-value">{t.token.clone()}</pre>
                                    <CopyButton text=t.token test="copy-token"/>
                                </section>
                            })}
                            <section class="card">
                                <h2>"Your tokens"</h2>
                                <ActionError action=revoke/>
                                <TokenTable tokens revoke/>
                            </section>
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

#[component]
fn TokenTable(tokens: Vec<TokenView>, revoke: ServerAction<RevokeToken>) -> impl IntoView {
    if tokens.is_empty() {
        return view! { <p class="muted" data-test="no-tokens">"No tokens yet."</p> }.into_any();
    }
    view! {
        <div class="table-wrap">
            <table class="table" data-test="token-table">
                <thead><tr>
                    <th>"Name"</th><th>"Ends in"</th><th>"May"</th><th>"Spend limit"</th><th>"Spent"</th>
                    <th>"Created"</th><th>"Last used"</th><th></th>
                </tr></thead>
                <tbody>
                    {tokens.into_iter().map(|t| view! {
                        <tr data-test="token-row">
                            <td data-label="Name">{t.name.clone()}</td>
                            <td data-label="Ends in"><code>{format!("…{}", t.hint)}</code></td>
                            <td data-label="May" data-test="token-scopes-shown">{t.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")}</td>
                            <td data-label="Spend limit">{t.spend_limit.map(|l| format!("${}", usd4(l.0))).unwrap_or_else(|| "none".into())}</td>
                            <td data-label="Spent">{format!("${}", usd4(t.spent.0))}</td>
                            <td data-label="Created">{when(&t.created_at)}</td>
                            <td data-label="Last used">{t.last_used_at.as_deref().map(when).unwrap_or_else(|| "never".into())}</td>
                            <td>
                                // Asks first, without JavaScript too: the form opens under the button.
                                <details class="confirm">
                                    <summary class="btn btn-ghost btn-sm" data-test="revoke-token">"Revoke…"</summary>
                                    <ActionForm action=revoke attr:class="inline-form">
                                        <CsrfField/>
                                        <input type="hidden" name="id" value=t.id.clone()/>
                                        <span class="muted small">{format!("Scripts using “{}” stop working at once.", t.name)}</span>
                                        <button type="submit" class="btn btn-danger btn-sm" data-test="confirm-revoke">"Yes, revoke"</button>
                                    </ActionForm>
                                </details>
                            </td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }.into_any()
}
