//! Logs when its plugin shuts down (`Plugin::on_done`): how many times, and in which VMs, the
//! host says goodbye.
use std::rc::Rc;

use sluice::http::HttpFilter;
use sluice::{HttpPlugin, Plugin, Setup};

struct Goodbye;

impl Plugin for Goodbye {
    type Config = ();
    fn configure(_: (), _: &mut Setup) -> sluice::Result<Self> {
        Ok(Goodbye)
    }

    fn on_done(self: &Rc<Self>) -> bool {
        log::warn!("goodbye: on_done");
        true
    }
}

impl HttpPlugin for Goodbye {
    type Filter = Goodbye;
    fn new_filter(self: &Rc<Self>) -> Goodbye {
        Goodbye
    }
}

impl HttpFilter for Goodbye {}

sluice::http_filter!(Goodbye);
