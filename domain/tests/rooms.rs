//! The domain's rooms stay layered: a room may use the rooms below it and never one above, so
//! there is no import circle between them (`src/lib.rs` draws them). This reads the sources: a
//! `crate::<room>` path in the code (not the comments) of another room's file is an import, and
//! so is reaching a part of the shared `AppState` that a room above owns. Inside a room, the
//! files form no circle either.

use std::{collections::BTreeSet, fs, path::Path};

/// Bottom to top.
const LAYERS: &[&str] = &[
    "infra",
    "accounts",
    "fleet",
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

/// The parts of `AppState` (`src/lib.rs`) that belong to one room: using them from a room below
/// climbs as surely as an import does. The rest (database, config, queue wake-up, gates,
/// metrics, lifecycle, revocations, HTTP client) are the floor's.
const STATE_PARTS: &[(&str, &str)] = &[
    ("jwt", "accounts"),
    ("drivers", "fleet"),
    ("browse_index", "market"),
    ("consoles", "compute"),
];

/// A file's code without comments and without its tests (a `#[cfg(test)]` module ends a file
/// here, and its `super::` means the file itself).
fn code_of(file: &Path) -> String {
    let text = fs::read_to_string(file).unwrap();
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
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
            let text = code_of(&file);
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

/// Where each use of a room-owned part of `AppState` happens, with the owner.
fn state_uses() -> Vec<(&'static str, &'static str, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut uses = Vec::new();
    for room in LAYERS {
        let mut files = Vec::new();
        rust_files(&src.join(room), &mut files);
        for file in files {
            let text = code_of(&file);
            for (part, owner) in STATE_PARTS {
                let needle = format!(".{part}");
                let used = text.match_indices(&needle).any(|(i, _)| {
                    !text[i + needle.len()..]
                        .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                });
                if used {
                    uses.push((*room, *owner, file.display().to_string()));
                }
            }
        }
    }
    uses
}

#[test]
fn rooms_reach_only_their_own_and_lower_parts_of_the_shared_state() {
    let rank = |r: &str| LAYERS.iter().position(|l| *l == r).unwrap();
    let uses = state_uses();
    // Guards against reading nothing: compute drives nodes through `state.drivers`.
    assert!(uses
        .iter()
        .any(|(r, o, _)| *r == "compute" && *o == "fleet"));
    let climbing: Vec<_> = uses
        .into_iter()
        .filter(|(room, owner, _)| rank(owner) > rank(room))
        .collect();
    assert!(
        climbing.is_empty(),
        "rooms reaching a part of AppState a room above them owns: {climbing:#?}"
    );
}

/// The files of each room (`room::file`, a folder counting as one) and which of the same room's
/// files each one names, through `crate::room::file` or, at a room's top, `super::file`.
fn file_imports() -> std::collections::BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut edges = std::collections::BTreeMap::<String, BTreeSet<String>>::new();
    for room in LAYERS {
        let mut files = Vec::new();
        rust_files(&src.join(room), &mut files);
        let module = |name: &str| {
            let dir = src.join(room);
            (dir.join(format!("{name}.rs")).exists() || dir.join(name).join("mod.rs").exists())
                .then(|| format!("{room}::{name}"))
        };
        for file in files {
            let relative = file.strip_prefix(src.join(room)).unwrap();
            let top = relative.components().count() == 1;
            let first = relative
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy();
            let name = first.trim_end_matches(".rs").to_owned();
            if name == "mod" {
                continue;
            }
            let me = format!("{room}::{name}");
            let text = code_of(&file);
            let mut named = BTreeSet::new();
            let mut collect = |prefix: &str| {
                for (i, _) in text.match_indices(prefix) {
                    let rest = &text[i + prefix.len()..];
                    let items: Vec<String> = if let Some(list) = rest.strip_prefix('{') {
                        list.split('}')
                            .next()
                            .unwrap_or("")
                            .split(',')
                            .map(|s| s.trim().to_owned())
                            .collect()
                    } else {
                        vec![rest.to_owned()]
                    };
                    for item in items {
                        let head: String = item
                            .chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect();
                        if let Some(target) = module(&head) {
                            if target != me {
                                named.insert(target);
                            }
                        }
                    }
                }
            };
            collect(&format!("crate::{room}::"));
            if top {
                collect("super::");
            }
            edges.entry(me).or_default().extend(named);
        }
    }
    edges
}

#[test]
fn files_inside_a_room_form_no_circle() {
    let edges = file_imports();
    // Guards against reading nothing: the executor uses instances.
    assert!(edges["compute::executor"].contains("compute::instances"));
    // Depth-first search for a path back to where it started.
    fn reach(
        edges: &std::collections::BTreeMap<String, BTreeSet<String>>,
        from: &str,
        to: &str,
        seen: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> bool {
        for next in edges.get(from).into_iter().flatten() {
            if next == to {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if reach(edges, next, to, seen, path) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let circles: Vec<String> = edges
        .keys()
        .filter_map(|file| {
            let mut path = vec![file.clone()];
            reach(&edges, file, file, &mut BTreeSet::new(), &mut path).then(|| path.join(" → "))
        })
        .collect();
    assert!(
        circles.is_empty(),
        "files importing each other in a circle: {circles:#?}"
    );
}
