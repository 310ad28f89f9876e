//! What binds a request type to its operation name and response type.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// One OAPI operation: `POST <endpoint>/<NAME>` with `Self` as the JSON body.
pub trait Operation: Serialize + DeserializeOwned + Send + Sync + 'static {
    const NAME: &'static str;
    type Response: Serialize + DeserializeOwned + Default + Send + 'static;

    /// Whether sending the request again after a lost response is harmless:
    /// reads, deletes and updates are; a create is only when it carries a
    /// `ClientToken` or a name the API keeps unique (a duplicate is refused).
    fn retry_safe(&self) -> bool {
        true
    }

    /// Whether the answer may hold a secret (CreateKeypair's private key):
    /// then no part of it goes into error messages or logs.
    const SECRET_ANSWER: bool = false;

    /// Whether the call can wait for the others under the rate limit: its
    /// outcome holds nothing up (tagging).
    const BACKGROUND: bool = false;
}

/// The most results per page the API serves (`ResultsPerPage` is 1 to 1000).
pub const LARGEST_PAGE: i64 = 1000;

/// A `Read*` operation whose results come in pages.
pub trait Paginated: Operation {
    type Item;
    fn set_page_token(&mut self, token: Option<String>);
    /// Asks for the largest pages the API serves unless the request says.
    fn largest_pages(&mut self);
    fn next_page_token(response: &Self::Response) -> Option<&str>;
    fn into_items(response: Self::Response) -> Vec<Self::Item>;
}

/// Declares `impl Operation`, optionally with a `retry_safe` rule, or
/// marked as answering a secret.
macro_rules! operation {
    ($req:ty => $resp:ty, $name:literal) => {
        impl $crate::oapi::operation::Operation for $req {
            const NAME: &'static str = $name;
            type Response = $resp;
        }
    };
    ($req:ty => $resp:ty, $name:literal, background) => {
        impl $crate::oapi::operation::Operation for $req {
            const NAME: &'static str = $name;
            type Response = $resp;
            const BACKGROUND: bool = true;
        }
    };
    ($req:ty => $resp:ty, $name:literal, secret_answer) => {
        impl $crate::oapi::operation::Operation for $req {
            const NAME: &'static str = $name;
            type Response = $resp;
            const SECRET_ANSWER: bool = true;
        }
    };
    ($req:ty => $resp:ty, $name:literal, retry_safe = |$s:ident| $e:expr) => {
        impl $crate::oapi::operation::Operation for $req {
            const NAME: &'static str = $name;
            type Response = $resp;
            fn retry_safe(&self) -> bool {
                let $s = self;
                $e
            }
        }
    };
}

/// Declares `impl Paginated` for a read whose response lists `$field`.
macro_rules! paginated {
    ($req:ty => $resp:ty, $name:literal, $field:ident : $item:ty) => {
        $crate::oapi::operation::operation!($req => $resp, $name);
        impl $crate::oapi::operation::Paginated for $req {
            type Item = $item;
            fn set_page_token(&mut self, token: Option<String>) {
                self.next_page_token = token;
            }
            fn largest_pages(&mut self) {
                self.results_per_page.get_or_insert($crate::oapi::operation::LARGEST_PAGE);
            }
            fn next_page_token(response: &Self::Response) -> Option<&str> {
                response.next_page_token.as_deref().filter(|t| !t.is_empty())
            }
            fn into_items(response: Self::Response) -> Vec<Self::Item> {
                response.$field
            }
        }
    };
}

pub(crate) use operation;
pub(crate) use paginated;
