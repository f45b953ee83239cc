//! `sop-loadgen`: the sync benchmark of issue #4 — a load generator, not a test.
//!
//! One run:
//! 1. creates a fresh PostgreSQL database (`--pg-admin-url`), seeds the demo catalog with
//!    `sop-server seed-demo` and starts the real `sop-server` binary on it (free port, temporary
//!    data directory), or targets `--url`;
//! 2. mints a token per simulated device (`sop-server token`), creates each device's patient
//!    draft through `/app/create-case`, and generates the devices' pushes (Automerge changes made
//!    with the core's typed setters, each device with its own actor) before the clock starts;
//! 3. lets every device push concurrently over `/sync/v1/push` for `--duration`, recording
//!    latency and per-operation answers, while sampling CPU use and the database's backends;
//! 4. measures the raw PostgreSQL ceiling for inserting the same change bytes (`UNNEST`, 1 and 4
//!    connections, `--ceiling-batch` rows per transaction and one push's size) in the same
//!    database;
//! 5. measures a catch-up: a device 10k changes behind pulls until `more = false`;
//! 6. prints a Markdown report (and writes it to `--report`), then stops the server and drops
//!    the database.
//!
//! `docs/PERFORMANCE.md` records the results. Build in release:
//! `cargo build --release -p sop-server --bins && target/release/sop-loadgen`.

// The modules live in `loadgen/` beside this file (a binary's root resolves modules from its
// own directory, hence the paths).
#[path = "loadgen/catchup.rs"]
mod catchup;
#[path = "loadgen/ceiling.rs"]
mod ceiling;
#[path = "loadgen/cli.rs"]
mod cli;
#[path = "loadgen/device.rs"]
mod device;
#[path = "loadgen/floor.rs"]
mod floor;
#[path = "loadgen/load.rs"]
mod load;
#[path = "loadgen/probe.rs"]
mod probe;
#[path = "loadgen/report.rs"]
mod report;
#[path = "loadgen/setup.rs"]
mod setup;

use anyhow::Context;
use clap::Parser;
use serde_json::json;
use sop_core::case::Intake;
use sop_core::ids::CaseId;
use sqlx::Connection;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The most changes generated per device before the run.
const MAX_PREGEN_CHANGES: usize = 10_000;

/// Devices whose pushes are applied in-process for the Automerge floor.
const FLOOR_DEVICES: usize = 20;

/// Pushes per device applied for the Automerge floor on fresh documents.
const FLOOR_PUSHES_PER_DEVICE: usize = 10;

/// Change blobs each device keeps for the raw-ceiling rows.
const KEEP_CHANGES_PER_DEVICE: usize = 200;

#[tokio::main]
async fn main() -> ExitCode {
    let args = cli::Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sop-loadgen: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// What this run created and must clean up.
#[derive(Default)]
struct Resources {
    db: Option<setup::ScratchDb>,
    server: Option<setup::ServerProcess>,
    /// A data directory this run created.
    temp_dir: Option<PathBuf>,
}

async fn run(args: cli::Args) -> anyhow::Result<()> {
    let mut resources = Resources::default();
    // Ctrl-C or SIGTERM stop the run, and the cleanup below still happens.
    let result = tokio::select! {
        r = measure(&args, &mut resources) => r,
        signal = interrupted() => Err(anyhow::anyhow!("interrupted by {signal}")),
    };
    if let Some(mut server) = resources.server.take() {
        server.stop();
        if args.keep {
            eprintln!("server log kept at {}", server.log.display());
        }
    }
    if let Some(db) = resources.db.take() {
        if args.keep {
            eprintln!("database kept: {}", db.url);
        } else if let Err(e) = db.drop_db().await {
            eprintln!("sop-loadgen: could not drop the scratch database: {e:#}");
        }
    }
    if let Some(dir) = resources.temp_dir.take() {
        if args.keep {
            eprintln!("data directory kept: {}", dir.display());
        } else {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    let report = result?;
    let text = report.render();
    println!("{text}");
    if let Some(path) = &args.report {
        std::fs::write(path, &text).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}

/// Resolves when the process receives Ctrl-C or SIGTERM (never, if neither can be listened to).
async fn interrupted() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                _ = tokio::signal::ctrl_c() => "Ctrl-C",
                _ = term.recv() => "SIGTERM",
            },
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                "Ctrl-C"
            }
        }
    }
    #[cfg(not(unix))]
    {
        match tokio::signal::ctrl_c().await {
            Ok(()) => "Ctrl-C",
            Err(_) => std::future::pending::<&'static str>().await,
        }
    }
}

fn progress(msg: &str) {
    eprintln!("sop-loadgen: {msg}");
}

async fn measure(args: &cli::Args, res: &mut Resources) -> anyhow::Result<report::Report> {
    anyhow::ensure!(args.devices > 0, "--devices must be at least 1");
    anyhow::ensure!(
        args.batch > args.commands,
        "--batch must be larger than --commands (a push carries content changes)"
    );
    let bin = setup::server_bin(args.server_bin.as_deref())?;
    let scratch = setup::ScratchDb::create(&args.pg_admin_url).await?;
    let scratch_url = scratch.url.clone();
    res.db = Some(scratch);
    let mut rep = report::Report {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        devices: args.devices,
        changes_per_push: args.batch - args.commands,
        commands_per_push: args.commands,
        chars_per_change: args.chars_per_change,
        think: args.think,
        ..report::Report::default()
    };

    // The server, and the database whose backends are sampled.
    let (data_dir, base_url, server_db) = match &args.url {
        Some(url) => {
            let dir = args
                .data_dir
                .clone()
                .context("--url needs --data-dir (clap enforces it)")?;
            if let Some(db) = &args.database_url {
                setup::seed_demo(&bin, &dir, db)?;
            }
            rep.target = format!("{url} (started elsewhere)");
            (dir, url.clone(), args.database_url.clone())
        }
        None => {
            let dir =
                std::env::temp_dir().join(format!("sop-loadgen-{}", uuid::Uuid::new_v4().simple()));
            std::fs::create_dir_all(&dir)?;
            res.temp_dir = Some(dir.clone());
            progress("seeding the demo catalog and starting sop-server");
            setup::seed_demo(&bin, &dir, &scratch_url)?;
            let server =
                setup::ServerProcess::start(&bin, &dir, &scratch_url, &args.server_log).await?;
            let url = server.base_url.clone();
            progress(&format!(
                "sop-server pid {} at {url}, database {}",
                server.pid(),
                scratch_url
            ));
            rep.target = format!(
                "`{}` started by the run on a fresh PostgreSQL database, `RUST_LOG={}`",
                bin.display(),
                args.server_log
            );
            res.server = Some(server);
            (dir, url, Some(scratch_url.clone()))
        }
    };
    let server_pid = res.server.as_ref().map(setup::ServerProcess::pid);
    let postgres = {
        let mut c = sqlx::PgConnection::connect(&scratch_url).await?;
        let v: String = sqlx::query_scalar("SHOW server_version")
            .fetch_one(&mut c)
            .await?;
        c.close().await?;
        format!("PostgreSQL {v}")
    };
    rep.machine = report::Machine::probe(postgres);
    let api = setup::Api::new(&base_url, args.devices + 8)?;

    // Patients, tokens and drafts.
    progress("minting tokens");
    let tag = &uuid::Uuid::new_v4().simple().to_string()[..6];
    let mut subs: Vec<String> = (0..args.devices)
        .map(|i| format!("LG{tag}-P{i:04}"))
        .collect();
    subs.push(format!("LG{tag}-BASELINE"));
    subs.push(format!("LG{tag}-CATCHUP"));
    let tokens = {
        let (bin, dir, subs) = (bin.clone(), data_dir.clone(), subs.clone());
        tokio::task::spawn_blocking(move || setup::mint_tokens(&bin, &dir, &subs, "snr_usr"))
            .await??
    };
    let demo = sop_server::seed::demo();
    let rt = demo
        .review_types
        .first()
        .context("the demo catalog has review types")?
        .rt_id;
    let dc = demo
        .categories
        .first()
        .context("the demo catalog has categories")?
        .dc_id;
    let create_draft = |token: String, history: String| {
        let api = api.clone();
        async move {
            let case_id = CaseId::new_v7();
            let _: serde_json::Value = api
                .post(
                    "/app/create-case",
                    &token,
                    &json!({"case_id": case_id, "rt_id": rt, "dc_id": dc, "medical_history": history}),
                )
                .await?;
            let initial = Intake {
                medical_history: history,
                ..Intake::default()
            };
            anyhow::Ok((case_id, initial))
        }
    };
    progress("creating the drafts");
    let mut devices = Vec::with_capacity(args.devices);
    for (i, token) in tokens.iter().take(args.devices).enumerate() {
        let (case_id, initial) = create_draft(token.clone(), format!("Device {i}: ")).await?;
        let typist = device::Typist::new(
            case_id,
            &initial,
            device::chars_per_change(args.chars_per_change, i),
            KEEP_CHANGES_PER_DEVICE,
            device::TRIM_CHARS * i / args.devices.max(1),
        )?;
        devices.push(load::LoadDevice {
            token: token.clone(),
            typist,
            pregen: VecDeque::new(),
            answered: (i < FLOOR_DEVICES).then(Vec::new),
        });
    }

    // The baseline device: like the others, pushing alone.
    let baseline_token = tokens
        .get(args.devices)
        .context("a baseline token")?
        .clone();
    let (case_id, initial) =
        create_draft(baseline_token.clone(), "Baseline device: ".to_owned()).await?;
    devices.push(load::LoadDevice {
        token: baseline_token,
        typist: device::Typist::new(case_id, &initial, args.chars_per_change, 0, 0)?,
        pregen: VecDeque::new(),
        answered: None,
    });

    // Pushes generated before the clock starts, on all cores.
    let (changes, commands) = (args.batch - args.commands, args.commands);
    // At most MAX_PREGEN_CHANGES changes per device: a run with few devices generates the rest
    // while pushing (reported).
    let per_device = (args.pregen_rate as f64 * args.duration.as_secs_f64()
        / (args.devices * (args.batch - args.commands)) as f64)
        .ceil()
        .min((MAX_PREGEN_CHANGES / (args.batch - args.commands)) as f64)
        as usize;
    progress(&format!(
        "generating {per_device} pushes per device ({} ops each)",
        args.batch
    ));
    let started = Instant::now();
    let workers = std::thread::available_parallelism().map_or(2, usize::from);
    let mut chunks: Vec<Vec<load::LoadDevice>> = (0..workers).map(|_| Vec::new()).collect();
    for (i, d) in devices.into_iter().enumerate() {
        chunks[i % workers].push(d);
    }
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|mut chunk| {
            tokio::task::spawn_blocking(move || {
                for d in &mut chunk {
                    for _ in 0..per_device {
                        d.pregen.push_back(d.typist.batch(changes, commands)?);
                    }
                }
                anyhow::Ok(chunk)
            })
        })
        .collect();
    let mut devices = Vec::new();
    for h in handles {
        devices.extend(h.await??);
    }
    // The baseline device was created last, so its case id (a v7) is the largest.
    devices.sort_by_key(|d| d.typist.case_id);
    let baseline_device = devices.pop().context("the baseline device")?;
    rep.pregen_seconds = started.elapsed().as_secs_f64();
    rep.pregen_pushes = devices.iter().map(|d| d.pregen.len()).sum();
    let (body_bytes, bodies) = devices
        .iter()
        .flat_map(|d| d.pregen.iter())
        .fold((0usize, 0usize), |(b, n), batch| {
            (b + batch.body.len(), n + 1)
        });
    rep.mean_body_bytes = body_bytes as f64 / bodies.max(1) as f64;
    let kept: Vec<(uuid::Uuid, Vec<u8>)> = devices
        .iter()
        .flat_map(|d| {
            let doc = d.typist.doc_id().0;
            d.typist.kept_changes.iter().map(move |c| (doc, c.clone()))
        })
        .collect();
    rep.mean_change_bytes =
        kept.iter().map(|(_, c)| c.len()).sum::<usize>() as f64 / kept.len().max(1) as f64;

    // The CRDT floor on fresh documents, before the load consumes the pushes.
    progress("measuring the Automerge floor (the same changes applied in-process, one core)");
    rep.floor = Some(floor::measure(
        devices[..devices.len().min(FLOOR_DEVICES)]
            .iter()
            .map(|d| (&d.typist, d.pregen.iter().take(FLOOR_PUSHES_PER_DEVICE))),
    )?);

    // The baseline: one device alone.
    if !args.baseline.is_zero() {
        progress(&format!(
            "baseline: one device pushing alone for {:?}",
            args.baseline
        ));
        let config = load::LoadConfig {
            duration: args.baseline,
            warmup: args.baseline / 5,
            think: Duration::ZERO,
            changes,
            commands,
        };
        let before = probe::CpuClock::now(server_pid);
        let (_, result) = load::run(&api, vec![baseline_device], config).await;
        rep.baseline_cpu = Some(before.since(&probe::CpuClock::now(server_pid)));
        rep.baseline = Some(load::summarize(&result));
    }

    // The load.
    progress(&format!(
        "{} devices pushing for {:?}",
        args.devices, args.duration
    ));
    let sampler = match &server_db {
        Some(db) => Some(probe::PgSampler::start(db, Duration::from_millis(20)).await?),
        None => None,
    };
    let config = load::LoadConfig {
        duration: args.duration,
        warmup: args.warmup,
        think: args.think,
        changes,
        commands,
    };
    // The CPU window is the measured window of the load (after the warm-up).
    let cpu_window = {
        let warmup = args.warmup.min(args.duration);
        let window_len = args.duration.saturating_sub(warmup);
        tokio::spawn(async move {
            tokio::time::sleep(warmup).await;
            let a = probe::CpuClock::now(server_pid);
            tokio::time::sleep(window_len).await;
            let b = probe::CpuClock::now(server_pid);
            a.since(&b)
        })
    };
    let load_before = probe::load_average();
    let (devices, result) = load::run(&api, devices, config).await;
    rep.load_average = (load_before, probe::load_average());
    rep.cpu = cpu_window.await.ok();
    if let Some(s) = sampler {
        rep.activity = Some(s.finish().await?);
    }
    rep.summary = load::summarize(&result);
    rep.load = result;
    progress(&format!(
        "sustained {:.0} applied ops/s, p99 {:?}",
        rep.summary.sustained_ops, rep.summary.p99
    ));
    if let Some(db) = &server_db {
        rep.tables = Some(tables(db).await?);
    }

    // The CRDT floor on the run's own documents: what the server applied, replayed.
    progress("measuring the Automerge floor again, on the documents as the load grew them");
    rep.floor_run = Some(
        floor::measure(
            devices
                .iter()
                .filter_map(|d| Some((&d.typist, d.answered.as_ref()?))),
        )
        .map_err(|e| format!("{e:#}")),
    );
    drop(devices);

    // The raw ceiling, with the server idle: in `--ceiling-batch` transactions, and in
    // transactions of one push's size (the server commits once per push).
    let mut batches = vec![args.ceiling_batch];
    if args.batch != args.ceiling_batch {
        batches.push(args.batch);
    }
    for batch in batches {
        for connections in [1, 4] {
            progress(&format!(
                "raw PostgreSQL ceiling, {batch} rows per transaction, {connections} connection(s)"
            ));
            rep.ceilings.push(
                ceiling::measure(&scratch_url, &kept, args.ceiling_rows, batch, connections)
                    .await?,
            );
        }
    }

    // Catch-up.
    if args.catchup_changes > 0 {
        progress(&format!(
            "catch-up: {} changes by another device, then a pull sequence",
            args.catchup_changes
        ));
        let token = tokens.last().context("a catch-up token")?.clone();
        let outcome = async {
            let initial = catchup::initial_intake();
            let (case_id, initial) = create_draft(token.clone(), initial.medical_history).await?;
            // Keep the text well under the text limit (50 000 characters).
            let chars = args
                .chars_per_change
                .min(40_000 / args.catchup_changes.max(1))
                .max(1);
            let mut writer = device::Typist::new(case_id, &initial, chars, 0, 0)?;
            catchup::run(&api, &token, &mut writer, args.catchup_changes, args.batch).await
        }
        .await;
        rep.catchup = Some(outcome.map_err(|e| format!("{e:#}")));
    }
    Ok(rep)
}

/// Row counts of the server's tables.
async fn tables(db_url: &str) -> anyhow::Result<report::Tables> {
    let mut c = sqlx::PgConnection::connect(db_url).await?;
    let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
    let t = report::Tables {
        sync_ops_applied: count(
            "SELECT count(*) FROM sync_ops WHERE result->>'outcome' = 'applied'",
        )
        .fetch_one(&mut c)
        .await?,
        feed_rows: count("SELECT count(*) FROM feed").fetch_one(&mut c).await?,
        audit_rows: count("SELECT count(*) FROM audit_log")
            .fetch_one(&mut c)
            .await?,
    };
    c.close().await?;
    Ok(t)
}
