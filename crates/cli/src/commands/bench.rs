//! `docchat bench …`: the benchmarks live in their own program, `docchat-bench`,
//! installed beside `docchat`; this runs it with the arguments after `bench` and the
//! global options given before it (as the `DOCCHAT_*` variables it reads).

use crate::args::GlobalArgs;
use std::ffi::OsString;
use std::process::ExitCode;

/// Replaces this process with `docchat-bench ARGS`.
pub fn run(global: &GlobalArgs, args: &[OsString]) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(me) => me.with_file_name(format!("docchat-bench{}", std::env::consts::EXE_SUFFIX)),
        Err(e) => {
            eprintln!("error: cannot locate the docchat executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !exe.is_file() {
        eprintln!(
            "error: the benchmarks are not installed: no {} (build them with \
             `cargo build -p docchat-bench`)",
            exe.display()
        );
        return ExitCode::FAILURE;
    }
    let mut cmd = std::process::Command::new(&exe);
    cmd.args(args).envs(global.as_env());
    exec(cmd, &exe)
}

#[cfg(unix)]
fn exec(mut cmd: std::process::Command, exe: &std::path::Path) -> ExitCode {
    use std::os::unix::process::CommandExt;
    let e = cmd.exec();
    eprintln!("error: cannot run {}: {e}", exe.display());
    ExitCode::FAILURE
}

#[cfg(not(unix))]
fn exec(mut cmd: std::process::Command, exe: &std::path::Path) -> ExitCode {
    match cmd.status() {
        Ok(s) => ExitCode::from(s.code().map_or(1, |c| c as u8)),
        Err(e) => {
            eprintln!("error: cannot run {}: {e}", exe.display());
            ExitCode::FAILURE
        }
    }
}
