//! A running container's live resource charts on its page: CPU, memory and network over the
//! last two minutes, drawn from the samples `GET /events/machines/{id}/stats` streams (one a
//! second, from the node). Nothing is stored: the charts start empty when the page opens and fill
//! while it stays open. SVG polylines, no chart library: three lines need no 200 KB of script.

use std::collections::VecDeque;

use leptos::prelude::*;
use model::compute::MachineStats;

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

#[component]
fn UsageCard(id: String, running: Signal<bool>) -> impl IntoView {
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

    view! {
        <section class="card usage-card" data-test="usage-card" data-samples=move || count().to_string()>
            <h2>"Usage"</h2>
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
                    <Lines series=vec![("line", cpu)] max=cpu_max scale=|v| format!("{v:.0} %")/>
                </figure>
                <figure class="chart" data-test="chart-memory">
                    <figcaption>"Memory "<strong>{move || last().map(|s| memory_text(&s)).unwrap_or_default()}</strong></figcaption>
                    <Lines series=vec![("line", memory)] max=memory_max scale=|v| crate::components::format::bytes(v as u64)/>
                </figure>
                <figure class="chart" data-test="chart-network">
                    <figcaption>"Network "
                        <strong class="in">{move || rx.with(|r| r.last().map(|v| format!("↓ {}/s", crate::components::format::bytes(*v as u64)))).unwrap_or_default()}</strong>" "
                        <strong class="out">{move || tx.with(|t| t.last().map(|v| format!("↑ {}/s", crate::components::format::bytes(*v as u64)))).unwrap_or_default()}</strong>
                    </figcaption>
                    <Lines series=vec![("line in", rx), ("line out", tx)] max=net_max scale=|v| format!("{}/s", crate::components::format::bytes(v as u64))/>
                </figure>
            </div>
            <p class="muted small" hidden=move || count() == 0>
                {move || last().map(|s| format!("Disk since start: {} read, {} written. One sample a second while this page is open.",
                    crate::components::format::bytes(s.block_read), crate::components::format::bytes(s.block_write))).unwrap_or_default()}
            </p>
        </section>
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

/// Lines over a fixed `KEEP`-wide time axis, newest at the right edge; 0 at the bottom, `max`
/// at the top (its value in the corner, `scale` formats it), each with a faint area under it.
#[component]
fn Lines(
    series: Vec<(&'static str, Signal<Vec<f64>>)>,
    max: Signal<f64>,
    scale: fn(f64) -> String,
) -> impl IntoView {
    const W: f64 = 240.0;
    const H: f64 = 60.0;
    let points = move |values: &Vec<f64>| {
        let top = max.get().max(f64::MIN_POSITIVE);
        let step = W / (KEEP - 1) as f64;
        let start = W - step * (values.len().saturating_sub(1)) as f64;
        values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let y = H - (v / top).clamp(0.0, 1.0) * (H - 2.0) - 1.0;
                format!("{:.1},{y:.1}", start + step * i as f64)
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    // The area: the line, closed along the bottom edge.
    let area = move |values: &Vec<f64>| {
        let line = points(values);
        match (line.split(' ').next(), values.len()) {
            (Some(first), 2..) => {
                let x0 = first.split(',').next().unwrap_or("0");
                format!("{x0},{H} {line} {W},{H}")
            }
            _ => String::new(),
        }
    };
    view! {
        <div class="plot">
            <svg viewBox=format!("0 0 {W} {H}") preserveAspectRatio="none" role="img" aria-hidden="true">
                <line class="grid" x1="0" x2=W y1=H / 2.0 y2=H / 2.0/>
                {series.into_iter().map(|(class, values)| view! {
                    <polygon class=format!("{class} area") points=move || values.with(area)/>
                    <polyline class=class points=move || values.with(points)/>
                }).collect_view()}
            </svg>
            <span class="scale top">{move || scale(max.get())}</span>
            <span class="scale left">"2 min ago"</span>
            <span class="scale right">"now"</span>
        </div>
    }
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
