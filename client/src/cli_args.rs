//! Consul spells long flags with one dash (`-bootstrap-expect=3`); clap wants two. This turns
//! `-name[=value]` into `--name[=value]` before parsing, leaving `-h`, `--x` and values alone.

/// Subcommands that end with a child command line, which must reach the child untouched: how
/// many positional arguments come before it, and which of their flags take a separate value.
const CHILD_COMMANDS: &[(&str, usize, &[&str])] = &[
    ("lock", 1, &["-n", "-name", "-timeout", "-shell", "-http-addr", "-token", "-format"]),
    (
        "watch",
        0,
        &[
            "-type",
            "-key",
            "-prefix",
            "-service",
            "-tag",
            "-state",
            "-name",
            "-http-addr",
            "-token",
            "-format",
        ],
    ),
];

pub fn normalize<I: IntoIterator<Item = String>>(args: I) -> Vec<String> {
    let mut out = Vec::new();
    let mut after_separator = false;
    // For a subcommand in CHILD_COMMANDS: (positionals still expected, value flags).
    let mut child: Option<(usize, &[&str])> = None;
    let mut expect_value = false;
    for (i, arg) in args.into_iter().enumerate() {
        if after_separator {
            out.push(arg);
            continue;
        }
        if i == 1 {
            child = CHILD_COMMANDS.iter().find(|(name, _, _)| *name == arg).map(|(_, n, flags)| (*n, *flags));
        } else if let Some((positionals, value_flags)) = child.as_mut() {
            if expect_value {
                expect_value = false;
            } else if arg.starts_with('-') && arg != "--" {
                let name = arg.trim_start_matches('-');
                expect_value =
                    !name.contains('=') && value_flags.iter().any(|f| f.trim_start_matches('-') == name);
            } else if *positionals == 0 {
                // The child's command line starts here.
                after_separator = true;
                if arg != "--" {
                    out.push("--".to_string());
                }
                out.push(arg);
                continue;
            } else {
                *positionals -= 1;
            }
        }
        if arg == "--" {
            after_separator = true;
            out.push(arg);
            continue;
        }
        let bytes = arg.as_bytes();
        let single_dash_long = bytes.len() > 2 && bytes[0] == b'-' && bytes[1].is_ascii_alphabetic();
        if single_dash_long {
            out.push(format!("-{arg}"));
        } else {
            out.push(arg);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::normalize;

    fn n(args: &[&str]) -> Vec<String> {
        normalize(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn single_dash_long_flags_become_double_dash() {
        assert_eq!(
            n(&["agent", "-bootstrap-expect=3", "-dev"]),
            vec!["agent", "--bootstrap-expect=3", "--dev"]
        );
        assert_eq!(n(&["-data-dir", "/tmp/x"]), vec!["--data-dir", "/tmp/x"]);
    }

    #[test]
    fn a_child_command_line_is_left_alone() {
        assert_eq!(
            n(&["census", "lock", "-n", "2", "-timeout=5s", "svc/leader", "ls", "-la"]),
            vec!["census", "lock", "-n", "2", "--timeout=5s", "svc/leader", "--", "ls", "-la"]
        );
        assert_eq!(
            n(&["census", "lock", "-name", "x", "p", "--", "sh", "-c", "true"]),
            vec!["census", "lock", "--name", "x", "p", "--", "sh", "-c", "true"]
        );
        assert_eq!(
            n(&["census", "watch", "-type", "key", "-key", "k", "./handler", "-verbose"]),
            vec!["census", "watch", "--type", "key", "--key", "k", "--", "./handler", "-verbose"]
        );
    }

    #[test]
    fn short_flags_double_dash_values_and_negative_numbers_stay() {
        assert_eq!(n(&["-h", "--dev", "-1", "value"]), vec!["-h", "--dev", "-1", "value"]);
        assert_eq!(n(&["lock", "--", "-weird"]), vec!["lock", "--", "-weird"]);
    }
}
