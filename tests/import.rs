//! Importing invoices as a merchant does it: their own CSV or Excel file, real temp-file databases,
//! and the `malipo import` command through the binary.

mod common;

use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use malipo::domain::Kes;
use malipo::import::{self, CommitMode, ImportError, ManualPayment, Mapping, Options, PaymentMethod, Preview};
use malipo::payments::ledger;
use malipo::store::invoices::{self, InvoiceEdit, InvoiceStatus};
use malipo::store::Store;

use common::{db_path, malipo};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/import").join(name)
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 7, 0, 0).unwrap()
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn options() -> Options {
    Options { today: Some(date(2026, 12, 1)), ..Default::default() }
}

struct Shop {
    dir: tempfile::TempDir,
    store: Store,
}

impl Shop {
    fn new() -> Shop {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&db_path(dir.path())).unwrap();
        Shop { dir, store }
    }

    fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    fn preview(&self, name: &str, contents: &str) -> Preview {
        import::preview_with(&self.file(name, contents), &options()).unwrap()
    }

    fn import(&self, name: &str, contents: &str) -> import::ImportReport {
        let p = self.preview(name, contents);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        import::commit(&self.store, &p, CommitMode::AllOrNothing, now()).unwrap()
    }

    fn invoice(&self, number: &str) -> invoices::Invoice {
        self.store.read(|c| invoices::by_number(c, number)).unwrap().unwrap_or_else(|| panic!("{number} not found"))
    }

    fn count(&self, table: &str) -> i64 {
        self.store.read(|c| Ok(c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?)).unwrap()
    }

    fn audit_actions(&self) -> Vec<String> {
        self.store
            .read(|c| {
                let mut stmt = c.prepare("SELECT action FROM audit_log ORDER BY id")?;
                let rows = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<Vec<String>>>()?;
                Ok(rows)
            })
            .unwrap()
    }

    fn pay(&self, number: &str, amount: i64, method: PaymentMethod, reference: &str) -> ledger::Applied {
        let id = self.invoice(number).id;
        let p = ManualPayment { invoice_id: id, amount: Kes::positive(amount).unwrap(), method, reference: reference.into(), paid_at: now() };
        self.store.write(|tx| import::record_payment(tx, &p, "merchant", now())).unwrap()
    }
}

const SIMPLE: &str = "Invoice No,Customer,Phone,Amount,Due Date,Description
INV-1001,Wanjiku Kamau,0712345678,\"2,500\",04/12/2026,Maize flour
INV-1002,Otieno Ochieng,0722000111,\"12,500\",05/12/2026,Cement
INV-1003,Achieng Odhiambo,0733000222,5000,06/12/2026,Sugar
";

#[test]
fn headers_are_recognised_under_the_names_merchants_use() {
    let shop = Shop::new();
    let variants = [
        "Invoice No,Customer,Phone,Amount,Balance,Due Date,Date,Description",
        "Inv #,Name,Mobile,Total,Due,Due Date,Issue Date,Details",
        "Number,Client,Tel,Invoice Amount,Amount Due,Due Date,Invoice Date,Item",
        "Invoice,Customer Name,MSISDN,Total (KES),Outstanding,Due date,Date,Notes",
        "REF,CLIENT,PHONE NUMBER,AMOUNT (KSH),BALANCE,DUE_DATE,INVOICE DATE,DESCRIPTION",
        "invoice number , customer , m-pesa no , amount , balance due , due , invoice date , particulars",
    ];
    for header in variants {
        let p = shop.preview("v.csv", &format!("{header}\nINV-1,Wanjiku,0712345678,5000,3000,04/12/2026,01/11/2026,Flour\n"));
        assert!(p.errors.is_empty(), "{header}: {:?}", p.errors);
        let row = &p.rows[0];
        assert_eq!(row.number.as_str(), "INV-1", "{header}");
        assert_eq!(row.customer_name, "Wanjiku", "{header}");
        assert_eq!(row.phone.as_ref().unwrap().as_str(), "254712345678", "{header}");
        assert_eq!((row.amount.shillings(), row.balance.map(Kes::shillings)), (5000, Some(3000)), "{header}");
        assert_eq!((row.due_date, row.issue_date), (date(2026, 12, 4), date(2026, 11, 1)), "{header}");
        assert_eq!(row.description.as_deref(), Some("Flour"), "{header}");
    }
}

#[test]
fn a_file_without_issue_dates_is_dated_today_and_needs_no_phone_or_balance() {
    let shop = Shop::new();
    let p = shop.preview("min.csv", "Invoice,Customer,Amount,Due\nINV-9,Duka la Mama,900,04/12/2026\n");
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let row = &p.rows[0];
    assert_eq!((row.issue_date, row.issue_date_given, row.phone.is_none(), row.balance), (date(2026, 12, 1), false, true, None));
}

#[test]
fn every_date_form_merchants_type_is_read_day_first() {
    let shop = Shop::new();
    let forms = [
        "04/12/2026", "4/12/2026", "4/12/26", "2026-12-04", "4 Dec 2026", "4 December 2026", "04-Dec-2026", "Dec 4, 2026", "04.12.2026",
        "46360", "2026-12-04 00:00:00",
    ];
    let mut csv = String::from("Invoice No,Customer,Amount,Due Date\n");
    for (i, f) in forms.iter().enumerate() {
        csv.push_str(&format!("INV-{i},Wanjiku,100,\"{f}\"\n"));
    }
    let p = shop.preview("dates.csv", &csv);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    for (row, form) in p.rows.iter().zip(forms) {
        assert_eq!(row.due_date, date(2026, 12, 4), "{form}");
    }
}

#[test]
fn every_amount_form_merchants_type_is_read_and_cents_are_refused() {
    let shop = Shop::new();
    let forms = ["2500", "2,500", "KES 2,500", "Ksh 2,500.00", "Kshs. 2,500", "2,500/=", "2500/-", "2,500 KES", "KES 2,500.00/="];
    let mut csv = String::from("Invoice No,Customer,Amount,Due Date\n");
    for (i, f) in forms.iter().enumerate() {
        csv.push_str(&format!("INV-{i},Wanjiku,\"{f}\",04/12/2026\n"));
    }
    csv.push_str("INV-X,Wanjiku,\"2,500.50\",04/12/2026\n");
    let p = shop.preview("amounts.csv", &csv);
    for (row, form) in p.rows.iter().zip(forms) {
        assert_eq!(row.amount.shillings(), 2500, "{form}");
    }
    assert_eq!(p.rows.len(), forms.len());
    assert_eq!(p.errors.len(), 1);
    assert_eq!(p.errors[0].to_string(), format!("line {}: Amount \"2,500.50\" has cents; amounts are whole shillings", forms.len() + 2));
}

#[test]
fn every_bad_row_is_listed_with_its_line_and_reason_and_the_good_rows_stay() {
    let p = import::preview_with(&fixture("with_errors.csv"), &options()).unwrap();
    let listed: Vec<String> = p.errors.iter().map(|e| e.to_string()).collect();
    let expected = [
        "line 3: Invoice No \"INV-1002\" appears more than once in the file (lines 3 and 9)",
        "line 4: Amount \"1,200.50\" has cents; amounts are whole shillings",
        "line 5: Balance \"6,000\" is more than the Amount (KES 5,000)",
        "line 6: Customer is empty",
        "line 7: Phone \"0799\" is not accepted: a Kenyan number starting with 0 has 10 digits",
        "line 8: Due Date \"31/02/2026\" is not a date",
        "line 9: Invoice No \"INV-1002\" appears more than once in the file (lines 3 and 9)",
    ];
    assert_eq!(listed, expected);
    assert_eq!(p.errors[5].column.as_deref(), Some("Due Date"));
    let good: Vec<&str> = p.rows.iter().map(|r| r.number.as_str()).collect();
    assert_eq!(good, ["INV-1001", "INV-1008"]);
    assert_eq!((p.data_rows, p.bad_rows()), (9, 7));
    assert_eq!(p.duplicates_in_file.len(), 1);
    assert_eq!(p.duplicates_in_file[0].lines, vec![3, 9]);
}

#[test]
fn a_bad_phone_number_is_masked_in_the_message() {
    let shop = Shop::new();
    let p = shop.preview("p.csv", "Invoice No,Customer,Phone,Amount,Due Date\nINV-1,Wanjiku,+1 415 555 0199,100,04/12/2026\nINV-2,Otieno,0712345678x,100,04/12/2026\n");
    let text = p.errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n");
    assert_eq!(p.errors.len(), 2, "{text}");
    assert!(!text.contains("555 0199") && !text.contains("345678"), "{text}");
    assert!(text.contains("line 2: Phone") && text.contains("only Kenyan"), "{text}");
    // Valid rows serialise with masked numbers too.
    let p = shop.preview("ok.csv", SIMPLE);
    let json = serde_json::to_string(&p).unwrap();
    assert!(json.contains("2547•••••678") && !json.contains("712345678"), "{json}");
}

#[test]
fn all_or_nothing_refuses_a_file_with_errors_and_leaves_the_store_untouched() {
    let shop = Shop::new();
    shop.import("first.csv", SIMPLE);
    let before = (shop.count("invoices"), shop.count("customers"), shop.count("audit_log"));
    let p = import::preview_with(&fixture("with_errors.csv"), &options()).unwrap();
    let e = import::commit(&shop.store, &p, CommitMode::AllOrNothing, now()).unwrap_err();
    assert!(matches!(e, ImportError::HasErrors { bad_rows: 7 }), "{e}");
    assert!(e.to_string().contains("nothing was imported"), "{e}");
    assert_eq!((shop.count("invoices"), shop.count("customers"), shop.count("audit_log")), before);
    assert!(shop.store.read(|c| invoices::by_number(c, "INV-1008")).unwrap().is_none());
}

#[test]
fn valid_rows_only_imports_the_good_rows_and_counts_the_rest_as_skipped() {
    let shop = Shop::new();
    let p = import::preview_with(&fixture("with_errors.csv"), &options()).unwrap();
    let r = import::commit(&shop.store, &p, CommitMode::ValidRowsOnly, now()).unwrap();
    assert_eq!((r.created, r.updated, r.unchanged, r.skipped), (2, 0, 0, 7));
    assert_eq!(shop.count("invoices"), 2);
    let inv = shop.invoice("INV-1008");
    assert_eq!((inv.amount.shillings(), inv.balance.shillings(), inv.status), (7000, 7000, InvoiceStatus::Open));
    assert_eq!((inv.due_date, inv.issue_date, inv.description.as_str()), (date(2026, 12, 4), date(2026, 12, 1), "Cooking oil"));
    assert!(shop.audit_actions().contains(&"invoices_imported".to_string()));
}

#[test]
fn importing_the_same_file_again_creates_no_duplicates_and_updates_by_number() {
    let shop = Shop::new();
    let first = shop.import("a.csv", SIMPLE);
    assert_eq!((first.created, first.updated, first.unchanged), (3, 0, 0));
    let again = shop.import("a.csv", SIMPLE);
    assert_eq!((again.created, again.updated, again.unchanged, again.skipped), (0, 0, 3, 0));
    assert_eq!((shop.count("invoices"), shop.count("customers")), (3, 3));

    // The merchant corrected two rows, spelled one number differently, and added an invoice.
    let edited = "Invoice No,Customer,Phone,Amount,Due Date,Description
inv 1001,Wanjiku Kamau,0712345678,\"3,000\",04/12/2026,Maize flour
INV-1002,Otieno Ochieng,0722000111,\"12,500\",15/12/2026,Cement
INV-1003,Achieng Odhiambo,0733000222,5000,06/12/2026,Sugar
INV-1004,Wanjiku K.,0712345678,800,20/12/2026,Salt
";
    let r = shop.import("a.csv", edited);
    assert_eq!((r.created, r.updated, r.unchanged), (1, 2, 1));
    assert_eq!(shop.count("invoices"), 4);
    let inv = shop.invoice("INV-1001");
    assert_eq!((inv.number.as_str(), inv.amount.shillings(), inv.balance.shillings()), ("INV-1001", 3000, 3000));
    assert_eq!(shop.invoice("INV-1002").due_date, date(2026, 12, 15));
    // Same phone, newest spelling of the name: one customer.
    assert_eq!(shop.count("customers"), 3);
    assert_eq!(shop.invoice("INV-1001").customer_name, "Wanjiku K.");
    assert!(shop.audit_actions().iter().filter(|a| *a == "invoice_updated_by_import").count() >= 2);
}

#[test]
fn a_reimport_with_a_lower_balance_after_a_payment_keeps_what_the_ledger_says() {
    let shop = Shop::new();
    shop.import("a.csv", "Invoice No,Customer,Phone,Amount,Balance,Due Date\nINV-7,Wanjiku,0712345678,5000,5000,04/12/2026\n");
    shop.pay("INV-7", 2000, PaymentMethod::Cash, "");
    assert_eq!(shop.invoice("INV-7").balance.shillings(), 3000);

    // The merchant's books say 1,000 is left: Malipo's ledger says 3,000. The ledger wins, loudly.
    let r = shop.import("a.csv", "Invoice No,Customer,Phone,Amount,Balance,Due Date\nINV-7,Wanjiku,0712345678,5000,1000,04/12/2026\n");
    assert_eq!((r.updated, r.unchanged), (0, 1));
    assert_eq!(r.warnings.len(), 1);
    let w = r.warnings[0].to_string();
    assert!(w.starts_with("line 2: INV-7: ") && w.contains("KES 1,000") && w.contains("kept KES 3,000"), "{w}");
    let inv = shop.invoice("INV-7");
    assert_eq!((inv.balance.shillings(), inv.status), (3000, InvoiceStatus::PartiallyPaid));
    assert!(shop.audit_actions().contains(&"invoice_import_warning".to_string()));

    // The old file again (balance 5,000, before the payment): the payment is not undone either.
    let r = shop.import("a.csv", "Invoice No,Customer,Phone,Amount,Balance,Due Date\nINV-7,Wanjiku,0712345678,5000,5000,04/12/2026\n");
    assert_eq!(shop.invoice("INV-7").balance.shillings(), 3000);
    assert!(r.warnings[0].message.contains("KES 2,000 paid against it"), "{:?}", r.warnings);
}

#[test]
fn a_new_amount_keeps_what_was_already_paid() {
    let shop = Shop::new();
    shop.import("a.csv", "Invoice No,Customer,Amount,Due Date\nINV-7,Wanjiku,5000,04/12/2026\nINV-8,Otieno,1000,04/12/2026\n");
    shop.pay("INV-7", 2000, PaymentMethod::Bank, "FT26338XK1");
    shop.pay("INV-8", 800, PaymentMethod::Cash, "book 12");
    let r = shop.import("a.csv", "Invoice No,Customer,Amount,Due Date\nINV-7,Wanjiku,8000,04/12/2026\nINV-8,Otieno,500,04/12/2026\n");
    assert_eq!(r.updated, 2);
    assert_eq!(shop.invoice("INV-7").balance.shillings(), 6000);
    let eight = shop.invoice("INV-8");
    assert_eq!((eight.balance.shillings(), eight.status), (0, InvoiceStatus::Paid));
    assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
    assert!(r.warnings[0].message.contains("balance is now KES 6,000"), "{:?}", r.warnings);
}

#[test]
fn cancelled_and_written_off_invoices_are_not_reopened_by_an_import() {
    let shop = Shop::new();
    shop.import("a.csv", SIMPLE);
    let (a, b) = (shop.invoice("INV-1001").id, shop.invoice("INV-1002").id);
    shop.store.write(|tx| invoices::cancel(tx, a, "issued twice", "merchant", now())).unwrap();
    shop.store.write(|tx| invoices::write_off(tx, b, "customer moved away", "merchant", now())).unwrap();
    let r = shop.import("a.csv", &SIMPLE.replace("\"12,500\"", "\"13,000\""));
    assert_eq!((r.skipped, r.unchanged), (2, 1));
    assert_eq!(shop.invoice("INV-1001").status, InvoiceStatus::Cancelled);
    let wo = shop.invoice("INV-1002");
    assert_eq!((wo.status, wo.amount.shillings(), wo.balance.shillings()), (InvoiceStatus::WrittenOff, 12500, 12500));
    assert!(r.warnings.iter().any(|w| w.message.contains("written off")), "{:?}", r.warnings);
}

#[test]
fn an_xlsx_with_real_date_cells_and_serial_numbers_is_read() {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let shop = Shop::new();
    let path = shop.dir.path().join("invoices.xlsx");
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    let day = Format::new().set_num_format("dd/mm/yyyy");
    for (c, h) in ["Inv #", "Client", "Mobile", "Total", "Due Date", "Invoice Date"].iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    // Row 2: a real date cell, numbers typed as numbers (the phone lost its leading zero, as Excel does).
    sheet.write_number(1, 0, 1042).unwrap();
    sheet.write_string(1, 1, "Wanjiku Kamau").unwrap();
    sheet.write_number(1, 2, 712345678).unwrap();
    sheet.write_number(1, 3, 2500).unwrap();
    sheet.write_datetime_with_format(1, 4, ExcelDateTime::from_ymd(2026, 12, 4).unwrap(), &day).unwrap();
    sheet.write_datetime_with_format(1, 5, ExcelDateTime::from_ymd(2026, 11, 20).unwrap(), &day).unwrap();
    // Row 3: a bare serial number and text that looks like money and a date.
    sheet.write_string(2, 0, "INV-1043").unwrap();
    sheet.write_string(2, 1, "Otieno").unwrap();
    sheet.write_string(2, 2, "0722 000 111").unwrap();
    sheet.write_string(2, 3, "KES 12,500").unwrap();
    sheet.write_number(2, 4, 46361).unwrap();
    sheet.write_string(2, 5, "20 Nov 2026").unwrap();
    // Row 4: cents in a number cell and a text date that is not one.
    sheet.write_string(3, 0, "INV-1044").unwrap();
    sheet.write_string(3, 1, "Achieng").unwrap();
    sheet.write_number(3, 3, 99.5).unwrap();
    sheet.write_string(3, 4, "31/02/2026").unwrap();
    book.save(&path).unwrap();

    let p = import::preview_with(&path, &options()).unwrap();
    assert_eq!(p.format, import::Format::Workbook);
    let listed: Vec<String> = p.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(listed, ["line 4: Total \"99.5\" has cents; amounts are whole shillings", "line 4: Due Date \"31/02/2026\" is not a date"]);
    let (a, b) = (&p.rows[0], &p.rows[1]);
    assert_eq!((a.number.as_str(), a.phone.as_ref().unwrap().as_str(), a.amount.shillings()), ("1042", "254712345678", 2500));
    assert_eq!((a.due_date, a.issue_date), (date(2026, 12, 4), date(2026, 11, 20)));
    assert_eq!((b.amount.shillings(), b.due_date, b.issue_date), (12500, date(2026, 12, 5), date(2026, 11, 20)));
    let r = import::commit(&shop.store, &p, CommitMode::ValidRowsOnly, now()).unwrap();
    assert_eq!((r.created, r.skipped), (2, 1));
    assert_eq!(shop.invoice("1042").customer_name, "Wanjiku Kamau");
}

#[test]
fn a_csv_saved_by_excel_with_a_bom_semicolons_and_crlf_is_read() {
    let p = import::preview_with(&fixture("excel_semicolon_bom.csv"), &options()).unwrap();
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(p.delimiter, Some(';'));
    assert_eq!(p.mapping.number.as_deref(), Some("Invoice No"), "the BOM is not part of the first header");
    let got: Vec<(&str, i64, NaiveDate)> = p.rows.iter().map(|r| (r.number.as_str(), r.amount.shillings(), r.due_date)).collect();
    assert_eq!(
        got,
        [("INV-2001", 2500, date(2026, 12, 4)), ("INV-2002", 12500, date(2026, 12, 5)), ("INV-2003", 3000, date(2026, 12, 6))]
    );
    assert_eq!(p.rows[2].line, 4);
    // Tab-separated works the same way.
    let shop = Shop::new();
    let p = shop.preview("t.txt", "Invoice No\tCustomer\tAmount\tDue Date\nINV-1\tKamau, Sons & Co\t1,500\t04/12/2026\n");
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!((p.rows[0].customer_name.as_str(), p.rows[0].amount.shillings()), ("Kamau, Sons & Co", 1500));
}

#[test]
fn a_missing_required_column_is_one_error_naming_the_columns_found() {
    let shop = Shop::new();
    let p = shop.preview("m.csv", "Invoice No,Customer,Phone,Total\nINV-1,Wanjiku,0712345678,500\nINV-2,Otieno,0722000111,700\n");
    assert_eq!(p.errors.len(), 1, "{:?}", p.errors);
    let e = p.errors[0].to_string();
    assert!(e.starts_with("line 1: No column for due date (such as Due Date, Due)"), "{e}");
    assert!(e.contains(r#"The columns found are: "Invoice No", "Customer", "Phone", "Total""#), "{e}");
    assert!(p.rows.is_empty() && !p.columns_ok);
    assert_eq!(p.bad_rows(), 2);
    let e = import::commit(&shop.store, &p, CommitMode::AllOrNothing, now()).unwrap_err();
    assert!(e.to_string().contains("columns could not be matched"), "{e}");
    let r = import::commit(&shop.store, &p, CommitMode::ValidRowsOnly, now()).unwrap();
    assert_eq!((r.created, r.skipped), (0, 2));
}

#[test]
fn the_merchant_can_choose_the_columns_by_hand() {
    let shop = Shop::new();
    let csv = "Doc,Who,Cell 2,Value,Pay By,Balance\nA-1,Wanjiku,0712345678,900,04/12/2026,100\n";
    let mut mapping = Mapping::default();
    for m in ["number=Doc", "customer=who", "phone=Cell 2", "amount=Value", "due_date=Pay By", "balance="] {
        mapping.parse_assignment(m).unwrap();
    }
    let p = import::preview_with(&shop.file("c.csv", csv), &Options { mapping, ..options() }).unwrap();
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(p.mapping.balance, None);
    let row = &p.rows[0];
    assert_eq!((row.number.as_str(), row.amount.shillings(), row.balance, row.due_date), ("A-1", 900, None, date(2026, 12, 4)));
}

#[test]
fn the_merchant_creates_edits_cancels_and_writes_off_invoices_by_hand_and_each_is_audited() {
    let shop = Shop::new();
    let new = common::new_invoice("INV-5001", "Wanjiku Kamau", "0712345678", 5000);
    let id = shop.store.write(|tx| invoices::create(tx, &new, "merchant", now())).unwrap();
    shop.pay("INV-5001", 1000, PaymentMethod::Cash, "");
    let edit = InvoiceEdit { amount: Some(Kes::positive(4000).unwrap()), due_date: Some(date(2026, 12, 24)), ..Default::default() };
    let (inv, note) = shop.store.write(|tx| invoices::edit(tx, id, &edit, "merchant", now())).unwrap();
    assert_eq!((inv.amount.shillings(), inv.balance.shillings(), inv.due_date), (4000, 3000, date(2026, 12, 24)));
    assert!(note.unwrap().contains("KES 1,000 was already paid"));
    // An invoice with payments is written off, not cancelled.
    let e = shop.store.write(|tx| invoices::cancel(tx, id, "mistake", "merchant", now())).unwrap_err();
    assert!(e.to_string().contains("write off"), "{e}");
    let inv = shop.store.write(|tx| invoices::write_off(tx, id, "shop closed", "merchant", now())).unwrap();
    assert_eq!((inv.status, inv.balance.shillings()), (InvoiceStatus::WrittenOff, 3000));
    assert!(shop.store.write(|tx| invoices::edit(tx, id, &edit, "merchant", now())).is_err());

    let other = shop.store.write(|tx| invoices::create(tx, &common::new_invoice("INV-5002", "Otieno", "0722000111", 700), "merchant", now())).unwrap();
    let inv = shop.store.write(|tx| invoices::cancel(tx, other, "issued twice", "merchant", now())).unwrap();
    assert_eq!(inv.status, InvoiceStatus::Cancelled);
    let actions = shop.audit_actions();
    for a in ["invoice_created", "manual_payment_recorded", "invoice_edited", "invoice_written_off", "invoice_cancelled"] {
        assert!(actions.contains(&a.to_string()), "{a} missing from {actions:?}");
    }
}

#[test]
fn cash_and_bank_payments_go_through_the_ledger_once() {
    let shop = Shop::new();
    shop.import("a.csv", SIMPLE);
    let first = shop.pay("INV-1002", 5000, PaymentMethod::Bank, "FT26338XK1");
    assert!(matches!(first, ledger::Applied::New { .. }));
    // The same bank transfer entered twice is recorded once.
    assert!(matches!(shop.pay("INV-1002", 5000, PaymentMethod::Bank, "FT26338XK1"), ledger::Applied::Duplicate { .. }));
    shop.pay("INV-1002", 7500, PaymentMethod::Cash, "receipt book 44");
    let inv = shop.invoice("INV-1002");
    assert_eq!((inv.balance.shillings(), inv.status), (0, InvoiceStatus::Paid));
    let entries = shop.store.read(ledger::list).unwrap();
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|e| e.source == "manual"));
    assert!(entries.iter().any(|e| e.reference == "bank: FT26338XK1"));
    // A bank payment needs its reference; a paid invoice takes no more.
    let id = shop.invoice("INV-1001").id;
    let p = ManualPayment { invoice_id: id, amount: Kes::positive(100).unwrap(), method: PaymentMethod::Bank, reference: " ".into(), paid_at: now() };
    assert!(shop.store.write(|tx| import::record_payment(tx, &p, "merchant", now())).unwrap_err().to_string().contains("reference"));
    let p = ManualPayment { invoice_id: inv.id, method: PaymentMethod::Cash, ..p };
    assert!(shop.store.write(|tx| import::record_payment(tx, &p, "merchant", now())).unwrap_err().to_string().contains("already paid"));
}

// ----- the command line -----

fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = malipo(dir).arg("import").args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn invoice_count(dir: &Path) -> usize {
    let out = malipo(dir).args(["invoices", "--json"]).output().unwrap();
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap().as_array().unwrap().len()
}

#[test]
fn cli_dry_run_checks_the_file_and_saves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("invoices.csv");
    std::fs::write(&file, SIMPLE).unwrap();
    let (code, out, err) = run(dir.path(), &[file.to_str().unwrap(), "--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("3 invoice row(s)") && out.contains("Dry run, nothing saved") && out.contains("3 created"), "{out}");
    assert!(!db_path(dir.path()).exists(), "a dry run must not even create the database");
    let (code, out, _) = run(dir.path(), &[file.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(out.contains("Imported: 3 created, 0 updated, 0 unchanged, 0 skipped."), "{out}");
    std::fs::write(&file, SIMPLE.replace("\"12,500\"", "\"13,500\"")).unwrap();
    let (_, out, _) = run(dir.path(), &[file.to_str().unwrap(), "--dry-run"]);
    assert!(out.contains("0 created, 1 updated, 2 unchanged"), "{out}");
    let out = malipo(dir.path()).args(["invoices"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("KES 12,500"), "the dry run changed nothing");
}

#[test]
fn cli_lists_every_bad_row_and_exits_1_without_importing() {
    let dir = tempfile::tempdir().unwrap();
    let file = fixture("with_errors.csv");
    let (code, out, err) = run(dir.path(), &[file.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("7 row(s) with errors:"), "{out}");
    assert!(out.contains("  line 8: Due Date \"31/02/2026\" is not a date"), "{out}");
    assert!(out.contains("  line 4: Amount \"1,200.50\" has cents"), "{out}");
    assert!(err.contains("nothing imported") && err.contains("--valid-only"), "{err}");
    assert_eq!(invoice_count(dir.path()), 0);

    let (code, out, err) = run(dir.path(), &[file.to_str().unwrap(), "--valid-only"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Imported: 2 created, 0 updated, 0 unchanged, 7 skipped."), "{out}");
    assert_eq!(invoice_count(dir.path()), 2);
}

#[test]
fn cli_json_reports_errors_and_counts_without_full_phone_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.csv");
    std::fs::write(&file, "Invoice No,Customer,Phone,Amount,Due Date\nINV-1,Wanjiku,0712345678,100,04/12/2026\nINV-2,Otieno,+44 7700 900123,100,04/12/2026\n").unwrap();
    let (code, out, _) = run(dir.path(), &[file.to_str().unwrap(), "--valid-only", "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["valid_rows"].as_u64(), v["bad_rows"].as_u64(), v["imported"].as_bool()), (Some(1), Some(1), Some(true)));
    assert_eq!(v["report"]["created"], 1);
    assert_eq!(v["errors"][0]["line"], 3);
    assert!(!out.contains("712345678") && !out.contains("900123"), "{out}");
}

#[test]
fn cli_names_what_it_found_when_a_column_is_missing_and_accepts_a_mapping() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.csv");
    std::fs::write(&file, "Invoice No,Customer,Amount,Lipa Kabla\nINV-1,Wanjiku,100,04/12/2026\n").unwrap();
    let (code, out, _) = run(dir.path(), &[file.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.contains("The columns could not be matched:\n  line 1: No column for due date") && out.contains("\"Lipa Kabla\""), "{out}");
    let (code, out, err) = run(dir.path(), &[file.to_str().unwrap(), "--map", "due_date=Lipa Kabla"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Imported: 1 created"), "{out}");
    let (code, _, err) = run(dir.path(), &[file.to_str().unwrap(), "--map", "colour=Lipa Kabla"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown field"), "{err}");
}

#[test]
fn cli_explains_a_file_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(dir.path(), &["/no/such/invoices.csv"]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot read /no/such/invoices.csv"), "{err}");
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    let (code, _, err) = run(dir.path(), &[empty.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("the file is empty"), "{err}");
}
