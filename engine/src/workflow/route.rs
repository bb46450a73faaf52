//! Routing: which dataset (and so which workflow) an object key belongs to,
//! by the `[routing] keys` globs of every spec under the specs folder.

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use crate::error::FerryError;
use crate::spec::DatasetSpec;

/// Every dataset spec under one folder, with its compiled globs.
pub struct Routes {
    dir: PathBuf,
    entries: Vec<(DatasetSpec, GlobSet)>,
}

impl Routes {
    /// Loads every `<dir>/<name>/dataset.toml`. A spec that does not load is
    /// an error (a typo must not silently unroute its files).
    pub fn load(dir: &Path) -> Result<Routes, FerryError> {
        let read = std::fs::read_dir(dir).map_err(|e| {
            FerryError::Usage(format!(
                "specs folder {}: {e} (set --specs or FERRY_SPECS to the folder holding sql/<dataset>/)",
                dir.display()
            ))
        })?;
        let mut folders: Vec<PathBuf> = read
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.join("dataset.toml").is_file())
            .collect();
        folders.sort();
        let mut entries = Vec::with_capacity(folders.len());
        for f in folders {
            let spec = DatasetSpec::load(&f)?;
            let mut set = GlobSetBuilder::new();
            for g in &spec.routing.keys {
                // `*` stays within one path segment; `**/` spans folders.
                let glob = GlobBuilder::new(g)
                    .literal_separator(true)
                    .build()
                    .map_err(|e| {
                        FerryError::Usage(format!(
                            "{}: routing.keys {g:?}: {e}",
                            spec.toml_path().display()
                        ))
                    })?;
                set.add(glob);
            }
            let set = set
                .build()
                .map_err(|e| FerryError::Usage(format!("{}: {e}", spec.toml_path().display())))?;
            entries.push((spec, set));
        }
        Ok(Routes {
            dir: dir.to_path_buf(),
            entries,
        })
    }

    /// The dataset whose globs match `key`; none or several is an error
    /// that names the key and what the specs route.
    pub fn route(&self, key: &str) -> Result<&DatasetSpec, FerryError> {
        let key = key.trim_start_matches("./");
        let hits: Vec<&DatasetSpec> = self
            .entries
            .iter()
            .filter(|(_, set)| set.is_match(key))
            .map(|(spec, _)| spec)
            .collect();
        match hits.as_slice() {
            [one] => Ok(one),
            [] => {
                let known: Vec<String> = self
                    .entries
                    .iter()
                    .filter(|(s, _)| !s.routing.keys.is_empty())
                    .map(|(s, _)| format!("{} {:?}", s.name, s.routing.keys))
                    .collect();
                Err(FerryError::Route(format!(
                    "no dataset routes {key:?}: the specs in {} route {}; add a glob to [routing] keys of the right dataset",
                    self.dir.display(),
                    if known.is_empty() {
                        "nothing".to_string()
                    } else {
                        known.join(", ")
                    }
                )))
            }
            many => Err(FerryError::Route(format!(
                "{key:?} matches the routing globs of several datasets ({}); make them exclusive",
                many.iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// A dataset by name.
    pub fn get(&self, name: &str) -> Option<&DatasetSpec> {
        self.entries.iter().map(|(s, _)| s).find(|s| s.name == name)
    }

    /// The datasets' names.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|(s, _)| s.name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(dir: &Path, name: &str, keys: &str, workflow: &str, extra: &str) {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("dataset.toml"),
            format!("[source]\nformat = \"csv\"\n[routing]\nkeys = {keys}\nworkflow = \"{workflow}\"\n{extra}"),
        )
        .unwrap();
        std::fs::write(d.join("transform.sql"), "SELECT * FROM source").unwrap();
    }

    #[test]
    fn routes_by_glob() {
        let tmp = tempfile::tempdir().unwrap();
        spec(
            tmp.path(),
            "orders",
            r#"["**/orders/*.csv"]"#,
            "loader",
            "[target]\ntable = \"orders\"\n",
        );
        spec(
            tmp.path(),
            "orders_pq",
            r#"["convert/**/*.csv"]"#,
            "converter",
            "[convert]\nto = \"parquet\"\n",
        );
        let r = Routes::load(tmp.path()).unwrap();
        assert_eq!(r.route("in/orders/2026-11.csv").unwrap().name, "orders");
        assert_eq!(r.route("orders/a.csv").unwrap().name, "orders");
        assert_eq!(r.route("convert/x/y.csv").unwrap().name, "orders_pq");
        // `*` does not cross folders.
        assert!(r.route("in/orders/deep/a.csv").is_err());
        let e = r.route("other/a.csv").unwrap_err().to_string();
        assert!(
            e.contains("no dataset routes \"other/a.csv\"") && e.contains("orders"),
            "{e}"
        );
        spec(
            tmp.path(),
            "dup",
            r#"["convert/**"]"#,
            "converter",
            "[convert]\nto = \"csv\"\n",
        );
        let r = Routes::load(tmp.path()).unwrap();
        let e = r.route("convert/a.csv").unwrap_err().to_string();
        assert!(e.contains("several datasets"), "{e}");
    }
}

#[cfg(test)]
mod shipped {
    use super::*;

    #[test]
    fn the_shipped_specs_route_their_keys_exclusively() {
        // The run-time variable first: the binary may come from a target
        // dir shared with another checkout.
        let engine = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
        let r = Routes::load(&engine.join("../sql")).unwrap();
        for (key, dataset) in [
            ("in/2026/lineitem.tbl.gz", "lineitem"),
            ("events/2026/11/a.ndjson", "events"),
            ("trips/yellow/2026-11.parquet", "trips"),
            ("convert/orders/nov.csv", "orders_parquet"),
        ] {
            assert_eq!(r.route(key).unwrap().name, dataset, "{key}");
        }
        assert!(r.route("random/file.csv").is_err());
    }
}
