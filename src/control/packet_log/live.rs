//! The packet log of a running switch: the workers' queued records pumped into the
//! writer, and each policy epoch's names published before its records can arrive.
//!
//! Owns: the pump thread. May not touch: the workers (records come from
//! [`Switch::drain_log_records`], epochs from [`Switch::on_compile`]) or the writer's
//! formatting.
//!
//! The pump wakes every [`PUMP_INTERVAL`] and moves what the workers queued (each
//! worker holds up to `runtime::switch::observe::LOG_QUEUE` records, so a burst of up to
//! 4,096 records per worker per interval is carried whole; beyond that the workers count
//! `log_queue_full`). It runs on its own thread, never on a worker.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use super::PacketLog;
use crate::policy::Model;
use crate::runtime::switch::Switch;

/// How often the pump drains the workers' queues.
pub const PUMP_INTERVAL: Duration = Duration::from_millis(10);

/// The running pump ([`attach`]); dropping it drains once more and stops it.
pub struct Pump {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Connect `switch`'s packet-log records to `log`: name the epoch in force (compiled
/// from `model`) and every later one, and start the pump.
pub fn attach(switch: &Arc<Switch>, log: &Arc<PacketLog>, model: &Model) -> std::io::Result<Pump> {
    log.set_policy(switch.epoch(), model);
    let names = Arc::clone(log);
    switch.on_compile(Box::new(move |epoch, m| names.set_policy(epoch, m)));
    let origin = SystemTime::now()
        .checked_sub(Duration::from_nanos(switch.now_ns()))
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let tx = log.sender(origin);
    let stop = Arc::new(AtomicBool::new(false));
    let (sw, st) = (Arc::clone(switch), Arc::clone(&stop));
    let thread = std::thread::Builder::new()
        .name("sgswitch-log-pump".into())
        .spawn(move || loop {
            let last = st.load(Ordering::Acquire);
            sw.drain_log_records(|r| {
                tx.send(r);
            });
            if last {
                break;
            }
            std::thread::sleep(PUMP_INTERVAL);
        })?;
    Ok(Pump {
        stop,
        thread: Some(thread),
    })
}

impl Drop for Pump {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
