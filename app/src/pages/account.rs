use leptos::prelude::*;
use leptos_meta::Title;

use crate::pages::RequireUser;
use model::money::usd4;

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
        }/>
    }
}
