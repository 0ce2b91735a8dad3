//! A tiny blocking HTTP/1.1 JSON client over `std::net::TcpStream`, for the CLI commands
//! that talk to a running switch (`sgswitch security-group …`, `sgswitch port …`).
//!
//! One request per connection (`Connection: close`), `Content-Length` bodies, chunked
//! responses decoded. Only `http://host:port[/prefix]` endpoints: the API is meant for
//! loopback or a trusted network with a token (no TLS). Rejected option: a full HTTP
//! client crate (reqwest/ureq) — a dozen JSON calls do not justify the dependency tree.
//!
//! Owns: one HTTP exchange (connection, request, response decoding) and its errors. May
//! not touch: the API's routes and bodies (the CLI builds them) or the store. Depends on
//! no other sgswitch module; the CLI and the API tests use it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde_json::Value;

/// Largest accepted response body.
const MAX_RESPONSE: usize = 64 << 20;

/// A client error (connection, protocol, or an HTTP error status with Neutron's message).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid endpoint {0:?}: expected http://HOST:PORT")]
    Endpoint(String),
    #[error("cannot reach {endpoint}: {message}")]
    Connect { endpoint: String, message: String },
    #[error("bad response from {endpoint}: {message}")]
    Protocol { endpoint: String, message: String },
    /// The server answered with an error status.
    #[error("HTTP {status}: {message}")]
    Status { status: u16, message: String },
    /// The token to send cannot be read (its file).
    #[error("{0}")]
    Token(String),
}

/// A response: status and parsed JSON body (`Value::Null` when empty).
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: Value,
}

/// A client for one endpoint.
#[derive(Debug, Clone)]
pub struct Client {
    host_port: String,
    prefix: String,
    endpoint: String,
    token: Option<String>,
    timeout: Duration,
}

impl Client {
    /// `endpoint` like `http://127.0.0.1:9696` (a path prefix is kept).
    pub fn new(endpoint: &str, token: Option<String>) -> Result<Client, ClientError> {
        let rest = endpoint
            .strip_prefix("http://")
            .ok_or_else(|| ClientError::Endpoint(endpoint.to_string()))?;
        let (host_port, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if host_port.is_empty() {
            return Err(ClientError::Endpoint(endpoint.to_string()));
        }
        let host_port = if host_port.contains(':') && !host_port.ends_with(']') {
            host_port.to_string()
        } else {
            format!("{host_port}:80")
        };
        Ok(Client {
            host_port,
            prefix: prefix.to_string(),
            endpoint: endpoint.to_string(),
            token,
            timeout: Duration::from_secs(30),
        })
    }

    /// Send a request; `path` starts with `/`. Returns any status (no error mapping).
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, ClientError> {
        let bytes = body.map(|b| b.to_string().into_bytes());
        self.raw_bytes(method, path, bytes.as_deref(), &[])
    }

    /// Send raw bytes with extra headers (tests use it for malformed bodies).
    pub fn raw_bytes(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Result<Response, ClientError> {
        let conn_err = |e: std::io::Error| ClientError::Connect {
            endpoint: self.endpoint.clone(),
            message: e.to_string(),
        };
        let proto = |m: &str| ClientError::Protocol {
            endpoint: self.endpoint.clone(),
            message: m.to_string(),
        };
        let addr = self
            .host_port
            .to_socket_addrs()
            .map_err(conn_err)?
            .next()
            .ok_or_else(|| ClientError::Endpoint(self.endpoint.clone()))?;
        let mut stream = TcpStream::connect_timeout(&addr, self.timeout).map_err(conn_err)?;
        stream
            .set_read_timeout(Some(self.timeout))
            .map_err(conn_err)?;
        stream
            .set_write_timeout(Some(self.timeout))
            .map_err(conn_err)?;
        let mut head = format!(
            "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAccept: application/json\r\n",
            self.prefix, self.host_port
        );
        if let Some(t) = &self.token {
            head.push_str(&format!("X-Auth-Token: {t}\r\n"));
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(b) = body {
            head.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                b.len()
            ));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).map_err(conn_err)?;
        if let Some(b) = body {
            // The server may answer (413) and close before reading everything.
            let _ = stream.write_all(b);
        }
        let _ = stream.flush();

        let mut r = BufReader::new(stream);
        let mut line = String::new();
        r.read_line(&mut line).map_err(conn_err)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| proto(&format!("bad status line {line:?}")))?;
        let mut length: Option<usize> = None;
        let mut chunked = false;
        loop {
            line.clear();
            if r.read_line(&mut line).map_err(conn_err)? == 0 {
                break;
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                let v = v.trim();
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.parse().ok();
                } else if k.eq_ignore_ascii_case("transfer-encoding")
                    && v.eq_ignore_ascii_case("chunked")
                {
                    chunked = true;
                }
            }
        }
        let mut data = Vec::new();
        if chunked {
            loop {
                line.clear();
                r.read_line(&mut line).map_err(conn_err)?;
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| proto("bad chunk size"))?;
                if size == 0 {
                    break;
                }
                if data.len() + size > MAX_RESPONSE {
                    return Err(proto("response too large"));
                }
                let start = data.len();
                data.resize(start + size, 0);
                r.read_exact(&mut data[start..]).map_err(conn_err)?;
                line.clear();
                r.read_line(&mut line).map_err(conn_err)?;
            }
        } else if let Some(n) = length {
            if n > MAX_RESPONSE {
                return Err(proto("response too large"));
            }
            data.resize(n, 0);
            r.read_exact(&mut data).map_err(conn_err)?;
        } else {
            r.take(MAX_RESPONSE as u64)
                .read_to_end(&mut data)
                .map_err(conn_err)?;
        }
        let body = if data.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&data).map_err(|e| proto(&format!("invalid JSON: {e}")))?
        };
        Ok(Response { status, body })
    }

    /// Send a request and turn an error status into [`ClientError::Status`].
    pub fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ClientError> {
        let r = self.raw(method, path, body)?;
        if (200..300).contains(&r.status) {
            Ok(r.body)
        } else {
            let message = r
                .body
                .pointer("/NeutronError/message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| r.body.to_string());
            Err(ClientError::Status {
                status: r.status,
                message,
            })
        }
    }

    pub fn get(&self, path: &str) -> Result<Value, ClientError> {
        self.call("GET", path, None)
    }
    pub fn post(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.call("POST", path, Some(body))
    }
    pub fn put(&self, path: &str, body: &Value) -> Result<Value, ClientError> {
        self.call("PUT", path, Some(body))
    }
    pub fn delete(&self, path: &str) -> Result<Value, ClientError> {
        self.call("DELETE", path, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_parsing() {
        let c = Client::new("http://127.0.0.1:9696", None).unwrap();
        assert_eq!(c.host_port, "127.0.0.1:9696");
        assert_eq!(c.prefix, "");
        let c = Client::new("http://localhost:9/x/", None).unwrap();
        assert_eq!(c.prefix, "/x");
        let c = Client::new("http://example", None).unwrap();
        assert_eq!(c.host_port, "example:80");
        assert!(Client::new("https://x:1", None).is_err());
        assert!(Client::new("http://", None).is_err());
    }
}
