//! Network filter with the SDK: upper-cases client data, closes connections that start with `DENY`.
use std::rc::Rc;

use sluice::tcp::{close_downstream, Data, TcpAction, TcpFilter};
use sluice::{Plugin, Setup, TcpPlugin};

struct Upper;

impl Plugin for Upper {
    type Config = ();
    fn configure(_: (), _: &mut Setup) -> sluice::Result<Self> {
        Ok(Upper)
    }
}

impl TcpPlugin for Upper {
    type Filter = Conn;
    fn new_filter(self: &Rc<Self>) -> Conn {
        Conn { first: true }
    }
}

struct Conn {
    first: bool,
}

impl TcpFilter for Conn {
    fn on_downstream_data(&mut self, data: Data, _eos: bool) -> TcpAction {
        if data.is_empty() {
            return TcpAction::Continue;
        }
        let bytes = data.read().unwrap_or_default();
        if std::mem::take(&mut self.first) && bytes.starts_with(b"DENY") {
            log::warn!("denied connection");
            let _ = close_downstream();
            return TcpAction::Pause;
        }
        let _ = data.replace(&bytes.to_ascii_uppercase());
        TcpAction::Continue
    }
}

sluice::tcp_filter!(Upper);
