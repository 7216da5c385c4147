//! Building blocks shared by the pages.

pub mod charts;
pub mod data;
pub mod deferred;
pub mod events;
pub mod format;
pub mod forms;
pub mod guard;
pub mod layout;
pub mod meter;
