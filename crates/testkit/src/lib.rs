//! Test scaffolding shared by roadwarden's test suites: a dev-dependency only, never part of the product.
//!
//! Owns: the pieces several crates' tests repeat — running one test body against both databases
//! ([`dual_test!`]), the minimal site file ([`site`]) and a TCP proxy that cuts a database off
//! ([`proxy::Proxy`]).
//! Must not: depend on any roadwarden crate (every crate may use it), hold a mock of a real component
//! (tests here run against real SQLite, PostgreSQL, GStreamer and ONNX Runtime), or be a normal dependency.

pub mod proxy;
pub mod site;

/// `dual_test!(body)`: the test body `async fn body(&Harness)` as two tests, `body::sqlite` and
/// `body::postgres`, each on a fresh harness, finished after the body returns (a failed body panics
/// before `finish`, leaving its temporary folder and PostgreSQL database for a look).
///
/// `dual_test!(body, Type)` names the harness type (as seen from the calling file's root); the default
/// is the calling file's `Harness`. The harness is the only contract:
///
/// ```ignore
/// impl Harness {
///     /// A fresh store of this dialect (`"sqlite"` or `"postgres"`) and what the body needs.
///     async fn start(dialect: &'static str) -> Harness;
///     /// Stops what it started and drops its PostgreSQL database.
///     async fn finish(self);
/// }
/// ```
///
/// The calling crate needs tokio (with `macros` and `rt-multi-thread`) as a dev-dependency.
#[macro_export]
macro_rules! dual_test {
    ($name:ident) => {
        $crate::dual_test!($name, Harness);
    };
    ($name:ident, $harness:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let h = super::$harness::start("sqlite").await;
                super::$name(&h).await;
                h.finish().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let h = super::$harness::start("postgres").await;
                super::$name(&h).await;
                h.finish().await;
            }
        }
    };
}
