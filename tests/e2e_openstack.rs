//! End to end with the stock OpenStack client: `sgswitch run` on namespace instances, and
//! the `openstack` command (python-openstackclient, no Keystone) drives its management
//! API. It creates a group, adds a rule, sets the group on a port — traffic then passes —
//! deletes the rule — the open connection is cut and new ones are refused.
//!
//! The switch requires its API token (#14): the test gives `sgswitch run` a token file
//! of its own and the client sends it as an admin token (`--os-auth-type admin_token
//! --os-token …`); without it the same client is refused.
//!
//! The client comes from `$SGSWITCH_OPENSTACK` (the `.ci/run` virtualenv), or `openstack`
//! on PATH. Under `CI=true` a missing client fails the test.

mod common;

use std::process::Command;

use common::*;

fn openstack_bin() -> Option<String> {
    if let Ok(p) = std::env::var("SGSWITCH_OPENSTACK") {
        if std::path::Path::new(&p).exists() {
            return Some(p);
        }
    }
    Command::new("openstack")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| "openstack".to_string())
}

struct Os {
    bin: String,
    endpoint: String,
    token: String,
}

impl Os {
    /// `openstack` with the admin token and the endpoint, then `args`.
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(["--os-auth-type", "admin_token", "--os-token", &self.token])
            .args(["--os-endpoint", &self.endpoint])
            .args(args);
        c
    }

    /// Run `openstack ARGS -f value -c COL...`; panics with its output on failure.
    fn run(&self, args: &[&str]) -> String {
        let out = self.command(args).output().expect("run openstack");
        assert!(
            out.status.success(),
            "openstack {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

const POLICY: &str = r#"
[switch]
workers = 1

[[security_groups]]
name = "client"
rules = [
  { direction = "egress", ethertype = "IPv4" },
  { direction = "egress", ethertype = "IPv6" },
]
"#;

#[test]
fn openstack_client_changes_policy_live() {
    let test = "openstack_client_changes_policy_live";
    if !env_ready(test, Backend::AfPacket) {
        return;
    }
    let Some(bin) = openstack_bin() else {
        assert!(
            !in_ci(),
            "{test}: CI=true but the openstack client is missing (SGSWITCH_OPENSTACK)"
        );
        common::skip(
            test,
            "no openstack client (pip install python-openstackclient)",
        );
        return;
    };
    let topo = Topo::new("os", Backend::AfPacket, 2);
    // i0 the client (egress only); i1 the server, no group yet: nothing reaches it.
    let config = format!("{POLICY}{}", topo.ports_toml(&[r#"["client"]"#, "[]"]));
    let path = topo.write_config(&config);
    let token_file = topo.dir.path.join("api-token");
    let tf = token_file.to_str().expect("UTF-8 path");
    let sw = Switch::start_args(&path, &topo.dir.path, &["--api-token-file", tf]);
    let api = sw.api_addr().expect("the ready line names the API address");
    let token = std::fs::read_to_string(&token_file).expect("sgswitch run wrote its token");
    let os = Os {
        bin,
        endpoint: format!("http://{api}"),
        token: token.trim().to_string(),
    };
    // Without the token the stock client is refused.
    let anon = Command::new(&os.bin)
        .args(["--os-auth-type", "none", "--os-endpoint", &os.endpoint])
        .args(["security", "group", "list"])
        .output()
        .expect("run openstack");
    assert!(
        !anon.status.success(),
        "{test}: a request without the token must be refused"
    );
    let (cli, srv) = (&topo.insts[0], &topo.insts[1]);
    let _server = echo_server(&srv.ns, &[8080], &[]);

    assert_eq!(
        probe(&cli.ns, "tcp", &srv.v4, 8080, 2),
        "TIMEOUT",
        "{test}: before any rule, tcp/8080 must be blocked\n{}",
        sw.log_text()
    );

    // Create a group with a rule, and set it on the server's port.
    os.run(&[
        "security", "group", "create", "web", "-f", "value", "-c", "id",
    ]);
    let rule = os.run(&[
        "security",
        "group",
        "rule",
        "create",
        "--ingress",
        "--protocol",
        "tcp",
        "--dst-port",
        "8080",
        "web",
        "-f",
        "value",
        "-c",
        "id",
    ]);
    assert_eq!(rule.len(), 36, "a rule id (UUID): {rule}");
    os.run(&["port", "set", "--security-group", "web", "i1"]);
    let groups = os.run(&[
        "port",
        "show",
        "i1",
        "-f",
        "value",
        "-c",
        "security_group_ids",
    ]);
    assert!(!groups.is_empty(), "port i1 has a group now: {groups}");
    // The client's list filter (sent as a list literal) finds exactly that port.
    let members = os.run(&[
        "port",
        "list",
        "--security-group",
        "web",
        "-f",
        "value",
        "-c",
        "name",
    ]);
    assert_eq!(members, "i1", "{test}: port list --security-group web");

    // The change is in force when the call returns: traffic passes.
    let mut conn = LineClient::connect(&cli.ns, &srv.v4, 8080, 3)
        .unwrap_or_else(|e| panic!("{test}: connect after the rule: {e}\n{}", sw.log_text()));
    assert_eq!(
        conn.exchange("hello"),
        "ok",
        "{test}: exchange on the open connection"
    );

    // Delete the rule: the open connection is cut, new ones are refused.
    os.run(&["security", "group", "rule", "delete", &rule]);
    let r = conn.exchange("after delete");
    assert_ne!(
        r,
        "ok",
        "{test}: the connection survived the rule's deletion\n{}",
        sw.log_text()
    );
    assert_eq!(
        probe(&cli.ns, "tcp", &srv.v4, 8080, 2),
        "TIMEOUT",
        "{test}: a new connection after the rule was deleted"
    );
    let drops = sw.drops(&["i0", "i1"]);
    let cut = drops
        .get(&("i1".to_string(), "connection-cut".to_string()))
        .copied()
        .unwrap_or(0);
    assert!(cut >= 1, "{test}: connection-cut counted on i1: {drops:?}");
}
