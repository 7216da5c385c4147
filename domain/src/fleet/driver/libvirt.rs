//! Virtual machines through libvirt (crate `virt`).
//!
//! One connection per node, opened on first use and reopened when it dies. libvirt calls block,
//! so every call runs on tokio's blocking pool.
//!
//! What a machine gets (see [`domain_xml`]): the plan's vCPUs and memory, a qcow2 disk in the
//! node's `default` storage pool, a virtio NIC on the configured network ([`Network`]), a serial
//! console (its output also logged on the node to
//! `/var/log/libvirt/qemu/<machine>-serial0.log`), VNC graphics listening on 127.0.0.1 only, and
//! ACPI so a graceful stop reaches the guest. The image decides how it boots ([`BootSource`]):
//! from a disk layered on a qcow2 base image, or directly from a kernel and initrd with a blank
//! disk. Domains are `kvm` unless the deployment says `qemu` (software emulation).
//!
//! **Public addresses**: every NIC has a fixed MAC derived from the machine's name ([`mac_of`]).
//! When Hangar allocated the machine a public IPv4 address, `create` reserves it for that MAC in
//! the network's DHCP service (`<host mac=... ip=...>`, live and persistent), so the guest gets it
//! by plain DHCP whatever its image; `destroy` removes the reservation. The network must serve the
//! address's subnet, otherwise the create fails with libvirt's reason.
//!
//! **Cloud-init** (user data and SSH keys) uses the NoCloud *network* seed announced through
//! SMBIOS: the domain's system serial is `ds=nocloud-net;s=<public_url>/cloud-init/<id>/<key>/`,
//! and Hangar serves `meta-data` (instance id, hostname, `public-keys`) and `user-data` there.
//! No ISO tooling is needed on the node, and the seed key in the URL keeps one guest from reading
//! another's data.
//!
//! libvirt's test driver (`test:///<fixture.xml>`) is used as it is, with two adjustments made
//! because it cannot do otherwise: domains are `type='test'`, and since it cannot auto-allocate
//! VNC ports, the driver assigns fixed ones (5900 + n, the first not in use on the node).

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use virt::{
    connect::Connect,
    domain::{Domain, DomainState},
    error::ErrorNumber,
    stream::Stream,
    sys,
};

use crate::fleet::driver::{
    Console, ConsoleInput, ConsoleIo, Driver, DriverError, DriverResult, ExecOutput, ExecRequest,
    FileStream, Kind, Machine, MachineSpec, Power, ScreenIo,
};
use crate::infra::config::{DomainType, Network};

/// The storage pool disks are made in, on every libvirt node.
const POOL: &str = "default";

/// How a VM image boots, read from the image's `source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootSource {
    /// From the machine's disk, a qcow2 overlay on this base: the `<source>.qcow2` volume in the
    /// node's pool, or an absolute path on the node.
    Disk(String),
    /// Direct kernel boot, written `kernel=/abs/vmlinuz initrd=/abs/initrd.img append=<kernel
    /// command line to the end>` (initrd and append optional; paths on the node). The machine's
    /// disk starts blank. For appliance images and minimal guests.
    Kernel {
        kernel: String,
        initrd: Option<String>,
        append: Option<String>,
    },
}

impl BootSource {
    pub fn parse(source: &str) -> Result<Self, String> {
        let source = source.trim();
        if !source.contains('=') {
            if source.is_empty() || source.contains(char::is_whitespace) {
                return Err("a VM image source is a volume name or an absolute path, or kernel=... initrd=... append=...".into());
            }
            return Ok(BootSource::Disk(source.to_owned()));
        }
        let (mut kernel, mut initrd, mut append) = (None, None, None);
        let mut rest = source;
        while !rest.is_empty() {
            if let Some(line) = rest.strip_prefix("append=") {
                append = Some(line.trim().to_owned()).filter(|a| !a.is_empty());
                break;
            }
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            let (token, tail) = rest.split_at(end);
            rest = tail.trim_start();
            let (key, value) = token
                .split_once('=')
                .ok_or_else(|| format!("expected key=value, got {token:?}"))?;
            if !value.starts_with('/') {
                return Err(format!("{key} must be an absolute path on the node"));
            }
            match key {
                "kernel" => kernel = Some(value.to_owned()),
                "initrd" => initrd = Some(value.to_owned()),
                _ => return Err(format!("unknown boot key {key:?} (kernel, initrd, append)")),
            }
        }
        Ok(BootSource::Kernel {
            kernel: kernel.ok_or("kernel= is required")?,
            initrd,
            append,
        })
    }
}

#[derive(Clone)]
pub struct LibvirtDriver {
    uri: String,
    conn: Arc<Mutex<Option<Connect>>>,
    stop_timeout: Duration,
    domain_type: DomainType,
    network: Network,
    /// SSH sessions into this node's guests (exec and files).
    guests: Arc<super::guest::Guests>,
}

impl std::fmt::Debug for LibvirtDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LibvirtDriver")
            .field("uri", &self.uri)
            .finish_non_exhaustive()
    }
}

impl LibvirtDriver {
    pub fn new(uri: &str, settings: &super::Settings) -> Self {
        // libvirt prints every error to stderr by default; they are returned to us instead.
        virt::error::clear_error_callback();
        Self {
            uri: uri.to_owned(),
            conn: Arc::new(Mutex::new(None)),
            stop_timeout: settings.stop_timeout,
            domain_type: settings.libvirt_domain_type,
            network: settings.libvirt_network.clone(),
            guests: Arc::new(super::guest::Guests::new(settings.guest_keys.clone())),
        }
    }

    fn is_test_driver(&self) -> bool {
        self.uri.starts_with("test:")
    }

    /// Whether libvirtd runs on this host (a local socket, no remote host in the URI), so the
    /// VNC servers it starts on 127.0.0.1 are Hangar's loopback too.
    fn is_local(&self) -> bool {
        let rest = self.uri.split_once("://").map_or("", |(_, r)| r);
        rest.starts_with('/')
            || self.uri.contains("socket=")
            || self
                .uri
                .split_once('+')
                .is_some_and(|(_, t)| t.starts_with("unix:"))
    }

    /// Runs `f` with a live connection on the blocking pool.
    async fn with_conn<T, F>(&self, f: F) -> DriverResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connect, &LibvirtDriver) -> DriverResult<T> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let conn = this.connection()?;
            f(&conn, &this)
        })
        .await
        .map_err(|e| DriverError::Backend(format!("libvirt task failed: {e}")))?
    }

    fn connection(&self) -> DriverResult<Connect> {
        let mut slot = self.conn.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(conn) = slot.as_ref() {
            if conn.is_alive().unwrap_or(false) || self.is_test_driver() {
                return Ok(conn.clone());
            }
        }
        let conn = Connect::open(Some(&self.uri)).map_err(backend)?;
        *slot = Some(conn.clone());
        Ok(conn)
    }
}

fn backend(e: virt::error::Error) -> DriverError {
    DriverError::Backend(format!("libvirt: {}", e.message()))
}

fn is(e: &virt::error::Error, code: ErrorNumber) -> bool {
    e.code() == virt::error::ErrorNumberEnum::Known(code)
}

/// The domain called `name`, or `None` if there is none.
fn lookup(conn: &Connect, name: &str) -> DriverResult<Option<Domain>> {
    match conn.lookup_domain_by_name(name) {
        Ok(d) => Ok(Some(d)),
        Err(e) if is(&e, ErrorNumber::NoDomain) => Ok(None),
        Err(e) => Err(backend(e)),
    }
}

fn require(conn: &Connect, name: &str) -> DriverResult<Domain> {
    lookup(conn, name)?.ok_or_else(|| DriverError::NotFound(format!("Machine {name}")))
}

fn power_of(dom: &Domain) -> DriverResult<Power> {
    let (state, _) = dom.state().map_err(backend)?;
    Ok(match state.unwrap_or(DomainState::NoState) {
        DomainState::Shutoff | DomainState::Crashed | DomainState::NoState => Power::Stopped,
        _ => Power::Running,
    })
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\'', "&apos;")
        .replace('"', "&quot;")
}

/// The disk volume's name for a machine.
fn volume_name(machine: &str) -> String {
    format!("{machine}.qcow2")
}

/// What the host decides about a domain, beside the machine's spec.
pub struct Host<'a> {
    /// `kvm` or `qemu` on real hosts, `test` on libvirt's test driver.
    pub domain_type: &'a str,
    pub network: &'a Network,
    /// A fixed VNC port, or `None` for autoport.
    pub vnc_port: Option<u16>,
}

/// The domain definition for `spec` booting from `boot`.
pub fn domain_xml(spec: &MachineSpec, boot: &BootSource, host: &Host) -> String {
    let name = xml_escape(&spec.name);
    let sysinfo = spec
        .seed_url
        .as_ref()
        .map(|url| {
            format!(
                "<sysinfo type='smbios'><system><entry name='serial'>ds=nocloud-net;s={}</entry></system></sysinfo>",
                xml_escape(url)
            )
        })
        .unwrap_or_default();
    let smbios = if spec.seed_url.is_some() {
        "<smbios mode='sysinfo'/>"
    } else {
        ""
    };
    let boot = match boot {
        BootSource::Disk(_) => "<boot dev='hd'/>".to_owned(),
        BootSource::Kernel {
            kernel,
            initrd,
            append,
        } => {
            let mut xml = format!("<kernel>{}</kernel>", xml_escape(kernel));
            if let Some(initrd) = initrd {
                xml += &format!("<initrd>{}</initrd>", xml_escape(initrd));
            }
            if let Some(append) = append {
                xml += &format!("<cmdline>{}</cmdline>", xml_escape(append));
            }
            xml
        }
    };
    // The test driver has no log daemon; real hosts keep the guest's console output, which is
    // what an operator reads when a machine does not come up.
    let serial_log = if host.domain_type == "test" {
        String::new()
    } else {
        format!("<log file='/var/log/libvirt/qemu/{name}-serial0.log' append='on'/>")
    };
    let graphics = match host.vnc_port {
        Some(port) => {
            format!("<graphics type='vnc' port='{port}' autoport='no' listen='127.0.0.1'/>")
        }
        None => "<graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1'/>".to_owned(),
    };
    format!(
        "<domain type='{domain_type}'>
  <name>{name}</name>
  <title>{hostname}</title>
  <metadata><hangar:instance xmlns:hangar='https://hangar.dev/xmlns/instance/1'>{id}</hangar:instance></metadata>
  <memory unit='MiB'>{memory}</memory>
  <vcpu>{vcpu}</vcpu>
  {sysinfo}
  <os><type arch='x86_64'>hvm</type>{boot}{smbios}</os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <devices>
    <disk type='volume' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source pool='{POOL}' volume='{volume}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='network'><mac address='{mac}'/><source network='{network}'/><model type='virtio'/></interface>
    <serial type='pty'>{serial_log}<target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    {graphics}
  </devices>
</domain>",
        domain_type = host.domain_type,
        network = xml_escape(&host.network.0),
        mac = mac_of(&spec.name),
        hostname = xml_escape(&spec.hostname),
        id = xml_escape(&spec.instance_id),
        memory = spec.memory_mb,
        vcpu = spec.vcpu,
        volume = xml_escape(&volume_name(&spec.name)),
    )
}

/// The MAC address of a machine's NIC: `52:54` (locally administered, QEMU's prefix) and four
/// bytes of a hash of its name. Fixed per machine, so the DHCP reservation made before the domain
/// exists matches it, and can be removed knowing only the name.
pub fn mac_of(machine: &str) -> String {
    use sha2::Digest;
    let h = sha2::Sha256::digest(machine.as_bytes());
    format!("52:54:{:02x}:{:02x}:{:02x}:{:02x}", h[0], h[1], h[2], h[3])
}

const DHCP_FLAGS: sys::virNetworkUpdateFlags =
    sys::VIR_NETWORK_UPDATE_AFFECT_LIVE | sys::VIR_NETWORK_UPDATE_AFFECT_CONFIG;

/// Removes the machine's DHCP reservation, if it has one.
fn unreserve_address(conn: &Connect, network: &Network, machine: &str) -> DriverResult<()> {
    let net = match conn.lookup_network_by_name(&network.0) {
        Ok(net) => net,
        // No network, no reservation in it.
        Err(e) if is(&e, ErrorNumber::NoNetwork) => return Ok(()),
        Err(e) => return Err(backend(e)),
    };
    let host = format!("<host mac='{}'/>", mac_of(machine));
    let has = net
        .xml_desc(0)
        .map_err(backend)?
        .contains(&format!("mac='{}'", mac_of(machine)));
    if has {
        net.update(
            sys::VIR_NETWORK_UPDATE_COMMAND_DELETE,
            sys::VIR_NETWORK_SECTION_IP_DHCP_HOST,
            -1,
            &host,
            DHCP_FLAGS,
        )
        .map_err(backend)?;
    }
    Ok(())
}

/// The IPv4 subnets a network definition serves, as (network, mask).
fn subnets_of(xml: &str) -> Vec<(u32, u32)> {
    let attr = |tag: &str, name: &str| -> Option<String> {
        let at = tag.find(&format!(" {name}="))? + name.len() + 2;
        let quote = tag[at..].chars().next()?;
        let rest = &tag[at + 1..];
        Some(rest[..rest.find(quote)?].to_owned())
    };
    xml.match_indices("<ip ")
        .filter_map(|(at, _)| {
            let tag = &xml[at..at + xml[at..].find('>')?];
            if attr(tag, "family").is_some_and(|f| f != "ipv4") {
                return None;
            }
            let address: std::net::Ipv4Addr = attr(tag, "address")?.parse().ok()?;
            let mask = match (attr(tag, "netmask"), attr(tag, "prefix")) {
                (Some(m), _) => u32::from(m.parse::<std::net::Ipv4Addr>().ok()?),
                (None, Some(p)) => {
                    let p: u32 = p.parse().ok().filter(|p| *p <= 32)?;
                    u32::MAX.checked_shl(32 - p).unwrap_or(0)
                }
                (None, None) => return None,
            };
            Some((u32::from(address) & mask, mask))
        })
        .collect()
}

/// Reserves `ip` for the machine's MAC in the network's DHCP. Replaces an earlier reservation of
/// the same machine (a retried create lands in the same place) and any other reservation of the
/// same address: Hangar's database decides who holds an address, and a reservation left by a
/// machine that vanished behind Hangar's back must not block the address's next holder.
fn reserve_address(conn: &Connect, network: &Network, machine: &str, ip: &str) -> DriverResult<()> {
    unreserve_address(conn, network, machine)?;
    let net = conn.lookup_network_by_name(&network.0).map_err(backend)?;
    let xml = net.xml_desc(0).map_err(backend)?;
    let subnets = subnets_of(&xml);
    let served = ip.parse::<std::net::Ipv4Addr>().is_ok_and(|a| {
        subnets
            .iter()
            .any(|(net, mask)| u32::from(a) & mask == *net)
    });
    if !served {
        let list: Vec<String> = subnets
            .iter()
            .map(|(net, mask)| format!("{}/{}", std::net::Ipv4Addr::from(*net), mask.count_ones()))
            .collect();
        return Err(DriverError::Invalid(format!(
            "network {} cannot hand out {ip}: it serves {}",
            network.0,
            if list.is_empty() {
                "no IPv4 subnet".to_owned()
            } else {
                list.join(", ")
            }
        )));
    }
    let stale = xml.contains(&format!("ip='{ip}'"));
    if stale {
        tracing::warn!(%ip, network = %network.0, "replacing a stale DHCP reservation");
        net.update(
            sys::VIR_NETWORK_UPDATE_COMMAND_DELETE,
            sys::VIR_NETWORK_SECTION_IP_DHCP_HOST,
            -1,
            &format!("<host ip='{}'/>", xml_escape(ip)),
            DHCP_FLAGS,
        )
        .map_err(backend)?;
    }
    let host = format!(
        "<host mac='{}' name='{}' ip='{}'/>",
        mac_of(machine),
        xml_escape(machine),
        xml_escape(ip)
    );
    net.update(
        sys::VIR_NETWORK_UPDATE_COMMAND_ADD_LAST,
        sys::VIR_NETWORK_SECTION_IP_DHCP_HOST,
        -1,
        &host,
        DHCP_FLAGS,
    )
    .map_err(|e| {
        DriverError::Invalid(format!(
            "network {} cannot hand out {ip}: {}",
            network.0,
            e.message()
        ))
    })
}

/// The VNC port in a live domain's XML (`port='5901'`), if any.
fn vnc_port_of(xml: &str) -> Option<u16> {
    let at = xml.find("<graphics type='vnc'")?;
    let rest = &xml[at..];
    let end = rest.find('>')?;
    let tag = &rest[..end];
    let p = tag.find("port='")? + 6;
    let q = tag[p..].find('\'')?;
    tag[p..p + q]
        .parse::<i32>()
        .ok()
        .filter(|p| *p > 0)
        .map(|p| p as u16)
}

/// Makes the machine's disk, `disk_gb` large: a qcow2 overlay on the image's base disk, or a
/// blank qcow2 for a kernel-booted image. Kept if it exists.
fn ensure_volume(conn: &Connect, spec: &MachineSpec, boot: &BootSource) -> DriverResult<()> {
    let pool = conn.lookup_storage_pool_by_name(POOL).map_err(backend)?;
    let vol = volume_name(&spec.name);
    if pool.lookup_storage_vol_by_name(&vol).is_ok() {
        return Ok(());
    }
    let backing = match boot {
        BootSource::Kernel { .. } => String::new(),
        BootSource::Disk(base) => {
            let path = if base.starts_with('/') {
                base.clone()
            } else {
                pool.lookup_storage_vol_by_name(&format!("{base}.qcow2"))
                    .and_then(|v| v.path())
                    .map_err(|_| {
                        DriverError::Invalid(format!("Image {base} is not on this node"))
                    })?
            };
            format!(
                "<backingStore><path>{}</path><format type='qcow2'/></backingStore>",
                xml_escape(&path)
            )
        }
    };
    let xml = format!(
        "<volume><name>{}</name><capacity unit='GiB'>{}</capacity><target><format type='qcow2'/></target>{backing}</volume>",
        xml_escape(&vol),
        spec.disk_gb,
    );
    virt::storage_vol::StorageVol::create_xml(&pool, &xml, 0).map_err(backend)?;
    Ok(())
}

fn delete_volume(conn: &Connect, machine: &str) -> DriverResult<()> {
    let pool = conn.lookup_storage_pool_by_name(POOL).map_err(backend)?;
    match pool.lookup_storage_vol_by_name(&volume_name(machine)) {
        Ok(vol) => vol.delete(0).map_err(backend),
        Err(e) if is(&e, ErrorNumber::NoStorageVolume) => Ok(()),
        Err(e) => Err(backend(e)),
    }
}

/// The first VNC port from 5900 not used by a domain on this connection (test driver only).
fn free_vnc_port(conn: &Connect) -> DriverResult<u16> {
    let used: Vec<u16> = conn
        .list_all_domains(0)
        .map_err(backend)?
        .iter()
        .filter_map(|d| d.xml_desc(0).ok())
        .filter_map(|xml| vnc_port_of(&xml))
        .collect();
    Ok((5900..u16::MAX).find(|p| !used.contains(p)).unwrap_or(5900))
}

fn wait_stopped(dom: &Domain, timeout: Duration) -> DriverResult<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        if power_of(dom)? == Power::Stopped {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[async_trait]
impl Driver for LibvirtDriver {
    fn kind(&self) -> Kind {
        Kind::Vm
    }

    async fn create(&self, spec: &MachineSpec) -> DriverResult<()> {
        let spec = spec.clone();
        self.with_conn(move |conn, this| {
            let dom = match lookup(conn, &spec.name)? {
                Some(dom) => dom,
                None => {
                    let boot = BootSource::parse(&spec.image).map_err(DriverError::Invalid)?;
                    if let Some(ip) = &spec.public_ip {
                        reserve_address(conn, &this.network, &spec.name, ip)?;
                    }
                    ensure_volume(conn, &spec, &boot)?;
                    let host = if this.is_test_driver() {
                        Host {
                            domain_type: "test",
                            network: &this.network,
                            vnc_port: Some(free_vnc_port(conn)?),
                        }
                    } else {
                        Host {
                            domain_type: this.domain_type.as_str(),
                            network: &this.network,
                            vnc_port: None,
                        }
                    };
                    conn.define_domain_xml(&domain_xml(&spec, &boot, &host))
                        .map_err(backend)?
                }
            };
            if power_of(&dom)? == Power::Stopped {
                dom.create().map_err(backend)?;
            }
            Ok(())
        })
        .await
    }

    async fn start(&self, name: &str) -> DriverResult<()> {
        let name = name.to_owned();
        self.with_conn(move |conn, _| {
            let dom = require(conn, &name)?;
            if power_of(&dom)? == Power::Stopped {
                dom.create().map_err(backend)?;
            }
            Ok(())
        })
        .await
    }

    async fn stop(&self, name: &str) -> DriverResult<()> {
        let name = name.to_owned();
        self.with_conn(move |conn, this| {
            let dom = require(conn, &name)?;
            if power_of(&dom)? == Power::Stopped {
                return Ok(());
            }
            if let Err(e) = dom.shutdown() {
                // It may have stopped between the check and the call.
                if power_of(&dom)? == Power::Stopped {
                    return Ok(());
                }
                return Err(backend(e));
            }
            if !wait_stopped(&dom, this.stop_timeout)? {
                tracing::warn!(machine = %name, "guest ignored ACPI shutdown; forcing it off");
                dom.destroy().map_err(backend)?;
            }
            Ok(())
        })
        .await
    }

    async fn kill(&self, name: &str) -> DriverResult<()> {
        let name = name.to_owned();
        self.with_conn(move |conn, _| {
            let dom = require(conn, &name)?;
            if power_of(&dom)? == Power::Running {
                dom.destroy().map_err(backend)?;
            }
            Ok(())
        })
        .await
    }

    async fn reboot(&self, name: &str) -> DriverResult<()> {
        let name = name.to_owned();
        self.with_conn(move |conn, _| {
            let dom = require(conn, &name)?;
            if power_of(&dom)? == Power::Stopped {
                return dom.create().map_err(backend);
            }
            dom.reboot(0).map_err(backend)
        })
        .await
    }

    async fn destroy(&self, name: &str) -> DriverResult<()> {
        self.guests.forget(name);
        let name = name.to_owned();
        self.with_conn(move |conn, this| {
            if let Some(dom) = lookup(conn, &name)? {
                if power_of(&dom)? == Power::Running {
                    dom.destroy().map_err(backend)?;
                }
                dom.undefine_flags(sys::VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
                    .map_err(backend)?;
            }
            unreserve_address(conn, &this.network, &name)?;
            delete_volume(conn, &name)
        })
        .await
    }

    async fn power(&self, name: &str) -> DriverResult<Option<Power>> {
        let name = name.to_owned();
        self.with_conn(move |conn, _| lookup(conn, &name)?.map(|d| power_of(&d)).transpose())
            .await
    }

    async fn list(&self) -> DriverResult<Vec<Machine>> {
        self.with_conn(|conn, _| {
            let mut out = Vec::new();
            for dom in conn.list_all_domains(0).map_err(backend)? {
                let name = dom.name().map_err(backend)?;
                if super::instance_of(&name).is_some() {
                    out.push(Machine {
                        power: power_of(&dom)?,
                        name,
                        disk_used: None,
                    });
                }
            }
            Ok(out)
        })
        .await
    }

    async fn snapshot_create(&self, name: &str, snapshot: &str) -> DriverResult<()> {
        let (name, snapshot) = (name.to_owned(), snapshot.to_owned());
        self.with_conn(move |conn, _| {
            let dom = require(conn, &name)?;
            if Domain::lookup_snapshot_by_name(&dom, &snapshot, 0).is_ok() {
                return Ok(());
            }
            let xml = format!(
                "<domainsnapshot><name>{}</name></domainsnapshot>",
                xml_escape(&snapshot)
            );
            dom.create_snapshot_xml(&xml, 0).map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn snapshot_list(&self, name: &str) -> DriverResult<Vec<String>> {
        let name = name.to_owned();
        self.with_conn(move |conn, _| {
            let dom = require(conn, &name)?;
            dom.list_all_snapshots(0)
                .map_err(backend)?
                .iter()
                .map(|s| s.name().map_err(backend))
                .collect()
        })
        .await
    }

    async fn snapshot_restore(&self, name: &str, snapshot: &str) -> DriverResult<()> {
        let (name, snapshot) = (name.to_owned(), snapshot.to_owned());
        self.with_conn(move |conn, _| {
            let dom = require(conn, &name)?;
            let snap = Domain::lookup_snapshot_by_name(&dom, &snapshot, 0)
                .map_err(|_| DriverError::NotFound(format!("Snapshot {snapshot}")))?;
            snap.revert(sys::VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED)
                .map_err(backend)?;
            // Reverting to a snapshot of a running machine resumes it paused; leave it stopped.
            if power_of(&dom)? == Power::Running {
                dom.destroy().map_err(backend)?;
            }
            Ok(())
        })
        .await
    }

    async fn snapshot_delete(&self, name: &str, snapshot: &str) -> DriverResult<()> {
        let (name, snapshot) = (name.to_owned(), snapshot.to_owned());
        self.with_conn(move |conn, _| {
            let dom = require(conn, &name)?;
            match Domain::lookup_snapshot_by_name(&dom, &snapshot, 0) {
                Ok(snap) => snap.delete(0).map_err(backend),
                Err(e) if is(&e, ErrorNumber::NoDomainSnapshot) => Ok(()),
                Err(e) => Err(backend(e)),
            }
        })
        .await
    }

    async fn console(&self, name: &str) -> DriverResult<Console> {
        let name = name.to_owned();
        self.with_conn(move |conn, _| {
            let dom = require(conn, &name)?;
            let xml = dom.xml_desc(0).map_err(backend)?;
            Ok(Console {
                vnc_port: vnc_port_of(&xml),
            })
        })
        .await
    }

    async fn address(&self, name: &str) -> DriverResult<Option<String>> {
        let name = name.to_owned();
        self.with_conn(move |conn, _| Ok(lease_address(&require(conn, &name)?)))
            .await
    }

    /// A base disk named by volume is looked up in the node's pool; a file named by path is a
    /// pool volume there, or (on a local hypervisor) a file on this host. A remote node's file
    /// outside every pool cannot be seen through libvirt and is trusted.
    async fn has_image(&self, source: &str) -> DriverResult<bool> {
        let boot = BootSource::parse(source).map_err(DriverError::Invalid)?;
        let local = self.is_local();
        self.with_conn(move |conn, _| {
            let file = |path: &str| {
                conn.lookup_storage_vol_by_path(path).is_ok()
                    || !local
                    || std::path::Path::new(path).is_file()
            };
            Ok(match boot {
                BootSource::Disk(path) if path.starts_with('/') => file(&path),
                BootSource::Disk(base) => conn
                    .lookup_storage_pool_by_name(POOL)
                    .and_then(|pool| pool.lookup_storage_vol_by_name(&format!("{base}.qcow2")))
                    .is_ok(),
                BootSource::Kernel { kernel, initrd, .. } => {
                    file(&kernel) && initrd.as_deref().is_none_or(file)
                }
            })
        })
        .await
    }

    /// Memory from the host's node info and free memory, disk from the `default` storage pool;
    /// libvirt's CPU counters (`virNodeGetCPUStats`) are not wrapped by the bindings, so no CPU.
    async fn host(&self) -> DriverResult<super::HostReport> {
        self.with_conn(|conn, _| {
            let info = conn.node_info().map_err(backend)?;
            let total_mb = (info.memory / 1024) as i64;
            let free_mb = conn.free_memory().map(|b| (b / (1024 * 1024)) as i64).ok();
            let pool = conn
                .lookup_storage_pool_by_name(POOL)
                .and_then(|p| p.info())
                .ok();
            let mb = |bytes: u64| (bytes / (1024 * 1024)) as i64;
            Ok(super::HostReport {
                memory_total_mb: Some(total_mb),
                memory_used_mb: free_mb.map(|free| (total_mb - free).max(0)),
                disk_total_mb: pool.as_ref().map(|p| mb(p.capacity)),
                disk_used_mb: pool.as_ref().map(|p| mb(p.allocation)),
                ..Default::default()
            })
        })
        .await
    }

    /// Runs `true` in the guest: the whole path a command takes (address, host key, platform
    /// key, a channel), and the connection is kept for the first real command.
    async fn ready(&self, name: &str) -> DriverResult<()> {
        let addr = self.guest_address(name).await?;
        let probe = ExecRequest {
            command: "true".into(),
            timeout: std::time::Duration::from_secs(10),
            max_output: 0,
            tag: "ready".into(),
        };
        self.guests.exec(name, &addr, &probe).await.map(|_| ())
    }

    async fn exec(&self, name: &str, req: &ExecRequest) -> DriverResult<ExecOutput> {
        let addr = self.guest_address(name).await?;
        self.guests.exec(name, &addr, req).await
    }

    async fn exec_kill(&self, name: &str, tag: &str) -> DriverResult<()> {
        let addr = self.guest_address(name).await?;
        self.guests.kill(name, &addr, tag).await
    }

    async fn put_file(&self, name: &str, path: &str, file: FileStream) -> DriverResult<()> {
        let addr = self.guest_address(name).await?;
        self.guests.put_file(name, &addr, path, file).await
    }

    async fn get_file(&self, name: &str, path: &str, max: u64) -> DriverResult<FileStream> {
        let addr = self.guest_address(name).await?;
        self.guests.get_file(name, &addr, path, max).await
    }

    async fn open_console(&self, name: &str) -> DriverResult<ConsoleIo> {
        if self.is_test_driver() {
            return Err(DriverError::Unsupported(super::SIMULATED_INSIDE.into()));
        }
        let (out_tx, out_rx) = tokio::sync::mpsc::channel(64);
        let (in_tx, in_rx) = tokio::sync::mpsc::channel(64);
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (uri, name) = (self.uri.clone(), name.to_owned());
        std::thread::Builder::new()
            .name("serial-console".into())
            .spawn(move || serial_pump(&uri, &name, out_tx, in_rx, ready_tx))
            .map_err(|e| DriverError::Backend(format!("console thread: {e}")))?;
        ready_rx
            .await
            .map_err(|_| DriverError::Backend("console thread ended".into()))??;
        Ok(ConsoleIo {
            output: out_rx,
            input: in_tx,
        })
    }

    async fn open_screen(&self, name: &str) -> DriverResult<Box<dyn ScreenIo>> {
        if self.is_test_driver() {
            return Err(DriverError::Unsupported(super::SIMULATED_INSIDE.into()));
        }
        if !self.is_local() {
            return Err(DriverError::Unsupported(
                "The screen relay reaches VNC on the node's loopback, so it needs Hangar on the node's host (a remote node's screen comes with the node daemon)".into(),
            ));
        }
        let port = self
            .console(name)
            .await?
            .vnc_port
            .ok_or_else(|| DriverError::Unreachable("The machine is not running".into()))?;
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| {
                DriverError::Unreachable(format!("The machine's screen is not reachable: {e}"))
            })?;
        let _ = stream.set_nodelay(true);
        Ok(Box::new(stream))
    }

    /// Samples from libvirt's domain statistics once a second: CPU time (as a share of one CPU
    /// over the second), memory the guest uses (its balloon driver's figures when it reports
    /// them, else what the host process holds), and the totals of its network interface and
    /// disk. The test driver answers these too, with figures of its own.
    async fn open_stats(
        &self,
        name: &str,
    ) -> DriverResult<tokio::sync::mpsc::Receiver<model::compute::MachineStats>> {
        let owned = name.to_owned();
        let (mut last, mac) = self
            .with_conn(move |conn, _| {
                let dom = require(conn, &owned)?;
                if power_of(&dom)? != Power::Running {
                    return Err(DriverError::Unreachable(
                        "The machine is not running".into(),
                    ));
                }
                let xml = dom.xml_desc(0).map_err(backend)?;
                let mac = xml_attr(&xml, "<mac address='");
                Ok((counters(&dom, mac.as_deref())?, mac))
            })
            .await?;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let this = self.clone();
        let name = name.to_owned();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if tx.is_closed() {
                    return;
                }
                let (name, mac) = (name.clone(), mac.clone());
                let read = this
                    .with_conn(move |conn, _| {
                        let dom = require(conn, &name)?;
                        if power_of(&dom)? != Power::Running {
                            return Ok(None);
                        }
                        counters(&dom, mac.as_deref()).map(Some)
                    })
                    .await;
                // Stopped or gone, or the node went away: the stream ends.
                let Ok(Some(now)) = read else { return };
                let sample = now.since(&last);
                last = now;
                // A viewer that falls behind misses samples rather than holding the poller.
                let _ = tx.try_send(sample);
            }
        });
        Ok(rx)
    }
}

/// A domain's cumulative counters at one moment.
struct Counters {
    at: Instant,
    cpu_ns: u64,
    memory: u64,
    memory_limit: u64,
    net: (u64, u64),
    disk: (u64, u64),
}

impl Counters {
    /// The sample between `before` and these counters.
    fn since(&self, before: &Counters) -> model::compute::MachineStats {
        let wall = self.at.duration_since(before.at).as_nanos().max(1) as f64;
        let cpu = self.cpu_ns.saturating_sub(before.cpu_ns) as f64 / wall * 100.0;
        model::compute::MachineStats {
            cpu_usage: (cpu * 100.0).round() / 100.0,
            memory_usage: self.memory,
            memory_limit: self.memory_limit,
            network_rx: self.net.0,
            network_tx: self.net.1,
            block_read: self.disk.0,
            block_write: self.disk.1,
        }
    }
}

fn counters(dom: &Domain, mac: Option<&str>) -> DriverResult<Counters> {
    let info = dom.info().map_err(backend)?;
    let stats = dom.memory_stats(0).unwrap_or_default();
    let stat = |tag: u32| stats.iter().find(|s| s.tag == tag).map(|s| s.val);
    let kib = match (
        stat(sys::VIR_DOMAIN_MEMORY_STAT_AVAILABLE),
        stat(sys::VIR_DOMAIN_MEMORY_STAT_UNUSED),
    ) {
        (Some(available), Some(unused)) => available.saturating_sub(unused),
        _ => stat(sys::VIR_DOMAIN_MEMORY_STAT_RSS).unwrap_or(info.memory),
    };
    let net = mac
        .and_then(|mac| dom.interface_stats(mac).ok())
        .map(|s| (s.rx_bytes.max(0) as u64, s.tx_bytes.max(0) as u64))
        .unwrap_or_default();
    let disk = dom
        .block_stats("vda")
        .map(|s| (s.rd_bytes.max(0) as u64, s.wr_bytes.max(0) as u64))
        .unwrap_or_default();
    Ok(Counters {
        at: Instant::now(),
        cpu_ns: info.cpu_time,
        memory: kib.min(info.max_mem) * 1024,
        memory_limit: info.max_mem * 1024,
        net,
        disk,
    })
}

/// The value of the first `prefix…'` in `xml` (`prefix` ends with the opening quote).
fn xml_attr(xml: &str, prefix: &str) -> Option<String> {
    let start = xml.find(prefix)? + prefix.len();
    let end = xml[start..].find('\'')?;
    Some(xml[start..start + end].to_owned())
}

impl LibvirtDriver {
    /// Where the guest's SSH server is: its address on the node's network. Machines on the
    /// test driver have nothing inside to reach.
    async fn guest_address(&self, name: &str) -> DriverResult<String> {
        if self.is_test_driver() {
            return Err(DriverError::Unsupported(super::SIMULATED_INSIDE.into()));
        }
        self.address(name).await?.ok_or_else(|| {
            DriverError::Unreachable(
                "SSH is not reachable yet: the machine has no address on its network (it may still be booting)".into(),
            )
        })
    }
}

/// Starts libvirt's default event loop once per process, on a thread of its own. Without it a
/// remote connection's non-blocking stream never receives anything: nothing reads the socket
/// between calls. Connections opened afterwards (each console's) use it.
fn event_loop() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        if let Err(e) = virt::event::event_register_default_impl() {
            tracing::warn!(error = %e, "libvirt event loop");
            return;
        }
        let spawned = std::thread::Builder::new()
            .name("libvirt-events".into())
            .spawn(|| loop {
                if virt::event::event_run_default_impl().is_err() {
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "libvirt event loop thread");
        }
    });
}

/// Relays a running domain's serial port (libvirt's console stream, on a connection of its own)
/// until the stream ends (the machine stopped) or the console is dropped. libvirt streams are
/// driven from one thread, non-blocking: read what is there, write what viewers typed, rest 10 ms
/// when neither had anything.
fn serial_pump(
    uri: &str,
    name: &str,
    out: tokio::sync::mpsc::Sender<bytes::Bytes>,
    mut input: tokio::sync::mpsc::Receiver<ConsoleInput>,
    ready: tokio::sync::oneshot::Sender<DriverResult<()>>,
) {
    event_loop();
    let opened = (|| {
        let conn = Connect::open(Some(uri)).map_err(backend)?;
        let dom = require(&conn, name)?;
        if power_of(&dom)? != Power::Running {
            return Err(DriverError::Unreachable(
                "The machine is not running".into(),
            ));
        }
        let stream = Stream::new(&conn, sys::VIR_STREAM_NONBLOCK).map_err(backend)?;
        dom.open_console(None, &stream, sys::VIR_DOMAIN_CONSOLE_FORCE)
            .map_err(backend)?;
        Ok((conn, stream))
    })();
    let (conn, stream) = match opened {
        Ok(opened) => {
            let _ = ready.send(Ok(()));
            opened
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let mut buf = vec![0u8; 16 * 1024];
    'pump: loop {
        let mut busy = false;
        match stream.recv(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) if n > 0 => {
                busy = true;
                let chunk = bytes::Bytes::copy_from_slice(&buf[..n as usize]);
                if out.blocking_send(chunk).is_err() {
                    break;
                }
            }
            Ok(_) => {} // -2: nothing to read now
        }
        loop {
            match input.try_recv() {
                Ok(ConsoleInput::Data(data)) => {
                    busy = true;
                    let mut rest: &[u8] = &data;
                    while !rest.is_empty() {
                        match stream.send(rest) {
                            Ok(n) if n > 0 => rest = &rest[n as usize..],
                            Ok(-2) => std::thread::sleep(Duration::from_millis(5)),
                            _ => break 'pump,
                        }
                    }
                }
                Ok(ConsoleInput::Resize { .. }) => {} // a serial port has no size
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => break 'pump,
            }
        }
        if !busy {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let _ = stream.abort();
    drop(conn);
}

/// The first IPv4 address of the domain's DHCP leases, if libvirt knows one.
fn lease_address(dom: &Domain) -> Option<String> {
    let ifaces = dom
        .interface_addresses(sys::VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, 0)
        .ok()?;
    ifaces
        .into_iter()
        .flat_map(|i| i.addrs)
        .find(|a| a.typed == i64::from(sys::VIR_IP_ADDR_TYPE_IPV4))
        .map(|a| a.addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> MachineSpec {
        MachineSpec {
            name: "hangar-abc".into(),
            instance_id: "abc".into(),
            account: String::new(),
            hostname: "web<1>".into(),
            vcpu: 2,
            memory_mb: 2048,
            disk_gb: 20,
            image: "debian-12".into(),
            user_data: None,
            ssh_keys: vec![],
            seed_url: Some("https://h.example/cloud-init/abc/k/".into()),
            public_ip: None,
            app: None,
        }
    }

    fn host(domain_type: &str, vnc_port: Option<u16>) -> Host<'_> {
        Host {
            domain_type,
            network: &DEFAULT_NET,
            vnc_port,
        }
    }

    static DEFAULT_NET: std::sync::LazyLock<Network> =
        std::sync::LazyLock::new(|| Network("default".into()));

    #[test]
    fn domain_xml_carries_the_plan_and_the_seed() {
        let disk = BootSource::Disk("debian-12".into());
        let xml = domain_xml(&spec(), &disk, &host("kvm", None));
        assert!(xml.contains("<domain type='kvm'>"));
        assert!(xml.contains("<memory unit='MiB'>2048</memory>"));
        assert!(xml.contains("<vcpu>2</vcpu>"));
        assert!(xml.contains("ds=nocloud-net;s=https://h.example/cloud-init/abc/k/"));
        assert!(xml.contains("listen='127.0.0.1'"));
        assert!(xml.contains("<boot dev='hd'/>"));
        assert!(xml.contains("<source network='default'/>"));
        assert!(
            xml.contains(&format!("<mac address='{}'/>", mac_of("hangar-abc"))),
            "the NIC has the machine's fixed MAC"
        );
        assert_eq!(mac_of("hangar-abc"), mac_of("hangar-abc"));
        assert_ne!(mac_of("hangar-abc"), mac_of("hangar-abd"));
        assert!(mac_of("hangar-abc").starts_with("52:54:"));
        assert!(xml.contains("<log file='/var/log/libvirt/qemu/hangar-abc-serial0.log'"));
        assert!(
            xml.contains("<title>web&lt;1&gt;</title>"),
            "names are escaped"
        );
        assert_eq!(
            vnc_port_of(&xml),
            None,
            "autoport has no port until it runs"
        );
        let test = domain_xml(&spec(), &disk, &host("test", Some(5903)));
        assert_eq!(vnc_port_of(&test), Some(5903));
        assert!(!test.contains("<log "), "the test driver has no log daemon");
    }

    #[test]
    fn kernel_images_boot_directly_with_their_command_line() {
        let boot = BootSource::parse(
            "kernel=/srv/k/vmlinuz initrd=/srv/k/initrd.gz append=console=ttyS0 quiet",
        )
        .unwrap();
        assert_eq!(
            boot,
            BootSource::Kernel {
                kernel: "/srv/k/vmlinuz".into(),
                initrd: Some("/srv/k/initrd.gz".into()),
                append: Some("console=ttyS0 quiet".into()),
            }
        );
        let bridge = Network("public-br".into());
        let xml = domain_xml(
            &spec(),
            &boot,
            &Host {
                domain_type: "qemu",
                network: &bridge,
                vnc_port: None,
            },
        );
        assert!(xml.contains("<domain type='qemu'>"));
        assert!(xml.contains(
            "<kernel>/srv/k/vmlinuz</kernel><initrd>/srv/k/initrd.gz</initrd><cmdline>console=ttyS0 quiet</cmdline>"
        ));
        assert!(!xml.contains("<boot dev"));
        assert!(xml.contains("<source network='public-br'/>"));
    }

    #[test]
    fn network_subnets_are_read_from_its_definition() {
        let xml = "<network><name>default</name><ip address='192.168.122.1' netmask='255.255.255.0'><dhcp/></ip>\
                   <ip family='ipv6' address='fd00::1' prefix='64'/><ip address=\"10.0.0.1\" prefix=\"8\"/></network>";
        assert_eq!(
            subnets_of(xml),
            vec![
                (
                    u32::from(std::net::Ipv4Addr::new(192, 168, 122, 0)),
                    0xffff_ff00
                ),
                (u32::from(std::net::Ipv4Addr::new(10, 0, 0, 0)), 0xff00_0000),
            ]
        );
    }

    #[test]
    fn image_sources_are_checked() {
        assert_eq!(
            BootSource::parse("ubuntu-22.04").unwrap(),
            BootSource::Disk("ubuntu-22.04".into())
        );
        assert_eq!(
            BootSource::parse("kernel=/k").unwrap(),
            BootSource::Kernel {
                kernel: "/k".into(),
                initrd: None,
                append: None
            }
        );
        for bad in [
            "",
            "two words",
            "kernel=relative/vmlinuz",
            "kernel=/k bios=/b",
            "kernel=/k initrd",
            "initrd=/i",
        ] {
            assert!(BootSource::parse(bad).is_err(), "{bad:?} is refused");
        }
        assert_eq!("br-0".parse::<Network>().unwrap(), Network("br-0".into()));
        assert!("br0; rm".parse::<Network>().is_err());
        assert!("tcg".parse::<DomainType>().is_err());
    }
}
