//! A LAN of network namespaces for tests where addresses and partitions matter: one namespace per
//! host, each with its own address on 10.77.N.0/24, all on a bridge in a "switch" namespace; the
//! test process joins the bridge too (10.77.N.254), so it reaches every host's HTTP API even while
//! a host is cut off from the others. Needs root, `ip` (iproute2) and `nft` (nftables), which
//! scripts/test.sh installs. Everything is removed on drop, and what a crashed run left is
//! removed before a new one starts.

use std::process::Command;

/// Names start with this and the LAN's number; interface names must stay under 16 bytes.
const PREFIX: &str = "censn";

/// LANs of one test process are numbered, so that tests running in parallel each have their own
/// namespaces and subnet (10.77.N.0/24); a number is reused by the next test process, which
/// first removes what a crashed run may have left under it.
static NEXT_LAN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0]).args(&args[1..]).output().map_err(|e| format!("{}: {e}", args[0]))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn must(args: &[&str]) {
    if let Err(e) = run(args) {
        panic!("{e}");
    }
}

pub struct Lan {
    hosts: usize,
    /// `censn<N>`: this LAN's names start with it.
    prefix: String,
    subnet: String,
}

impl Lan {
    /// `hosts` namespaces on one bridge. Panics, saying why, when this machine cannot do it.
    pub fn create(hosts: usize) -> Lan {
        assert!(hosts < 250, "one /24");
        // /proc/self belongs to the process's effective user.
        let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").expect("/proc/self"));
        assert_eq!(uid, 0, "network namespaces need root");
        for tool in ["ip", "nft"] {
            assert!(
                Command::new(tool).arg("-V").output().is_ok(),
                "{tool} not found: install iproute2 and nftables (scripts/test.sh does)"
            );
        }
        let n = NEXT_LAN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        assert!(n < 10, "at most 10 LANs per test process");
        let lan = Lan { hosts, prefix: format!("{PREFIX}{n}"), subnet: format!("10.77.{n}") };
        lan.remove_leftovers();
        let sw = format!("{}sw", lan.prefix);
        must(&["ip", "netns", "add", &sw]);
        must(&["ip", "-n", &sw, "link", "add", "br0", "type", "bridge"]);
        must(&["ip", "-n", &sw, "link", "set", "br0", "up"]);
        for i in 0..hosts {
            let (ns, port) = (lan.ns(i), format!("p{i}"));
            must(&["ip", "netns", "add", &ns]);
            must(&[
                "ip", "link", "add", "eth0", "netns", &ns, "type", "veth", "peer", "name", &port, "netns",
                &sw,
            ]);
            must(&["ip", "-n", &sw, "link", "set", &port, "master", "br0", "up"]);
            must(&["ip", "-n", &ns, "addr", "add", &format!("{}/24", lan.ip(i)), "dev", "eth0"]);
            must(&["ip", "-n", &ns, "link", "set", "eth0", "up"]);
            must(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        }
        let (host_if, host_port) = (format!("{}h", lan.prefix), format!("{}hp", lan.prefix));
        must(&["ip", "link", "add", &host_if, "type", "veth", "peer", "name", &host_port, "netns", &sw]);
        must(&["ip", "-n", &sw, "link", "set", &host_port, "master", "br0", "up"]);
        must(&["ip", "addr", "add", &format!("{}/24", lan.test_host()), "dev", &host_if]);
        must(&["ip", "link", "set", &host_if, "up"]);
        lan
    }

    pub fn ns(&self, i: usize) -> String {
        format!("{}-{i}", self.prefix)
    }

    pub fn ip(&self, i: usize) -> String {
        format!("{}.{}", self.subnet, i + 1)
    }

    /// The test process's own address on the LAN.
    fn test_host(&self) -> String {
        format!("{}.254", self.subnet)
    }

    /// Cuts host `i` off from every other host (silently: packets are dropped both ways); the
    /// test process still reaches it.
    pub fn isolate(&self, i: usize) {
        let (subnet, host) = (&self.subnet, self.test_host());
        let rules = format!(
            "table inet partition {{
  chain in {{ type filter hook input priority 0; ip saddr {subnet}.0/24 ip saddr != {host} drop; }}
  chain out {{ type filter hook output priority 0; ip daddr {subnet}.0/24 ip daddr != {host} drop; }}
}}"
        );
        let ns = self.ns(i);
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns, "nft", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("nft");
        use std::io::Write;
        child.stdin.take().expect("stdin").write_all(rules.as_bytes()).expect("write rules");
        assert!(child.wait().expect("nft").success(), "nft rules in {ns}");
    }

    pub fn heal(&self, i: usize) {
        must(&["ip", "netns", "exec", &self.ns(i), "nft", "delete", "table", "inet", "partition"]);
    }

    fn remove_leftovers(&self) {
        let _ = run(&["ip", "link", "del", &format!("{}h", self.prefix)]);
        let listed =
            Command::new("ip").args(["netns", "list"]).output().map(|o| o.stdout).unwrap_or_default();
        for line in String::from_utf8_lossy(&listed).lines() {
            let name = line.split_whitespace().next().unwrap_or_default();
            if name == format!("{}sw", self.prefix) || name.starts_with(&format!("{}-", self.prefix)) {
                let _ = run(&["ip", "netns", "del", name]);
            }
        }
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        let _ = run(&["ip", "link", "del", &format!("{}h", self.prefix)]);
        for i in 0..self.hosts {
            let _ = run(&["ip", "netns", "del", &self.ns(i)]);
        }
        let _ = run(&["ip", "netns", "del", &format!("{}sw", self.prefix)]);
    }
}
