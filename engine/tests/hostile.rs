//! Hostile input: a 1.5 MB gzip that inflates to one 1.5 GB line must end in
//! a clear error within bounded memory, under a memory cap as small as the
//! smallest task the stack deploys (512 MiB), never in an OOM kill.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Gzip of `bytes`.
fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// A gzip stream of `head`, then `mib` MiB of `x`, then `tail`: one member
/// of 1 MiB of `x` repeated (a multi-member gzip, as `cat a.gz b.gz` makes),
/// so the bomb is built in milliseconds.
fn bomb(head: &[u8], mib: usize, tail: &[u8]) -> Vec<u8> {
    let mut out = gzip(head);
    let x = gzip(&vec![b'x'; 1 << 20]);
    for _ in 0..mib {
        out.extend_from_slice(&x);
    }
    out.extend_from_slice(&gzip(tail));
    out
}

/// Runs `ferry convert` on `input` with the address space capped at
/// `cap_mib`, and returns (exit code, stderr, peak resident MiB).
// The child is reaped by wait4 (which std's wait cannot do: it gives the
// child's own peak RSS), which clippy does not see.
#[allow(clippy::zombie_processes)]
fn convert_capped(dir: &Path, input: &str, extra: &[&str], cap_mib: u64) -> (i32, String, u64) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.args(["convert", "--input", input, "--to", "parquet"])
        .args(extra)
        .current_dir(dir)
        .env("FERRY_LOG_FORMAT", "text")
        // Two workers of each kind, as on the 2-core build machine: the cap is
        // on address space, and every thread reserves a stack, so a many-core
        // machine would otherwise hit the cap with threads, not with data.
        .env("TOKIO_WORKER_THREADS", "2")
        .env("RAYON_NUM_THREADS", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let cap = cap_mib << 20;
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child
    // between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: cap,
                rlim_max: cap,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("running ferry");
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    // wait4 rather than wait: it gives this child's own peak RSS.
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pid is our child's, not yet reaped; the pointers are valid.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32, "wait4 failed");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -libc::WTERMSIG(status)
    };
    (code, stderr, usage.ru_maxrss as u64 / 1024)
}

#[test]
fn a_decompression_bomb_fails_clearly_within_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let csv = bomb(b"id,note\n1,", 1536, b"\n");
    let json = bomb(b"{\"id\":1}\n{\"note\":\"", 1536, b"\"}\n");
    assert!(csv.len() < 4 << 20, "the bomb is {} bytes", csv.len());
    std::fs::write(dir.path().join("bomb.csv.gz"), &csv).unwrap();
    std::fs::write(dir.path().join("bomb.ndjson.gz"), &json).unwrap();
    for (input, limit_mib, extra) in [
        ("bomb.csv.gz", 64, vec![]),
        ("bomb.ndjson.gz", 64, vec![]),
        ("bomb.csv.gz", 16, vec!["--max-record-size", "16MiB"]),
        ("bomb.ndjson.gz", 16, vec!["--max-record-size", "16MiB"]),
    ] {
        let (code, stderr, peak) = convert_capped(dir.path(), input, &extra, 512);
        println!("BOMB {input} limit={limit_mib}MiB exit={code} peak_rss={peak}MiB");
        assert_eq!(code, 3, "{input}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "{input}: line 2: a single record is longer than {limit_mib}.0 MiB (max_record_size)"
            )),
            "{input}: {stderr}"
        );
        // Twice the limit plus the process's usual footprint (~100 MiB for
        // a debug build that has read nothing).
        let bound = 2 * limit_mib + 128;
        assert!(
            peak <= bound,
            "{input}: peak RSS {peak} MiB, more than {bound} MiB"
        );
    }
}

#[test]
fn a_long_record_within_a_raised_limit_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = b"id,note\n1,".to_vec();
    text.extend(std::iter::repeat_n(b'y', 3 << 20));
    text.extend_from_slice(b"\n2,short\n");
    std::fs::write(dir.path().join("long.csv"), &text).unwrap();
    let (code, stderr, _) =
        convert_capped(dir.path(), "long.csv", &["--max-record-size", "2MiB"], 1024);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("longer than 2.0 MiB"), "{stderr}");
    let (code, stderr, _) =
        convert_capped(dir.path(), "long.csv", &["--max-record-size", "4MiB"], 1024);
    assert_eq!(code, 0, "{stderr}");
}
