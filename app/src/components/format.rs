//! How the portal writes times, terms and money, one way each: a moment is
//! `2026-11-30 09:15 UTC`, a day `2026-11-30`, a term `1 day` / `7 days`, an amount `$12.50`, and a
//! balance (and a per-hour price) with the four decimals the `/api` dialect gives it: `$12.5000`.

use model::money::{usd2, usd4};

/// `2025-01-21T22:00:00.000Z` → `2025-01-21 22:00 UTC`.
pub fn when(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(11..16)) {
        (Some(d), Some(t)) => format!("{d} {t} UTC"),
        _ => rfc3339.to_owned(),
    }
}

/// `2025-01-21T22:00:00.000Z` → `2025-01-21`.
pub fn day(rfc3339: &str) -> String {
    rfc3339.get(..10).unwrap_or(rfc3339).to_owned()
}

/// `1 day`, `7 days`.
pub fn days(n: i64) -> String {
    count(n, "day", "days")
}

/// `1 machine`, `3 machines`.
pub fn count(n: i64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A search's count, and when not all are listed how many are: `1 machine matches.`,
/// `340 machines match; the newest 100 are shown.` (`noun`: one and many; `which`: "the
/// newest", "the first").
pub fn matching(total: i64, shown: usize, noun: (&str, &str), which: &str) -> String {
    let found = if total == 1 {
        format!("1 {} matches", noun.0)
    } else {
        format!("{total} {} match", noun.1)
    };
    if total > shown as i64 {
        format!("{found}; {which} {shown} are shown.")
    } else {
        format!("{found}.")
    }
}

/// An amount of money: `$12.50`.
pub fn money(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    format!("{sign}${}", usd2(micros.abs()))
}

/// A money movement with its direction, to the cent: `+$10.00`, `−$0.42`; one smaller than half
/// a cent reads `−<$0.01` rather than a misleading `−$0.00`.
pub fn movement(micros: i64) -> String {
    if micros == 0 {
        return "$0.00".into();
    }
    let sign = if micros < 0 { "−" } else { "+" };
    if micros != 0 && micros.abs() < 5_000 {
        return format!("{sign}<$0.01");
    }
    format!("{sign}${}", usd2(micros.abs()))
}

/// A balance or a per-hour price, to the hundredth of a cent: `$12.5000`.
pub fn balance(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    format!("{sign}${}", usd4(micros.abs()))
}

/// A size in binary units, as disks and memory are measured: `512 B`, `1.5 KiB`, `2.0 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Memory given in MiB, as plans give it: `512 MiB`, `2 GiB`, `1.5 GiB`.
pub fn memory(mib: i64) -> String {
    if mib >= 1024 && mib % 1024 == 0 {
        format!("{} GiB", mib / 1024)
    } else if mib >= 1024 {
        format!("{:.1} GiB", mib as f64 / 1024.0)
    } else {
        format!("{mib} MiB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_way_each() {
        assert_eq!(movement(10_000_000), "+$10.00");
        assert_eq!(movement(-420_000), "−$0.42");
        assert_eq!(movement(-1_200), "−<$0.01");
        assert_eq!(movement(0), "$0.00", "nothing moved has no direction");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(10 << 30), "10.0 GiB");
        assert_eq!(memory(512), "512 MiB");
        assert_eq!(memory(2048), "2 GiB");
        assert_eq!(memory(1536), "1.5 GiB");
        assert_eq!(when("2026-11-30T09:15:42.123Z"), "2026-11-30 09:15 UTC");
        assert_eq!(day("2026-11-30T09:15:42.123Z"), "2026-11-30");
        assert_eq!((days(1), days(7)), ("1 day".into(), "7 days".into()));
        assert_eq!(money(12_500_000), "$12.50");
        assert_eq!(money(-300_000), "-$0.30");
        assert_eq!(balance(5_000_000), "$5.0000");
    }
}
