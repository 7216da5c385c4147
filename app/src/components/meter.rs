//! A meter: how much of something is in use against its limit, as a bar that turns amber past 70%
//! and red past 90% (an operator's node load, a customer's limits).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// How much of something is in use against what may be handed out.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Gauge {
    pub used: i64,
    /// What may be used: a node's capacity × the over-commit ratio, an account's quota.
    pub limit: i64,
}

impl Gauge {
    /// Percent used, 0–100 (a limit of 0 counts as full).
    pub fn percent(self) -> i64 {
        if self.limit <= 0 {
            100
        } else {
            (self.used * 100 / self.limit).clamp(0, 100)
        }
    }
}

#[component]
pub fn Meter(
    #[prop(into)] label: String,
    gauge: Gauge,
    #[prop(into)] unit: String,
    #[prop(optional)] share: bool,
) -> impl IntoView {
    let pct = gauge.percent();
    let level = match pct {
        _ if share => "meter-fill",
        90.. => "meter-fill meter-full",
        70..=89 => "meter-fill meter-busy",
        _ => "meter-fill",
    };
    let (shown, aria) = (label.clone(), label.clone());
    view! {
        <div class="gauge" data-test="gauge" data-label=label data-used=gauge.used data-limit=gauge.limit>
            <div class="gauge-head">
                <span>{shown}</span>
                <span class="muted">{format!("{} / {} {unit}", gauge.used, gauge.limit)}</span>
            </div>
            <div class="meter" role="meter" aria-label=aria aria-valuemin="0" aria-valuemax=gauge.limit aria-valuenow=gauge.used>
                <div class=level style=format!("width: {pct}%")></div>
            </div>
        </div>
    }
}
