//! One module per portal page.

mod account;
mod activity;
mod api_docs;
mod auth;
mod billing;
mod catalog;
mod customers;
mod home;
mod keys;
mod machine;
mod machines;
mod market;
mod not_found;
mod operator;
mod pools;
mod rentals;
mod status;
mod tokens;

pub use account::{AccountPage, ConfirmEmailPage};
pub use activity::ActivityPage;
pub use api_docs::ApiDocsPage;
pub use auth::{ResetPasswordPage, SignInPage, SignUpPage};
pub use billing::{BillingPage, ReceiptPage, StatementPage, TopupCancelPage, TopupSuccessPage};
pub use catalog::{CatalogPage, InventoryPage};
pub use customers::{AllMachinesPage, CustomerPage, CustomersPage, TasksPage};
pub use home::HomePage;
pub use keys::KeysPage;
pub use machine::MachinePage;
pub use machines::MachinesPage;
pub use market::{MarketplacePage, ServerPage};
pub use not_found::NotFound;
pub use operator::OperatorPage;
pub use pools::{InvitationsPage, PoolPage, PoolsPage};
pub use rentals::{RentalPage, RentalsPage};
pub use status::StatusPage;
pub use tokens::TokensPage;
