//! The tray icon: today's takings at a glance, "Open Malipo" and "Quit". It stays while the window is
//! closed, because the agent and the reminders keep working in the background.

use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager, Wry};

use crate::app::App;

/// The menu line showing today's total, kept so it can be updated.
struct TodayLine {
    item: MenuItem<Wry>,
    app: App,
}

pub fn install(handle: &AppHandle, app: &App) -> tauri::Result<()> {
    let today = MenuItem::with_id(handle, "today", "Today: …", false, None::<&str>)?;
    let open = MenuItem::with_id(handle, "open", "Open Malipo", true, None::<&str>)?;
    let quit = MenuItem::with_id(handle, "quit", "Quit Malipo", true, None::<&str>)?;
    let menu = Menu::with_items(handle, &[&today, &PredefinedMenuItem::separator(handle)?, &open, &quit])?;
    let mut builder = TrayIconBuilder::with_id("main").menu(&menu).tooltip("Malipo").on_menu_event(|handle, event| match event.id().as_ref() {
        "open" => show_window(handle),
        "quit" => handle.exit(0),
        _ => {}
    });
    if let Some(icon) = handle.default_window_icon() {
        builder = builder.icon(icon.clone());
    }
    builder.build(handle)?;
    handle.manage(TodayLine { item: today, app: app.clone() });
    refresh(handle);

    // The day turns over at midnight even when no payment arrives.
    let handle = handle.clone();
    tauri::async_runtime::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            refresh(&handle);
        }
    });
    Ok(())
}

/// Recomputes today's total for the tray menu and tooltip.
pub fn refresh(handle: &AppHandle) {
    let Some(line) = handle.try_state::<TodayLine>() else {
        return;
    };
    let (item, engine) = (line.item.clone(), line.app.engine.clone());
    let handle = handle.clone();
    tauri::async_runtime::spawn(async move {
        let (now, tz) = (engine.clock.now(), engine.config.timezone);
        let Ok((amount, count)) = engine.store.read_async(move |c| crate::dashboard::today(c, now, tz)).await else {
            return;
        };
        let text = format!("Today: {} ({count} payment{})", crate::domain::kes_text(amount), if count == 1 { "" } else { "s" });
        let _ = item.set_text(&text);
        if let Some(tray) = handle.tray_by_id("main") {
            let _ = tray.set_tooltip(Some(format!("Malipo — {text}")));
        }
    });
}

pub fn show_window(handle: &AppHandle) {
    if let Some(w) = handle.get_webview_window("main") {
        let _ = w.unminimize();
        let _ = w.show();
        let _ = w.set_focus();
    }
}
