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

    /// Routes that hold one spec and route no key to it: a one-off job's
    /// (`ferry load`, `ferry convert`), whose spec comes from the command
    /// line rather than from a routing glob.
    pub fn one(spec: DatasetSpec) -> Routes {
        Routes {
            dir: spec.dir.clone().unwrap_or_default(),
            entries: vec![(spec, GlobSet::empty())],
        }
    }

    /// The one spec of routes that hold exactly one ([`Routes::one`]).
    pub fn sole(&self) -> Option<&DatasetSpec> {
        match self.entries.as_slice() {
            [(spec, _)] => Some(spec),
            _ => None,
        }
    }

    /// A dataset by name.
    pub fn get(&self, name: &str) -> Option<&DatasetSpec> {
        self.entries.iter().map(|(s, _)| s).find(|s| s.name == name)
    }

    /// Whether any dataset loads into PostgreSQL (a Loader), so that a
    /// process routing to these specs may run loads.
    pub fn any_loader(&self) -> bool {
        self.entries
            .iter()
            .any(|(s, _)| s.routing.workflow == crate::spec::Workflow::Loader)
    }

    /// The datasets' names.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|(s, _)| s.name.as_str()).collect()
    }

    /// The specs `--specs` names: a folder, loaded in place, or an S3 prefix,
    /// fetched into a temporary folder under `work_dir` (returned, so it lives
    /// as long as the routes) when `route` says this command routes inputs.
    /// The steps after create-job do not: with specs in S3 they get no routes
    /// and read the copy pinned in their job's folder.
    pub async fn open(
        specs: &Path,
        route: bool,
        work_dir: &Path,
    ) -> Result<(Routes, Option<tempfile::TempDir>), FerryError> {
        let uri = specs.to_string_lossy();
        if !uri.starts_with("s3://") {
            return Ok((Routes::load(specs)?, None));
        }
        if !route {
            return Ok((Routes::none(&uri), None));
        }
        std::fs::create_dir_all(work_dir)
            .map_err(|e| FerryError::io(format!("creating {}", work_dir.display()), e))?;
        let dir = tempfile::Builder::new()
            .prefix(".specs-")
            .tempdir_in(work_dir)
            .map_err(|e| {
                FerryError::io(format!("creating a folder in {}", work_dir.display()), e)
            })?;
        let n = fetch_specs(&uri, dir.path()).await?;
        tracing::info!(specs = %uri, datasets = n, "fetched the dataset specs");
        Ok((Routes::load(dir.path())?, Some(dir)))
    }

    /// No specs at all: for the steps after create-job when the specs are in
    /// S3, which read the copy pinned in the job's folder instead.
    fn none(described: &str) -> Routes {
        Routes {
            dir: PathBuf::from(described),
            entries: Vec::new(),
        }
    }
}

/// Fetches the specs kept under an S3 prefix (`s3://bucket/prefix`, holding
/// `<dataset>/dataset.toml`, `<dataset>/transform.sql` and the files beside
/// them such as a `source.sample`, as `aws s3 sync sql/ s3://bucket/prefix/`
/// leaves them) into `into`, one folder per dataset, and returns how many
/// datasets came. Adding a dataset is then an upload, not an image build.
/// Objects directly under the prefix or nested deeper than a dataset's
/// folder are ignored; a dataset name that is not a plain folder name is
/// refused, so no key can write outside `into`.
pub async fn fetch_specs(uri: &str, into: &Path) -> Result<usize, FerryError> {
    let rest = uri.strip_prefix("s3://").unwrap_or(uri);
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let prefix = if prefix.is_empty() || prefix.ends_with('/') {
        prefix.to_string()
    } else {
        format!("{prefix}/")
    };
    if bucket.is_empty() {
        return Err(FerryError::Usage(format!(
            "specs {uri}: expected s3://bucket/prefix"
        )));
    }
    let listed = ferry_connectors::store::list(bucket, &prefix).await?;
    let mut datasets = std::collections::BTreeSet::new();
    for object in listed {
        let Some(relative) = object.key.strip_prefix(&prefix) else {
            continue;
        };
        let Some((dataset, file)) = relative.split_once('/') else {
            continue;
        };
        if file.is_empty() || file.contains('/') {
            continue;
        }
        let plain = !dataset.is_empty()
            && dataset
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
            && dataset != "."
            && dataset != "..";
        if !plain {
            return Err(FerryError::Usage(format!(
                "specs s3://{bucket}/{}: {dataset:?} is not a dataset folder name (letters, digits, _ - .)",
                object.key
            )));
        }
        let location = ferry_connectors::store::Location::S3 {
            bucket: bucket.to_string(),
            key: object.key.clone(),
            uri: format!("s3://{bucket}/{}", object.key),
        };
        let expect = ferry_connectors::store::Expect {
            etag: object.etag.clone(),
            ..Default::default()
        };
        ferry_connectors::store::stage(&location, &into.join(dataset), &expect).await?;
        datasets.insert(dataset.to_string());
    }
    Ok(datasets.len())
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
        assert!(r.any_loader());
    }

    /// Specs of Converters only: a process routing to them never loads, so
    /// it keeps every core (no core left for a local COPY backend).
    #[test]
    fn converters_alone_never_load() {
        let tmp = tempfile::tempdir().unwrap();
        spec(
            tmp.path(),
            "pq",
            r#"["convert/**/*.csv"]"#,
            "converter",
            "[convert]\nto = \"parquet\"\n",
        );
        assert!(!Routes::load(tmp.path()).unwrap().any_loader());
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
