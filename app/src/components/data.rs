//! Page data: resources loaded by the server with the page and handed to the browser in it.
//!
//! Every page reads its data with a server function, and Leptos sends what the server loaded
//! along with the HTML so the browser does not ask again. Both arrive as JSON, but out of the
//! box the two are read differently — a server function's answer from bytes, a resource's from
//! a string — and each way compiles its own copy of every data type's decoder into the browser
//! bundle (a machine's details: 9 KB twice). Resources made here read JSON from bytes as server
//! functions do, so each type has one decoder.

use std::future::Future;

use leptos::prelude::*;
use leptos::server::codee::{Decoder, Encoder};
use serde::{de::DeserializeOwned, Serialize};

/// JSON, read as server functions read their answers (`serde_json::from_slice`).
pub struct Json;

impl<T: Serialize> Encoder<T> for Json {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(value: &T) -> Result<String, serde_json::Error> {
        serde_json::to_string(value)
    }
}

impl<T: DeserializeOwned> Decoder<T> for Json {
    type Error = serde_json::Error;
    type Encoded = str;

    fn decode(text: &str) -> Result<T, serde_json::Error> {
        serde_json::from_slice(text.as_bytes())
    }
}

/// A page's data: loaded by `fetcher` whenever `source` changes (on the server with the page,
/// then in the browser).
pub type Data<T> = Resource<T, Json>;

/// A [`Data`] resource (what `Resource::new` is, with [`Json`]).
#[track_caller]
pub fn load<T, S, F>(
    source: impl Fn() -> S + Send + Sync + 'static,
    fetcher: impl Fn(S) -> F + Send + Sync + 'static,
) -> Data<T>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    S: PartialEq + Clone + Send + Sync + 'static,
    F: Future<Output = T> + Send + 'static,
{
    Resource::new_with_options(source, fetcher, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_encoded_decodes_to_the_same_value() {
        let value: Result<Vec<(String, i64)>, String> = Ok(vec![("a\"b".into(), -3)]);
        let text = <Json as Encoder<_>>::encode(&value).unwrap();
        let back: Result<Vec<(String, i64)>, String> = <Json as Decoder<_>>::decode(&text).unwrap();
        assert_eq!(back, value);
        assert!(<Json as Decoder<Vec<i64>>>::decode("[1,").is_err());
    }
}
