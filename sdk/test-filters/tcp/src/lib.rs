//! Network filter with the SDK: upper-cases client data, closes connections that start with `DENY`.
use std::rc::Rc;

use sluice::tcp::{Data, TcpAction, TcpFilter};
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
    fn on_downstream_data(&mut self, mut data: Data<'_>, _eos: bool) -> sluice::Result<TcpAction> {
        if data.is_empty() {
            return Ok(TcpAction::Continue);
        }
        let bytes = data.read()?;
        if std::mem::take(&mut self.first) && bytes.starts_with(b"DENY") {
            log::warn!("denied connection");
            data.connection().close_downstream()?;
            return Ok(TcpAction::Pause);
        }
        data.replace(&bytes.to_ascii_uppercase())?;
        Ok(TcpAction::Continue)
    }
}

sluice::tcp_filter!(Upper);
