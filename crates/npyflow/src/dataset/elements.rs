//! A dataset of elements held in memory: a window's or a group's, or (empty) what tracing
//! hands a function that takes a dataset.

use std::sync::Arc;

use super::plumbing::{describe_node, own_pass, Node, Pass};
use crate::element::{Element, ElementSpec};
use crate::error::Result;

/// Elements held in memory, with their spec.
#[derive(Clone)]
pub(crate) struct Elements {
    pub(crate) elements: Arc<Vec<Element>>,
    pub(crate) spec: ElementSpec,
}

impl Node for Elements {
    describe_node! { name: "Elements"; spec: spec; }
    fn elements(&self) -> Option<(&[Element], &ElementSpec)> {
        Some((&self.elements, &self.spec))
    }
    own_pass!();
}

impl Pass for Elements {
    fn len(&self) -> u64 {
        self.elements.len() as u64
    }
    fn get(&self, index: u64) -> Result<Element> {
        Ok(self.elements[index as usize].clone())
    }
}
