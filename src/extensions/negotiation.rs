//! Which extensions a handshake agrees on, in both roles. The set of
//! factories (and its configuration-time checks) exists on both targets, so
//! that the client builder is one type; the negotiation itself runs
//! natively only: in the browser, the browser negotiates.

use std::sync::Arc;

use super::{Extension, ExtensionFactory, ExtensionHeader};

/// The extension factories configured on a server or client.
#[derive(Debug, Clone, Default)]
pub(crate) struct Extensions {
    factories: Vec<Arc<dyn ExtensionFactory>>,
}

/// What the handshake settled: the answer elements and their extensions, in
/// negotiation order.
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) type Negotiated = (Vec<ExtensionHeader>, Vec<Box<dyn Extension>>);

impl Extensions {
    /// Adds a factory.
    ///
    /// # Panics
    ///
    /// When it claims an RSV bit that a factory already added claims, or
    /// has the same name: a configuration error.
    pub(crate) fn add(&mut self, factory: Arc<dyn ExtensionFactory>) {
        for other in &self.factories {
            assert!(
                other.name() != factory.name(),
                "extension {} is configured twice",
                factory.name()
            );
            let shared = other.rsv().bits() & factory.rsv().bits();
            assert!(
                shared == 0,
                "extensions {} and {} both claim RSV bits {:03b}",
                other.name(),
                factory.name(),
                shared
            );
        }
        self.factories.push(factory);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.factories.is_empty()
    }

    /// The client's `Sec-WebSocket-Extensions` value.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn offer(&self) -> Option<String> {
        let offers: Vec<ExtensionHeader> = self.factories.iter().flat_map(|f| f.offers()).collect();
        (!offers.is_empty()).then(|| ExtensionHeader::format_list(&offers))
    }

    /// Server side: picks at most one offer per factory, in the client's
    /// order, and makes the extensions.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn accept(&self, offers: &[ExtensionHeader]) -> Negotiated {
        let mut answers = Vec::new();
        let mut extensions = Vec::new();
        let mut used = Vec::new();
        for offer in offers {
            let Some(index) = self.factories.iter().position(|f| f.name() == offer.name) else {
                continue;
            };
            if used.contains(&index) {
                continue;
            }
            if let Some((answer, extension)) = self.factories[index].accept(offer) {
                used.push(index);
                answers.push(answer);
                extensions.push(extension);
            }
        }
        (answers, extensions)
    }

    /// Client side: checks the server's answer; every element must be an
    /// extension we offered, once, that accepts the parameters.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn confirm(&self, answers: Vec<ExtensionHeader>) -> Result<Negotiated, String> {
        let mut extensions = Vec::new();
        let mut used = Vec::new();
        for answer in &answers {
            let Some(index) = self.factories.iter().position(|f| f.name() == answer.name) else {
                return Err(format!(
                    "the server accepted {}, which was not offered",
                    answer.name
                ));
            };
            if used.contains(&index) {
                return Err(format!("the server accepted {} twice", answer.name));
            }
            used.push(index);
            let extension = self.factories[index]
                .confirm(answer)
                .map_err(|why| format!("{}: {why}", answer.name))?;
            extensions.push(extension);
        }
        Ok((answers, extensions))
    }
}
