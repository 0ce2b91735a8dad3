//! The `--store` options shared by `run`, `api` and `sim-hosts`: where the shared store
//! is (`etcd://host:port[,host:port...]`, `etcds://` for TLS), the key prefix, and the
//! TLS files; [`StoreArgs::open`] makes the [`Kv`] client and the [`Keys`].
//!
//! Owns: these flags and their meaning. May not hold control-plane logic: opening the
//! store on the client is `control::store`'s (`Store::open_shared`), the host agent's is
//! the agent's.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use sgswitch::control::kv::etcd::{EtcdKv, EtcdOptions};
use sgswitch::control::kv::Kv;
use sgswitch::control::shared::layout::{Keys, DEFAULT_PREFIX};

/// An opened shared store: its client and its keys.
pub type OpenedStore = (Arc<dyn Kv>, Keys);

/// Where the shared store is.
#[derive(Args, Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreArgs {
    /// The shared store: etcd://HOST:PORT[,HOST:PORT...] (etcds:// for TLS); without it,
    /// the local store (no etcd)
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,

    /// The key prefix everything lives under (one prefix = one cloud)
    #[arg(long, value_name = "PREFIX", default_value = DEFAULT_PREFIX, requires = "store")]
    pub store_prefix: String,

    /// TLS: the CA certificate (PEM) that signed etcd's server certificates
    #[arg(long, value_name = "FILE", requires = "store")]
    pub store_ca: Option<PathBuf>,

    /// TLS: the client certificate (PEM), for etcd's --client-cert-auth
    #[arg(long, value_name = "FILE", requires_all = ["store", "store_key"])]
    pub store_cert: Option<PathBuf>,

    /// TLS: the client certificate's key (PEM)
    #[arg(long, value_name = "FILE", requires_all = ["store", "store_cert"])]
    pub store_key: Option<PathBuf>,
}

impl StoreArgs {
    /// The store client and the keys (`None`: no `--store`). Connecting is lazy: an
    /// unreachable etcd is not an error here; a bad URL or unreadable TLS files are.
    pub fn open(&self) -> Result<Option<OpenedStore>, String> {
        let Some(url) = &self.store else {
            return Ok(None);
        };
        let mut opts = EtcdOptions::from_url(url).map_err(|e| e.to_string())?;
        opts.ca = self.store_ca.clone();
        opts.cert = self.store_cert.clone();
        opts.key = self.store_key.clone();
        let kv = EtcdKv::connect(opts).map_err(|e| format!("--store {url}: {e}"))?;
        Ok(Some((Arc::new(kv), Keys::new(&self.store_prefix))))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        store: StoreArgs,
    }

    #[test]
    fn flags_parse_and_tls_files_need_a_store() {
        let t = T::try_parse_from(["t"]).unwrap();
        assert_eq!(
            t.store,
            StoreArgs {
                store_prefix: DEFAULT_PREFIX.into(),
                ..Default::default()
            }
        );
        assert!(t.store.open().unwrap().is_none());
        let t = T::try_parse_from([
            "t",
            "--store",
            "etcd://127.0.0.1:1,127.0.0.1:2",
            "--store-prefix",
            "/cloud-a",
        ])
        .unwrap();
        let (kv, keys) = t.store.open().unwrap().unwrap();
        assert_eq!(keys.prefix(), "/cloud-a/");
        assert!(kv.describe().contains("127.0.0.1:1"), "{}", kv.describe());
        assert!(T::try_parse_from(["t", "--store-ca", "ca.pem"]).is_err());
        assert!(
            T::try_parse_from(["t", "--store", "etcd://h:1", "--store-cert", "c.pem"]).is_err()
        );
        let bad = T::try_parse_from(["t", "--store", "http://h:1"]).unwrap();
        match bad.store.open() {
            Err(e) => assert!(e.contains("etcd://"), "{e}"),
            Ok(_) => panic!("http:// accepted"),
        }
    }
}
