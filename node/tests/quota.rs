//! A volume's disk limit holds for every way the daemon writes (JSON writes, streamed uploads,
//! copies, archives), counting what a container wrote meanwhile; uploads and downloads stream;
//! big folders list in pages.

mod common;

use common::{assert_error, Daemon};
use reqwest::StatusCode;
use serde_json::json;

const FULL: &str = "Disk limit exceeded";

#[tokio::test]
async fn every_write_stops_at_the_limit_and_a_refused_one_changes_nothing() {
    let d = Daemon::start().await;
    let (id, dir) = d.volume(Some(10_000)).await;
    let write = |path: &str, n: usize| json!({"path": path, "content": "x".repeat(n)});

    assert_eq!(
        d.post(&format!("/volumes/{id}/files"), write("a.txt", 6000))
            .await
            .0,
        StatusCode::OK
    );
    let answer = d
        .post(&format!("/volumes/{id}/files"), write("b.txt", 5000))
        .await;
    assert_error(&answer, StatusCode::PAYLOAD_TOO_LARGE, FULL);
    assert!(!dir.join("b.txt").exists());
    // Rewriting a file counts only its growth: a full volume can still edit its config.
    assert_eq!(
        d.post(&format!("/volumes/{id}/files"), write("a.txt", 9000))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        d.post(&format!("/volumes/{id}/files"), write("a.txt", 3000))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(d.get(&format!("/volumes/{id}")).await.1["used_bytes"], 3000);

    // A streamed upload is cut off at the limit, and the file it would replace stays as it was.
    let (status, body) = d
        .put_bytes(
            &format!("/volumes/{id}/files/content?path=a.txt"),
            vec![7; 20_000],
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(std::fs::read(dir.join("a.txt")).unwrap(), vec![b'x'; 3000]);
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "no staging file is left behind: {leftovers:?}"
    );
    assert_eq!(d.get(&format!("/volumes/{id}")).await.1["used_bytes"], 3000);

    // A copy that would not fit is refused whole.
    d.post(&format!("/volumes/{id}/files"), write("dir/one", 2000))
        .await;
    d.post(&format!("/volumes/{id}/files"), write("dir/two", 2000))
        .await;
    let answer = d
        .post(
            &format!("/volumes/{id}/copy"),
            json!({"source": "dir", "destination": "dir2"}),
        )
        .await;
    assert_error(&answer, StatusCode::PAYLOAD_TOO_LARGE, FULL);
    assert!(!dir.join("dir2").exists());

    // Deleting frees room.
    assert_eq!(
        d.delete(&format!("/volumes/{id}/files?path=dir")).await.0,
        StatusCode::OK
    );
    assert_eq!(d.get(&format!("/volumes/{id}")).await.1["used_bytes"], 3000);
    assert_eq!(
        d.post(&format!("/volumes/{id}/files"), write("c.txt", 6000))
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn archives_count_against_the_limit() {
    let d = Daemon::start().await;
    let (id, dir) = d.volume(Some(50_000)).await;
    // Incompressible content, so the archive itself is about as big as what it packs.
    let noise: String = (0..15_000u32)
        .map(|i| char::from(b'a' + (i.wrapping_mul(2_654_435_761) >> 27) as u8 % 26))
        .collect();
    d.post(
        &format!("/volumes/{id}/files"),
        json!({"path": "data/noise.txt", "content": noise}),
    )
    .await;
    let (status, packed) = d
        .post(
            &format!("/volumes/{id}/compress"),
            json!({"format": "tar", "output_name": "one"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{packed}");
    // Packing again would need more than is left.
    d.post(
        &format!("/volumes/{id}/files"),
        json!({"path": "data/more.txt", "content": "z".repeat(5_000)}),
    )
    .await;
    let answer = d
        .post(
            &format!("/volumes/{id}/compress"),
            json!({"format": "tar", "output_name": "two"}),
        )
        .await;
    assert_error(&answer, StatusCode::PAYLOAD_TOO_LARGE, FULL);
    assert!(!dir.join("two.tar").exists());
    // Unpacking the first would too; nothing is unpacked.
    let answer = d
        .post(
            &format!("/volumes/{id}/decompress"),
            json!({"archive_path": "one.tar", "destination": "restored"}),
        )
        .await;
    assert_error(&answer, StatusCode::PAYLOAD_TOO_LARGE, FULL);
    assert!(!dir.join("restored").exists());
    let used = d.get(&format!("/volumes/{id}")).await.1["used_bytes"]
        .as_u64()
        .unwrap();
    let on_disk: u64 = walk_size(&dir);
    assert_eq!(used, on_disk, "the count matches the disk after refusals");
}

fn walk_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            if meta.is_dir() {
                walk_size(&e.path())
            } else if meta.is_file() {
                meta.len()
            } else {
                0
            }
        })
        .sum()
}

#[tokio::test]
async fn what_a_container_wrote_counts_before_the_next_write() {
    let d = Daemon::start().await;
    let (id, dir) = d.volume(Some(10_000)).await;
    // Files that appear behind the daemon's back, as a container's would.
    std::fs::write(dir.join("world.dat"), vec![0u8; 8_000]).unwrap();
    d.node.volumes().get(&id).unwrap().mark_stale();
    let answer = d
        .post(
            &format!("/volumes/{id}/files"),
            json!({"path": "x", "content": "y".repeat(3000)}),
        )
        .await;
    assert_error(&answer, StatusCode::PAYLOAD_TOO_LARGE, FULL);
    assert_eq!(d.get(&format!("/volumes/{id}")).await.1["used_bytes"], 8000);
}

#[tokio::test]
async fn uploads_and_downloads_stream_whole_files() {
    let d = Daemon::start().await;
    let (id, dir) = d.volume(None).await;
    let content: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    let (status, up) = d
        .put_bytes(
            &format!("/volumes/{id}/files/content?path=mods/big.bin"),
            content.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{up}");
    assert_eq!(up["size"], 5_000_000);
    assert_eq!(std::fs::read(dir.join("mods/big.bin")).unwrap(), content);
    let (status, down) = d
        .get_bytes(&format!("/volumes/{id}/files/content?path=mods/big.bin"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(down, content);
    let (status, _) = d
        .get_bytes(&format!("/volumes/{id}/files/content?path=mods"))
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a folder is not downloaded"
    );
    let (status, _) = d
        .get_bytes(&format!("/volumes/{id}/files/content?path=nothing"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The JSON route is for small files and says where big ones go.
    let big = json!({"path": "big.txt", "content": "x".repeat(2 * 1024 * 1024)});
    let answer = d.post(&format!("/volumes/{id}/files"), big).await;
    assert_error(&answer, StatusCode::PAYLOAD_TOO_LARGE, "files/content");
}

#[tokio::test]
async fn a_folder_of_ten_thousand_entries_lists_in_pages() {
    let d = Daemon::start().await;
    let (id, dir) = d.volume(None).await;
    std::fs::create_dir(dir.join("many")).unwrap();
    for i in 0..10_000 {
        std::fs::write(dir.join(format!("many/f{i:05}")), b"x").unwrap();
    }
    std::fs::create_dir(dir.join("many/zz-folder")).unwrap();
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let (status, page) = d
            .get(&format!(
                "/volumes/{id}/files?path=many&offset={offset}&limit=3000"
            ))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["total"], 10_001);
        for f in page["files"].as_array().unwrap() {
            seen.push(f["name"].as_str().unwrap().to_owned());
        }
        match page["next_offset"].as_u64() {
            Some(next) => offset = next as usize,
            None => break,
        }
    }
    assert_eq!(seen.len(), 10_001);
    assert_eq!(seen[0], "zz-folder", "folders come first");
    assert_eq!(seen[1], "f00000");
    assert_eq!(seen[10_000], "f09999");
    // Without a limit a page holds the configured default.
    let (_, first) = d.get(&format!("/volumes/{id}/files?path=many")).await;
    assert_eq!(first["files"].as_array().unwrap().len(), 1000);
    assert_eq!(first["next_offset"], 1000);
}
