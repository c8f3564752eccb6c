//! Consul spells long flags with one dash (`-bootstrap-expect=3`); clap wants two. This turns
//! `-name[=value]` into `--name[=value]` before parsing, leaving `-h`, `--x` and values alone.

pub fn normalize<I: IntoIterator<Item = String>>(args: I) -> Vec<String> {
    let mut out = Vec::new();
    let mut after_separator = false;
    for arg in args {
        if after_separator {
            out.push(arg);
            continue;
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
    fn short_flags_double_dash_values_and_negative_numbers_stay() {
        assert_eq!(n(&["-h", "--dev", "-1", "value"]), vec!["-h", "--dev", "-1", "value"]);
        assert_eq!(n(&["lock", "--", "-weird"]), vec!["lock", "--", "-weird"]);
    }
}
