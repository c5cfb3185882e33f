//! The Autobahn TestSuite client: asks the fuzzing server how many cases it
//! has, runs each one by echoing every message back until the server closes,
//! then asks it to write its reports.
//!
//! ```text
//! kosoku -m fuzzingserver 127.0.0.1:9001 &
//! cargo run --release --example autobahn_client -- --url ws://127.0.0.1:9001
//! ```
//!
//! It offers permessage-deflate as Autobahn's own client does,
//! `permessage-deflate; client_no_context_takeover; client_max_window_bits`:
//! the fuzzing server's 13.x cases accept an offer only if it lets them set
//! `client_no_context_takeover` (13.2, 13.5, 13.6) or `client_max_window_bits`
//! (13.3 to 13.6), and run the case as UNIMPLEMENTED otherwise.
//!
//! `--cases 1-10,42` runs only those case numbers (1-based, in the server's
//! order); `--parallel N` runs N cases at once. `scripts/autobahn.sh` runs the whole suite against this client
//! and the server in `autobahn_server.rs`.
// A native program: on wasm32 it builds as an empty stub, so that
// `cargo clippy --target wasm32-unknown-unknown --all-targets` passes.
#![cfg_attr(target_arch = "wasm32", no_main)]
#![cfg(not(target_arch = "wasm32"))]

use std::ops::RangeInclusive;
use std::process::ExitCode;
use std::time::Duration;

use futures::StreamExt;

use tandem::extensions::PerMessageDeflate;
use tandem::{ClientBuilder, Error, Session, WebSocketOptions};

const AGENT: &str = "tandem";
/// Case 9.x sends messages of up to 16 MiB; leave room above that.
const MAX_MESSAGE_SIZE: usize = 64 << 20;
/// No single case may take longer than this: the suite's own limit for its
/// longest cases (12.3.16–18 and 13.x send 1000 messages of 128 KiB, seconds
/// on an idle machine, minutes on a loaded one).
const CASE_TIMEOUT: Duration = Duration::from_secs(480);

struct Args {
    url: String,
    cases: Option<Vec<RangeInclusive<usize>>>,
    /// How many cases run at once.
    parallel: usize,
}

fn usage() -> ! {
    eprintln!("usage: autobahn_client [--url ws://HOST:PORT] [--cases 1-10,42] [--parallel N]");
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut parsed = Args {
        url: "ws://127.0.0.1:9001".to_string(),
        cases: None,
        parallel: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--url", Some(value)) => parsed.url = value.trim_end_matches('/').to_string(),
            ("--parallel", Some(value)) => {
                parsed.parallel = value
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .unwrap_or_else(|| usage())
            }
            ("--cases", Some(value)) => {
                parsed.cases = Some(parse_ranges(&value).unwrap_or_else(|| usage()))
            }
            _ => usage(),
        }
    }
    parsed
}

/// Parses `1-10,42` into ranges of case numbers.
fn parse_ranges(spec: &str) -> Option<Vec<RangeInclusive<usize>>> {
    spec.split(',')
        .map(|part| {
            let (start, end) = part.split_once('-').unwrap_or((part, part));
            Some(start.trim().parse().ok()?..=end.trim().parse().ok()?)
        })
        .collect()
}

/// No keepalive pings: kosoku ends a case when its peer pings in the middle
/// of it (see examples/autobahn/settings.rs).
fn options() -> WebSocketOptions {
    WebSocketOptions {
        max_message_size: Some(MAX_MESSAGE_SIZE),
        ping_period: None,
        ..WebSocketOptions::default()
    }
}

async fn connect(url: &str) -> Result<Session, Error> {
    let deflate = PerMessageDeflate::new()
        .client_no_context_takeover(true)
        .client_max_window_bits(15);
    ClientBuilder::new(url)
        .options(options())
        .extension(deflate)
        .connect()
        .await
}

async fn case_count(base: &str) -> Result<usize, String> {
    let mut session = connect(&format!("{base}/getCaseCount"))
        .await
        .map_err(|e| format!("getCaseCount: {e}"))?;
    let frame = session
        .receive()
        .await
        .ok_or("getCaseCount: closed before sending the count")?;
    let text = frame
        .read_text()
        .ok_or("getCaseCount: not a text message")?;
    let count = text
        .trim()
        .parse()
        .map_err(|_| format!("getCaseCount: {text:?} is not a number"))?;
    // Let the server finish its close handshake before the first case.
    while session.receive().await.is_some() {}
    Ok(count)
}

/// Runs case `n`: echoes every message until the connection is over.
async fn run_case(base: &str, n: usize) -> Result<String, Error> {
    let mut session = connect(&format!("{base}/runCase?case={n}&agent={AGENT}")).await?;
    while let Some(frame) = session.receive().await {
        if session.send(frame).await.is_err() {
            break;
        }
    }
    Ok(session.close_reason().await.to_string())
}

async fn update_reports(base: &str) -> Result<(), Error> {
    let mut session = connect(&format!("{base}/updateReports?agent={AGENT}")).await?;
    while session.receive().await.is_some() {}
    session.close_reason().await;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "tandem=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = parse_args();
    let base = args.url.as_str();

    let count = match case_count(base).await {
        Ok(count) => count,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("{count} cases at {base}");

    let selected = |n: &usize| {
        args.cases
            .as_ref()
            .is_none_or(|ranges| ranges.iter().any(|r| r.contains(n)))
    };
    let cases: Vec<usize> = (1..=count).filter(selected).collect();
    let results = futures::stream::iter(cases)
        .map(|n| async move {
            let outcome = tokio::time::timeout(CASE_TIMEOUT, run_case(base, n)).await;
            (n, outcome)
        })
        .buffer_unordered(args.parallel)
        .collect::<Vec<_>>()
        .await;
    let mut errors = 0;
    for (n, outcome) in results {
        match outcome {
            Ok(Ok(reason)) => println!("case {n}/{count}: closed: {reason}"),
            Ok(Err(error)) => {
                errors += 1;
                println!("case {n}/{count}: error: {error}");
            }
            Err(_) => {
                errors += 1;
                println!("case {n}/{count}: error: timed out after {CASE_TIMEOUT:?}");
            }
        }
    }

    if let Err(error) = update_reports(base).await {
        eprintln!("error: updateReports: {error}");
        return ExitCode::FAILURE;
    }
    println!("reports updated ({errors} cases could not be run)");
    ExitCode::SUCCESS
}
