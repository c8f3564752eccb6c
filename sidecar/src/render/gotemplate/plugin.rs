//! `plugin "NAME" [ARGS...]`: consul-template's escape hatch, off unless the sidecar runs with
//! `-enable-plugins`. It runs NAME (no shell) with the non-blank arguments, trimmed, and gives its
//! standard output, trimmed; a failure, or more than 30 s, is an error carrying its output.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gotmpl::{TemplateError, Value};

use super::value::{Args, fail, string};

const LIMIT: Duration = Duration::from_secs(30);

pub fn plugin(values: &[Value], enabled: bool) -> Result<Value, TemplateError> {
    let args = Args::new("plugin", values, 1, usize::MAX)?;
    if !enabled {
        return Err(fail("plugin: plugins are off; start census-sidecar render with -enable-plugins"));
    }
    let name = args.str(0)?;
    if name.is_empty() {
        return Ok(string(""));
    }
    let mut words = Vec::new();
    for i in 1..args.count() {
        let word = args.str(i)?.trim();
        if !word.is_empty() {
            words.push(word.to_string());
        }
    }
    let mut child = Command::new(name)
        .args(&words)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("plugin {name:?}: {e}")))?;
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < LIMIT => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(fail(format!("plugin {name:?}: did not finish in {}s", LIMIT.as_secs())));
            }
            Err(e) => return Err(fail(format!("plugin {name:?}: {e}"))),
        }
    };
    let (mut stdout, mut stderr) = (String::new(), String::new());
    if let Some(mut out) = child.stdout.take() {
        let _ = out.read_to_string(&mut stdout);
    }
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    if !status.success() {
        return Err(fail(format!("plugin {name:?}: {status}\nstdout:\n{stdout}\nstderr:\n{stderr}")));
    }
    Ok(string(stdout.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_only_when_enabled() {
        let call = |enabled| plugin(&[string("echo"), string("  a "), string(""), string("b")], enabled);
        assert_eq!(call(true).expect("echo").to_string(), "a b");
        assert!(call(false).expect_err("off").to_string().contains("-enable-plugins"));
        let failed = plugin(&[string("sh"), string("-c"), string("echo oops >&2; exit 3")], true);
        assert!(failed.expect_err("exit 3").to_string().contains("oops"));
    }
}
