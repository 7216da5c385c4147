//! Charts: lines over a time axis, drawn as SVG (the machine page's usage, the operators' node
//! load).

use leptos::prelude::*;

/// A line's points: each at its offset into the span (0..1), with its value.
pub type Series = Signal<Vec<(f64, f64)>>;

/// Lines over a time axis from `from` (left) to now (right), each point at its offset into the
/// span (0..1); 0 at the bottom, `max` at the top (its value in the corner, `scale` formats
/// it), each with a faint area under it.
#[component]
pub fn Lines(
    series: Vec<(&'static str, Series)>,
    max: Signal<f64>,
    scale: fn(f64) -> String,
    from: Signal<String>,
) -> impl IntoView {
    const W: f64 = 240.0;
    const H: f64 = 60.0;
    let points = move |values: &Vec<(f64, f64)>| {
        let top = max.get().max(f64::MIN_POSITIVE);
        values
            .iter()
            .map(|(x, v)| {
                let y = H - (v / top).clamp(0.0, 1.0) * (H - 2.0) - 1.0;
                format!("{:.1},{y:.1}", x.clamp(0.0, 1.0) * W)
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    // The area: the line, closed along the bottom edge.
    let area = move |values: &Vec<(f64, f64)>| {
        let line = points(values);
        match (values.first(), values.last(), values.len()) {
            (Some(first), Some(last), 2..) => format!(
                "{:.1},{H} {line} {:.1},{H}",
                first.0.clamp(0.0, 1.0) * W,
                last.0.clamp(0.0, 1.0) * W
            ),
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
                    // A lone point has no line to draw: a dot shows it.
                    {move || values.with(|v| match v.as_slice() {
                        [(x, y)] => {
                            let top = max.get().max(f64::MIN_POSITIVE);
                            let cy = H - (y / top).clamp(0.0, 1.0) * (H - 2.0) - 1.0;
                            Some(view! { <circle class=class cx=x.clamp(0.0, 1.0) * W cy=cy r="2"/> })
                        }
                        _ => None,
                    })}
                }).collect_view()}
            </svg>
            <span class="scale top">{move || scale(max.get())}</span>
            <span class="scale left">{move || from.get()}</span>
            <span class="scale right">"now"</span>
        </div>
    }
}
