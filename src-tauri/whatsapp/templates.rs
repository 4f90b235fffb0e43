//! Message templates: the only messages WhatsApp lets a business send outside the 24-hour window.
//! The merchant submits these to Meta as UTILITY templates (they are about the customer's own invoice,
//! not promotion); the registry in settings says which are approved, in which languages, with how many
//! body parameters and which quick-reply buttons.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Transaction};
use serde::{Deserialize, Serialize};

use super::graph::OutboundMessage;
use crate::store::{self, settings};

pub const SETTINGS_KEY: &str = "whatsapp.templates";

pub const PAYMENT_REMINDER: &str = "malipo_payment_reminder";
pub const PAYMENT_RECEIPT: &str = "malipo_payment_receipt";
pub const PROMISE_FOLLOWUP: &str = "malipo_promise_followup";

/// One template as submitted to Meta, in one language.
pub struct TemplateText {
    pub name: &'static str,
    pub language: &'static str,
    /// The body with {{1}}…{{n}} placeholders, exactly as submitted.
    pub body: &'static str,
    /// What each placeholder holds, in order.
    pub params: &'static [&'static str],
    /// Quick-reply buttons: (button text, payload prefix). The payload sent is the prefix plus the invoice.
    pub quick_replies: &'static [(&'static str, &'static str)],
}

/// The default set Malipo needs, in English and Swahili. Category: UTILITY.
pub const DEFAULT_TEMPLATES: &[TemplateText] = &[
    TemplateText {
        name: PAYMENT_REMINDER,
        language: "en",
        body: "Hello {{1}}, this is a reminder from {{5}}: invoice {{3}} for {{2}} is due on {{4}}. Tap Pay now to pay with M-Pesa. Reply STOP to stop these reminders.",
        params: &["customer name", "amount", "invoice", "due date", "merchant name"],
        quick_replies: &[("Pay now", "PAY:")],
    },
    TemplateText {
        name: PAYMENT_REMINDER,
        language: "sw",
        body: "Habari {{1}}, huu ni ukumbusho kutoka {{5}}: ankara {{3}} ya {{2}} inadaiwa tarehe {{4}}. Bonyeza Lipa sasa kulipa kwa M-Pesa. Jibu ACHA kusitisha vikumbusho hivi.",
        params: &["customer name", "amount", "invoice", "due date", "merchant name"],
        quick_replies: &[("Lipa sasa", "PAY:")],
    },
    TemplateText {
        name: PAYMENT_RECEIPT,
        language: "en",
        body: "Thank you {{1}}. {{5}} has received {{2}} for invoice {{3}} (M-Pesa receipt {{4}}). Balance remaining: {{6}}.",
        params: &["customer name", "amount", "invoice", "M-Pesa receipt", "merchant name", "balance"],
        quick_replies: &[],
    },
    TemplateText {
        name: PAYMENT_RECEIPT,
        language: "sw",
        body: "Asante {{1}}. {{5}} imepokea {{2}} kwa ankara {{3}} (risiti ya M-Pesa {{4}}). Salio lililobaki: {{6}}.",
        params: &["customer name", "amount", "invoice", "M-Pesa receipt", "merchant name", "balance"],
        quick_replies: &[],
    },
    TemplateText {
        name: PROMISE_FOLLOWUP,
        language: "en",
        body: "Hello {{1}}, you told {{5}} you would pay {{2}} for invoice {{3}} on {{4}}. Tap Pay now to pay with M-Pesa, or reply with the day you will pay.",
        params: &["customer name", "amount", "invoice", "promised date", "merchant name"],
        quick_replies: &[("Pay now", "PAY:")],
    },
    TemplateText {
        name: PROMISE_FOLLOWUP,
        language: "sw",
        body: "Habari {{1}}, uliambia {{5}} kwamba utalipa {{2}} kwa ankara {{3}} tarehe {{4}}. Bonyeza Lipa sasa kulipa kwa M-Pesa, au jibu na siku utakayolipa.",
        params: &["customer name", "amount", "invoice", "promised date", "merchant name"],
        quick_replies: &[("Lipa sasa", "PAY:")],
    },
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuickReply {
    pub text: String,
    pub payload_prefix: String,
}

/// A template the merchant has had approved, as the registry in settings holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateDef {
    pub name: String,
    pub language: String,
    pub category: String,
    pub body: String,
    pub params: Vec<String>,
    pub quick_replies: Vec<QuickReply>,
}

impl TemplateDef {
    pub fn param_count(&self) -> usize {
        self.params.len()
    }

    /// The body with its placeholders filled, as the customer sees it.
    pub fn render(&self, params: &[String]) -> String {
        let mut out = self.body.clone();
        // Highest first so {{1}} does not eat the start of {{10}}.
        for (i, p) in params.iter().enumerate().rev() {
            out = out.replace(&format!("{{{{{}}}}}", i + 1), p);
        }
        out
    }
}

impl From<&TemplateText> for TemplateDef {
    fn from(t: &TemplateText) -> Self {
        TemplateDef {
            name: t.name.to_string(),
            language: t.language.to_string(),
            category: "UTILITY".to_string(),
            body: t.body.to_string(),
            params: t.params.iter().map(|p| p.to_string()).collect(),
            quick_replies: t.quick_replies.iter().map(|(text, prefix)| QuickReply { text: text.to_string(), payload_prefix: prefix.to_string() }).collect(),
        }
    }
}

pub fn defaults() -> Vec<TemplateDef> {
    DEFAULT_TEMPLATES.iter().map(TemplateDef::from).collect()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("no approved template {name:?} in language {language:?}")]
    Unknown { name: String, language: String },
    #[error("template {name:?} takes {expected} body parameters, {given} given")]
    ParamCount { name: String, expected: usize, given: usize },
    #[error("template {name:?} has {expected} quick-reply buttons, {given} payloads given")]
    PayloadCount { name: String, expected: usize, given: usize },
}

/// The templates in settings, or the defaults when the merchant has not changed them.
pub fn registry(conn: &Connection) -> store::Result<Vec<TemplateDef>> {
    Ok(settings::get::<Vec<TemplateDef>>(conn, SETTINGS_KEY)?.unwrap_or_else(defaults))
}

pub fn save(tx: &Transaction, templates: &[TemplateDef], now: DateTime<Utc>) -> store::Result<()> {
    settings::set(tx, SETTINGS_KEY, &templates, now)
}

pub fn find<'a>(registry: &'a [TemplateDef], name: &str, language: &str) -> Option<&'a TemplateDef> {
    registry.iter().find(|t| t.name == name && t.language == language)
}

/// A template message checked against the registry: known name and language, right counts.
pub fn build(registry: &[TemplateDef], name: &str, language: &str, body_params: Vec<String>, quick_reply_payloads: Vec<String>) -> Result<OutboundMessage, TemplateError> {
    let def = find(registry, name, language).ok_or_else(|| TemplateError::Unknown { name: name.into(), language: language.into() })?;
    if body_params.len() != def.param_count() {
        return Err(TemplateError::ParamCount { name: name.into(), expected: def.param_count(), given: body_params.len() });
    }
    if quick_reply_payloads.len() != def.quick_replies.len() {
        return Err(TemplateError::PayloadCount { name: name.into(), expected: def.quick_replies.len(), given: quick_reply_payloads.len() });
    }
    Ok(OutboundMessage::Template { name: name.into(), language: language.into(), body_params, quick_reply_payloads })
}

/// The payment reminder with its "Pay now" button carrying `PAY:<invoice>`.
pub fn payment_reminder(registry: &[TemplateDef], language: &str, customer: &str, amount: &str, invoice: &str, due: &str, merchant: &str) -> Result<OutboundMessage, TemplateError> {
    let payloads = find(registry, PAYMENT_REMINDER, language)
        .map(|d| d.quick_replies.iter().map(|q| format!("{}{invoice}", q.payload_prefix)).collect())
        .unwrap_or_default();
    build(registry, PAYMENT_REMINDER, language, vec![customer.into(), amount.into(), invoice.into(), due.into(), merchant.into()], payloads)
}

/// The rendered text of a default template, for previews and the simulated phone.
pub fn render_default(name: &str, language: &str, params: &[String]) -> Option<String> {
    DEFAULT_TEMPLATES.iter().find(|t| t.name == name && t.language == language).map(|t| TemplateDef::from(t).render(params))
}

/// The text the merchant submits to Meta (WhatsApp Manager → Message templates), as Markdown.
pub fn submission_markdown() -> String {
    let mut out = String::new();
    for t in DEFAULT_TEMPLATES {
        out.push_str(&format!("### `{}` ({}) — category UTILITY\n\n", t.name, t.language));
        out.push_str(&format!("Body: {}\n\n", t.body));
        let params: Vec<String> = t.params.iter().enumerate().map(|(i, p)| format!("{{{{{}}}}} {p}", i + 1)).collect();
        out.push_str(&format!("Parameters: {}\n\n", params.join(", ")));
        for (text, prefix) in t.quick_replies {
            out.push_str(&format!("Quick-reply button: \"{text}\" (payload `{prefix}<invoice>`)\n\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::temp_store;

    #[test]
    fn every_default_exists_in_english_and_swahili_with_matching_placeholders() {
        for name in [PAYMENT_REMINDER, PAYMENT_RECEIPT, PROMISE_FOLLOWUP] {
            for lang in ["en", "sw"] {
                let t = DEFAULT_TEMPLATES.iter().find(|t| t.name == name && t.language == lang).unwrap_or_else(|| panic!("{name} {lang}"));
                for i in 1..=t.params.len() {
                    assert!(t.body.contains(&format!("{{{{{i}}}}}")), "{name} {lang} lacks {{{{{i}}}}}");
                }
                assert!(!t.body.contains(&format!("{{{{{}}}}}", t.params.len() + 1)));
            }
        }
    }

    #[test]
    fn the_reminder_carries_pay_now_with_the_invoice() {
        let reg = defaults();
        let m = payment_reminder(&reg, "en", "Wanjiku", "KES 2,500", "INV-1042", "4 Dec 2026", "Duka la Mama").unwrap();
        let OutboundMessage::Template { quick_reply_payloads, body_params, .. } = &m else { panic!() };
        assert_eq!(quick_reply_payloads, &["PAY:INV-1042"]);
        assert_eq!(
            render_default(PAYMENT_REMINDER, "en", body_params).unwrap(),
            "Hello Wanjiku, this is a reminder from Duka la Mama: invoice INV-1042 for KES 2,500 is due on 4 Dec 2026. Tap Pay now to pay with M-Pesa. Reply STOP to stop these reminders."
        );
        assert!(m.validate().is_ok());
    }

    #[test]
    fn counts_and_names_are_checked_against_the_registry() {
        let reg = defaults();
        assert!(matches!(build(&reg, "nope", "en", vec![], vec![]), Err(TemplateError::Unknown { .. })));
        assert!(matches!(build(&reg, PAYMENT_RECEIPT, "fr", vec![], vec![]), Err(TemplateError::Unknown { .. })));
        assert!(matches!(build(&reg, PAYMENT_RECEIPT, "sw", vec!["a".into()], vec![]), Err(TemplateError::ParamCount { expected: 6, given: 1, .. })));
    }

    #[test]
    fn the_registry_lives_in_settings() {
        let s = temp_store();
        assert_eq!(s.read(registry).unwrap(), defaults());
        let mut custom = defaults();
        custom.retain(|t| t.language == "sw");
        s.write(|tx| save(tx, &custom, Utc::now())).unwrap();
        assert_eq!(s.read(registry).unwrap().len(), 3);
        assert!(submission_markdown().contains("malipo_promise_followup"));
    }
}
