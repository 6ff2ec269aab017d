//! `cosync replay ID|--all`: puts dead letters (events that failed every
//! attempt) back in the queue with a fresh attempt count. The workers of a
//! running `cosync serve` look for due events continuously, so they run them
//! at once; without one, they wait for the next `cosync serve`.

use serde_json::json;

use super::Outcome;
use super::args::{OutputFormat, ReplayArgs};
use super::service_setup;
use super::table;
use crate::store::{Event, EventState, Store};

/// What `replay` tells about who runs the re-queued events.
const PICKUP: &str = "a running `cosync serve` picks them up from the queue right away (its workers poll it); if none is running, they run when `cosync serve` next starts";

/// Runs `cosync replay`.
pub(super) fn run(args: &ReplayArgs, color: bool) -> Outcome {
    let store = match service_setup::open_existing_state(&args.target, color) {
        Ok(s) => s,
        Err(o) => return o,
    };
    let dead = match dead_letters(&store, args) {
        Ok(d) => d,
        Err((message, outcome)) => {
            eprintln!("error: {message}");
            return outcome;
        }
    };
    let mut replayed: Vec<Event> = Vec::new();
    for event in dead {
        match store.replay(Some(event.id)) {
            Ok(1) => replayed.push(event),
            // Replayed by someone else in the meantime.
            Ok(_) => {}
            Err(e) => {
                eprintln!("error: event {}: {e}", event.id);
                return Outcome::Usage;
            }
        }
    }
    match args.format {
        OutputFormat::Json => {
            let ids: Vec<i64> = replayed.iter().map(|e| e.id).collect();
            let out = json!({
                "replayed": replayed.len(),
                "ids": ids,
                "events": replayed,
                "note": PICKUP,
            });
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        }
        OutputFormat::Human => print!("{}", human(&replayed)),
    }
    Outcome::Success
}

/// The dead letters to replay: the one named (which must be dead), or all.
fn dead_letters(store: &Store, args: &ReplayArgs) -> Result<Vec<Event>, (String, Outcome)> {
    let io = |e: crate::store::StoreError| (e.to_string(), Outcome::Usage);
    match args.id {
        Some(id) => {
            let event = store.event(id).map_err(io)?.ok_or_else(|| {
                (
                    format!(
                        "no event with id {id} (`cosync replay --all` replays every dead letter)"
                    ),
                    Outcome::Problems,
                )
            })?;
            if event.state != EventState::Dead {
                return Err((
                    format!(
                        "event {id} is {}, not a dead letter; only dead letters are replayed",
                        state_word(event.state)
                    ),
                    Outcome::Problems,
                ));
            }
            Ok(vec![event])
        }
        None => store
            .events(EventState::Dead, i64::MAX as usize)
            .map_err(io),
    }
}

fn state_word(state: EventState) -> &'static str {
    match state {
        EventState::Queued => "queued (waiting for a worker)",
        EventState::Running => "running",
        EventState::Done => "done (processed)",
        EventState::Dead => "dead",
    }
}

fn human(replayed: &[Event]) -> String {
    if replayed.is_empty() {
        return "no dead letters: nothing to replay\n".to_string();
    }
    let rows: Vec<Vec<String>> = replayed
        .iter()
        .map(|e| {
            vec![
                e.id.to_string(),
                e.flow.clone().unwrap_or_else(|| "-".into()),
                e.record_key.clone(),
                e.attempts.to_string(),
                e.last_error.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let mut out = table::render(
        &["EVENT", "FLOW", "RECORD", "ATTEMPTS", "LAST ERROR"],
        &rows,
    );
    out.push_str(&format!(
        "re-queued {} dead letter{} with a fresh attempt count: {PICKUP}\n",
        replayed.len(),
        if replayed.len() == 1 { "" } else { "s" }
    ));
    out
}
