//! The entries. Meanings and careq's use are careq's own wording; reason phrases follow RFC 9110
//! and the RFCs that define the other codes.
use crate::{Status, Usage, Usage::*};

macro_rules! catalogue {
    ($( $name:ident = $code:literal, $reason:literal, $meaning:literal, $usage:expr; )*) => {
        $(
            #[doc = concat!("`", stringify!($code), " ", $reason, "`: ", $meaning)]
            pub const $name: Status = Status {
                code: $code,
                name: stringify!($name),
                reason: $reason,
                meaning: $meaning,
                usage: $usage,
            };
        )*
        /// Every catalogued code, in numeric order.
        pub static ALL: &[Status] = &[$($name),*];
    };
}

const NEVER_WEBDAV: Usage = Never("WebDAV semantics careq does not implement.");

catalogue! {
    HTTP_100_CONTINUE = 100, "Continue",
        "The server has seen the request head and the client may send the body.",
        Stack("The client sent `Expect: 100-continue` on a request whose body careq goes on to read; hyper sends 100 when the body is first read.");
    HTTP_101_SWITCHING_PROTOCOLS = 101, "Switching Protocols",
        "The server agrees to change to the protocol named in `Upgrade`.",
        Produced("`GET /v1/clinics/{id}/queue/live` with a WebSocket upgrade.");
    HTTP_102_PROCESSING = 102, "Processing",
        "An interim WebDAV answer saying a long request is still being worked on.",
        Never("careq's HTTP stack sends no interim answers besides 100, and long work is handed to jobs (202) instead.");
    HTTP_103_EARLY_HINTS = 103, "Early Hints",
        "An interim answer carrying headers (usually `Link` preloads) ahead of the final one.",
        Never("careq serves an API, not pages with sub-resources to preload, and its stack sends no interim answers besides 100.");
    HTTP_200_OK = 200, "OK",
        "The request succeeded and the body carries the result.",
        Produced("A GET, PUT, PATCH or action succeeded; single resources carry `ETag`.");
    HTTP_201_CREATED = 201, "Created",
        "The request created a new resource, named by `Location`.",
        Produced("A POST created a resource; the answer carries `Location` and `ETag`.");
    HTTP_202_ACCEPTED = 202, "Accepted",
        "The request was taken on for processing that has not finished yet.",
        Produced("An export job was accepted; `Location` names the job and `Retry-After` says when to look.");
    HTTP_203_NON_AUTHORITATIVE_INFORMATION = 203, "Non-Authoritative Information",
        "A transforming proxy changed the origin's successful answer.",
        Never("Only a proxy that alters content sends it; careq is the origin.");
    HTTP_204_NO_CONTENT = 204, "No Content",
        "The request succeeded and there is deliberately no body.",
        Produced("A DELETE succeeded, `call-next` found nobody waiting, or OPTIONS was asked; never with a body or `Content-Length`.");
    HTTP_205_RESET_CONTENT = 205, "Reset Content",
        "The request succeeded and the client should clear the form it came from.",
        Never("careq has no forms for a user agent to reset.");
    HTTP_206_PARTIAL_CONTENT = 206, "Partial Content",
        "The body is only the byte ranges the client asked for.",
        Produced("GET of an export file with a satisfiable `Range` (and a matching `If-Range`); carries `Content-Range`.");
    HTTP_207_MULTI_STATUS = 207, "Multi-Status",
        "The body holds a separate status for each of several operations.",
        Produced("`POST /v1/patients/batch`: one result per item.");
    HTTP_208_ALREADY_REPORTED = 208, "Already Reported",
        "Inside a WebDAV multi-status, members already listed are not repeated.",
        NEVER_WEBDAV;
    HTTP_226_IM_USED = 226, "IM Used",
        "The body is the result of instance manipulations (delta encoding) applied to the resource.",
        Never("careq does not implement delta encoding (RFC 3229).");
    HTTP_300_MULTIPLE_CHOICES = 300, "Multiple Choices",
        "Several representations match and the client should pick one.",
        Produced("`GET /v1/patients/lookup?phone=…` matched several patients; the body and `Link` headers list them.");
    HTTP_301_MOVED_PERMANENTLY = 301, "Moved Permanently",
        "The resource has a new permanent URI, given in `Location`.",
        Produced("GET of a patient merged into another, or of a path with a trailing slash; `Location` gives the canonical URI.");
    HTTP_302_FOUND = 302, "Found",
        "The resource is for now found at another URI, given in `Location`.",
        Produced("`GET /v1/clinics/{id}/queue/now-serving` points at the ticket called most recently.");
    HTTP_303_SEE_OTHER = 303, "See Other",
        "The answer to this request is found by a GET on another URI.",
        Produced("`GET /v1/jobs/{id}` once the job has finished; `Location` is the result.");
    HTTP_304_NOT_MODIFIED = 304, "Not Modified",
        "The client's cached copy is still current, so no body is sent.",
        Produced("`If-None-Match` or `If-Modified-Since` matched on a GET; carries `ETag`, no body.");
    HTTP_305_USE_PROXY = 305, "Use Proxy",
        "Deprecated: the resource had to be reached through a proxy.",
        Never("Deprecated by RFC 7231 for security reasons.");
    HTTP_306_RESERVED = 306, "(Unused)",
        "Once `Switch Proxy`; the number is reserved and has no meaning now.",
        Never("Reserved and unused since RFC 7231.");
    HTTP_307_TEMPORARY_REDIRECT = 307, "Temporary Redirect",
        "Repeat the same request (same method and body) at the URI in `Location`, for now.",
        Produced("`GET /v1/patients/lookup?phone=…` matched exactly one patient.");
    HTTP_308_PERMANENT_REDIRECT = 308, "Permanent Redirect",
        "Repeat the same request (same method and body) at the URI in `Location`, from now on.",
        Produced("An unversioned API path (`/patients/…`, `/patient/{id}`, `/appointments…`) is redirected to its `/v1` path.");
    HTTP_400_BAD_REQUEST = 400, "Bad Request",
        "The request is malformed and cannot be understood.",
        Produced("Unparsable JSON, a query parameter or header of the wrong form, a bad cursor, or a missing or repeated `Host`.");
    HTTP_401_UNAUTHORIZED = 401, "Unauthorized",
        "The request lacks valid credentials for the target resource.",
        Produced("No, unknown, expired or revoked bearer token, or a wrong login; carries `WWW-Authenticate: Bearer`.");
    HTTP_402_PAYMENT_REQUIRED = 402, "Payment Required",
        "Reserved for future use by payment schemes.",
        Never("careq has no billing.");
    HTTP_403_FORBIDDEN = 403, "Forbidden",
        "The server understood who is asking and refuses to let them do this.",
        Produced("An authenticated user's role does not allow the operation (e.g. a receptionist deleting a patient).");
    HTTP_404_NOT_FOUND = 404, "Not Found",
        "There is no current representation of the target resource.",
        Produced("No such resource or route, or a resource in a clinic the caller does not belong to (existence is hidden).");
    HTTP_405_METHOD_NOT_ALLOWED = 405, "Method Not Allowed",
        "The method is known but the target resource does not support it.",
        Produced("A method HTTP defines is sent to a path that does not support it; carries `Allow` and a problem body.");
    HTTP_406_NOT_ACCEPTABLE = 406, "Not Acceptable",
        "No representation matches the client's `Accept` header.",
        Produced("`Accept` names nothing careq can send; the problem lists the available types.");
    HTTP_407_PROXY_AUTHENTICATION_REQUIRED = 407, "Proxy Authentication Required",
        "The client must authenticate itself with a proxy.",
        Never("careq is not a proxy.");
    HTTP_408_REQUEST_TIMEOUT = 408, "Request Timeout",
        "The server gave up waiting for the client to finish sending the request.",
        Produced("The body did not arrive within `CAREQ_CLIENT_TIMEOUT_MS`; carries `Connection: close`. Slow headers get the connection closed.");
    HTTP_409_CONFLICT = 409, "Conflict",
        "The request conflicts with the current state of the resource.",
        Produced("A duplicate patient, a double-booked slot, an invalid ticket transition, or an idempotency key still in flight; the problem names the conflicting resource.");
    HTTP_410_GONE = 410, "Gone",
        "The resource existed and has been removed on purpose, for good.",
        Produced("GET, PUT or PATCH of a deleted patient, appointment or user; an export file past its retention, or withdrawn because a patient it names was sealed, deleted or merged.");
    HTTP_411_LENGTH_REQUIRED = 411, "Length Required",
        "The server needs a `Content-Length` for this request.",
        Produced("`POST /v1/patients/batch` sent chunked without `Content-Length`.");
    HTTP_412_PRECONDITION_FAILED = 412, "Precondition Failed",
        "A condition in the request headers, such as `If-Match`, did not hold.",
        Produced("`If-Match` does not match the current `ETag` (a lost update was prevented); carries the current `ETag`.");
    HTTP_413_REQUEST_ENTITY_TOO_LARGE = 413, "Content Too Large",
        "The request body is larger than the server will take.",
        Produced("The body is over `CAREQ_BODY_LIMIT_BYTES`, or a batch has more than `CAREQ_BATCH_MAX_ITEMS` items.");
    HTTP_414_REQUEST_URI_TOO_LONG = 414, "URI Too Long",
        "The request target is longer than the server will interpret.",
        Produced("The request target is over `CAREQ_URI_MAX_BYTES`.");
    HTTP_415_UNSUPPORTED_MEDIA_TYPE = 415, "Unsupported Media Type",
        "The body's media type is not one the resource accepts.",
        Produced("A body with a media type the endpoint does not take; carries `Accept-Post` (POST) or `Accept-Patch` (PATCH), never `Accept`, a request header.");
    HTTP_416_REQUESTED_RANGE_NOT_SATISFIABLE = 416, "Range Not Satisfiable",
        "None of the requested byte ranges lies inside the representation.",
        Produced("A `Range` outside an export file; carries `Content-Range: bytes */LENGTH`.");
    HTTP_417_EXPECTATION_FAILED = 417, "Expectation Failed",
        "The server cannot meet the request's `Expect` header.",
        Produced("An `Expect` header with anything but `100-continue`.");
    HTTP_421_MISDIRECTED_REQUEST = 421, "Misdirected Request",
        "The request reached a server that will not answer for that host.",
        Produced("`Host` is not in `CAREQ_ALLOWED_HOSTS` when that list is set (a DNS-rebinding guard).");
    HTTP_422_UNPROCESSABLE_ENTITY = 422, "Unprocessable Content",
        "The body is well formed but breaks the rules of the resource.",
        Produced("A well-formed body breaks a rule (date of birth in the future, unknown enum value, appointment in the past, idempotency key reused with another body); the problem has `errors`.");
    HTTP_423_LOCKED = 423, "Locked",
        "The resource is locked against this change.",
        Produced("A ticket is issued on a queue closed for the day, or a patient under legal hold (sealed) is written to, directly or through an appointment, a ticket or a notification.");
    HTTP_424_FAILED_DEPENDENCY = 424, "Failed Dependency",
        "The operation was not done because another it depended on failed.",
        Produced("Inside an atomic `POST /v1/patients/batch`: an item that was fine but rolled back because another failed.");
    HTTP_425_TOO_EARLY = 425, "Too Early",
        "The server will not risk processing a request that might be replayed (TLS early data).",
        Never("careq does not accept TLS early data.");
    HTTP_426_UPGRADE_REQUIRED = 426, "Upgrade Required",
        "The client must switch to the protocol named in `Upgrade`.",
        Produced("A plain GET on the WebSocket endpoint; carries `Upgrade: websocket`.");
    HTTP_428_PRECONDITION_REQUIRED = 428, "Precondition Required",
        "The server requires the request to be conditional.",
        Produced("PUT or PATCH without `If-Match`.");
    HTTP_429_TOO_MANY_REQUESTS = 429, "Too Many Requests",
        "The client has sent too many requests in a given time.",
        Produced("Too many failed logins per user and IP, too many sign-ins from one address being checked at once, too many requests per token, or a second concurrent export; carries `Retry-After`.");
    HTTP_431_REQUEST_HEADER_FIELDS_TOO_LARGE = 431, "Request Header Fields Too Large",
        "The request's header fields are too large to process.",
        Stack("Header fields too large for the HTTP stack. hyper's and h2's buffer limits are approximate (64 KiB and up, empty body), so careq also applies one exact limit on HTTP/1.1 and HTTP/2 alike: over 32 KiB of header fields is a 431 problem.");
    HTTP_451_UNAVAILABLE_FOR_LEGAL_REASONS = 451, "Unavailable For Legal Reasons",
        "Access is refused because of a legal demand.",
        Produced("A non-admin's GET of a patient record sealed by an admin, or of an appointment or ticket of that patient; carries `Link: <…>; rel=\"blocked-by\"`.");
    HTTP_500_INTERNAL_SERVER_ERROR = 500, "Internal Server Error",
        "The server met an unexpected condition.",
        Produced("An unexpected fault, a panic included, turned into a problem with `request_id` and no internals.");
    HTTP_501_NOT_IMPLEMENTED = 501, "Not Implemented",
        "The server does not support the functionality needed, such as the method.",
        Produced("A method HTTP does not define (e.g. `PROPFIND`, `FOO`), or `notify` with no notifier configured.");
    HTTP_502_BAD_GATEWAY = 502, "Bad Gateway",
        "An upstream server the server called answered with an error or garbage.",
        Produced("The configured notifier answered with an error status or an unreadable answer.");
    HTTP_503_SERVICE_UNAVAILABLE = 503, "Service Unavailable",
        "The server cannot handle the request right now; it may later.",
        Produced("Maintenance mode, the database unreachable or busy past its timeout, load shedding, or more sign-ins (from many addresses) than the password-hashing gate queues; carries `Retry-After`.");
    HTTP_504_GATEWAY_TIMEOUT = 504, "Gateway Timeout",
        "An upstream server the server called did not answer in time.",
        Produced("The notifier did not answer within `CAREQ_NOTIFY_TIMEOUT_MS`.");
    HTTP_505_HTTP_VERSION_NOT_SUPPORTED = 505, "HTTP Version Not Supported",
        "The server does not support the HTTP version of the request.",
        Produced("A request line with a version other than HTTP/1.0 or HTTP/1.1.");
    HTTP_506_VARIANT_ALSO_NEGOTIATES = 506, "Variant Also Negotiates",
        "Transparent content negotiation found a misconfigured variant.",
        Never("careq does not do transparent content negotiation (RFC 2295).");
    HTTP_507_INSUFFICIENT_STORAGE = 507, "Insufficient Storage",
        "The server cannot store what it needs to complete the request.",
        Produced("The database cannot grow (disk full or `CAREQ_DB_MAX_BYTES` reached); nothing partial is stored.");
    HTTP_508_LOOP_DETECTED = 508, "Loop Detected",
        "A WebDAV operation ran into an infinite loop of bindings.",
        NEVER_WEBDAV;
    HTTP_509_BANDWIDTH_LIMIT_EXCEEDED = 509, "Bandwidth Limit Exceeded",
        "A non-standard code some hosting software used for traffic quotas.",
        Never("Not defined by any RFC; careq sends 429 for rate limits.");
    HTTP_510_NOT_EXTENDED = 510, "Not Extended",
        "The request lacked an extension the server required (RFC 2774).",
        Never("RFC 2774 is obsolete (historic) and careq requires no extensions.");
    HTTP_511_NETWORK_AUTHENTICATION_REQUIRED = 511, "Network Authentication Required",
        "The client must log in to the network, as with a captive portal.",
        Never("Only intercepting captive portals send it, never an origin server.");
}
