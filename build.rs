fn main() {
    // The headless build (`--no-default-features`) needs no Tauri context.
    #[cfg(feature = "desktop")]
    tauri_build::build();
}
