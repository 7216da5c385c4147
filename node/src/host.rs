//! What the host reports about itself (`GET /system/host`): the daemon's version and the load
//! the panel charts — CPU over a short interval, memory, the storage root's filesystem, and the
//! network counters — read from Linux's `/proc` and `statvfs`. A figure that cannot be read is
//! left out rather than guessed.

use std::path::Path;
use std::time::Duration;

/// How long CPU time is watched to turn its counters into a share.
const CPU_WINDOW: Duration = Duration::from_millis(250);

/// The report, in the API's shape (shared with Hangar's driver).
pub use model::node::HostReport;

/// Reads the host's figures; `storage` is the filesystem the volumes live on.
pub async fn report(storage: &Path) -> HostReport {
    let first = cpu_times();
    tokio::time::sleep(CPU_WINDOW).await;
    let cpu_permille = match (first, cpu_times()) {
        (Some((busy0, all0)), Some((busy1, all1))) if all1 > all0 => {
            // iowait may go backwards between readings: clamped to a share.
            Some(((busy1.saturating_sub(busy0)) * 1000 / (all1 - all0)).min(1000) as i64)
        }
        _ => None,
    };
    let (memory_total_mb, memory_used_mb) = memory();
    let (disk_total_mb, disk_used_mb) = disk(storage);
    let (net_rx_bytes, net_tx_bytes) = network();
    HostReport {
        version: Some(env!("CARGO_PKG_VERSION").into()),
        cpu_permille,
        memory_used_mb,
        memory_total_mb,
        disk_used_mb,
        disk_total_mb,
        net_rx_bytes,
        net_tx_bytes,
    }
}

/// (busy, total) jiffies from the first line of `/proc/stat`; idle and iowait are not busy.
fn cpu_times() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    parse_cpu(stat.lines().next()?)
}

fn parse_cpu(line: &str) -> Option<(u64, u64)> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let values: Vec<u64> = fields.filter_map(|f| f.parse().ok()).collect();
    if values.len() < 5 {
        return None;
    }
    // user nice system idle iowait irq softirq steal (guest time is inside user already)
    let total: u64 = values.iter().take(8).sum();
    let idle = values[3] + values[4];
    Some((total.saturating_sub(idle), total))
}

/// (total, used) MB from `/proc/meminfo`: used is total minus what is available.
fn memory() -> (Option<i64>, Option<i64>) {
    let Ok(info) = std::fs::read_to_string("/proc/meminfo") else {
        return (None, None);
    };
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<i64>()
                    .ok()
            })
    };
    let total = field("MemTotal:");
    let available = field("MemAvailable:");
    (
        total.map(|t| t / 1024),
        total.zip(available).map(|(t, a)| (t - a) / 1024),
    )
}

/// (total, used) MB of the filesystem holding `path`.
fn disk(path: &Path) -> (Option<i64>, Option<i64>) {
    match rustix::fs::statvfs(path) {
        Ok(s) => {
            let mb = |blocks: u64| (blocks.saturating_mul(s.f_frsize) / (1024 * 1024)) as i64;
            (
                Some(mb(s.f_blocks)),
                Some(mb(s.f_blocks.saturating_sub(s.f_bfree))),
            )
        }
        Err(_) => (None, None),
    }
}

/// Received and sent bytes over the host's own interfaces, from `/proc/net/dev`: those backed by
/// a device (`/sys/class/net/NAME/device`), so the containers' veth pairs and bridges do not
/// count their traffic twice or three times; every interface but loopback when none is.
fn network() -> (Option<i64>, Option<i64>) {
    let Ok(dev) = std::fs::read_to_string("/proc/net/dev") else {
        return (None, None);
    };
    let names: Vec<&str> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split_once(':').map(|(n, _)| n.trim()))
        .collect();
    let physical: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| Path::new("/sys/class/net").join(n).join("device").exists())
        .collect();
    let (mut rx, mut tx) = (0i64, 0i64);
    for line in dev.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        let counted = if physical.is_empty() {
            name != "lo"
        } else {
            physical.contains(&name)
        };
        if !counted {
            continue;
        }
        let values: Vec<i64> = rest
            .split_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        if values.len() >= 9 {
            rx = rx.saturating_add(values[0]);
            tx = tx.saturating_add(values[8]);
        }
    }
    (Some(rx), Some(tx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_counters_split_into_busy_and_total() {
        assert_eq!(
            parse_cpu("cpu  100 0 50 800 50 0 0 0 0 0"),
            Some((150, 1000))
        );
        assert_eq!(parse_cpu("cpu0 1 2 3 4 5"), None);
    }

    #[tokio::test]
    async fn this_host_reports_its_figures() {
        let r = report(Path::new("/")).await;
        let (total, used) = (r.memory_total_mb.unwrap(), r.memory_used_mb.unwrap());
        assert!(total > 0 && used > 0 && used <= total, "{r:?}");
        assert!(r.disk_total_mb.unwrap() >= r.disk_used_mb.unwrap());
        assert!((0..=1000).contains(&r.cpu_permille.unwrap()));
        assert!(r.net_rx_bytes.is_some());
    }
}
