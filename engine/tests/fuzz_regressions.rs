//! Replays every input kept under `fuzz/regressions/<target>/` — the seeds
//! and each input a fuzz run ever crashed on — through the same property
//! the fuzz target checks (`ferry_engine::fuzz`), so a fixed crash stays
//! fixed without a fuzzer.

use crate::common;

#[test]
fn every_kept_fuzz_input_holds_its_property() {
    let root = common::repo().join("fuzz/regressions");
    for (target, check) in ferry_engine::fuzz::TARGETS {
        let dir = root.join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{}: no inputs", dir.display());
        for file in files {
            let data = std::fs::read(&file).unwrap();
            if std::panic::catch_unwind(|| check(&data)).is_err() {
                panic!("{target}: {} breaks the property", file.display());
            }
        }
    }
}
