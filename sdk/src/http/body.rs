//! The HTTP body view.

use std::ops::{Deref, DerefMut};

use super::{BufferType, HttpStream};
use crate::buffer::Buffer;

/// The request or response body the filter holds now (the chunk, or when buffering the whole
/// body): [`Buffer`]'s reads and edits, and the [`HttpStream`] it belongs to.
///
/// There is one view of a body, not copies whose lengths could disagree after an edit:
///
/// ```compile_fail
/// fn twice(body: sluice::http::Body<'_>) {
///     let a = body;
///     let b = body;
/// }
/// ```
#[derive(Debug)]
pub struct Body<'a>(Buffer<'a>);

impl Body<'_> {
    pub(crate) fn new(context: u32, request: bool, size: usize) -> Self {
        let kind = if request { BufferType::RequestBody } else { BufferType::ResponseBody };
        Self(Buffer::new(context, kind, size))
    }

    /// The stream this body belongs to: a handle that may outlive the callback. Through it a body
    /// handler reaches the headers (`body.stream().request_headers()`), which Envoy lets it change
    /// while it holds them.
    pub fn stream(&self) -> HttpStream {
        HttpStream::new(self.0.context())
    }
}

impl<'a> Deref for Body<'a> {
    type Target = Buffer<'a>;
    fn deref(&self) -> &Buffer<'a> {
        &self.0
    }
}

impl<'a> DerefMut for Body<'a> {
    fn deref_mut(&mut self) -> &mut Buffer<'a> {
        &mut self.0
    }
}
