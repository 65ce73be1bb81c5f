//! Test scaffolding shared by roadwarden's test suites: a dev-dependency only, never part of the product.
//!
//! Owns: the pieces several crates' tests repeat — running one test body against both databases
//! ([`dual_test!`], [`DualFixture`]) and the minimal site file ([`site`]).
//! Must not: depend on any roadwarden crate (every crate may use it), hold a mock of a real component
//! (tests here run against real SQLite, PostgreSQL, GStreamer and ONNX Runtime), or be a normal dependency.

pub mod site;

use std::future::Future;

/// The two databases every store-facing test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    /// An SQLite file in a temporary folder (the embedded default).
    Sqlite,
    /// A fresh database on the local PostgreSQL server (127.0.0.1:5432, started before every session and CI).
    Postgres,
}

impl Database {
    /// `"sqlite"` or `"postgres"`, the names the test fixtures take.
    pub fn name(self) -> &'static str {
        match self {
            Database::Sqlite => "sqlite",
            Database::Postgres => "postgres",
        }
    }
}

/// What a test suite needs set up on one database before a test body runs, and torn down after it.
pub trait DualFixture: Sized {
    /// Sets up on `db` (creates the database, the data folder, starts a server...).
    fn start(db: Database) -> impl Future<Output = Self>;
    /// Tears down after the body returned (drops a PostgreSQL database, stops a server...).
    fn finish(self) -> impl Future<Output = ()> {
        async {}
    }
}

/// `dual_test!(body with Fixture)` turns `async fn body(f: &Fixture)` into two tests, `body::sqlite` and
/// `body::postgres`, each setting up `Fixture` on its database, running the body and tearing down.
/// The fixture type is named as seen from inside the generated module (`super::Harness`, or a
/// `crate::` path). The calling crate needs tokio (with `macros` and `rt-multi-thread`) as a dev-dependency.
#[macro_export]
macro_rules! dual_test {
    ($name:ident with $fixture:ty) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let f = <$fixture as $crate::DualFixture>::start($crate::Database::Sqlite).await;
                super::$name(&f).await;
                $crate::DualFixture::finish(f).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let f = <$fixture as $crate::DualFixture>::start($crate::Database::Postgres).await;
                super::$name(&f).await;
                $crate::DualFixture::finish(f).await;
            }
        }
    };
}
