//! The raw PostgreSQL ceiling for the bytes the devices pushed: rows of (document id, sequence,
//! change bytes) — the very change bytes generated for the load — inserted with
//! `INSERT … SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::bytea[])`, `--ceiling-batch`
//! rows per transaction, into a scratch table with a primary key on (document, sequence), from
//! one and from several connections at once. No JSON, no HTTP, no Automerge, no audit: the
//! most this database can take on this machine.

use sqlx::Connection;
use std::time::Instant;
use uuid::Uuid;

/// The scratch table (created and dropped per measurement).
const TABLE: &str = "loadgen_ceiling";

/// One measurement.
#[derive(Clone, Debug)]
pub struct Ceiling {
    pub connections: usize,
    pub rows: usize,
    pub batch: usize,
    pub seconds: f64,
    pub rows_per_second: f64,
    /// Mean bytes of `data` per row.
    pub mean_bytes: f64,
}

/// Inserts `rows` rows built from `changes` (cycled; each with its document) over
/// `connections` connections, `batch` rows per transaction.
pub async fn measure(
    db_url: &str,
    changes: &[(Uuid, Vec<u8>)],
    rows: usize,
    batch: usize,
    connections: usize,
) -> anyhow::Result<Ceiling> {
    anyhow::ensure!(!changes.is_empty(), "no change bytes to insert");
    let batch = batch.max(1);
    let connections = connections.max(1);
    let mut admin = sqlx::PgConnection::connect(db_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE IF EXISTS {TABLE}")))
        .execute(&mut admin)
        .await?;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE TABLE {TABLE} (doc_id uuid NOT NULL, seq bigint NOT NULL, data bytea NOT NULL, \
         PRIMARY KEY (doc_id, seq))"
    )))
    .execute(&mut admin)
    .await?;

    // Every batch is built before the clock starts: only the database is measured.
    type Columns = (Vec<Uuid>, Vec<i64>, Vec<Vec<u8>>);
    let mut per_connection: Vec<Vec<Columns>> = vec![Vec::new(); connections];
    let mut total_bytes = 0usize;
    let mut start = 0usize;
    let mut n = 0usize;
    while start < rows {
        let end = (start + batch).min(rows);
        let mut cols: Columns = (
            Vec::with_capacity(end - start),
            Vec::with_capacity(end - start),
            Vec::with_capacity(end - start),
        );
        for i in start..end {
            let (doc, data) = &changes[i % changes.len()];
            cols.0.push(*doc);
            cols.1.push(i64::try_from(i)?);
            cols.2.push(data.clone());
            total_bytes += data.len();
        }
        per_connection[n % connections].push(cols);
        n += 1;
        start = end;
    }
    let mut conns = Vec::with_capacity(connections);
    for _ in 0..connections {
        conns.push(sqlx::PgConnection::connect(db_url).await?);
    }

    let started = Instant::now();
    let tasks: Vec<_> = conns
        .into_iter()
        .zip(per_connection)
        .map(|(mut conn, batches)| {
            tokio::spawn(async move {
                for (docs, seqs, data) in batches {
                    let mut tx = conn.begin().await?;
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "INSERT INTO {TABLE} (doc_id, seq, data) \
                         SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::bytea[])"
                    )))
                    .bind(docs)
                    .bind(seqs)
                    .bind(data)
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                }
                conn.close().await?;
                Ok::<_, sqlx::Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let seconds = started.elapsed().as_secs_f64();

    let inserted: i64 =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {TABLE}")))
            .fetch_one(&mut admin)
            .await?;
    anyhow::ensure!(
        usize::try_from(inserted)? == rows,
        "the ceiling table holds {inserted} rows, not {rows}"
    );
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP TABLE {TABLE}")))
        .execute(&mut admin)
        .await?;
    admin.close().await?;
    Ok(Ceiling {
        connections,
        rows,
        batch,
        seconds,
        rows_per_second: rows as f64 / seconds.max(1e-9),
        mean_bytes: total_bytes as f64 / rows.max(1) as f64,
    })
}
