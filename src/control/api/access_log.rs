//! The access log of the management API: one `tracing` event per request answered,
//! target `sgswitch::api`, with `method`, `path`, `status`, `ms` (from the end of the
//! request's reading to the answer written) and `peer`.
//!
//! * Level: `info` for changes (every method but `GET`/`HEAD`) and for refused ones
//!   (401, 403), `warn` for server errors (5xx but 503, which is an answer: not ready,
//!   storage full, too many connections), `debug` for reads, so that a probe
//!   every second or `sgswitch stats --watch` does not fill the log at the default
//!   level, while every change of the policy is on record with who sent it.
//! * Secrets: the token travels in a header and is never logged; the query string is
//!   logged with the value of any parameter named like a credential (`token`,
//!   `password`, `secret`, `key`) replaced by `***` ([`redact`]).
//!
//! Owns: the wording and level of these lines. May not touch the request or the answer
//! (the listener calls it after writing).

use std::net::SocketAddr;
use std::time::Duration;

/// The request target with credential-like query values replaced by `***`.
pub fn redact(target: &str) -> String {
    let Some((path, query)) = target.split_once('?') else {
        return target.to_string();
    };
    let parts: Vec<String> = query
        .split('&')
        .map(|kv| {
            let (k, _) = kv.split_once('=').unwrap_or((kv, ""));
            let lower = k.to_ascii_lowercase();
            if ["token", "password", "secret", "key"]
                .iter()
                .any(|s| lower.contains(s))
            {
                format!("{k}=***")
            } else {
                kv.to_string()
            }
        })
        .collect();
    format!("{path}?{}", parts.join("&"))
}

/// Log one answered request.
pub fn request(peer: Option<SocketAddr>, method: &str, target: &str, status: u16, took: Duration) {
    let path = redact(target);
    let ms = took.as_secs_f64() * 1e3;
    let peer = peer.map(|p| p.to_string()).unwrap_or_default();
    let read = method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD");
    macro_rules! line {
        ($lvl:ident) => {
            tracing::$lvl!(target: "sgswitch::api", method, path, status, ms = format_args!("{ms:.1}"), peer, "api request")
        };
    }
    if status >= 500 && status != 503 {
        line!(warn);
    } else if !read || status == 401 || status == 403 {
        line!(info);
    } else {
        line!(debug);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_the_query_are_hidden() {
        assert_eq!(redact("/v2.0/ports"), "/v2.0/ports");
        assert_eq!(
            redact("/x?port=vm-a&auth_token=abc&api_key=1"),
            "/x?port=vm-a&auth_token=***&api_key=***"
        );
    }
}
