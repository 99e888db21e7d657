//! The crate's modules stand in layers: each imports only modules below it, so that
//! none imports one above it and no two import each other. `LAYERS` is the order, the
//! foundations first; a new module takes its place in it.

use std::collections::HashMap;
use std::path::Path;

const LAYERS: &[&str] = &[
    "error",
    "limits",
    "rng",
    "checksum",
    "log",
    "device",
    "heap",
    "progress",
    "file",
    "kernels",
    "vectors",
    "params",
    "optim",
    "vokens",
    "records",
    "duplicates",
    "encoders",
    "quantizer",
    "generator",
    "search",
    "store",
    "index",
    "ffi",
];

/// The names the crate root re-exports, each with the module it comes from.
fn root_names(lib: &str) -> HashMap<String, String> {
    let mut names = HashMap::new();
    for line in lib.lines().filter_map(|l| l.strip_prefix("pub use ")) {
        let module = line.split("::").next().unwrap().to_string();
        let items = line.split_once('{').map_or_else(|| line.rsplit("::").next().unwrap(), |(_, i)| i);
        for item in items.trim_end_matches(['}', ';']).split(',') {
            let name = item.split(" as ").last().unwrap().trim().trim_end_matches(';');
            names.insert(name.to_string(), module.clone());
        }
    }
    names
}

/// The crate modules a file names: `crate::x::...` paths and `use crate::{x, Y}` items.
fn imports(text: &str, root: &HashMap<String, String>) -> Vec<String> {
    let code: String = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    let mut found = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        let group = match rest.strip_prefix('{') {
            Some(g) => &g[..g.find('}').unwrap()],
            None => rest.split(|c: char| !(c.is_alphanumeric() || c == '_')).next().unwrap(),
        };
        for name in group.split(',').map(|n| n.trim().split("::").next().unwrap().trim()) {
            found.push(root.get(name).cloned().unwrap_or_else(|| name.to_string()));
        }
    }
    found
}

fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

#[test]
fn no_module_imports_one_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let root = root_names(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    let level = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut upward = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let module = rel.iter().next().unwrap().to_str().unwrap().trim_end_matches(".rs").to_string();
        if module == "lib" {
            continue;
        }
        let own = level(&module).unwrap_or_else(|| panic!("src/{module} is not in LAYERS"));
        for import in imports(&std::fs::read_to_string(&file).unwrap(), &root) {
            // Names that are not modules (Error, Result, ...) come from the root's `error`.
            let Some(other) = level(&import).or(level("error")) else { continue };
            if import != module && other >= own {
                upward.push(format!("src/{} imports {import}", rel.display()));
            }
        }
    }
    upward.sort();
    upward.dedup();
    assert!(upward.is_empty(), "imports of a module at or above their own layer:\n{}", upward.join("\n"));
}
