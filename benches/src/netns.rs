//! S6's link: two network namespaces joined by a veth pair whose both ends are capped with
//! `tc … htb` (netem is not available on these kernels).
//!
//! The namespaces and the /30 between them exist only for the run and are removed when the
//! [`ShapedLink`] is dropped. Creating them needs root and `ip netns`; [`check`] says why not
//! when either is missing, and the scenario is skipped with that message.

use std::process::Command;

use crate::runner::Placement;

/// Address of the sending namespace's end.
const ADDR_A: &str = "10.233.0.1";
/// Address of the receiving namespace's end.
const ADDR_B: &str = "10.233.0.2";

fn run(args: &[&str]) -> Result<(), String> {
    let (prog, rest) = args.split_first().ok_or("empty command")?;
    let out = Command::new(prog)
        .args(rest)
        .output()
        .map_err(|e| format!("cannot run `{}`: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Whether shaped namespaces can be made here; the error says what is missing.
pub fn check() -> Result<(), String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Err("S6 skipped: needs root to create network namespaces".to_owned());
    }
    run(&["ip", "netns", "list"])
        .map_err(|e| format!("S6 skipped: `ip netns` unavailable ({e})"))?;
    run(&["tc", "-V"]).map_err(|e| format!("S6 skipped: `tc` unavailable ({e})"))?;
    Ok(())
}

/// Two namespaces, a veth pair between them, both ends shaped to a rate.
#[derive(Debug)]
pub struct ShapedLink {
    ns_a: String,
    ns_b: String,
    /// The cap, Mbit/s.
    pub rate_mbit: u32,
}

impl ShapedLink {
    /// Creates the link; on failure everything made so far is removed again. Namespaces left
    /// behind by an earlier run that was killed are removed first.
    pub fn create(rate_mbit: u32) -> Result<Self, String> {
        remove_stale();
        let id = std::process::id();
        let link = Self {
            ns_a: format!("rwb{id}a"),
            ns_b: format!("rwb{id}b"),
            rate_mbit,
        };
        link.setup()?;
        Ok(link)
    }

    fn setup(&self) -> Result<(), String> {
        let (a, b) = (self.ns_a.as_str(), self.ns_b.as_str());
        let (va, vb) = (format!("v{a}"), format!("v{b}"));
        let rate = format!("{}mbit", self.rate_mbit);
        run(&["ip", "netns", "add", a])?;
        run(&["ip", "netns", "add", b])?;
        run(&[
            "ip", "link", "add", &va, "type", "veth", "peer", "name", &vb,
        ])?;
        for (ns, dev, addr) in [(a, &va, ADDR_A), (b, &vb, ADDR_B)] {
            run(&["ip", "link", "set", dev, "netns", ns])?;
            run(&[
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                &format!("{addr}/30"),
                "dev",
                dev,
            ])?;
            run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
            run(&["ip", "-n", ns, "link", "set", dev, "up"])?;
            let tc = ["ip", "netns", "exec", ns, "tc"];
            run(&[
                &tc[..],
                &[
                    "qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "10",
                ],
            ]
            .concat())?;
            run(&[
                &tc[..],
                &[
                    "class", "add", "dev", dev, "parent", "1:", "classid", "1:10", "htb", "rate",
                    &rate, "ceil", &rate,
                ],
            ]
            .concat())?;
        }
        Ok(())
    }

    /// Sender in namespace A, receiver in namespace B.
    pub fn placement(&self) -> Placement {
        let exec = |ns: &str| ["ip", "netns", "exec", ns].map(str::to_owned).to_vec();
        Placement {
            sender: exec(&self.ns_a),
            receiver: exec(&self.ns_b),
        }
    }

    /// Where the receiver listens.
    pub fn listen_addr(&self) -> String {
        format!("{ADDR_B}:0")
    }
}

/// Deletes `rwb<pid>a|b` namespaces whose process no longer exists.
fn remove_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix("rwb")
            .and_then(|r| r.strip_suffix('a').or_else(|| r.strip_suffix('b')))
        else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !std::path::Path::new("/proc").join(pid).exists() {
            let _ = run(&["ip", "netns", "del", name]);
        }
    }
}

impl Drop for ShapedLink {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end inside it, and with it the pair.
        let _ = run(&["ip", "netns", "del", &self.ns_a]);
        let _ = run(&["ip", "netns", "del", &self.ns_b]);
    }
}
