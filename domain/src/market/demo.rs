//! The demo catalog: deterministic, varied, realistic servers for a first start, demos and the
//! 100,000-server benchmark. Same seed, same servers.

use rand::{rngs::StdRng, Rng, SeedableRng};

use crate::market::browse::CATEGORIES;
use model::api::admin::{AccessInput, DisksInput, NetworkInput, ServerInput, SpecsInput};
use std::collections::BTreeMap;

use model::market::{AdditionalSpec, CpuSpec, DiskConfig, RamSpec};

const LOCATIONS: &[(&str, &str, &str, &str)] = &[
    ("US", "us-east", "New York", "NYC"),
    ("US", "us-east", "Ashburn", "IAD"),
    ("US", "us-west", "Los Angeles", "LAX"),
    ("US", "us-central", "Dallas", "DFW"),
    ("CA", "ca-east", "Montreal", "YUL"),
    ("DE", "eu-central", "Frankfurt", "FRA"),
    ("DE", "eu-central", "Falkenstein", "FSN"),
    ("NL", "eu-west", "Amsterdam", "AMS"),
    ("GB", "eu-west", "London", "LON"),
    ("FR", "eu-west", "Paris", "PAR"),
    ("FI", "eu-north", "Helsinki", "HEL"),
    ("PL", "eu-central", "Warsaw", "WAW"),
    ("SG", "ap-southeast", "Singapore", "SIN"),
    ("JP", "ap-northeast", "Tokyo", "TYO"),
    ("AU", "ap-southeast", "Sydney", "SYD"),
    ("IN", "ap-south", "Mumbai", "BOM"),
    ("BR", "sa-east", "São Paulo", "GRU"),
    ("ZA", "af-south", "Johannesburg", "JNB"),
];

/// (model, cores, threads, passmark, geekbench single, geekbench multi)
const CPUS: &[(&str, i64, i64, i64, i64, i64)] = &[
    ("Intel Xeon E-2388G", 8, 16, 24_800, 1_950, 9_800),
    ("Intel Xeon E5-2680 v4", 14, 28, 17_900, 980, 8_900),
    ("Intel Xeon Gold 6338", 32, 64, 48_000, 1_300, 21_000),
    ("Intel Xeon Platinum 8480+", 56, 112, 98_000, 1_700, 38_000),
    ("AMD Ryzen 9 7950X", 16, 32, 63_000, 2_900, 20_500),
    ("AMD Ryzen 7 7700", 8, 16, 35_000, 2_700, 13_000),
    ("AMD EPYC 7443P", 24, 48, 52_000, 1_600, 19_000),
    ("AMD EPYC 7763", 64, 128, 88_000, 1_500, 33_000),
    ("AMD EPYC 9454P", 48, 96, 102_000, 2_000, 36_000),
    ("Ampere Altra Q80-30", 80, 80, 45_000, 1_100, 27_000),
];

/// Deterministic, varied, realistic servers for demos and benchmarks. (One long function on
/// purpose: each server is drawn field by field, top to bottom, so the draws read in order.)
pub fn demo_servers(count: usize, seed: u64) -> Vec<ServerInput> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(count);
    for n in 0..count {
        let (country, region, city, dc) = LOCATIONS[rng.gen_range(0..LOCATIONS.len())];
        let (cpu_model, cores, threads, pm, gs, gm) = CPUS[rng.gen_range(0..CPUS.len())];
        let category = CATEGORIES[n % CATEGORIES.len()];
        let is_vm = rng.gen_bool(0.3);
        let (cores, threads) = if is_vm {
            (cores.min(8), threads.min(16))
        } else {
            (cores, threads)
        };
        let ram_choices: &[i64] = match category {
            "memory" => &[256, 512, 768, 1024],
            "gpu" => &[128, 256, 512],
            _ => &[16, 32, 64, 128, 256],
        };
        let ram = ram_choices[rng.gen_range(0..ram_choices.len())];
        let ram_type = ["DDR4", "DDR5", "ECC DDR4", "ECC DDR5"][rng.gen_range(0..4)];
        let speed = if ram_type.contains("DDR5") {
            4800
        } else {
            3200
        };
        let mut disks = vec![DiskConfig {
            count: if rng.gen_bool(0.7) { 2 } else { 1 },
            capacity_gb: [480, 960, 1000, 1920, 3840][rng.gen_range(0..5)],
            kind: ["NVMe", "SSD"][rng.gen_range(0..2)].into(),
            interface: "PCIe 4.0".into(),
        }];
        if disks[0].kind == "SSD" {
            disks[0].interface = "SATA".into();
        }
        if category == "storage" || rng.gen_bool(0.15) {
            disks.push(DiskConfig {
                count: [4, 6, 8, 12][rng.gen_range(0..4)],
                capacity_gb: [8000, 12000, 16000, 20000][rng.gen_range(0..4)],
                kind: "HDD".into(),
                interface: "SATA".into(),
            });
        }
        let bandwidth = [1000, 1000, 2500, 10_000, 25_000][rng.gen_range(0..5)];
        let unlimited = rng.gen_bool(0.35);
        let score_kind = rng.gen_range(0..3);
        let (score_type, score) = match score_kind {
            0 => ("passmark", pm),
            1 => ("geekbench_single", gs),
            _ => ("geekbench_multi", gm),
        };
        // Roughly what such a machine rents for, per day, in µUSD.
        let mut per_day = 400_000
            + cores * 60_000
            + ram * 9_000
            + disks.iter().map(|d| d.count * d.capacity_gb).sum::<i64>() * 25;
        if category == "gpu" {
            per_day += 25_000_000;
        }
        if is_vm {
            per_day /= 3;
        }
        let per_day = (per_day as f64 * rng.gen_range(0.85..1.2)) as i64 / 10_000 * 10_000;
        let mut prices = BTreeMap::new();
        prices.insert("1".to_string(), per_day as f64 / 1e6);
        prices.insert(
            "7".to_string(),
            (per_day * 7 * 90 / 100 / 10_000 * 10_000) as f64 / 1e6,
        );
        prices.insert(
            "30".to_string(),
            (per_day * 30 * 75 / 100 / 10_000 * 10_000) as f64 / 1e6,
        );
        if rng.gen_bool(0.3) {
            prices.insert(
                "90".to_string(),
                (per_day * 90 * 65 / 100 / 10_000 * 10_000) as f64 / 1e6,
            );
        }
        if rng.gen_bool(0.2) {
            prices.remove("1");
        }
        out.push(ServerInput {
            name: format!(
                "{}-{}-{}",
                if is_vm { "vm" } else { "node" },
                dc.to_lowercase(),
                n + 1
            ),
            country: country.into(),
            region: region.into(),
            city: city.into(),
            datacenter: format!("{dc}-DC{}", rng.gen_range(1..4)),
            model: if is_vm {
                format!("KVM on {cpu_model}")
            } else {
                format!("{cpu_model} server")
            },
            is_vm,
            category: category.into(),
            featured: rng.gen_bool(0.08),
            popularity_rank: (n as i64) + 1,
            setup_time_minutes: if is_vm {
                5
            } else {
                [15, 30, 60, 240][rng.gen_range(0..4)]
            },
            specs: SpecsInput {
                cpu: CpuSpec {
                    model: cpu_model.into(),
                    cores,
                    threads,
                    score,
                    score_type: score_type.into(),
                },
                ram: RamSpec {
                    capacity_gb: ram,
                    kind: ram_type.into(),
                    speed_mhz: speed,
                },
                disks: DisksInput { config: disks },
                network: NetworkInput {
                    bandwidth_mbps: bandwidth,
                    traffic_tb: if unlimited {
                        None
                    } else {
                        Some([10, 20, 50, 100][rng.gen_range(0..4)])
                    },
                    traffic_unlimited: unlimited,
                },
                additional: AdditionalSpec {
                    ipv4_count: [1, 1, 1, 5, 8][rng.gen_range(0..5)],
                    ipv6_enabled: rng.gen_bool(0.9),
                },
            },
            prices,
            // Addresses from the ranges reserved for documentation (RFC 5737): a demo server
            // shows where its renter would connect, and nothing real answers there.
            access: Some(AccessInput {
                address: format!(
                    "{}.{}",
                    ["192.0.2", "198.51.100", "203.0.113"][n % 3],
                    n / 3 % 254 + 1
                ),
                port: 22,
                user: "root".into(),
            }),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::inventory::check;

    #[test]
    fn demo_catalog_is_varied_and_valid() {
        let servers = demo_servers(500, 7);
        let countries: std::collections::BTreeSet<_> =
            servers.iter().map(|s| s.country.clone()).collect();
        let cpus: std::collections::BTreeSet<_> =
            servers.iter().map(|s| s.specs.cpu.model.clone()).collect();
        assert!(countries.len() >= 10, "{countries:?}");
        assert!(cpus.len() >= 5);
        for c in CATEGORIES {
            assert!(servers.iter().any(|s| s.category == *c), "category {c}");
        }
        assert!(servers.iter().any(|s| s.specs.network.traffic_unlimited));
        assert!(servers.iter().any(|s| !s.specs.network.traffic_unlimited));
        assert!(servers
            .iter()
            .any(|s| s.specs.disks.config.iter().any(|d| d.kind == "HDD")));
        for s in servers {
            check(s).expect("every demo server is valid");
        }
    }
}
