//! `/status`: whether Hangar is up, for anyone (the footer's Status link). What a customer can
//! act on: the portal and API answer, the database answers, and how many of the nodes that run
//! machines answer the reconciler. Machine-readable health stays at `GET /health`.

use crate::components::data;
use leptos::prelude::*;
use leptos_meta::Title;
use serde::{Deserialize, Serialize};

use crate::error::PortalError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusData {
    pub database: bool,
    /// Nodes that take machines (not draining), and how many of them do not answer.
    pub nodes: i64,
    pub unreachable: i64,
    pub version: String,
}

#[server(prefix = "/_fn", endpoint = "status")]
pub async fn load_status() -> Result<StatusData, PortalError> {
    use domain::fleet::nodes;
    let state = crate::ssr::portal::state()?;
    let version = env!("CARGO_PKG_VERSION").to_owned();
    let Ok(list) = nodes::list(&state.db).await else {
        return Ok(StatusData {
            database: false,
            nodes: 0,
            unreachable: 0,
            version,
        });
    };
    let active = list
        .iter()
        .filter(|n| n.status == model::compute::NodeStatus::Active);
    Ok(StatusData {
        database: true,
        nodes: active.clone().count() as i64,
        unreachable: active.filter(|n| n.unreachable_since.is_some()).count() as i64,
        version,
    })
}

#[component]
pub fn StatusPage() -> impl IntoView {
    let data = data::load(|| (), |_| load_status());
    view! {
        <Title text="Status"/>
        <section class="page-head"><h1>"Status"</h1></section>
        <Transition fallback=|| view! { <p class="muted">"Checking…"</p> }>
            {move || Suspend::new(async move {
                let (class, headline, detail) = match data.await {
                    Err(_) => ("alert alert-error", "Hangar is having trouble".to_owned(), "The portal answers, but could not check its own state.".to_owned()),
                    Ok(d) if !d.database => ("alert alert-error", "Hangar is having trouble".to_owned(), "The database does not answer: signing in, billing and machine actions fail until it is back. Running machines keep running.".to_owned()),
                    Ok(d) if d.unreachable > 0 => ("alert alert-warn", "Some machines cannot be reached".to_owned(),
                        format!("{} of {} {} the reconciler; machines there show \"node unreachable\" and their actions wait. Everything else works.",
                            d.unreachable, d.nodes, if d.nodes == 1 { "node does not answer" } else { "nodes do not answer" })),
                    Ok(d) => ("alert alert-ok", "All systems normal".to_owned(),
                        format!("The portal, the API and the database answer; {} {} machines, and every one answers.", d.nodes, if d.nodes == 1 { "node runs" } else { "nodes run" })),
                };
                view! {
                    <section class="card" data-test="status">
                        <p class=class data-test="status-headline"><strong>{headline}</strong></p>
                        <p>{detail}</p>
                        <p class="muted small">"For monitoring: "<a href="/health">"/health"</a>" answers 200 while the database does, 503 otherwise."</p>
                    </section>
                }
            })}
        </Transition>
    }
}
