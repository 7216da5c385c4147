//! VM images fetched from an HTTP(S) URL (`hangar admin put-image --url ... --sha256 ...`):
//! streamed to a file beside its final place (memory stays flat whatever the image's size),
//! hashed on the way, and moved into place only when the SHA-256 the operator gave matches. A
//! failed or mismatched download leaves nothing behind, and an image already in place with the
//! right checksum is not fetched again.

use std::path::Path;

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// Why an image could not be fetched; each says what to change.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("The image URL must start with http:// or https://")]
    Scheme,
    #[error("The checksum must be 64 hexadecimal digits (SHA-256)")]
    Checksum,
    #[error("Fetching {url} failed: {reason}")]
    Fetch { url: String, reason: String },
    #[error("The image's SHA-256 is {actual}, not {expected}: nothing was saved")]
    Mismatch { expected: String, actual: String },
    #[error("Writing {path} failed: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Fetches `url` to `dest` (its directory is made) unless `dest` already holds a file with this
/// checksum. Returns the file's size in bytes.
pub async fn fetch(url: &str, sha256: &str, dest: &Path) -> Result<u64, DownloadError> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(DownloadError::Scheme);
    }
    let expected = sha256.trim().to_ascii_lowercase();
    if expected.len() != 64 || !expected.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(DownloadError::Checksum);
    }
    let write = |source| DownloadError::Write {
        path: dest.display().to_string(),
        source,
    };
    if let Some(size) = already_there(dest, &expected).await.map_err(write)? {
        return Ok(size);
    }
    if let Some(dir) = dest.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(write)?;
    }
    let part = dest.with_extension("part");
    let http = reqwest::Client::builder()
        .user_agent(concat!("hangar/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| DownloadError::Fetch {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
    let fetched = stream_to(&http, url, &part).await;
    let (size, actual) = match fetched {
        Ok(done) => done,
        Err(e) => {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(e);
        }
    };
    if actual != expected {
        let _ = tokio::fs::remove_file(&part).await;
        return Err(DownloadError::Mismatch { expected, actual });
    }
    tokio::fs::rename(&part, dest).await.map_err(write)?;
    Ok(size)
}

/// Downloads into `part`, hashing as it goes.
async fn stream_to(
    http: &reqwest::Client,
    url: &str,
    part: &Path,
) -> Result<(u64, String), DownloadError> {
    let failed = |reason: String| DownloadError::Fetch {
        url: url.to_owned(),
        reason,
    };
    let mut response = http
        .get(url)
        .send()
        .await
        .map_err(|e| failed(e.to_string()))?;
    if !response.status().is_success() {
        return Err(failed(format!("the server answered {}", response.status())));
    }
    let write = |source| DownloadError::Write {
        path: part.display().to_string(),
        source,
    };
    let mut file = tokio::fs::File::create(part).await.map_err(write)?;
    let mut hash = Sha256::new();
    let mut size = 0u64;
    while let Some(chunk) = response.chunk().await.map_err(|e| failed(e.to_string()))? {
        hash.update(&chunk);
        size += chunk.len() as u64;
        file.write_all(&chunk).await.map_err(write)?;
    }
    file.flush().await.map_err(write)?;
    file.sync_all().await.map_err(write)?;
    Ok((size, hex::encode(hash.finalize())))
}

/// The size of `dest` when it exists with the expected checksum.
async fn already_there(dest: &Path, expected: &str) -> std::io::Result<Option<u64>> {
    let mut file = match tokio::fs::File::open(dest).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    use tokio::io::AsyncReadExt;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hash.finalize()) == expected).then_some(size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-file HTTP server on loopback answering every request with `body`; its URL.
    async fn serve(body: &'static [u8]) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut request = [0u8; 4096];
                let _ = conn.read(&mut request).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(body).await;
            }
        });
        format!("http://{addr}/disk.qcow2")
    }

    fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    #[tokio::test]
    async fn an_image_is_kept_only_when_its_checksum_matches() {
        const DISK: &[u8] = b"QFI\xfb pretend this is a qcow2 disk";
        let url = serve(DISK).await;
        let dir =
            std::env::temp_dir().join(format!("hangar-download-{}", crate::infra::db::new_id()));
        let dest = dir.join("images/tiny.qcow2");

        let wrong = fetch(&url, &sha(b"something else"), &dest).await;
        assert!(
            matches!(wrong, Err(DownloadError::Mismatch { .. })),
            "{wrong:?}"
        );
        assert!(
            !dest.exists() && !dest.with_extension("part").exists(),
            "nothing is left"
        );

        let size = fetch(&url, &sha(DISK).to_uppercase(), &dest).await.unwrap();
        assert_eq!(size, DISK.len() as u64);
        assert_eq!(std::fs::read(&dest).unwrap(), DISK);

        // Already in place with that checksum: not fetched again (this URL answers nothing).
        let again = fetch("http://127.0.0.1:9/gone", &sha(DISK), &dest)
            .await
            .unwrap();
        assert_eq!(again, DISK.len() as u64);

        assert!(matches!(
            fetch("ftp://example/x", &sha(DISK), &dest).await,
            Err(DownloadError::Scheme)
        ));
        assert!(matches!(
            fetch(&url, "abc", &dest).await,
            Err(DownloadError::Checksum)
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
