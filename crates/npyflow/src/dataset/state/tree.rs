//! The state tree: what one iterator saved (a tag, numbers, elements, the states of its
//! inputs), built by chaining and read back in the same order.

use std::collections::VecDeque;

use crate::error::{Error, Result};

/// An error for a state that does not belong to this pipeline.
pub(crate) fn mismatch(what: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(format!(
        "the iterator state does not fit this pipeline: {what}"
    ))
}

/// One iterator's saved state. Built with the chaining methods, read with [`State::reader`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct State {
    pub(super) tag: String,
    pub(super) nums: Vec<u64>,
    /// Elements, each encoded when added (see `State::item`), so the state is a snapshot.
    pub(super) elems: Vec<Vec<u8>>,
    pub(super) kids: Vec<Option<State>>,
}

impl State {
    pub(crate) fn new(tag: &str) -> State {
        State {
            tag: tag.to_string(),
            ..State::default()
        }
    }

    pub(crate) fn num(mut self, v: u64) -> State {
        self.nums.push(v);
        self
    }

    pub(crate) fn flag(self, v: bool) -> State {
        self.num(u64::from(v))
    }

    /// An element already encoded (see [`State::item`]).
    pub(crate) fn push_encoded(mut self, bytes: Vec<u8>) -> State {
        self.elems.push(bytes);
        self
    }

    pub(crate) fn kid(mut self, s: State) -> State {
        self.kids.push(Some(s));
        self
    }

    pub(crate) fn kid_opt(mut self, s: Option<State>) -> State {
        self.kids.push(s);
        self
    }

    /// Reads the state back, after checking it was saved by a `tag` iterator.
    pub(crate) fn reader(self, tag: &str) -> Result<StateReader> {
        if self.tag != tag {
            return Err(mismatch(format!(
                "a {} iterator's state was given to a {tag} iterator",
                self.tag
            )));
        }
        Ok(StateReader {
            tag: self.tag,
            nums: self.nums.into(),
            elems: self.elems.into(),
            kids: self.kids.into(),
        })
    }

    /// The tag this state was saved with.
    pub(crate) fn tag(&self) -> &str {
        &self.tag
    }
}

/// Reads a [`State`] in the order it was built.
pub(crate) struct StateReader {
    tag: String,
    nums: VecDeque<u64>,
    elems: VecDeque<Vec<u8>>,
    kids: VecDeque<Option<State>>,
}

impl StateReader {
    /// The tag of the state being read.
    pub(crate) fn tag(&self) -> &str {
        &self.tag
    }

    pub(super) fn short(&self, what: &str) -> Error {
        mismatch(format!(
            "the {} iterator's state has too few {what}",
            self.tag
        ))
    }

    pub(crate) fn num(&mut self) -> Result<u64> {
        self.nums.pop_front().ok_or_else(|| self.short("numbers"))
    }

    pub(crate) fn usize(&mut self) -> Result<usize> {
        let v = self.num()?;
        usize::try_from(v).map_err(|_| mismatch(format!("{v} is too large")))
    }

    pub(crate) fn flag(&mut self) -> Result<bool> {
        Ok(self.num()? != 0)
    }

    /// The next encoded element.
    pub(crate) fn pop_encoded(&mut self) -> Result<Vec<u8>> {
        self.elems.pop_front().ok_or_else(|| self.short("elements"))
    }

    /// How many encoded elements are left.
    pub(crate) fn encoded_left(&self) -> usize {
        self.elems.len()
    }

    /// An input's state, which must be there.
    pub(crate) fn kid(&mut self) -> Result<State> {
        self.kid_opt()?
            .ok_or_else(|| mismatch(format!("the {} iterator's state lacks an input", self.tag)))
    }

    pub(crate) fn kid_opt(&mut self) -> Result<Option<State>> {
        self.kids.pop_front().ok_or_else(|| self.short("inputs"))
    }

    /// Checks that everything was read: a state with more in it came from another pipeline.
    pub(crate) fn finish(self) -> Result<()> {
        if self.nums.is_empty() && self.elems.is_empty() && self.kids.is_empty() {
            Ok(())
        } else {
            Err(mismatch(format!(
                "the {} iterator's state holds more than this pipeline's",
                self.tag
            )))
        }
    }
}
