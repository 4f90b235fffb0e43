//! Commands for the Reminders and Reports screens: thin calls into `reminders` and `reports`.

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use tauri::State;

use super::commands::ApiError;
use super::AppState;
use crate::engine::Engine;
use crate::reminders::{self, PolicyError, ReminderPolicy};
use crate::reports::{self, Report};
use crate::store::StoreError;
use crate::whatsapp::templates::{self, TemplateDef};

/// `ApiError` plus the form field a validation error belongs to, so the UI shows it next to that field.
#[derive(Debug, Serialize)]
pub struct FieldError {
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl From<ApiError> for FieldError {
    fn from(e: ApiError) -> Self {
        FieldError { code: e.code, message: e.message, field: None }
    }
}

impl From<StoreError> for FieldError {
    fn from(e: StoreError) -> Self {
        ApiError::from(e).into()
    }
}

fn engine<'a>(state: &'a State<'_, AppState>) -> Result<&'a Engine, ApiError> {
    state.app.as_ref().map(|a| &a.engine).ok_or_else(|| ApiError {
        code: "engine_unavailable",
        message: state.startup_error.clone().unwrap_or_else(|| "the engine is not running".into()),
    })
}

#[tauri::command]
pub async fn reminder_policy(state: State<'_, AppState>) -> Result<ReminderPolicy, ApiError> {
    Ok(engine(&state)?.store.read_async(reminders::policy).await?)
}

fn policy_field(e: &PolicyError) -> &'static str {
    match e {
        PolicyError::NoSteps | PolicyError::Unordered | PolicyError::TooFar(_) => "steps",
        PolicyError::SendInQuietHours(_) => "send_at",
        PolicyError::ZeroRepeat => "repeat_every_days",
    }
}

/// Saves the schedule; a rule it breaks comes back as `invalid` with the field it concerns.
#[tauri::command]
pub async fn save_reminder_policy(state: State<'_, AppState>, policy: ReminderPolicy) -> Result<(), FieldError> {
    let engine = engine(&state)?;
    let now = engine.clock.now();
    match engine.store.write_async(move |tx| reminders::save_policy(tx, &policy, now)).await? {
        Ok(()) => Ok(()),
        Err(e) => Err(FieldError { code: "invalid", message: e.to_string(), field: Some(policy_field(&e).into()) }),
    }
}

#[derive(Debug, Serialize)]
pub struct PlannedInvoice {
    number: String,
    balance: i64,
    /// 1 = the schedule's first step.
    step: usize,
    /// The step's day relative to the due date: −3 is three days before, 7 a week late.
    days_from_due: Option<i64>,
}

/// One planned WhatsApp reminder: a customer, when, and the invoices in it.
#[derive(Debug, Serialize)]
pub struct PlannedReminder {
    day: NaiveDate,
    /// The send time on that day, as an instant (the UI shows it in the merchant's timezone).
    at: DateTime<Utc>,
    customer_name: String,
    invoices: Vec<PlannedInvoice>,
}

/// What the next `days` days (default 7) would send if nobody pays or replies meanwhile.
#[tauri::command]
pub async fn reminder_preview(state: State<'_, AppState>, days: Option<u32>) -> Result<Vec<PlannedReminder>, ApiError> {
    let engine = engine(&state)?;
    let (now, tz) = (engine.clock.now(), engine.config.timezone);
    let days = days.unwrap_or(7).min(60);
    let (policy, planned) = engine.store.read_async(move |c| Ok((reminders::policy(c)?, reminders::preview(c, now, tz, days)?))).await?;
    let days_from_due = |step: usize| {
        let origin = NaiveDate::from_ymd_opt(2000, 1, 1).expect("a real date");
        policy.step_day(origin, step).map(|d| (d - origin).num_days())
    };
    Ok(planned
        .into_iter()
        .map(|r| PlannedReminder {
            day: r.day,
            at: policy.local_send_time(r.day, tz),
            customer_name: r.customer_name,
            invoices: r
                .invoices
                .into_iter()
                .map(|(number, balance, step)| PlannedInvoice { number, balance, step: step + 1, days_from_due: days_from_due(step) })
                .collect(),
        })
        .collect())
}

/// The approved templates reminders use (payment reminder and promise follow-up), every language.
#[tauri::command]
pub async fn reminder_templates(state: State<'_, AppState>) -> Result<Vec<TemplateDef>, ApiError> {
    let all = engine(&state)?.store.read_async(templates::registry).await?;
    Ok(all.into_iter().filter(|t| t.name == templates::PAYMENT_REMINDER || t.name == templates::PROMISE_FOLLOWUP).collect())
}

fn period(from: &str, to: &str) -> Result<(NaiveDate, NaiveDate), FieldError> {
    let parse = |s: &str, field: &str| {
        s.parse::<NaiveDate>().map_err(|_| FieldError { code: "invalid", message: format!("{s:?} is not a date (YYYY-MM-DD)"), field: Some(field.into()) })
    };
    let (from, to) = (parse(from, "from")?, parse(to, "to")?);
    if from > to {
        return Err(FieldError { code: "invalid", message: "the start date is after the end date".into(), field: Some("from".into()) });
    }
    Ok((from, to))
}

async fn build_report(state: &State<'_, AppState>, from: &str, to: &str) -> Result<Report, FieldError> {
    let (from, to) = period(from, to)?;
    let engine = engine(state)?;
    let tz = engine.config.timezone;
    Ok(engine.store.read_async(move |c| reports::report(c, from, to, tz)).await?)
}

/// The collection report for local dates `from`..=`to` (YYYY-MM-DD, the merchant's timezone).
#[tauri::command]
pub async fn collection_report(state: State<'_, AppState>, from: String, to: String) -> Result<Report, FieldError> {
    build_report(&state, &from, &to).await
}

/// Writes the report as CSV into the Downloads folder (the home folder when there is none) and
/// returns the file's path. An existing file is never overwritten: " (2)", " (3)"… are added.
#[tauri::command]
pub async fn export_report_csv(state: State<'_, AppState>, from: String, to: String) -> Result<String, FieldError> {
    let report = build_report(&state, &from, &to).await?;
    let dirs = directories::UserDirs::new();
    let dir = dirs
        .as_ref()
        .and_then(|d| d.download_dir().map(Path::to_path_buf))
        .or_else(|| dirs.as_ref().map(|d| d.home_dir().to_path_buf()))
        .ok_or_else(|| ApiError { code: "no_folder", message: "this computer has no Downloads or home folder to save into".into() })?;
    let path = free_name(&dir, &format!("malipo-report-{}-to-{}", report.from, report.to));
    std::fs::write(&path, reports::to_csv(&report)).map_err(|e| ApiError { code: "io", message: format!("could not save {}: {e}", path.display()) })?;
    Ok(path.display().to_string())
}

fn free_name(dir: &Path, stem: &str) -> PathBuf {
    let mut path = dir.join(format!("{stem}.csv"));
    let mut n = 2;
    while path.exists() {
        path = dir.join(format!("{stem} ({n}).csv"));
        n += 1;
    }
    path
}
