//! The optional slow tier: a real libvirtd with QEMU (software emulation) that
//! `scripts/qemu-tier` starts, and the tiny Linux guest it builds. Tests that need it run when
//! `HANGAR_TEST_QEMU=1` (`scripts/test` then starts the tier and sets the other variables).

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

pub struct Tier {
    /// libvirt URI of the tier's daemon.
    pub uri: String,
    pub kernel: String,
    pub initrd: String,
    /// Where libvirt writes each domain's serial console log.
    pub logs: PathBuf,
    /// The directory behind the node's `default` storage pool (machines' disks).
    pub pool: PathBuf,
    /// The host's address on the guests' network (where a Hangar for the guests listens).
    pub host: String,
}

impl Tier {
    /// The tier, when `HANGAR_TEST_QEMU=1`; `None` (with a line saying so) otherwise.
    pub fn from_env() -> Option<Tier> {
        if std::env::var("HANGAR_TEST_QEMU").as_deref() != Ok("1") {
            eprintln!(
                "skipped: the QEMU tier runs with HANGAR_TEST_QEMU=1 (scripts/test starts it)"
            );
            return None;
        }
        let var = |k: &str| {
            std::env::var(k).unwrap_or_else(|_| {
                panic!("HANGAR_TEST_QEMU=1 needs {k}: run scripts/test, or scripts/qemu-tier start DIR")
            })
        };
        Some(Tier {
            uri: var("HANGAR_TEST_QEMU_URI"),
            kernel: var("HANGAR_TEST_QEMU_KERNEL"),
            initrd: var("HANGAR_TEST_QEMU_INITRD"),
            logs: var("HANGAR_TEST_QEMU_LOGS").into(),
            pool: var("HANGAR_TEST_QEMU_POOL").into(),
            host: var("HANGAR_TEST_QEMU_HOST"),
        })
    }

    /// The guest as a Hangar VM image source (direct kernel boot, console on the serial port).
    pub fn image_source(&self) -> String {
        format!(
            "kernel={} initrd={} append=console=ttyS0 quiet",
            self.kernel, self.initrd
        )
    }

    /// The node network's definition as libvirt has it now (DHCP reservations included).
    pub fn network_xml(&self) -> String {
        let out = std::process::Command::new("virsh")
            .args(["-c", &self.uri, "net-dumpxml", "default"])
            .output()
            .expect("virsh runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// What machine `name` has printed on its serial console so far.
    pub fn serial(&self, name: &str) -> String {
        std::fs::read_to_string(self.logs.join(format!("{name}-serial0.log"))).unwrap_or_default()
    }

    /// Waits until machine `name`'s console has printed `needle` after the first `skip` bytes
    /// (earlier boots) and returns the whole log; panics with the log after `timeout`.
    pub async fn wait_serial(
        &self,
        name: &str,
        skip: usize,
        needle: &str,
        timeout: Duration,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.serial(name);
            if log.get(skip..).is_some_and(|l| l.contains(needle)) {
                return log;
            }
            if Instant::now() > deadline {
                panic!("{name} did not print {needle:?} within {timeout:?}; its console:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
