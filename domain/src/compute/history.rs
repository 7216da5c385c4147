//! Resource history for the charts: every minute, one sample of each running machine — CPU,
//! memory, and the bytes its network and disk moved since the minute before — taken from its
//! node through the driver's stats stream (containers and VMs alike), kept a day; and per hour
//! the average CPU and memory and the summed bytes, kept 30 days. Enough for a person to see
//! what a machine did in the last hour, day or month without anything running in their browser.
//!
//! Replicas may all record: a minute's row is written once (`ON CONFLICT DO NOTHING`), and a
//! machine already sampled this minute is skipped. A machine that did not run leaves a gap.

use std::time::Duration;

use futures::StreamExt;
use model::compute::{MachineStats, UsageHistory, UsagePoint};

use crate::compute::instances::{self, InstanceRow, COLUMNS};
use crate::fleet::driver::machine_name;
use crate::infra::db::{rfc3339, Pool};
use crate::infra::error::{ServiceError, ServiceResult};
use crate::AppState;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
/// Minute rows are kept a day (and an hour more, so a full day always shows).
const KEEP_MINUTES: i64 = 25 * HOUR;
/// Hourly rows are kept 30 days (and a day more).
const KEEP_HOURS: i64 = 31 * 24 * HOUR;
/// How long one machine's sample may take before this minute goes without it.
const SAMPLE_WAIT: Duration = Duration::from_secs(5);
/// Machines sampled at once.
const PARALLEL: usize = 8;

/// A span of history a chart shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    Hour,
    Day,
    Month,
}

impl Range {
    pub fn parse(s: &str) -> ServiceResult<Self> {
        match s {
            "1h" => Ok(Range::Hour),
            "24h" => Ok(Range::Day),
            "30d" => Ok(Range::Month),
            _ => Err(ServiceError::invalid("range is one of 1h, 24h and 30d")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Range::Hour => "1h",
            Range::Day => "24h",
            Range::Month => "30d",
        }
    }

    /// How far back it reaches, in ms.
    pub fn span_ms(self) -> i64 {
        self.span().0
    }

    /// How far back it reaches and the step of its points, in ms.
    fn span(self) -> (i64, i64) {
        match self {
            Range::Hour => (HOUR, MINUTE),
            Range::Day => (24 * HOUR, MINUTE),
            Range::Month => (30 * 24 * HOUR, HOUR),
        }
    }
}

/// Samples every running machine not yet sampled in `now`'s minute, rolls the minutes of that
/// hour up, and drops what is past keeping. Returns how many machines were sampled.
pub async fn record(state: &AppState, now: i64) -> ServiceResult<usize> {
    let minute = now - now.rem_euclid(MINUTE);
    let running: Vec<InstanceRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM instances
         WHERE state = 'running' AND transition IS NULL AND node_id IS NOT NULL
           AND id NOT IN (SELECT instance_id FROM machine_minutes WHERE at = $1)"
    ))
    .bind(minute)
    .fetch_all(&state.db)
    .await?;
    let samples: Vec<(String, MachineStats)> = futures::stream::iter(running)
        .map(|inst| async move { sample(state, &inst).await.map(|s| (inst.id, s)) })
        .buffer_unordered(PARALLEL)
        .filter_map(|s| async move { s })
        .collect()
        .await;
    for (id, stats) in &samples {
        store(&state.db, id, minute, stats).await?;
    }
    roll_up(&state.db, minute - minute.rem_euclid(HOUR)).await?;
    sqlx::query("DELETE FROM machine_minutes WHERE at < $1")
        .bind(now - KEEP_MINUTES)
        .execute(&state.db)
        .await?;
    sqlx::query("DELETE FROM machine_hours WHERE at < $1")
        .bind(now - KEEP_HOURS)
        .execute(&state.db)
        .await?;
    Ok(samples.len())
}

/// One sample of `inst` from its node, or `None` when the node does not give one in time (a
/// gap in its charts, logged).
async fn sample(state: &AppState, inst: &InstanceRow) -> Option<MachineStats> {
    let driver = crate::fleet::nodes::driver_for(state, inst.node_id.as_deref())
        .await
        .ok()
        .flatten()?;
    let first = async {
        let mut stream = driver.open_stats(&machine_name(&inst.id)).await.ok()?;
        stream.recv().await
    };
    let got = tokio::time::timeout(SAMPLE_WAIT, first)
        .await
        .ok()
        .flatten();
    if got.is_none() {
        tracing::debug!(instance = %inst.id, "no resource sample this minute");
    }
    got
}

/// Writes `stats` as `id`'s row for `minute`, counting network and disk bytes from the row
/// before (a total below the last one means the machine restarted: all of it is new).
async fn store(db: &Pool, id: &str, minute: i64, stats: &MachineStats) -> ServiceResult<()> {
    let before: Option<(i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT total_net_rx, total_net_tx, total_disk_read, total_disk_write FROM machine_minutes
         WHERE instance_id = $1 AND at < $2 AND at >= $3 ORDER BY at DESC LIMIT 1",
    )
    .bind(id)
    .bind(minute)
    .bind(minute - 3 * MINUTE)
    .fetch_optional(db)
    .await?;
    let totals = [
        stats.network_rx,
        stats.network_tx,
        stats.block_read,
        stats.block_write,
    ]
    .map(|t| i64::try_from(t).unwrap_or(i64::MAX));
    // Without a row just before, the bytes of this step are unknown: counted as none rather
    // than everything since the machine started.
    let moved = |i: usize, last: Option<i64>| match last {
        Some(last) if totals[i] >= last => totals[i] - last,
        Some(_) => totals[i],
        None => 0,
    };
    let last = before.map(|b| [b.0, b.1, b.2, b.3]);
    let step = |i: usize| moved(i, last.map(|l| l[i]));
    sqlx::query(
        "INSERT INTO machine_minutes (instance_id, at, cpu_centi, memory, memory_limit, net_rx, net_tx,
            disk_read, disk_write, total_net_rx, total_net_tx, total_disk_read, total_disk_write)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (instance_id, at) DO NOTHING",
    )
    .bind(id)
    .bind(minute)
    .bind((stats.cpu_usage * 100.0).round() as i64)
    .bind(i64::try_from(stats.memory_usage).unwrap_or(i64::MAX))
    .bind(i64::try_from(stats.memory_limit).unwrap_or(i64::MAX))
    .bind(step(0))
    .bind(step(1))
    .bind(step(2))
    .bind(step(3))
    .bind(totals[0])
    .bind(totals[1])
    .bind(totals[2])
    .bind(totals[3])
    .execute(db)
    .await?;
    Ok(())
}

/// (Re)writes the hourly rows of the hour starting at `hour` from its minutes so far.
async fn roll_up(db: &Pool, hour: i64) -> ServiceResult<()> {
    sqlx::query(
        "INSERT INTO machine_hours (instance_id, at, cpu_centi, memory, memory_limit, net_rx, net_tx, disk_read, disk_write)
         SELECT instance_id, $1, CAST(AVG(cpu_centi) AS BIGINT), CAST(AVG(memory) AS BIGINT),
                MAX(memory_limit), CAST(SUM(net_rx) AS BIGINT), CAST(SUM(net_tx) AS BIGINT),
                CAST(SUM(disk_read) AS BIGINT), CAST(SUM(disk_write) AS BIGINT)
         FROM machine_minutes WHERE at >= $1 AND at < $2 GROUP BY instance_id
         ON CONFLICT (instance_id, at) DO UPDATE SET cpu_centi = excluded.cpu_centi,
            memory = excluded.memory, memory_limit = excluded.memory_limit,
            net_rx = excluded.net_rx, net_tx = excluded.net_tx,
            disk_read = excluded.disk_read, disk_write = excluded.disk_write",
    )
    .bind(hour)
    .bind(hour + HOUR)
    .execute(db)
    .await?;
    Ok(())
}

/// A stored step, minute or hour.
#[derive(sqlx::FromRow)]
struct Step {
    at: i64,
    cpu_centi: i64,
    memory: i64,
    memory_limit: i64,
    net_rx: i64,
    net_tx: i64,
    disk_read: i64,
    disk_write: i64,
}

/// The history of a machine the caller may use, over `range` up to `now`.
pub async fn series(
    db: &Pool,
    user_id: &str,
    id: &str,
    range: Range,
    now: i64,
) -> ServiceResult<UsageHistory> {
    let (step_seconds, points) = points(db, user_id, id, range, now).await?;
    Ok(UsageHistory {
        range: range.as_str().to_owned(),
        step_seconds,
        points: points.into_iter().map(|(_, p)| p).collect(),
    })
}

/// Like [`series`]: the step in seconds, and each point with its start in ms.
pub async fn points(
    db: &Pool,
    user_id: &str,
    id: &str,
    range: Range,
    now: i64,
) -> ServiceResult<(u64, Vec<(i64, UsagePoint)>)> {
    let inst = instances::get(db, user_id, id).await?;
    let (span, step) = range.span();
    let table = if step == HOUR {
        "machine_hours"
    } else {
        "machine_minutes"
    };
    let rows: Vec<Step> = sqlx::query_as(&format!(
        "SELECT at, cpu_centi, memory, memory_limit, net_rx, net_tx, disk_read, disk_write
         FROM {table} WHERE instance_id = $1 AND at >= $2 ORDER BY at"
    ))
    .bind(&inst.id)
    .bind(now - span)
    .fetch_all(db)
    .await?;
    let bytes = |v: i64| u64::try_from(v).unwrap_or(0);
    let points = rows
        .into_iter()
        .map(|r| {
            let point = UsagePoint {
                at: rfc3339(r.at),
                cpu: r.cpu_centi as f64 / 100.0,
                memory: bytes(r.memory),
                memory_limit: bytes(r.memory_limit),
                net_rx: bytes(r.net_rx),
                net_tx: bytes(r.net_tx),
                disk_read: bytes(r.disk_read),
                disk_write: bytes(r.disk_write),
            };
            (r.at, point)
        })
        .collect();
    Ok(((step / 1000) as u64, points))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_read_as_the_api_writes_them() {
        for r in [Range::Hour, Range::Day, Range::Month] {
            assert_eq!(Range::parse(r.as_str()).unwrap(), r);
        }
        assert!(Range::parse("7d").is_err());
        assert_eq!(Range::Month.span(), (30 * 24 * HOUR, HOUR));
    }
}
