//! Hello world: adds `x-hello: world` to every response.
use std::rc::Rc;

use sluice::http::{Action, Headers, HttpFilter, Response};
use sluice::{HttpPlugin, Plugin, Setup};

struct Hello;

impl Plugin for Hello {
    type Config = ();
    fn configure(_: (), _: &mut Setup) -> sluice::Result<Self> {
        Ok(Hello)
    }
}

impl HttpPlugin for Hello {
    type Filter = Hello;
    fn new_filter(self: &Rc<Self>) -> Hello {
        Hello
    }
}

impl HttpFilter for Hello {
    async fn on_response_headers(&mut self, resp: Response<'_>, _eos: bool) -> sluice::Result<Action> {
        resp.set_header("x-hello", "world")?;
        Ok(Action::Continue)
    }
}

sluice::http_filter!(Hello);
