//! Paths cannot escape a volume: `..`, absolute paths, and symlinks planted inside the volume (by
//! an archive or by the container writing into it) never reach a file outside. One test per
//! known Wings advisory pattern, archives that try, and a property test over random paths and
//! planted links.

mod common;

use std::{collections::BTreeMap, io::Write, path::Path};

use common::{assert_error, scratch, Daemon};
use hangar_node::confined::{Budget, Tree, Unlimited, VolPath};
use proptest::prelude::*;
use reqwest::StatusCode;
use serde_json::json;

const TRAVERSAL: &str = "Invalid path: path traversal detected";

/// A directory outside the volume with a file whose content and listing must never change.
fn outside() -> std::path::PathBuf {
    let dir = scratch("outside");
    std::fs::write(dir.join("secret.txt"), "do not touch").unwrap();
    std::fs::create_dir(dir.join("nested")).unwrap();
    std::fs::write(dir.join("nested/keep.txt"), "keep").unwrap();
    dir
}

/// Everything under `dir` with its content, for before/after comparisons.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let key = path.strip_prefix(dir).unwrap().display().to_string();
            if meta.is_dir() {
                stack.push(path);
                out.insert(key + "/", Vec::new());
            } else {
                out.insert(key, std::fs::read(&path).unwrap_or_default());
            }
        }
    }
    out
}

#[tokio::test]
async fn dot_dot_and_absolute_paths_stay_inside() {
    let d = Daemon::start().await;
    let (id, dir) = d.volume(None).await;
    for path in ["../escape", "a/../../escape", "..", "a/b/../../../x"] {
        let answer = d
            .post(
                &format!("/volumes/{id}/files"),
                json!({"path": path, "content": "x"}),
            )
            .await;
        assert_error(&answer, StatusCode::BAD_REQUEST, TRAVERSAL);
        let answer = d.get(&format!("/volumes/{id}/files?path={path}")).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, TRAVERSAL);
    }
    // A leading slash means the volume's root, never the host's.
    let (status, _) = d
        .post(
            &format!("/volumes/{id}/files"),
            json!({"path": "/etc/passwd", "content": "mine"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        std::fs::read_to_string(dir.join("etc/passwd")).unwrap(),
        "mine"
    );
    assert_ne!(std::fs::read_to_string("/etc/passwd").unwrap(), "mine");
}

/// Wings advisory pattern: a symlink in the volume pointing outside, then a write "into" it.
#[tokio::test]
async fn writing_through_a_planted_link_is_refused() {
    let d = Daemon::start().await;
    let (id, dir) = d.volume(None).await;
    let out = outside();
    let before = snapshot(&out);
    std::os::unix::fs::symlink(&out, dir.join("link")).unwrap();
    std::os::unix::fs::symlink(out.join("secret.txt"), dir.join("file-link")).unwrap();
    std::os::unix::fs::symlink("../../../../../..", dir.join("up")).unwrap();

    for path in [
        "link/secret.txt",
        "link/new.txt",
        "file-link",
        "up/tmp/x",
        "link/nested/keep.txt",
    ] {
        let answer = d
            .post(
                &format!("/volumes/{id}/files"),
                json!({"path": path, "content": "pwned"}),
            )
            .await;
        assert_error(&answer, StatusCode::BAD_REQUEST, TRAVERSAL);
    }
    let answer = d
        .post(
            &format!("/volumes/{id}/folders"),
            json!({"path": "link/newdir"}),
        )
        .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, TRAVERSAL);
    let (status, _) = d
        .put_bytes(
            &format!("/volumes/{id}/files/content?path=link/up.bin"),
            vec![1; 100],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Reading and listing through it neither.
    let (status, body) = d
        .get_bytes(&format!("/volumes/{id}/files/content?path=link/secret.txt"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(!String::from_utf8_lossy(&body).contains("do not touch"));
    let (status, _) = d
        .get_bytes(&format!("/volumes/{id}/files/content?path=file-link"))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(
        &d.get(&format!("/volumes/{id}/files?path=link")).await,
        StatusCode::BAD_REQUEST,
        TRAVERSAL,
    );
    // Copying from or into it.
    let answer = d
        .post(
            &format!("/volumes/{id}/copy"),
            json!({"source": "link/secret.txt", "destination": "stolen.txt"}),
        )
        .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, TRAVERSAL);
    d.post(
        &format!("/volumes/{id}/files"),
        json!({"path": "mine.txt", "content": "mine"}),
    )
    .await;
    let answer = d
        .post(
            &format!("/volumes/{id}/copy"),
            json!({"source": "mine.txt", "destination": "link/mine.txt"}),
        )
        .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, TRAVERSAL);
    // Compressing into it.
    let answer = d
        .post(
            &format!("/volumes/{id}/compress"),
            json!({"format": "tar", "output_name": "link/out"}),
        )
        .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, TRAVERSAL);

    assert_eq!(snapshot(&out), before, "nothing outside the volume changed");
    // The links are listed for what they are.
    let (_, listed) = d.get(&format!("/volumes/{id}/files")).await;
    let kinds: Vec<_> = listed["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_owned(),
                f["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("link".into(), "symlink".into())),
        "{kinds:?}"
    );
    let _ = std::fs::remove_dir_all(&out);
}

/// Wings advisory pattern: deleting a folder that is (or contains) a link to the outside.
#[tokio::test]
async fn deleting_through_a_link_removes_only_the_link() {
    let d = Daemon::start().await;
    let (id, dir) = d.volume(None).await;
    let out = outside();
    let before = snapshot(&out);
    std::os::unix::fs::symlink(&out, dir.join("link")).unwrap();
    std::fs::create_dir(dir.join("tree")).unwrap();
    std::os::unix::fs::symlink(&out, dir.join("tree/inner-link")).unwrap();
    std::fs::write(dir.join("tree/own.txt"), "own").unwrap();

    let answer = d
        .delete(&format!("/volumes/{id}/files?path=link/secret.txt"))
        .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, TRAVERSAL);
    let answer = d
        .delete(&format!("/volumes/{id}/files?path=link/nested"))
        .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, TRAVERSAL);
    assert_eq!(
        d.delete(&format!("/volumes/{id}/files?path=tree")).await.0,
        StatusCode::OK
    );
    assert!(!dir.join("tree").exists());
    assert_eq!(
        d.delete(&format!("/volumes/{id}/files?path=link")).await.0,
        StatusCode::OK
    );
    assert!(
        std::fs::symlink_metadata(dir.join("link")).is_err(),
        "the link itself is gone"
    );
    assert_eq!(
        snapshot(&out),
        before,
        "what the links pointed at is untouched"
    );

    // Deleting the volume with a link in it leaves the outside alone too.
    std::os::unix::fs::symlink(&out, dir.join("again")).unwrap();
    assert_eq!(d.delete(&format!("/volumes/{id}")).await.0, StatusCode::OK);
    assert!(!dir.exists());
    assert_eq!(snapshot(&out), before);
    let _ = std::fs::remove_dir_all(&out);
}

/// Wings advisory pattern: a permission change through a link. The daemon has no chmod route;
/// what it writes gets fixed modes and a link is never the target of a write, so the outside
/// file's mode cannot change either.
#[tokio::test]
async fn modes_outside_cannot_change_through_a_link() {
    use std::os::unix::fs::PermissionsExt;
    let d = Daemon::start().await;
    let (id, dir) = d.volume(None).await;
    let out = outside();
    let secret = out.join("secret.txt");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&secret, dir.join("server.jar")).unwrap();
    let answer = d
        .post(
            &format!("/volumes/{id}/files"),
            json!({"path": "server.jar", "content": "x"}),
        )
        .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, TRAVERSAL);
    // Unpacking an archive whose entry has the link's name and a wide mode.
    let archive = tar_with(|b| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o777);
        h.set_size(1);
        b.append_data(&mut h, "server.jar", &b"x"[..]).unwrap();
    });
    std::fs::write(dir.join("a.tar"), archive).unwrap();
    let answer = d
        .post(
            &format!("/volumes/{id}/decompress"),
            json!({"archive_path": "a.tar", "destination": ""}),
        )
        .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, TRAVERSAL);
    assert!(std::fs::symlink_metadata(dir.join("server.jar"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "do not touch");
    let _ = std::fs::remove_dir_all(&out);
}

fn tar_with(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    build(&mut b);
    b.into_inner().unwrap()
}

/// A raw tar header with any name (the tar crate refuses to write `..` itself).
fn raw_entry(name: &str, kind: u8, data: &[u8], link: &str) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[108..115].copy_from_slice(b"0000000");
    h[116..123].copy_from_slice(b"0000000");
    h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
    h[136..147].copy_from_slice(b"00000000000");
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| *b as u32).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let mut out = h.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn raw_tar(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out: Vec<u8> = entries.concat();
    out.extend_from_slice(&[0u8; 1024]);
    out
}

#[tokio::test]
async fn hostile_archives_are_refused_whole() {
    let d = Daemon::start_with(|c| {
        c.limits.archive_entries = 50;
        c.limits.archive_bytes = 1_000_000;
    })
    .await;
    let (id, dir) = d.volume(None).await;
    let out = outside();
    let before = snapshot(&out);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "dotdot.tar",
            raw_tar(&[
                raw_entry("ok.txt", b'0', b"fine", ""),
                raw_entry("../escape.txt", b'0', b"bad", ""),
            ]),
            TRAVERSAL,
        ),
        (
            "absolute.tar",
            raw_tar(&[raw_entry("/tmp/abs.txt", b'0', b"bad", "")]),
            TRAVERSAL,
        ),
        (
            "link-then-file.tar",
            raw_tar(&[
                raw_entry("out", b'2', b"", out.to_str().unwrap()),
                raw_entry("out/planted.txt", b'0', b"bad", ""),
            ]),
            TRAVERSAL,
        ),
        (
            "device.tar",
            raw_tar(&[raw_entry("dev", b'3', b"", "")]),
            "device",
        ),
        (
            "fifo.tar",
            raw_tar(&[raw_entry("pipe", b'6', b"", "")]),
            "device or fifo",
        ),
        (
            "hardlink.tar",
            raw_tar(&[raw_entry("hard", b'1', b"", "/etc/passwd")]),
            "hard link",
        ),
        (
            "many.tar",
            raw_tar(
                &(0..60)
                    .map(|i| raw_entry(&format!("f{i}"), b'0', b"x", ""))
                    .collect::<Vec<_>>(),
            ),
            "more than 50 entries",
        ),
    ];
    for (name, bytes, message) in cases {
        std::fs::write(dir.join(name), bytes).unwrap();
        let answer = d
            .post(
                &format!("/volumes/{id}/decompress"),
                json!({"archive_path": name, "destination": "x"}),
            )
            .await;
        assert_error(&answer, StatusCode::BAD_REQUEST, message);
        assert!(!dir.join("x").exists(), "{name}: nothing was unpacked");
    }
    // A gzip bomb: 50 MB of zeros in a few kilobytes, refused by its headers before unpacking.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&tar_with(|b| {
        let mut h = tar::Header::new_gnu();
        h.set_size(50_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(
            &mut h,
            "zeros",
            std::io::Read::take(std::io::repeat(0), 50_000_000),
        )
        .unwrap();
    }))
    .unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < 200_000);
    std::fs::write(dir.join("bomb.tar.gz"), bomb).unwrap();
    let answer = d
        .post(
            &format!("/volumes/{id}/decompress"),
            json!({"archive_path": "bomb.tar.gz", "destination": "x"}),
        )
        .await;
    assert_error(
        &answer,
        StatusCode::BAD_REQUEST,
        "unpacks to more than 1000000 bytes",
    );
    assert!(!dir.join("x").exists());
    let answer = d
        .post(
            &format!("/volumes/{id}/decompress"),
            json!({"archive_path": "notes.zip", "destination": "x"}),
        )
        .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "unsupported archive");
    assert_eq!(snapshot(&out), before);
    let _ = std::fs::remove_dir_all(&out);
}

/// A budget that refuses nothing and counts nothing.
fn unlimited() -> &'static dyn Budget {
    &Unlimited
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random paths made of names, `.`, `..`, empty parts, planted links (to the outside, to
    /// `..`, to `/`) and a leading `/`: whatever the operation answers, nothing outside the
    /// volume changes and nothing is read from it.
    #[test]
    fn no_random_path_reaches_outside(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("a".to_owned()), Just("b".to_owned()), Just("..".to_owned()), Just(".".to_owned()),
                Just(String::new()), Just("out".to_owned()), Just("up".to_owned()), Just("root".to_owned()),
                Just("a/out".to_owned()), Just("secret.txt".to_owned()),
            ],
            1..6,
        ),
        leading_slash in any::<bool>(),
        op in 0u8..6,
    ) {
        let base = scratch("prop");
        let volume = base.join("volume");
        let out = base.join("outside");
        std::fs::create_dir_all(volume.join("a")).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("secret.txt"), "do not touch").unwrap();
        std::os::unix::fs::symlink(&out, volume.join("out")).unwrap();
        std::os::unix::fs::symlink(&out, volume.join("a/out")).unwrap();
        std::os::unix::fs::symlink("..", volume.join("up")).unwrap();
        std::os::unix::fs::symlink("/", volume.join("root")).unwrap();
        let before = snapshot(&out);

        let raw = format!("{}{}", if leading_slash { "/" } else { "" }, parts.join("/"));
        let tree = Tree::open(&volume).unwrap();
        let result = VolPath::parse(&raw).and_then(|path| match op {
            0 => tree.write(&path, b"pwned", unlimited()),
            1 => tree.create_dir(&path),
            2 => tree.remove(&path).map(drop),
            3 => hangar_node::confined::read_to_vec(&tree, &path).map(|content| {
                assert_ne!(content, b"do not touch", "{raw} read the outside file");
            }),
            4 => tree.list(&path).map(|entries| {
                assert!(entries.iter().all(|e| e.name != "secret.txt"), "{raw} listed the outside folder");
            }),
            _ => tree.copy(&path, &VolPath::parse("copied").unwrap(), unlimited()).map(|()| {
                // A link is copied as a link; a real file or folder must not hold outside content.
                let copied = volume.join("copied");
                let meta = std::fs::symlink_metadata(&copied).unwrap();
                if meta.is_dir() {
                    assert!(std::fs::symlink_metadata(copied.join("secret.txt")).is_err(), "{raw} copied the outside folder in");
                } else if meta.is_file() {
                    assert_ne!(std::fs::read(&copied).unwrap(), b"do not touch", "{raw} copied the outside file in");
                }
            }),
        });
        let _ = result;
        prop_assert_eq!(snapshot(&out), before, "{} (op {}) changed the outside", raw, op);
        let _ = std::fs::remove_dir_all(&base);
    }
}

/// The daemon never blocks on a file, and never opens a device: a FIFO or a device node planted
/// in a volume (a container can make both) is refused as "not a regular file" at once, when read,
/// downloaded or packed. Before, reading a FIFO waited for a writer for ever, holding a
/// worker thread and the request.
#[tokio::test]
async fn a_fifo_or_device_in_a_volume_is_refused_without_waiting() {
    let d = Daemon::start().await;
    let (id, dir) = d.volume(None).await;
    std::fs::create_dir(dir.join("box")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        dir.join("box/pipe"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    // The host's /dev/null, as a node inside the volume (a root container may make one).
    rustix::fs::mknodat(
        rustix::fs::CWD,
        dir.join("box/null"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 3),
    )
    .unwrap();
    std::fs::write(dir.join("box/own.txt"), "own").unwrap();
    for leaf in ["pipe", "null"] {
        let url = format!("/volumes/{id}/files/content?path=box/{leaf}");
        let answer = tokio::time::timeout(std::time::Duration::from_secs(10), d.get(&url))
            .await
            .unwrap_or_else(|_| panic!("{url} is still waiting after 10 s"));
        assert_error(&answer, StatusCode::BAD_REQUEST, "not a regular file");
    }
    // Packing the folder takes the file and leaves the FIFO and the device out, at once.
    let packed = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        d.post(
            &format!("/volumes/{id}/compress"),
            json!({"format": "tar.gz", "output_name": "box.tar.gz", "path": "box"}),
        ),
    )
    .await
    .expect("packing a folder with a FIFO in it still waits");
    assert_eq!(packed.0, StatusCode::OK, "{:?}", packed.1);
}
