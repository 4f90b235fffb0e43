//! The conversational payment agent: understanding (pure), the dialogue policy (pure), the replies,
//! and the service that feeds them facts from the store and carries out their actions.

pub mod llm;
pub mod policy;
pub mod replies;
pub mod service;

pub use service::Agent;
