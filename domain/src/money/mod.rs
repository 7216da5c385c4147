//! Money: the immutable ledger (integer micro-USD; a balance is the sum of its rows and the
//! cached balance always equals it), billing history and notify addresses, and card top-ups
//! through Stripe Checkout with signed webhooks.

pub mod billing;
pub mod ledger;
pub mod payments;
