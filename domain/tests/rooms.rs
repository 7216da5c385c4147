//! The domain's rooms stay layered: a room may use the rooms below it and never one above, so
//! there is no import circle between them (README "Layout", `src/lib.rs`). This reads the sources:
//! a `crate::<room>` path in the code (not the comments) of another room's file is an import.

use std::{collections::BTreeSet, fs, path::Path};

/// Bottom to top.
const LAYERS: &[&str] = &[
    "infra",
    "accounts",
    "money",
    "market",
    "compute",
    "operators",
    "jobs",
];
/// Root re-exports of `infra` modules.
const INFRA_ALIASES: &[&str] = &["config", "db", "error"];

fn room_of(segment: &str) -> Option<&'static str> {
    if INFRA_ALIASES.contains(&segment) {
        return Some("infra");
    }
    LAYERS.iter().copied().find(|r| *r == segment)
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every room each room's files name through `crate::`.
fn imports() -> BTreeSet<(&'static str, &'static str, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut edges = BTreeSet::new();
    for room in LAYERS {
        let mut files = Vec::new();
        rust_files(&src.join(room), &mut files);
        assert!(!files.is_empty(), "room {room} has no sources");
        for file in files {
            // Code only: a comment that names another room is not an import.
            let text: String = fs::read_to_string(&file)
                .unwrap()
                .lines()
                .map(|l| l.split("//").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join("\n");
            for (i, _) in text.match_indices("crate::") {
                let rest = &text[i + "crate::".len()..];
                let segment: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if rest.starts_with('{') {
                    panic!(
                        "{}: `use crate::{{...}}` hides which rooms are used; name each one",
                        file.display()
                    );
                }
                if let Some(target) = room_of(&segment) {
                    if target != *room {
                        edges.insert((*room, target, file.display().to_string()));
                    }
                }
            }
        }
    }
    edges
}

#[test]
fn rooms_only_use_rooms_below_them() {
    let rank = |r: &str| LAYERS.iter().position(|l| *l == r).unwrap();
    let upward: Vec<_> = imports()
        .into_iter()
        .filter(|(from, to, _)| rank(to) > rank(from))
        .collect();
    assert!(
        upward.is_empty(),
        "rooms importing a room above them (an import circle in the making): {upward:#?}"
    );
}

#[test]
fn the_check_sees_real_imports() {
    // Guards the test above against reading nothing: compute does use money and infra.
    let edges = imports();
    assert!(edges
        .iter()
        .any(|(f, t, _)| *f == "compute" && *t == "money"));
    assert!(edges
        .iter()
        .any(|(f, t, _)| *f == "jobs" && *t == "compute"));
}
