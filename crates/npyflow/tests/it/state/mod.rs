//! Iterator state (get_state / set_state): random pipelines restored anywhere, each
//! transformation restored at every point, forged and foreign states, and the iterator's
//! own bookkeeping.

mod random_pipelines;
mod restore;
