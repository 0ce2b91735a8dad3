//! Instances for the switch: a namespace each, attached by a veth pair (created here, the
//! root-side end for the switch to open) or by a tap (created by the switch and moved into
//! the namespace), with a fixed MAC and an IPv4 and an IPv6 address; the `[[ports]]`
//! config lines for them; and the directory a topology keeps its files in.
//!
//! Owns the interface set-up the switch relies on: the instance's end has checksum offload
//! off (`ethtool -K eth0 tx off`: the switch forwards frames untouched, and partial
//! checksums would be dropped by the receiver), its link-local address derives from the
//! port's MAC, and the root-side veth end has IPv6 off so the host stays silent on it.
//! Does not start the switch (that is [`switch`](super::switch)).

use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

use super::cmd::sh;
use super::netns::{dir_name, link_name, netns_name, Link, Netns};
use super::{Error, Result};

/// How the instances are attached to the switch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The switch creates the taps and moves them into the namespaces (vnet_hdr on).
    Tap,
    /// veth pairs; the switch opens AF_XDP sockets on the root-side ends.
    AfXdp,
    /// veth pairs; the switch opens AF_PACKET sockets on the root-side ends.
    AfPacket,
}

impl Backend {
    pub fn uses_veth(self) -> bool {
        self != Backend::Tap
    }

    /// The `backend = {...}` value of a port on `link` (the tap, or the root-side veth
    /// end) for an instance in namespace `ns`.
    pub fn port_toml(self, link: &str, ns: &str) -> String {
        match self {
            Backend::Tap => format!(
                "{{ type = \"tap\", ifname = \"{link}\", netns = \"{ns}\", vnet_hdr = true }}"
            ),
            Backend::AfXdp => format!("{{ type = \"afxdp\", ifname = \"{link}\" }}"),
            Backend::AfPacket => format!("{{ type = \"afpacket\", ifname = \"{link}\" }}"),
        }
    }
}

/// What an instance is called and which addresses it has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceSpec {
    /// The switch port's name.
    pub port: String,
    /// The namespace.
    pub ns: String,
    /// The tap's name, or the veth end in the root namespace.
    pub link: String,
    pub mac: String,
    pub v4: String,
    pub v6: String,
}

impl InstanceSpec {
    /// Instance `i` (0..=9) of a test with `tag`: port `iI`, names unique to this
    /// process, MAC `fa:16:3e:00:00:1I`, addresses `10.0.0.1I` and `fd00::1I`.
    pub fn numbered(tag: &str, i: usize) -> InstanceSpec {
        InstanceSpec {
            port: format!("i{i}"),
            ns: netns_name(tag, i),
            link: link_name(tag, i),
            mac: format!("fa:16:3e:00:00:1{i}"),
            v4: format!("10.0.0.1{i}"),
            v6: format!("fd00::1{i}"),
        }
    }
}

/// One instance: a namespace with one interface attached to a switch port.
pub struct Instance {
    /// The switch port's name.
    pub port: String,
    pub ns: Netns,
    /// The tap's name, or the veth end in the root namespace.
    pub link: String,
    /// The interface inside the namespace.
    pub ifname: String,
    pub mac: String,
    pub v4: String,
    pub v6: String,
}

impl Instance {
    /// Give the interface its MAC and addresses (`/24`, `/64` without DAD) and bring it up.
    pub fn configure(&self) -> Result<()> {
        let (ns, ifn) = (self.ns.name.as_str(), self.ifname.as_str());
        // Down first: the IPv6 link-local address is derived from the MAC when the link
        // comes up, and must be derived from the port's MAC (anti-spoofing allows that one).
        sh(&["ip", "-n", ns, "link", "set", ifn, "down"])?;
        sh(&["ip", "-n", ns, "link", "set", ifn, "address", &self.mac])?;
        sh(&["ip", "-n", ns, "link", "set", ifn, "up"])?;
        let v4 = format!("{}/24", self.v4);
        sh(&["ip", "-n", ns, "addr", "add", &v4, "dev", ifn])?;
        let v6 = format!("{}/64", self.v6);
        sh(&[
            "ip", "-n", ns, "-6", "addr", "add", &v6, "dev", ifn, "nodad",
        ])?;
        Ok(())
    }
}

/// A veth pair: `link` in the root namespace (up, IPv6 off: the host stays silent on the
/// switch's side), `eth0` in `ns` with checksum offload off.
pub fn add_veth(link: &str, ns: &Netns) -> Result<Link> {
    let guard = Link {
        name: link.to_string(),
    };
    sh(&[
        "ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", &ns.name,
    ])?;
    let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{link}/disable_ipv6"), "1");
    sh(&["ip", "link", "set", link, "up"])?;
    // The switch forwards frames untouched: no partial checksums.
    sh(&[
        "ip", "netns", "exec", &ns.name, "ethtool", "-K", "eth0", "tx", "off",
    ])?;
    Ok(guard)
}

/// A directory removed (with its contents) on drop.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    /// Create `path` (mode 0700, parents as needed); a leftover there is removed first,
    /// a symlink without following it.
    pub fn new(path: PathBuf) -> Result<TempDir> {
        if std::fs::symlink_metadata(&path).is_ok() {
            let _ = std::fs::remove_file(&path);
            let _ = std::fs::remove_dir_all(&path);
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Instances in namespaces, and a directory for the config and logs. Dropping it removes
/// the namespaces (and what runs in them), then the veth ends, then the directory.
pub struct Topo {
    pub backend: Backend,
    pub insts: Vec<Instance>,
    links: Vec<Link>,
    pub dir: TempDir,
}

impl Topo {
    /// `n` (at most 9) instances named by [`InstanceSpec::numbered`], in a temporary
    /// directory unique to this process and `tag`.
    pub fn new(tag: &str, backend: Backend, n: usize) -> Result<Topo> {
        assert!(n <= 9);
        let dir = TempDir::new(std::env::temp_dir().join(dir_name(tag)))?;
        let specs = (0..n).map(|i| InstanceSpec::numbered(tag, i)).collect();
        Topo::build(backend, specs, dir)
    }

    /// Create a namespace per spec, in order; for veth backends also its veth pair, and
    /// then configure every instance. Taps exist only once the switch runs: configure
    /// them with [`Topo::configure`] then. On an error, what was created is removed.
    pub fn build(backend: Backend, specs: Vec<InstanceSpec>, dir: TempDir) -> Result<Topo> {
        let mut t = Topo {
            backend,
            insts: Vec::new(),
            links: Vec::new(),
            dir,
        };
        for s in specs {
            let ns = Netns::new(&s.ns)?;
            let ifname = if backend.uses_veth() {
                t.links.push(add_veth(&s.link, &ns)?);
                "eth0".to_string()
            } else {
                s.link.clone()
            };
            t.insts.push(Instance {
                port: s.port,
                ns,
                link: s.link,
                ifname,
                mac: s.mac,
                v4: s.v4,
                v6: s.v6,
            });
        }
        if backend.uses_veth() {
            t.configure()?;
        }
        Ok(t)
    }

    /// The `backend = {...}` value of instance `i`'s port.
    pub fn backend_toml(&self, i: usize) -> String {
        let inst = &self.insts[i];
        self.backend.port_toml(&inst.link, &inst.ns.name)
    }

    /// `[[ports]]` tables for every instance, with `groups[i]` as its groups (a TOML list).
    pub fn ports_toml(&self, groups: &[&str]) -> String {
        let mut s = String::new();
        for (i, inst) in self.insts.iter().enumerate() {
            s.push_str(&format!(
                "\n[[ports]]\nname = \"{}\"\nmac = \"{}\"\nfixed_ips = [\"{}\", \"{}\"]\n\
                 security_groups = {}\nbackend = {}\n",
                inst.port,
                inst.mac,
                inst.v4,
                inst.v6,
                groups[i],
                self.backend_toml(i)
            ));
        }
        s
    }

    /// Give every instance's interface its MAC and addresses and bring it up. For taps,
    /// call it once the switch is ready (it creates them); veth topologies do it in `build`.
    pub fn configure(&self) -> Result<()> {
        for i in 0..self.insts.len() {
            self.configure_one(i)?;
        }
        Ok(())
    }

    /// [`Topo::configure`] for instance `i` only (a tap switch may run a subset of them).
    pub fn configure_one(&self, i: usize) -> Result<()> {
        self.insts[i].configure()
    }

    /// Write `text` as the config file `switch.toml` in the directory; its path.
    pub fn write_config(&self, text: &str) -> Result<PathBuf> {
        self.write_file("switch.toml", text)
    }

    /// Write `text` as file `name` in the directory; its path.
    pub fn write_file(&self, name: &str, text: &str) -> Result<PathBuf> {
        let p = self.dir.path.join(name);
        std::fs::write(&p, text).map_err(|e| Error::io(&p, e))?;
        Ok(p)
    }
}
