//! tf.data's behaviour: each transformation as tf.data documents it, pipelines compared with
//! outputs recorded from real TensorFlow, invariants over random pipelines, and the seed's
//! examples.

mod golden;
mod patches;
mod props;
mod saved;
mod seed_examples;
mod tfdata;
