//! Creating and dropping whole PostgreSQL databases: for tests that need a
//! database of their own and for the bench.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::{StoreError, redact_url};

fn check_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty()
        || name.len() > 63
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(StoreError::Invalid(format!(
            "`{name}` is not a plain database name"
        )));
    }
    Ok(())
}

async fn admin(admin_url: &str) -> Result<sqlx::PgConnection, StoreError> {
    let connect = |source: sqlx::Error| StoreError::Connect {
        url: redact_url(admin_url),
        source,
    };
    PgConnectOptions::from_str(admin_url)
        .map_err(connect)?
        .connect()
        .await
        .map_err(connect)
}

/// Creates database `name` through `admin_url` and returns a URL for it.
pub async fn create_database(admin_url: &str, name: &str) -> Result<String, StoreError> {
    check_name(name)?;
    let mut c = admin(admin_url).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .await?;
    c.close().await?;
    Ok(database_url(admin_url, name))
}

/// Drops database `name` (closing its sessions) if it exists.
pub async fn drop_database(admin_url: &str, name: &str) -> Result<(), StoreError> {
    check_name(name)?;
    let mut c = admin(admin_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut c)
        .await?;
    c.close().await?;
    Ok(())
}

/// `admin_url` with its database replaced by `name`.
pub fn database_url(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (admin_url, None),
    };
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}
