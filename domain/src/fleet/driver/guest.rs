//! Inside a VM: commands and files over SSH, as root, with the platform key (the `/api` dialect,
//! "Exec": "the exec endpoint SSHs into the VM using the platform key").
//!
//! **Why SSH and not the QEMU guest agent**: every cloud image already runs an SSH server and
//! cloud-init, so a VM from any image Hangar boots can be reached without installing anything in
//! it; stdout, stderr and the exit status are separate in the protocol; the same path works when
//! a node daemon relays it later. The guest agent needs a package most cloud images lack and a
//! virtio-serial channel, and its exec buffers all output until the end.
//!
//! **Keys, from one secret**: [`GuestKeys`] derives, from a random secret kept in the database
//! (`server_secrets`, shared by every replica), the platform key (ed25519) and one host key per
//! machine. Hangar hands both to the guest through the NoCloud seed's `vendor-data`
//! ([`GuestKeys::vendor_data`]): cloud-init installs the host key (`ssh_keys`) and appends the
//! platform key to root's `authorized_keys`. So Hangar knows each guest's host key before it
//! first boots and checks it on every connection: there is no trust-on-first-use window, and a
//! guest answering with another key is refused ("not the key Hangar gave it"). A user who
//! disables vendor-data, or removes the key, opts out of exec and files for that machine.
//!
//! **Reaching the guest**: at its address on the node's network (the DHCP lease libvirt knows),
//! port 22; the control plane must route there (on a single host it does). One SSH connection
//! per machine is kept and shared by its commands (channels), reopened when it drops or after
//! five idle minutes. When the guest does not answer yet, calls fail with
//! [`DriverError::Unreachable`] ("SSH is not reachable yet"), which the API answers 409.
//!
//! Commands run as `sh -c` under `env HANGAR_EXEC=<tag>`, exactly as in containers, so a cancel
//! or a timeout kills every process the command started ([`super::kill_script`]).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use russh::{
    client,
    keys::{
        ssh_key::{private::Ed25519Keypair, LineEnding},
        PrivateKey, PrivateKeyWithHashAlg, PublicKey,
    },
    ChannelMsg, Sig,
};
use sha2::Sha256;

use crate::fleet::driver::{
    instance_of, kill_script, sh_quote, split_path, DriverError, DriverResult, ExecOutput,
    ExecRequest, FileStream, EXEC_TAG,
};

/// How long Hangar waits for a guest's SSH server to answer and finish the handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The comment on the platform key in a guest's `authorized_keys`.
const PLATFORM_KEY_COMMENT: &str = "hangar-platform";

/// The platform key and every machine's host key, derived from one secret.
pub struct GuestKeys {
    secret: Vec<u8>,
    platform: Arc<PrivateKey>,
}

impl std::fmt::Debug for GuestKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestKeys")
            .field("platform", &self.platform_public())
            .finish_non_exhaustive()
    }
}

impl GuestKeys {
    pub fn new(secret: &[u8]) -> Self {
        let platform = Arc::new(derive(secret, "hangar platform key"));
        Self {
            secret: secret.to_vec(),
            platform,
        }
    }

    /// Keys from a fresh random secret: for a driver used without a database (tests).
    pub fn random() -> Self {
        use rand::RngCore;
        let mut secret = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut secret);
        Self::new(&secret)
    }

    /// The platform key's public half, as a line of `authorized_keys`.
    pub fn platform_public(&self) -> String {
        public_line(self.platform.public_key(), PLATFORM_KEY_COMMENT)
    }

    /// The SSH host key machine `instance_id` is given (and expected to answer with).
    pub fn host_key(&self, instance_id: &str) -> PrivateKey {
        derive(&self.secret, &format!("hangar host key {instance_id}"))
    }

    /// The cloud-config Hangar serves as the machine's NoCloud `vendor-data`: its SSH host key
    /// and root's access for the platform key. A user's own `user-data` is merged over it by
    /// cloud-init.
    pub fn vendor_data(&self, instance_id: &str) -> String {
        let host = self.host_key(instance_id);
        let private = host
            .to_openssh(LineEnding::LF)
            .map(|k| k.to_string())
            .unwrap_or_default();
        let indented: String = private
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>();
        format!(
            "#cloud-config\n\
             # Hangar: this machine's SSH host key, known to Hangar before the first boot, and the\n\
             # platform key that runs the commands and file transfers you ask for through Hangar's\n\
             # API as root. Remove that key from /root/.ssh/authorized_keys to opt out.\n\
             ssh_keys:\n  ed25519_private: |\n{indented}  ed25519_public: {}\n\
             write_files:\n  - path: /root/.ssh/authorized_keys\n    append: true\n    permissions: \"0600\"\n    content: |\n      {}\n",
            public_line(host.public_key(), ""),
            self.platform_public(),
        )
    }
}

/// An ed25519 key whose seed is HMAC-SHA256(secret, label).
fn derive(secret: &[u8], label: &str) -> PrivateKey {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(label.as_bytes());
    let seed: [u8; 32] = mac.finalize().into_bytes().into();
    PrivateKey::from(Ed25519Keypair::from_seed(&seed))
}

fn public_line(key: &PublicKey, comment: &str) -> String {
    let line = key.to_openssh().unwrap_or_default();
    if comment.is_empty() {
        line
    } else {
        format!("{line} {comment}")
    }
}

/// Accepts the server only when it shows the host key Hangar gave the machine.
struct HostKeyCheck {
    expected: PublicKey,
}

impl client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(match key {
            russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => {
                key.key_data() == self.expected.key_data()
            }
            russh::keys::PublicKeyOrCertificate::Certificate(_) => false,
        })
    }
}

type Session = client::Handle<HostKeyCheck>;

/// Commands running at once in one machine; more wait their turn.
const CONCURRENT_PER_MACHINE: usize = 8;

/// One machine's SSH connections. Each runs one command (channel) at a time and is kept for the
/// next one: many channels on one connection lose commands under load (channel ids are reused
/// while the server still closes the previous channel), and OpenSSH allows only 10 sessions per
/// connection anyway. So a machine has up to [`CONCURRENT_PER_MACHINE`] connections, made as
/// commands need them, one handshake at a time (servers refuse many unauthenticated
/// connections at once: dropbear more than 5 per address, OpenSSH's `MaxStartups`).
struct Slot {
    idle: Mutex<Vec<(String, Session)>>,
    permits: Arc<tokio::sync::Semaphore>,
    connecting: tokio::sync::Mutex<()>,
}

impl Default for Slot {
    fn default() -> Self {
        Self {
            idle: Mutex::default(),
            permits: Arc::new(tokio::sync::Semaphore::new(CONCURRENT_PER_MACHINE)),
            connecting: tokio::sync::Mutex::default(),
        }
    }
}

impl Slot {
    /// An idle live connection to `addr`, if there is one.
    fn take_idle(&self, addr: &str) -> Option<Session> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain(|(a, s)| a == addr && !s.is_closed());
        idle.pop().map(|(_, s)| s)
    }
}

/// A connection lent to one command; it goes back to its machine's idle ones when dropped.
/// A file on its way out of a guest: the channel running `head -c <size>`, holding its
/// connection until the last byte or until the download is dropped.
struct Download {
    _held: Held,
    channel: russh::Channel<client::Msg>,
    /// Bytes that came with the size line.
    pending: Option<Bytes>,
    /// Bytes still promised.
    left: u64,
    code: Option<u32>,
}

impl Download {
    async fn next(mut self) -> Option<(std::io::Result<Bytes>, Self)> {
        loop {
            if let Some(chunk) = self.pending.take() {
                let chunk = chunk.slice(..chunk.len().min(self.left as usize));
                self.left -= chunk.len() as u64;
                return Some((Ok(chunk), self));
            }
            if self.left == 0 {
                return None;
            }
            match self.channel.wait().await {
                Some(ChannelMsg::Data { data }) => self.pending = Some(data),
                Some(ChannelMsg::ExitStatus { exit_status }) => self.code = Some(exit_status),
                Some(_) => {}
                None => {
                    // The channel closed with bytes still promised: the file shrank or the
                    // guest went away. An error, so the client's download is not taken as whole.
                    let e = std::io::Error::other(format!(
                        "the file ended {} bytes early (exit status {:?})",
                        self.left, self.code
                    ));
                    self.left = 0;
                    return Some((Err(e), self));
                }
            }
        }
    }
}

struct Held {
    slot: Arc<Slot>,
    addr: String,
    session: Option<Session>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            if !session.is_closed() {
                self.slot
                    .idle
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((std::mem::take(&mut self.addr), session));
            }
        }
    }
}

/// SSH connections into guests, per machine, made on first use.
pub struct Guests {
    keys: Arc<GuestKeys>,
    config: Arc<client::Config>,
    /// Machine name → its connections (see [`Slot`]).
    sessions: Mutex<HashMap<String, Arc<Slot>>>,
}

impl std::fmt::Debug for Guests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guests").finish_non_exhaustive()
    }
}

impl Guests {
    pub fn new(keys: Arc<GuestKeys>) -> Self {
        let config = client::Config {
            inactivity_timeout: Some(Duration::from_secs(300)),
            keepalive_interval: Some(Duration::from_secs(30)),
            nodelay: true,
            ..Default::default()
        };
        Self {
            keys,
            config: Arc::new(config),
            sessions: Mutex::default(),
        }
    }

    /// Runs `req` in machine `machine` at `addr`; see [`super::Driver::exec`].
    pub async fn exec(
        &self,
        machine: &str,
        addr: &str,
        req: &ExecRequest,
    ) -> DriverResult<ExecOutput> {
        let command = format!(
            "exec env {EXEC_TAG}={} sh -c {}",
            req.tag,
            sh_quote(&req.command)
        );
        let (_held, mut channel) = self.channel(machine, addr, &command).await?;
        let mut out = ExecOutput::default();
        let max = req.max_output;
        let read = async {
            let mut code = None;
            while let Some(msg) = channel.wait().await {
                match msg {
                    ChannelMsg::Data { data } => out.push(false, &data, max),
                    ChannelMsg::ExtendedData { data, ext: 1 } => out.push(true, &data, max),
                    ChannelMsg::ExitStatus { exit_status } => code = Some(i64::from(exit_status)),
                    ChannelMsg::ExitSignal { signal_name, .. } => code = signal_exit(&signal_name),
                    _ => {}
                }
            }
            code
        };
        match tokio::time::timeout(req.timeout, read).await {
            Ok(None) => {
                return Err(DriverError::Unreachable(format!(
                    "The SSH connection to {addr} closed before the command finished"
                )))
            }
            Ok(code) => out.exit_code = code,
            Err(_) => {
                out.timed_out = true;
                self.kill(machine, addr, &req.tag).await?;
            }
        }
        Ok(out)
    }

    /// Kills every process of the exec tagged `tag`; see [`super::Driver::exec_kill`].
    pub async fn kill(&self, machine: &str, addr: &str, tag: &str) -> DriverResult<()> {
        self.status(machine, addr, &kill_script(tag), None, 0)
            .await
            .map(|_| ())
    }

    /// Writes `file` to `path` as its bytes arrive; see [`super::Driver::put_file`]. The bytes go
    /// to a staging file beside the target, which replaces it only when all `file.size` of them
    /// came: an upload cut short leaves the old file as it was.
    pub async fn put_file(
        &self,
        machine: &str,
        addr: &str,
        path: &str,
        file: FileStream,
    ) -> DriverResult<()> {
        let (dir, _) = split_path(path)?;
        let size = file.size;
        let script = format!(
            "d={}; p={}; t=\"$d/.hangar-upload-$$\"; [ -d \"$d\" ] || exit 3; [ -d \"$p\" ] && exit 4; \
             head -c {size} > \"$t\" || {{ rm -f \"$t\"; exit 5; }}; \
             [ $(wc -c < \"$t\") -eq {size} ] || {{ rm -f \"$t\"; exit 7; }}; \
             mv -f \"$t\" \"$p\" || {{ rm -f \"$t\"; exit 5; }}",
            sh_quote(dir),
            sh_quote(path)
        );
        let (code, _, stderr) = self
            .status(machine, addr, &script, Some(file.bytes), 0)
            .await?;
        match code {
            Some(0) => Ok(()),
            Some(3) => Err(DriverError::NotFound(format!("Directory {dir}"))),
            Some(4) => Err(DriverError::Invalid(format!("{path} is a directory"))),
            Some(7) => Err(DriverError::Invalid(format!(
                "The upload of {path} ended before its {size} bytes; the file was not changed"
            ))),
            _ => Err(DriverError::Invalid(format!(
                "{path} could not be written: {}",
                String::from_utf8_lossy(&stderr).trim()
            ))),
        }
    }

    /// The file at `path`, at most `max` bytes, as the guest sends it; see
    /// [`super::Driver::get_file`]. The guest first prints the file's size on a line of its own,
    /// then exactly that many bytes (a file that grows meanwhile is cut at that size; one that
    /// shrinks ends the stream with an error, so the client sees a short download, not a
    /// complete one).
    pub async fn get_file(
        &self,
        machine: &str,
        addr: &str,
        path: &str,
        max: u64,
    ) -> DriverResult<FileStream> {
        use futures::StreamExt;
        split_path(path)?;
        let script = format!(
            "p={}; [ -e \"$p\" ] || exit 3; [ -d \"$p\" ] && exit 4; n=$(wc -c < \"$p\") || exit 5; \
             n=$((n)); [ \"$n\" -gt {max} ] && {{ echo \"$n\" >&2; exit 6; }}; \
             echo \"$n\"; exec head -c \"$n\" \"$p\"",
            sh_quote(path)
        );
        let (held, mut channel) = self.channel(machine, addr, &script).await?;
        let _ = channel.eof().await;
        // Up to the size line: a failure answers here, before a byte is promised.
        let (mut head, mut stderr, mut code) = (Vec::new(), Vec::new(), None);
        let newline = loop {
            match channel.wait().await {
                Some(ChannelMsg::Data { data }) => {
                    head.extend_from_slice(&data);
                    if let Some(i) = head.iter().position(|b| *b == b'\n') {
                        break Some(i);
                    }
                    if head.len() > 32 {
                        break None;
                    }
                }
                Some(ChannelMsg::ExtendedData { data, .. }) if stderr.len() < 4096 => {
                    stderr.extend_from_slice(&data)
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => code = Some(exit_status),
                Some(_) => {}
                None => break None,
            }
        };
        let size = newline.and_then(|i| {
            std::str::from_utf8(&head[..i])
                .ok()?
                .trim()
                .parse::<u64>()
                .ok()
        });
        let Some(size) = size else {
            let stderr = String::from_utf8_lossy(&stderr);
            return Err(match code {
                Some(3) => DriverError::NotFound(format!("File {path}")),
                Some(4) => DriverError::Invalid(format!("{path} is a directory")),
                Some(6) => DriverError::TooLarge(format!(
                    "{path} is {} bytes; the limit is {max}",
                    stderr.trim()
                )),
                _ => DriverError::Invalid(format!("{path} could not be read: {}", stderr.trim())),
            });
        };
        let first = Bytes::from(head).slice(newline.unwrap_or(0) + 1..);
        let download = Download {
            _held: held,
            channel,
            pending: (!first.is_empty()).then_some(first),
            left: size,
            code: None,
        };
        let bytes = futures::stream::unfold(download, Download::next).boxed();
        Ok(FileStream { size, bytes })
    }

    /// Forgets machine `machine`'s session (it was destroyed).
    pub fn forget(&self, machine: &str) {
        self.sessions.lock().expect("sessions").remove(machine);
    }

    /// Runs a script of Hangar's own, feeding it `stdin`; returns its exit status, stdout (up to
    /// `max_stdout` bytes) and stderr.
    async fn status(
        &self,
        machine: &str,
        addr: &str,
        script: &str,
        stdin: Option<futures::stream::BoxStream<'static, std::io::Result<Bytes>>>,
        max_stdout: usize,
    ) -> DriverResult<(Option<i64>, Vec<u8>, Vec<u8>)> {
        use futures::StreamExt;
        let (_held, mut channel) = self.channel(machine, addr, script).await?;
        // A script that exits before reading its input closes the channel under the writer:
        // the exit status below says why, so a failed write is not the error to report. An
        // input that fails half-way is cut there: the script sees fewer bytes than it was told.
        if let Some(mut input) = stdin {
            while let Some(Ok(chunk)) = input.next().await {
                if channel.data_bytes(chunk).await.is_err() {
                    break;
                }
            }
        }
        let _ = channel.eof().await;
        let (mut stdout, mut stderr, mut code) = (Vec::new(), Vec::new(), None);
        while let Some(msg) = channel.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    let room = max_stdout.saturating_sub(stdout.len());
                    stdout.extend_from_slice(&data[..data.len().min(room)]);
                }
                ChannelMsg::ExtendedData { data, .. } if stderr.len() < 4096 => {
                    stderr.extend_from_slice(&data)
                }
                ChannelMsg::ExitStatus { exit_status } => code = Some(i64::from(exit_status)),
                _ => {}
            }
        }
        Ok((code, stdout, stderr))
    }

    /// A channel running `command` in machine `machine`, on one of its idle connections when
    /// one is alive, on a new one otherwise; the connection comes along ([`Held`]).
    async fn channel(
        &self,
        machine: &str,
        addr: &str,
        command: &str,
    ) -> DriverResult<(Held, russh::Channel<client::Msg>)> {
        let slot = self
            .sessions
            .lock()
            .expect("sessions")
            .entry(machine.to_owned())
            .or_default()
            .clone();
        let permit = slot
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| DriverError::Backend("connection permits closed".into()))?;
        let kept = slot.take_idle(addr);
        let mut held = Held {
            slot,
            addr: addr.to_owned(),
            session: None,
            _permit: permit,
        };
        if let Some(session) = kept {
            if let Ok(channel) = open_exec(&session, command).await {
                held.session = Some(session);
                return Ok((held, channel));
            }
        }
        let connecting = held.slot.connecting.lock().await;
        // Another command may have finished meanwhile and left its connection.
        let session = match held.slot.take_idle(addr) {
            Some(session) => session,
            None => self.connect(machine, addr).await?,
        };
        drop(connecting);
        let channel = open_exec(&session, command)
            .await
            .map_err(unreachable(addr))?;
        held.session = Some(session);
        Ok((held, channel))
    }

    async fn connect(&self, machine: &str, addr: &str) -> DriverResult<Session> {
        let instance = instance_of(machine).unwrap_or(machine);
        let check = HostKeyCheck {
            expected: self.keys.host_key(instance).public_key().clone(),
        };
        let connecting = client::connect(self.config.clone(), (addr, 22), check);
        let mut session = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| {
                DriverError::Unreachable(format!(
                    "SSH is not reachable yet at {addr} (the machine may still be booting)"
                ))
            })?
            .map_err(|e| match e {
                russh::Error::UnknownKey => DriverError::Unreachable(format!(
                    "The SSH server at {addr} did not show the host key Hangar gave this machine, \
                     so Hangar sends it nothing (was the machine reinstalled outside Hangar?)"
                )),
                e => unreachable(addr)(e),
            })?;
        let auth = session
            .authenticate_publickey(
                "root",
                PrivateKeyWithHashAlg::new(self.keys.platform.clone(), None),
            )
            .await
            .map_err(unreachable(addr))?;
        if !auth.success() {
            return Err(DriverError::Unreachable(format!(
                "SSH at {addr} refused Hangar's platform key for root (was it removed from /root/.ssh/authorized_keys, or vendor-data disabled?)"
            )));
        }
        Ok(session)
    }
}

async fn open_exec(
    session: &Session,
    command: &str,
) -> Result<russh::Channel<client::Msg>, russh::Error> {
    let channel = session.channel_open_session().await?;
    channel.exec(false, command).await?;
    Ok(channel)
}

fn unreachable(addr: &str) -> impl Fn(russh::Error) -> DriverError + '_ {
    move |e| DriverError::Unreachable(format!("SSH is not reachable yet at {addr}: {e}"))
}

/// The exit code a shell reports for a command killed by `signal` (128 + its number).
fn signal_exit(signal: &Sig) -> Option<i64> {
    let number = match signal {
        Sig::HUP => 1,
        Sig::INT => 2,
        Sig::QUIT => 3,
        Sig::ILL => 4,
        Sig::ABRT => 6,
        Sig::FPE => 8,
        Sig::KILL => 9,
        Sig::USR1 => 10,
        Sig::SEGV => 11,
        Sig::PIPE => 13,
        Sig::ALRM => 14,
        Sig::TERM => 15,
        Sig::Custom(_) => return None,
    };
    Some(128 + number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_per_secret_and_distinct_per_machine() {
        let a = GuestKeys::new(b"one secret");
        let again = GuestKeys::new(b"one secret");
        let other = GuestKeys::new(b"another secret");
        assert_eq!(a.platform_public(), again.platform_public());
        assert_ne!(a.platform_public(), other.platform_public());
        assert_eq!(
            a.host_key("m1").public_key(),
            again.host_key("m1").public_key()
        );
        assert_ne!(a.host_key("m1").public_key(), a.host_key("m2").public_key());
        assert!(a.platform_public().starts_with("ssh-ed25519 "));
        assert!(a.platform_public().ends_with(" hangar-platform"));
    }

    #[test]
    fn vendor_data_carries_the_host_key_and_the_platform_key() {
        let keys = GuestKeys::new(b"s");
        let data = keys.vendor_data("m1");
        assert!(data.starts_with("#cloud-config\n"));
        assert!(data.contains("    -----BEGIN OPENSSH PRIVATE KEY-----\n"));
        let public = keys.host_key("m1").public_key().to_openssh().unwrap();
        assert!(data.contains(&format!("  ed25519_public: {public}\n")));
        assert!(data.contains(&format!("      {}\n", keys.platform_public())));
        // The private key in it is the machine's host key.
        let block: String = data
            .lines()
            .filter_map(|l| l.strip_prefix("    "))
            .filter(|l| !l.starts_with(' ') && !l.contains(':'))
            .map(|l| format!("{l}\n"))
            .collect();
        let parsed = PrivateKey::from_openssh(block).unwrap();
        assert_eq!(parsed.public_key().to_openssh().unwrap(), public);
    }

    #[test]
    fn signals_end_like_in_a_shell() {
        assert_eq!(signal_exit(&Sig::KILL), Some(137));
        assert_eq!(signal_exit(&Sig::TERM), Some(143));
        assert_eq!(signal_exit(&Sig::Custom("X".into())), None);
    }
}
