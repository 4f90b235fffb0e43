//! The README tells merchants exactly what to submit to Meta: it must match the templates Malipo sends.

#[test]
fn the_readme_lists_the_whatsapp_templates_exactly_as_malipo_sends_them() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let expected = malipo::whatsapp::templates::submission_markdown();
    assert!(readme.contains(expected.trim()), "README.md must contain the template texts; paste:\n\n{expected}");
}
