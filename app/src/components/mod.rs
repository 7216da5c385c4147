//! Building blocks shared by the pages.

pub mod events;
pub mod format;
pub mod forms;
pub mod layout;
