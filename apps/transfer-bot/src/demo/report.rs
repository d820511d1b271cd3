//! The result table: one row per scripted call, checked against its script.

use super::*;

/// One row of the result table.
#[derive(Debug, Clone)]
pub struct DemoRow {
    /// The call id (shortened for display by the table).
    pub call_id: Option<CallId>,
    /// The scenario's name.
    pub scenario: &'static str,
    /// Targets tried, in order.
    pub path: Vec<String>,
    /// What happened (or why it did not finish).
    pub outcome: Result<CallOutcome, String>,
    /// What should have happened.
    pub expected: CallOutcome,
    /// Completion events the bot reported for the call (must be at most one).
    pub completions: usize,
    /// Whether the call ended as scripted.
    pub ok: bool,
}

/// The scripted demo's result.
#[derive(Debug, Clone)]
pub struct DemoReport {
    /// One row per scripted call.
    pub rows: Vec<DemoRow>,
}

impl DemoReport {
    /// Whether every call ended as its script says.
    pub fn all_ok(&self) -> bool {
        !self.rows.is_empty() && self.rows.iter().all(|r| r.ok)
    }

    /// The table.
    pub fn table(&self) -> String {
        let mut rows = vec![[
            "call".to_owned(),
            "scenario".to_owned(),
            "path".to_owned(),
            "outcome".to_owned(),
            "expected".to_owned(),
            "ok".to_owned(),
        ]];
        for row in &self.rows {
            let id = row.call_id.as_ref().map_or("-", |c| c.as_str());
            rows.push([
                id.get(..8).unwrap_or(id).to_owned(),
                row.scenario.to_owned(),
                row.path.join(" -> "),
                match &row.outcome {
                    Ok(outcome) => outcome.to_string(),
                    Err(e) => format!("ERROR: {e}"),
                },
                row.expected.to_string(),
                if row.ok { "ok" } else { "FAIL" }.to_owned(),
            ]);
        }
        render_table(&rows)
    }

    /// The process exit code: success only when every call ended as scripted,
    /// so a `FAIL` row (or no row at all) fails the command.
    pub fn exit_code(&self) -> ExitCode {
        if self.all_ok() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        }
    }

    /// Prints the table and a summary line to stdout; the exit code.
    pub fn print_and_check(&self) -> ExitCode {
        print!("{}", self.table());
        println!(
            "{} of {} scripted calls ended as scripted",
            self.rows.iter().filter(|r| r.ok).count(),
            self.rows.len()
        );
        self.exit_code()
    }
}

fn render_table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let line: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            let _ = writeln!(out, "{}", rule.join("  "));
        }
    }
    out
}

/// A row from what is known about the call: how it finished (outcome, path) and how many completions were reported.
pub(crate) fn row_from(
    scenario: &Scenario,
    call_id: CallId,
    finished: Option<(CallOutcome, Vec<String>)>,
    completions: usize,
) -> DemoRow {
    let (outcome, path) = match finished {
        Some((outcome, path)) => (Ok(outcome), path),
        None => (
            Err(format!("no outcome within {}s", CALL_TIMEOUT.as_secs())),
            Vec::new(),
        ),
    };
    let expected_completions = usize::from(matches!(scenario.expected, CallOutcome::Transferred { .. }));
    let ok = outcome.as_ref().is_ok_and(|o| *o == scenario.expected)
        && path == scenario.expected_path
        && completions == expected_completions;
    DemoRow {
        call_id: Some(call_id),
        scenario: scenario.name,
        path,
        outcome,
        expected: scenario.expected.clone(),
        completions,
        ok,
    }
}
