//! Request checking: malformed bodies, the token, refusing a non-loopback address without
//! a token, and the exact answer to every request body of `tests/fixtures/api-bodies.txt`.

use super::*;

#[test]
fn malformed_bodies() {
    let h = Harness::start();
    let raw = |method: &str, path: &str, body: &[u8]| {
        h.client.raw_bytes(method, path, Some(body), &[]).unwrap()
    };
    let r = raw("POST", "/v2.0/security-groups", b"{not json");
    assert_eq!(r.status, 400);
    assert!(r.body["NeutronError"]["message"]
        .as_str()
        .unwrap()
        .contains("Malformed JSON"));
    assert_eq!(raw("POST", "/v2.0/security-groups", b"[]").status, 400);
    assert_eq!(raw("POST", "/v2.0/security-groups", b"").status, 400);
    assert_eq!(
        raw("POST", "/v2.0/security-groups", b"{\"security_group\": 3}").status,
        400
    );
    // Unknown fields at both levels, read-only fields.
    let r = raw(
        "POST",
        "/v2.0/security-groups",
        br#"{"security_group": {"name": "x", "colour": "red"}}"#,
    );
    assert_eq!(r.status, 400);
    assert!(r.body["NeutronError"]["message"]
        .as_str()
        .unwrap()
        .contains("colour"));
    assert_eq!(
        raw(
            "POST",
            "/v2.0/security-groups",
            br#"{"security_group": {"name": "x"}, "extra": 1}"#
        )
        .status,
        400
    );
    assert_eq!(
        raw(
            "POST",
            "/v2.0/security-groups",
            br#"{"security_group": {"name": "x", "id": "y"}}"#
        )
        .status,
        400
    );
    // Wrong types.
    assert_eq!(
        raw(
            "POST",
            "/v2.0/security-groups",
            br#"{"security_group": {"name": 1}}"#
        )
        .status,
        400
    );
    assert_eq!(
        raw(
            "POST",
            "/v2.0/security-groups",
            br#"{"security_group": {"name": "x", "stateful": "maybe"}}"#
        )
        .status,
        400
    );
    // tenant_id / project_id are accepted.
    let r = raw(
        "POST",
        "/v2.0/security-groups",
        br#"{"security_group": {"name": "x", "tenant_id": "t", "project_id": "p"}}"#,
    );
    assert_eq!(r.status, 201);
    // Too large: 413 before reading.
    let big = vec![b' '; sgswitch::control::api::MAX_BODY + 1];
    let r = raw("POST", "/v2.0/security-groups", &big);
    assert_eq!(r.status, 413);
    assert_eq!(h.published_count(), 1);
}

#[test]
fn token_is_required_and_checked() {
    let h = Harness::start_with(None, Some("s3cret"));
    assert_eq!(h.req("GET", "/v2.0/security-groups", None).status, 200);
    let anon = Client::new(&h.endpoint(), None).unwrap();
    let r = anon.raw("GET", "/v2.0/security-groups", None).unwrap();
    assert_eq!(r.status, 401);
    let wrong = Client::new(&h.endpoint(), Some("s3cre".into())).unwrap();
    assert_eq!(wrong.raw("GET", "/", None).unwrap().status, 401);
    let r = wrong
        .raw(
            "POST",
            "/v2.0/security-groups",
            Some(&json!({"security_group": {"name": "x"}})),
        )
        .unwrap();
    assert_eq!(r.status, 401);
    assert!(h.store.model().group("x").is_none());
}

#[test]
fn non_loopback_without_token_is_refused() {
    let store = Arc::new(Store::open(None, &api_common::seed()).unwrap());
    let addr: SocketAddr = "0.0.0.0:0".parse().unwrap();
    let err = ApiServer::start(addr, None, Arc::clone(&store))
        .err()
        .expect("refused");
    assert!(matches!(err, ApiError::TokenRequired(_)));
    assert!(err.to_string().contains("token"));
    let err = ApiServer::start(addr, Some(String::new()), Arc::clone(&store)).err();
    assert!(matches!(err, Some(ApiError::TokenRequired(_))));
    // With a token it starts.
    let h = ApiServer::start(addr, Some("t".into()), store).expect("starts with a token");
    h.shutdown();
}

/// Replace every hyphenated UUID in `text` by its name in `names`, or by `{uuid}`.
fn unid(text: &str, names: &[(String, &str)]) -> String {
    let b = text.as_bytes();
    let is_uuid = |s: &[u8]| {
        s.len() == 36
            && s.iter().enumerate().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => *c == b'-',
                _ => c.is_ascii_hexdigit(),
            })
    };
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if i + 36 <= b.len() && is_uuid(&b[i..i + 36]) {
            let id = &text[i..i + 36];
            match names.iter().find(|(v, _)| v == id) {
                Some((_, name)) => out.push_str(&format!("{{{name}}}")),
                None => out.push_str("{uuid}"),
            }
            i += 36;
        } else {
            let c = text[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// Every way a request body can be wrong (and some right), with the exact status, type
/// and message of the answer, as recorded in `tests/fixtures/api-bodies.txt` (pairs of
/// lines: `METHOD PATH BODY`, then `=> STATUS TYPE MESSAGE`). The cases run in order on
/// one server (accepted ones change its state). `SGSWITCH_BLESS=1` rewrites the file
/// from the running code.
#[test]
fn request_body_answers_are_stable() {
    // Some cases give a port a backend: only an admin (a request with the token) may (#14).
    let h = Harness::start_with(None, Some("admin-token"));
    let snap = h.store.snapshot();
    let names: Vec<(String, &str)> = vec![
        (h.sg_id("web"), "web"),
        (h.port_id("vm-a"), "vm-a"),
        (snap.network_id("net1").unwrap().to_string(), "net1"),
        (
            snap.address_group_id("office").unwrap().to_string(),
            "office",
        ),
        (
            snap.meta.groups[snap.group_by_name("web").unwrap()].rules[0]
                .id
                .to_string(),
            "rule",
        ),
    ];
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/api-bodies.txt");
    let text = std::fs::read_to_string(path).unwrap();
    let mut blessed = String::new();
    let mut failures = Vec::new();
    let mut lines = text.lines();
    while let Some(case) = lines.next() {
        let expected = lines.next().unwrap_or("");
        let mut parts = case.splitn(3, ' ');
        let (method, url, body) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap_or(""),
        );
        let sub = |s: &str| {
            names.iter().fold(s.to_string(), |s, (id, n)| {
                s.replace(&format!("{{{n}}}"), id)
            })
        };
        let r = h
            .client
            .raw_bytes(method, &sub(url), Some(sub(body).as_bytes()), &[])
            .unwrap();
        let got = format!(
            "=> {} {} {}",
            r.status,
            r.body["NeutronError"]["type"].as_str().unwrap_or("-"),
            unid(
                r.body["NeutronError"]["message"].as_str().unwrap_or("-"),
                &names
            )
        );
        if got != expected {
            failures.push(format!("{case}\n  expected {expected}\n  got      {got}"));
        }
        blessed.push_str(&format!("{case}\n{got}\n"));
    }
    if std::env::var_os("SGSWITCH_BLESS").is_some() {
        std::fs::write(path, blessed).unwrap();
        return;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
