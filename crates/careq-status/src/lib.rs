//! A catalogue of HTTP status codes: each code's constant name, reason phrase, class, a short
//! meaning, and how careq uses it (`produced`, `stack` or `never`).
//!
//! The catalogue is plain data with no dependency beyond [`http`], so any project can use it.
//!
//! ```
//! use careq_status::{lookup, Class, Usage, HTTP_404_NOT_FOUND};
//!
//! let s = lookup(404).unwrap();
//! assert_eq!(s, &HTTP_404_NOT_FOUND);
//! assert_eq!(s.reason, "Not Found");
//! assert_eq!(s.class(), Class::ClientError);
//! assert!(s.is_client_error());
//! assert!(matches!(s.usage, Usage::Produced(_)));
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod catalogue;

pub use catalogue::*;

use std::fmt;
use std::str::FromStr;

/// The five classes of status code (RFC 9110 §15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// 1xx: the request was received, work continues.
    Informational,
    /// 2xx: the request was received, understood and accepted.
    Success,
    /// 3xx: the client must take further action.
    Redirection,
    /// 4xx: the request is at fault.
    ClientError,
    /// 5xx: the server failed a request that may be valid.
    ServerError,
}

impl Class {
    /// The class a number belongs to, if it lies in 100..=599.
    ///
    /// ```
    /// use careq_status::Class;
    /// assert_eq!(Class::of(302), Some(Class::Redirection));
    /// assert_eq!(Class::of(600), None);
    /// ```
    pub const fn of(code: u16) -> Option<Class> {
        match code / 100 {
            1 => Some(Class::Informational),
            2 => Some(Class::Success),
            3 => Some(Class::Redirection),
            4 => Some(Class::ClientError),
            5 => Some(Class::ServerError),
            _ => None,
        }
    }

    /// The short label used in filters and the CLI: `1xx` … `5xx`.
    ///
    /// ```
    /// assert_eq!(careq_status::Class::ClientError.label(), "4xx");
    /// ```
    pub const fn label(self) -> &'static str {
        match self {
            Class::Informational => "1xx",
            Class::Success => "2xx",
            Class::Redirection => "3xx",
            Class::ClientError => "4xx",
            Class::ServerError => "5xx",
        }
    }

    /// Every code of this class in the catalogue, in numeric order.
    ///
    /// ```
    /// let ones: Vec<u16> = careq_status::Class::Informational.members().map(|s| s.code).collect();
    /// assert_eq!(ones, [100, 101, 102, 103]);
    /// ```
    pub fn members(self) -> impl Iterator<Item = &'static Status> {
        ALL.iter().filter(move |s| s.class() == self)
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Error for a class label that is not `1xx` … `5xx`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownClass;

impl fmt::Display for UnknownClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a status class is one of 1xx, 2xx, 3xx, 4xx, 5xx")
    }
}

impl std::error::Error for UnknownClass {}

impl FromStr for Class {
    type Err = UnknownClass;

    /// Parses `4xx` (or `4XX`).
    ///
    /// ```
    /// use careq_status::Class;
    /// assert_eq!("4xx".parse::<Class>(), Ok(Class::ClientError));
    /// assert!("4".parse::<Class>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "1xx" => Ok(Class::Informational),
            "2xx" => Ok(Class::Success),
            "3xx" => Ok(Class::Redirection),
            "4xx" => Ok(Class::ClientError),
            "5xx" => Ok(Class::ServerError),
            _ => Err(UnknownClass),
        }
    }
}

/// How careq uses a code. The text says when (produced, stack) or why not (never).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Usage {
    /// careq's own code returns it under the stated condition.
    Produced(&'static str),
    /// The HTTP stack (hyper, under careq's configuration) returns it under the stated condition.
    Stack(&'static str),
    /// An origin server like careq never sends it, for the stated reason.
    Never(&'static str),
}

impl Usage {
    /// `produced`, `stack` or `never`.
    pub const fn kind(&self) -> &'static str {
        match self {
            Usage::Produced(_) => "produced",
            Usage::Stack(_) => "stack",
            Usage::Never(_) => "never",
        }
    }

    /// The condition (produced, stack) or the reason (never).
    pub const fn text(&self) -> &'static str {
        match self {
            Usage::Produced(t) | Usage::Stack(t) | Usage::Never(t) => t,
        }
    }

    /// True unless careq never sends the code.
    pub const fn is_sent(&self) -> bool {
        !matches!(self, Usage::Never(_))
    }
}

/// One catalogue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status {
    /// The number, e.g. `404`.
    pub code: u16,
    /// The constant name, e.g. `HTTP_404_NOT_FOUND`.
    pub name: &'static str,
    /// The reason phrase as the RFCs give it, e.g. `Not Found`.
    pub reason: &'static str,
    /// What the code means, in one sentence.
    pub meaning: &'static str,
    /// How careq uses it.
    pub usage: Usage,
}

impl Status {
    /// The class of this code.
    pub const fn class(&self) -> Class {
        match Class::of(self.code) {
            Some(c) => c,
            None => panic!("catalogue codes lie in 100..=599"),
        }
    }

    /// 1xx.
    pub const fn is_informational(&self) -> bool {
        self.code / 100 == 1
    }
    /// 2xx.
    ///
    /// ```
    /// assert!(careq_status::HTTP_201_CREATED.is_success());
    /// ```
    pub const fn is_success(&self) -> bool {
        self.code / 100 == 2
    }
    /// 3xx.
    pub const fn is_redirection(&self) -> bool {
        self.code / 100 == 3
    }
    /// 4xx.
    pub const fn is_client_error(&self) -> bool {
        self.code / 100 == 4
    }
    /// 5xx.
    pub const fn is_server_error(&self) -> bool {
        self.code / 100 == 5
    }
    /// 4xx or 5xx.
    ///
    /// ```
    /// assert!(careq_status::HTTP_503_SERVICE_UNAVAILABLE.is_error());
    /// assert!(!careq_status::HTTP_304_NOT_MODIFIED.is_error());
    /// ```
    pub const fn is_error(&self) -> bool {
        self.code >= 400
    }

    /// The same code as an [`http::StatusCode`].
    ///
    /// ```
    /// let sc = careq_status::HTTP_451_UNAVAILABLE_FOR_LEGAL_REASONS.to_http();
    /// assert_eq!(sc, http::StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS);
    /// ```
    pub fn to_http(&self) -> http::StatusCode {
        http::StatusCode::from_u16(self.code).expect("catalogue codes are valid status codes")
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code, self.reason)
    }
}

impl From<&Status> for http::StatusCode {
    fn from(s: &Status) -> Self {
        s.to_http()
    }
}

impl From<Status> for http::StatusCode {
    fn from(s: Status) -> Self {
        s.to_http()
    }
}

/// Error for a code that is not in the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotCatalogued(pub u16);

impl fmt::Display for NotCatalogued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "status code {} is not in the catalogue", self.0)
    }
}

impl std::error::Error for NotCatalogued {}

impl TryFrom<http::StatusCode> for &'static Status {
    type Error = NotCatalogued;

    /// ```
    /// use careq_status::Status;
    /// let s: &Status = http::StatusCode::CONFLICT.try_into().unwrap();
    /// assert_eq!(s.name, "HTTP_409_CONFLICT");
    /// let teapot: Result<&Status, _> = http::StatusCode::IM_A_TEAPOT.try_into();
    /// assert!(teapot.is_err());
    /// ```
    fn try_from(sc: http::StatusCode) -> Result<Self, Self::Error> {
        lookup(sc.as_u16()).ok_or(NotCatalogued(sc.as_u16()))
    }
}

/// Finds the entry for a number.
///
/// ```
/// assert_eq!(careq_status::lookup(418), None);
/// assert_eq!(careq_status::lookup(429).unwrap().reason, "Too Many Requests");
/// ```
pub fn lookup(code: u16) -> Option<&'static Status> {
    ALL.binary_search_by_key(&code, |s| s.code)
        .ok()
        .map(|i| &ALL[i])
}

/// Counts of entries by usage: `(produced, stack, never)`.
///
/// ```
/// let (p, s, n) = careq_status::usage_counts();
/// assert_eq!(p + s + n, careq_status::ALL.len());
/// ```
pub fn usage_counts() -> (usize, usize, usize) {
    ALL.iter().fold((0, 0, 0), |(p, s, n), st| match st.usage {
        Usage::Produced(_) => (p + 1, s, n),
        Usage::Stack(_) => (p, s + 1, n),
        Usage::Never(_) => (p, s, n + 1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_is_sorted_unique_and_complete() {
        let codes: Vec<u16> = ALL.iter().map(|s| s.code).collect();
        let mut sorted = codes.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(codes, sorted, "ALL must be sorted with no repeats");
        let expected: Vec<u16> = (100..=103)
            .chain(200..=208)
            .chain([226])
            .chain(300..=308)
            .chain(400..=417)
            .chain([421, 422, 423, 424, 425, 426, 428, 429, 431, 451])
            .chain(500..=511)
            .collect();
        assert_eq!(codes, expected);
    }

    #[test]
    fn constant_names_carry_their_number() {
        for s in ALL {
            assert!(
                s.name.starts_with(&format!("HTTP_{}_", s.code)),
                "{} does not match {}",
                s.name,
                s.code
            );
            assert!(!s.meaning.is_empty() && !s.usage.text().is_empty());
        }
    }

    #[test]
    fn every_code_converts_to_and_from_http() {
        for s in ALL {
            let sc = s.to_http();
            let back: &Status = sc.try_into().unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn usage_counts_match_the_contract() {
        assert_eq!(usage_counts(), (45, 2, 16));
    }
}
