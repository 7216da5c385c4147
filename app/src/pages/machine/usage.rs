//! A machine's resource charts on its page: CPU, memory, network and disk. "Live" is the last two
//! minutes, drawn from the samples `GET /events/machines/{id}/stats` streams (one a second, from
//! the node) while the page is open; "1 h", "24 h" and "30 d" are its recorded history
//! (`compute::history`: a sample a minute, hourly over a month). SVG polylines, no chart
//! library: a few lines need no 200 KB of script.

use std::collections::VecDeque;

use leptos::prelude::*;
use model::compute::{MachineStats, UsagePoint};
use serde::{Deserialize, Serialize};

use crate::error::PortalError;

use crate::components::charts::{Lines, Series};
use crate::components::deferred::{Deferred, LoadingCard};

/// Samples kept: two minutes at one a second.
const KEEP: usize = 120;

/// A sample and when the browser received it (ms), for rates.
#[derive(Clone, PartialEq)]
struct Point {
    at_ms: f64,
    stats: MachineStats,
}

/// The card, its code fetched once the page has hydrated (group `usage`,
/// `components::deferred`): until then it would have nothing to show anyway.
#[component]
pub fn LazyUsageCard(id: String, running: Signal<bool>, settled: RwSignal<bool>) -> impl IntoView {
    view! {
        <Deferred settled
            placeholder=|| view! { <LoadingCard title="Usage" class="usage-card" test="usage-loading"/> }
            load=move || {
                let id = id.clone();
                async move { crate::split_call!(usage_card(id, running)) }
            }/>
    }
}

#[cfg_attr(
    feature = "hydrate",
    ::leptos::wasm_split::wasm_split(usage, wasm_split_path = ::leptos::wasm_split)
)]
fn usage_card(id: String, running: Signal<bool>) -> AnyView {
    view! { <UsageCard id running/> }.into_any()
}

/// A recorded history as the charts draw it: each point at its offset into the span (0 oldest,
/// 1 now).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryView {
    pub step_seconds: u64,
    pub points: Vec<(f64, UsagePoint)>,
}

/// The machine's recorded history over `range` (`1h`, `24h`, `30d`).
#[server(prefix = "/_fn", endpoint = "machine_history")]
pub async fn machine_history(id: String, range: String) -> Result<HistoryView, PortalError> {
    use crate::ssr::portal;
    use domain::compute::history::{self, Range};
    let portal::SignedIn { state, user, .. } = portal::signed_in(None).await?;
    let range = Range::parse(&range)?;
    let now = domain::infra::db::now_ms();
    let (step_seconds, points) = history::points(&state.db, &user.id, &id, range, now).await?;
    let span = range.span_ms();
    let start = now - span;
    Ok(HistoryView {
        step_seconds,
        points: points
            .into_iter()
            .map(|(at, p)| ((at - start) as f64 / span.max(1) as f64, p))
            .collect(),
    })
}

/// Which chart the card shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    Live,
    Recorded(&'static str),
}

#[component]
fn UsageCard(id: String, running: Signal<bool>) -> impl IntoView {
    let view = RwSignal::new(View::Live);
    let tab = move |label: &'static str, which: View| {
        view! {
            <button type="button" class="tab" class:active=move || view.get() == which
                aria-pressed=move || (view.get() == which).to_string()
                data-test=format!("usage-range-{label}")
                on:click=move |_| view.set(which)>{label}</button>
        }
    };
    let history_id = id.clone();
    view! {
        <section class="card usage-card" data-test="usage-card">
            <h2>"Usage"</h2>
            <div class="tabs" role="group" aria-label="Time span">
                {tab("Live", View::Live)}
                {tab("1h", View::Recorded("1h"))}
                {tab("24h", View::Recorded("24h"))}
                {tab("30d", View::Recorded("30d"))}
            </div>
            {move || match view.get() {
                View::Live => view! { <LiveCharts id=id.clone() running/> }.into_any(),
                View::Recorded(range) => view! { <RecordedCharts id=history_id.clone() range/> }.into_any(),
            }}
        </section>
    }
}

/// The recorded history over `range`, read when chosen.
#[component]
fn RecordedCharts(id: String, range: &'static str) -> impl IntoView {
    let loaded = LocalResource::new(move || machine_history(id.clone(), range.to_owned()));
    let from = match range {
        "1h" => "1 h ago",
        "24h" => "24 h ago",
        _ => "30 d ago",
    };
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading the history…"</p> }>
            {move || Suspend::new(async move {
                match loaded.await {
                    Err(e) => view! { <p class="alert alert-error">{crate::components::forms::error_message(&e)}</p> }.into_any(),
                    Ok(h) if h.points.is_empty() => view! {
                        <p class="muted" data-test="usage-history-empty">"Nothing recorded in this span yet: a machine adds a point each minute while it runs."</p>
                    }.into_any(),
                    Ok(h) => recorded(h, from).into_any(),
                }
            })}
        </Suspense>
    }
}

/// Four charts of a recorded history: per-step bytes become rates over the step.
fn recorded(h: HistoryView, from: &'static str) -> impl IntoView {
    let step = h.step_seconds.max(1) as f64;
    let series = |f: fn(&UsagePoint) -> f64| {
        Signal::stored(h.points.iter().map(|(x, p)| (*x, f(p))).collect::<Vec<_>>())
    };
    let cpu = series(|p| p.cpu);
    let memory = series(|p| p.memory as f64);
    let rate = |f: fn(&UsagePoint) -> u64| {
        Signal::stored(
            h.points
                .iter()
                .map(|(x, p)| (*x, f(p) as f64 / step))
                .collect::<Vec<_>>(),
        )
    };
    let (rx, tx) = (rate(|p| p.net_rx), rate(|p| p.net_tx));
    let (read, write) = (rate(|p| p.disk_read), rate(|p| p.disk_write));
    let peak = |a: Series, b: Series, floor: f64| {
        Signal::stored(a.with(|a| b.with(|b| a.iter().chain(b).map(|p| p.1).fold(floor, f64::max))))
    };
    let limit = h
        .points
        .last()
        .map(|p| p.1.memory_limit as f64)
        .unwrap_or(0.0);
    let memory_max = Signal::stored(if limit > 0.0 {
        limit
    } else {
        memory.with(|m| m.iter().map(|p| p.1).fold(1.0, f64::max))
    });
    let average =
        |s: Series| s.with(|v| v.iter().map(|p| p.1).sum::<f64>() / v.len().max(1) as f64);
    let per_second = |v: f64| format!("{}/s", crate::components::format::bytes(v as u64));
    let from = Signal::stored(from.to_owned());
    view! {
        <div class="charts" data-test="usage-history" data-points=h.points.len().to_string()>
            <figure class="chart" data-test="history-cpu">
                <figcaption>"CPU "<strong>{format!("{:.1} % on average", average(cpu))}</strong></figcaption>
                <Lines series=vec![("line", cpu)] max=peak(cpu, cpu, 100.0) scale=|v| format!("{v:.0} %") from/>
            </figure>
            <figure class="chart" data-test="history-memory">
                <figcaption>"Memory "<strong>{format!("{} on average", crate::components::format::bytes(average(memory) as u64))}</strong></figcaption>
                <Lines series=vec![("line", memory)] max=memory_max scale=|v| crate::components::format::bytes(v as u64) from/>
            </figure>
            <figure class="chart" data-test="history-network">
                <figcaption>"Network "
                    <strong class="in">{format!("↓ {}", per_second(average(rx)))}</strong>" "
                    <strong class="out">{format!("↑ {}", per_second(average(tx)))}</strong>
                </figcaption>
                <Lines series=vec![("line in", rx), ("line out", tx)] max=peak(rx, tx, 1000.0) scale=|v| format!("{}/s", crate::components::format::bytes(v as u64)) from/>
            </figure>
            <figure class="chart" data-test="history-disk">
                <figcaption>"Disk "
                    <strong class="in">{format!("read {}", per_second(average(read)))}</strong>" "
                    <strong class="out">{format!("write {}", per_second(average(write)))}</strong>
                </figcaption>
                <Lines series=vec![("line in", read), ("line out", write)] max=peak(read, write, 1000.0) scale=|v| format!("{}/s", crate::components::format::bytes(v as u64)) from/>
            </figure>
        </div>
        <p class="muted small">{format!("Averages over the span; one point per {}. Gaps are times the machine did not run.",
            if h.step_seconds >= 3600 { "hour" } else { "minute" })}</p>
    }
}

/// The last two minutes, live from the node while the page is open.
#[component]
fn LiveCharts(id: String, running: Signal<bool>) -> impl IntoView {
    // Only a change of running/not running reopens the stream, not every push of the machine.
    let running = Memo::new(move |_| running.get());
    let points = RwSignal::new(VecDeque::<Point>::new());
    #[cfg(feature = "hydrate")]
    follow(id, running, points);
    #[cfg(not(feature = "hydrate"))]
    let _ = id;

    let cpu = Signal::derive(move || {
        points.with(|p| p.iter().map(|p| p.stats.cpu_usage).collect::<Vec<_>>())
    });
    let memory = Signal::derive(move || {
        points.with(|p| {
            p.iter()
                .map(|p| p.stats.memory_usage as f64)
                .collect::<Vec<_>>()
        })
    });
    let rates = move |field: fn(&MachineStats) -> u64| {
        Signal::derive(move || points.with(|p| rates(p, field)))
    };
    // Live points sit on a fixed two-minute axis, newest at the right edge.
    let placed = |values: Signal<Vec<f64>>| {
        Signal::derive(move || {
            values.with(|v| {
                let n = v.len();
                v.iter()
                    .enumerate()
                    .map(|(i, y)| (1.0 - (n - 1 - i) as f64 / (KEEP - 1) as f64, *y))
                    .collect::<Vec<_>>()
            })
        })
    };
    let (rx, tx) = (rates(|s| s.network_rx), rates(|s| s.network_tx));
    let last = move || points.with(|p| p.back().map(|p| p.stats.clone()));
    let cpu_max = Signal::derive(move || cpu.with(|v| v.iter().copied().fold(100.0, f64::max)));
    let memory_max = Signal::derive(move || {
        last()
            .map(|s| s.memory_limit as f64)
            .filter(|l| *l > 0.0)
            .unwrap_or_else(|| memory.with(|v| v.iter().copied().fold(1.0, f64::max)))
    });
    let net_max = Signal::derive(move || {
        rx.with(|a| tx.with(|b| a.iter().chain(b).copied().fold(1000.0, f64::max)))
    });
    let count = move || points.with(VecDeque::len);
    let from = Signal::stored("2 min ago".to_owned());
    let (cpu_line, memory_line) = (placed(cpu), placed(memory));
    let (rx_line, tx_line) = (placed(rx), placed(tx));

    view! {
        <div data-test="usage-live" data-samples=move || count().to_string()>
            {move || if !running.get() {
                view! { <p class="muted" data-test="usage-idle">"Charts appear while the machine runs."</p> }.into_any()
            } else if count() == 0 {
                view! { <p class="muted" data-test="usage-waiting">"Waiting for the first sample…"</p> }.into_any()
            } else {
                ().into_any()
            }}
            <div class="charts" hidden=move || count() == 0>
                <figure class="chart" data-test="chart-cpu">
                    <figcaption>"CPU "<strong>{move || last().map(|s| format!("{:.1} %", s.cpu_usage)).unwrap_or_default()}</strong></figcaption>
                    <Lines series=vec![("line", cpu_line)] max=cpu_max scale=|v| format!("{v:.0} %") from/>
                </figure>
                <figure class="chart" data-test="chart-memory">
                    <figcaption>"Memory "<strong>{move || last().map(|s| memory_text(&s)).unwrap_or_default()}</strong></figcaption>
                    <Lines series=vec![("line", memory_line)] max=memory_max scale=|v| crate::components::format::bytes(v as u64) from/>
                </figure>
                <figure class="chart" data-test="chart-network">
                    <figcaption>"Network "
                        <strong class="in">{move || rx.with(|r| r.last().map(|v| format!("↓ {}/s", crate::components::format::bytes(*v as u64)))).unwrap_or_default()}</strong>" "
                        <strong class="out">{move || tx.with(|t| t.last().map(|v| format!("↑ {}/s", crate::components::format::bytes(*v as u64)))).unwrap_or_default()}</strong>
                    </figcaption>
                    <Lines series=vec![("line in", rx_line), ("line out", tx_line)] max=net_max scale=|v| format!("{}/s", crate::components::format::bytes(v as u64)) from/>
                </figure>
            </div>
            <p class="muted small" hidden=move || count() == 0>
                {move || last().map(|s| format!("Disk since start: {} read, {} written. One sample a second while this page is open.",
                    crate::components::format::bytes(s.block_read), crate::components::format::bytes(s.block_write))).unwrap_or_default()}
            </p>
        </div>
    }
}

fn memory_text(s: &MachineStats) -> String {
    let used = crate::components::format::bytes(s.memory_usage);
    if s.memory_limit > 0 {
        let percent = s.memory_usage as f64 * 100.0 / s.memory_limit as f64;
        format!(
            "{used} of {} ({percent:.0} %)",
            crate::components::format::bytes(s.memory_limit)
        )
    } else {
        used
    }
}

/// Bytes per second between consecutive samples of a running total (a restart that resets the
/// total counts as zero, not as a negative rate).
fn rates(points: &VecDeque<Point>, field: fn(&MachineStats) -> u64) -> Vec<f64> {
    points
        .iter()
        .zip(points.iter().skip(1))
        .map(|(a, b)| {
            let seconds = ((b.at_ms - a.at_ms) / 1000.0).max(0.001);
            field(&b.stats).saturating_sub(field(&a.stats)) as f64 / seconds
        })
        .collect()
}

/// Opens the stream while the machine runs (again after it restarts); closes it when the page
/// goes or the machine stops.
#[cfg(feature = "hydrate")]
fn follow(id: String, running: Memo<bool>, points: RwSignal<VecDeque<Point>>) {
    Effect::new(move |_| {
        if !running.get() {
            return;
        }
        points.update(VecDeque::clear);
        let url = format!("/events/machines/{id}/stats");
        crate::components::events::follow(&url, "stats", move |stats: MachineStats| {
            points.update(|p| {
                if p.len() == KEEP {
                    p.pop_front();
                }
                p.push_back(Point {
                    at_ms: js_sys::Date::now(),
                    stats,
                });
            });
        });
    });
}
