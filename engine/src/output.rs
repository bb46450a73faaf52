//! Standard output for people and for pipes. A reader that closes the pipe
//! early (`ferry jobs show ID | head`) ends ferry quietly with exit 0, as
//! `cat` or `grep` do, instead of a panic and exit 101: `println!` panics
//! when stdout is gone.

use std::io::Write;

/// Writes `args` (and a line break when `newline`) to stdout; a closed pipe
/// ends the process with 0, any other write failure with 1.
pub fn write(args: std::fmt::Arguments<'_>, newline: bool) {
    let mut out = std::io::stdout().lock();
    let written = out.write_fmt(args).and_then(|()| {
        if newline {
            out.write_all(b"\n")
        } else {
            Ok(())
        }
    });
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("ferry: error: cannot write to standard output: {e}");
            std::process::exit(1);
        }
    }
}

/// `println!` that a closed pipe ends quietly.
macro_rules! outln {
    () => {
        $crate::output::write(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::output::write(format_args!($($arg)*), true)
    };
}
