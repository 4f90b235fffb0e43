//! What the agent says, in English and Swahili: short, polite, signed with the merchant's name.
//! Button titles stay within WhatsApp's 20 characters.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::understand::Language;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    pub id: String,
    pub title: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRow {
    pub id: String,
    pub title: String,
    pub description: String,
}

/// One message to the customer. Rendered by the WhatsApp channel as text, reply buttons or a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub body: String,
    pub buttons: Vec<Button>,
    /// A list (several invoices): (button label, rows).
    pub list: Option<(String, Vec<ListRow>)>,
}

pub use crate::domain::kes_text as kes;

pub fn date(d: NaiveDate, lang: Language) -> String {
    const EN: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    use chrono::Datelike;
    match lang {
        Language::En => format!("{} {} {}", d.day(), EN[d.month0() as usize], d.year()),
        Language::Sw => format!("{}/{}/{}", d.day(), d.month(), d.year()),
    }
}

/// Builds replies in one language, signed by one merchant.
pub struct Voice<'a> {
    pub lang: Language,
    pub merchant: &'a str,
}

impl Voice<'_> {
    fn t(&self, en: String, sw: String) -> String {
        let body = match self.lang {
            Language::En => en,
            Language::Sw => sw,
        };
        format!("{body}\n— {}", self.merchant)
    }

    fn b(&self, id: impl Into<String>, en: &str, sw: &str) -> Button {
        Button { id: id.into(), title: match self.lang { Language::En => en, Language::Sw => sw }.to_string() }
    }

    fn text(&self, en: String, sw: String) -> Reply {
        Reply { body: self.t(en, sw), buttons: vec![], list: None }
    }

    fn with(&self, en: String, sw: String, buttons: Vec<Button>) -> Reply {
        Reply { body: self.t(en, sw), buttons, list: None }
    }

    pub fn pay_button(&self, id: impl Into<String>, amount: i64) -> Button {
        let title = match self.lang {
            Language::En => format!("Pay {}", kes(amount)),
            Language::Sw => format!("Lipa {}", kes(amount)),
        };
        Button { id: id.into(), title }
    }

    pub fn talk_button(&self) -> Button {
        self.b("HUMAN", "Talk to us", "Ongea nasi")
    }

    fn other_amount_button(&self) -> Button {
        self.b("AMOUNT", "Another amount", "Kiasi kingine")
    }

    pub fn confirm(&self, name: &str, invoice: &str, amount: i64, phone_masked: &str, confirm_id: &str, minutes: u32) -> Reply {
        self.with(
            format!(
                "Hi {name}, please confirm: pay {} for invoice {invoice} from M-Pesa number {phone_masked}. You will get an M-Pesa prompt to enter your PIN. This offer is open for {minutes} minutes.",
                kes(amount)
            ),
            format!(
                "Habari {name}, tafadhali thibitisha: ulipe {} kwa ankara {invoice} kutoka namba ya M-Pesa {phone_masked}. Utapata ombi la M-Pesa uweke PIN yako. Ombi hili ni la dakika {minutes}.",
                kes(amount)
            ),
            vec![self.pay_button(confirm_id, amount), self.other_amount_button(), self.talk_button()],
        )
    }

    pub fn confirm_again(&self, amount: i64, invoice: &str, confirm_id: &str) -> Reply {
        self.with(
            format!("This is a large payment: {} for {invoice}. Please confirm once more.", kes(amount)),
            format!("Hiki ni kiasi kikubwa: {} kwa {invoice}. Tafadhali thibitisha tena.", kes(amount)),
            vec![self.b(confirm_id, "Yes, pay now", "Ndio, lipa sasa"), self.b("CANCEL", "Cancel", "Ghairi")],
        )
    }

    pub fn expired(&self) -> Reply {
        self.text(
            "That confirmation has expired, so nothing was charged. Here is the current amount:".into(),
            "Uthibitisho huo umeisha muda, hakuna pesa iliyotozwa. Hiki ndicho kiasi cha sasa:".into(),
        )
    }

    pub fn prompt_sent(&self, phone_masked: &str) -> Reply {
        self.text(
            format!("An M-Pesa prompt is on its way to {phone_masked}. Enter your PIN on the prompt, never in this chat."),
            format!("Ombi la M-Pesa linakuja kwa {phone_masked}. Weka PIN yako kwenye ombi hilo, si hapa kwenye chat."),
        )
    }

    pub fn already_in_progress(&self) -> Reply {
        self.text(
            "Your M-Pesa prompt is already on its way. Please check your phone; I won't send another until it's done.".into(),
            "Ombi lako la M-Pesa tayari limetumwa. Tafadhali angalia simu yako; sitatuma lingine hadi hili likamilike.".into(),
        )
    }

    pub fn receipt(&self, amount: i64, invoice: &str, receipt: Option<&str>, balance: i64) -> Reply {
        let code_en = receipt.map(|r| format!(" M-Pesa receipt {r}.")).unwrap_or_default();
        let code_sw = receipt.map(|r| format!(" Risiti ya M-Pesa {r}.")).unwrap_or_default();
        let (rest_en, rest_sw) = if balance == 0 {
            (format!("Invoice {invoice} is fully paid."), format!("Ankara {invoice} imelipwa yote."))
        } else {
            (format!("Balance on {invoice}: {}.", kes(balance)), format!("Salio la {invoice}: {}.", kes(balance)))
        };
        self.text(
            format!("Thank you! We received {}.{code_en} {rest_en}", kes(amount)),
            format!("Asante! Tumepokea {}.{code_sw} {rest_sw}", kes(amount)),
        )
    }

    pub fn correction(&self, amount: i64, invoice: &str, receipt: Option<&str>) -> Reply {
        let code = receipt.map(|r| format!(" ({r})")).unwrap_or_default();
        self.text(
            format!("Good news: your payment of {}{code} for {invoice} did go through after all. Thank you!", kes(amount)),
            format!("Habari njema: malipo yako ya {}{code} kwa {invoice} yamepokelewa. Asante!", kes(amount)),
        )
    }

    pub fn no_answer(&self, retry_id: &str) -> Reply {
        self.with(
            "The M-Pesa prompt wasn't answered. Please check your phone is on and unlocked, then try again.".into(),
            "Ombi la M-Pesa halikujibiwa. Hakikisha simu yako iko wazi, kisha jaribu tena.".into(),
            vec![self.b(retry_id, "Try again", "Jaribu tena"), self.talk_button()],
        )
    }

    pub fn insufficient(&self, amount: i64) -> Reply {
        self.with(
            format!("M-Pesa says there isn't enough balance for {}. You can pay a smaller amount now, or tell us when you'll pay.", kes(amount)),
            format!("M-Pesa inasema salio halitoshi kwa {}. Unaweza kulipa kiasi kidogo sasa, au utuambie utalipa lini.", kes(amount)),
            vec![self.b("AMOUNT", "Smaller amount", "Kiasi kidogo"), self.b("LATER", "Pay later", "Nitalipa baadaye")],
        )
    }

    pub fn cancelled(&self, retry_id: &str) -> Reply {
        self.with(
            "The M-Pesa prompt was cancelled, so nothing was charged. Would you like to try again?".into(),
            "Ombi la M-Pesa lilighairiwa, hakuna pesa iliyotozwa. Ungependa kujaribu tena?".into(),
            vec![self.b(retry_id, "Try again", "Jaribu tena"), self.talk_button()],
        )
    }

    pub fn wrong_pin(&self, retry_id: &str) -> Reply {
        self.with(
            "The M-Pesa PIN was not accepted, so nothing was charged. Would you like to try again?".into(),
            "PIN ya M-Pesa haikukubaliwa, hakuna pesa iliyotozwa. Ungependa kujaribu tena?".into(),
            vec![self.b(retry_id, "Try again", "Jaribu tena"), self.talk_button()],
        )
    }

    pub fn wait_and_retry(&self, retry_id: &str) -> Reply {
        self.with(
            "M-Pesa asks us to wait a couple of minutes before sending the same request again. Tap below in 2 minutes.".into(),
            "M-Pesa inatuomba tusubiri dakika mbili kabla ya kutuma ombi hilo tena. Bonyeza hapa baada ya dakika 2.".into(),
            vec![self.b(retry_id, "Try again", "Jaribu tena")],
        )
    }

    pub fn mpesa_down(&self, retry_id: &str) -> Reply {
        self.with(
            "M-Pesa isn't responding right now, so nothing was charged. Please try again in a few minutes, or talk to us.".into(),
            "M-Pesa haijibu kwa sasa, hakuna pesa iliyotozwa. Tafadhali jaribu tena baada ya dakika chache, au ongea nasi.".into(),
            vec![self.b(retry_id, "Try again", "Jaribu tena"), self.talk_button()],
        )
    }

    pub fn limit_problem(&self, what: &str) -> Reply {
        self.with(
            format!("M-Pesa couldn't take this payment ({what}). You can try a different amount."),
            format!("M-Pesa haikuweza kupokea malipo haya ({what}). Unaweza kujaribu kiasi kingine."),
            vec![self.b("AMOUNT", "Another amount", "Kiasi kingine"), self.talk_button()],
        )
    }

    pub fn cannot_take_payments(&self) -> Reply {
        self.text(
            "We can't take M-Pesa payments here right now. We've let the team know and will get back to you.".into(),
            "Hatuwezi kupokea malipo ya M-Pesa hapa kwa sasa. Tumewajulisha wahusika na tutakujibu.".into(),
        )
    }

    pub fn too_many_prompts(&self) -> Reply {
        self.text(
            "You've had several M-Pesa prompts in the last hour, so I'll wait before sending another. Please try again later.".into(),
            "Umepata maombi kadhaa ya M-Pesa ndani ya saa moja, kwa hivyo nitasubiri kabla ya kutuma lingine. Tafadhali jaribu tena baadaye.".into(),
        )
    }

    pub fn handed_over(&self) -> Reply {
        self.text(
            "I've asked a person from our team to reply here. They'll be with you soon.".into(),
            "Nimemwomba mtu wa timu yetu akujibu hapa. Atakuwa nawe hivi karibuni.".into(),
        )
    }

    pub fn handed_back(&self) -> Reply {
        self.text(
            "You're back with our payment assistant. Say \"pay\" to pay or \"balance\" to see what you owe.".into(),
            "Umerudi kwa msaidizi wetu wa malipo. Andika \"lipa\" kulipa au \"salio\" kuona deni lako.".into(),
        )
    }

    pub fn nothing_owed(&self) -> Reply {
        self.text("You have no unpaid invoices with us. Thank you!".into(), "Huna ankara ambazo hazijalipwa. Asante!".into())
    }

    pub fn balance(&self, lines: &[(String, i64, NaiveDate)], pay_id: Option<(&str, i64)>) -> Reply {
        let total: i64 = lines.iter().map(|l| l.1).sum();
        let list_en: Vec<String> = lines.iter().map(|(n, b, d)| format!("• {n}: {} (due {})", kes(*b), date(*d, Language::En))).collect();
        let list_sw: Vec<String> = lines.iter().map(|(n, b, d)| format!("• {n}: {} (tarehe {})", kes(*b), date(*d, Language::Sw))).collect();
        let mut buttons = vec![];
        if let Some((id, amount)) = pay_id {
            buttons.push(self.pay_button(id, amount));
        }
        buttons.push(self.talk_button());
        self.with(
            format!("You owe {} in total:\n{}", kes(total), list_en.join("\n")),
            format!("Deni lako ni {} kwa jumla:\n{}", kes(total), list_sw.join("\n")),
            buttons,
        )
    }

    pub fn choose_invoice(&self, rows: Vec<ListRow>) -> Reply {
        let mut r = self.text(
            "You have several unpaid invoices. Which one would you like to pay?".into(),
            "Una ankara kadhaa ambazo hazijalipwa. Ungependa kulipa ipi?".into(),
        );
        r.list = Some((match self.lang { Language::En => "Choose invoice", Language::Sw => "Chagua ankara" }.to_string(), rows));
        r
    }

    pub fn ask_amount(&self, invoice: &str, balance: i64, min: i64) -> Reply {
        self.text(
            format!("How much would you like to pay now for {invoice}? Any amount from {} up to {}.", kes(min), kes(balance)),
            format!("Ungependa kulipa kiasi gani sasa kwa {invoice}? Kiasi chochote kuanzia {} hadi {}.", kes(min), kes(balance)),
        )
    }

    pub fn above_balance(&self, asked: i64, balance: i64) -> Reply {
        self.text(
            format!("{} is more than what you owe ({}). I can only ask for up to the balance.", kes(asked), kes(balance)),
            format!("{} ni zaidi ya deni lako ({}). Naweza kuomba hadi kiasi cha deni tu.", kes(asked), kes(balance)),
        )
    }

    pub fn below_minimum(&self, min: i64) -> Reply {
        self.text(format!("The smallest payment we can take is {}.", kes(min)), format!("Kiasi cha chini tunachopokea ni {}.", kes(min)))
    }

    pub fn no_partial(&self, balance: i64) -> Reply {
        self.text(
            format!("This invoice needs to be paid in full: {}.", kes(balance)),
            format!("Ankara hii inahitaji kulipwa yote: {}.", kes(balance)),
        )
    }

    pub fn paid_found(&self, receipt: &str, amount: i64, invoice: &str) -> Reply {
        self.text(
            format!("Yes, we have your payment {receipt} of {} for {invoice}. Thank you!", kes(amount)),
            format!("Ndio, tumepokea malipo yako {receipt} ya {} kwa {invoice}. Asante!", kes(amount)),
        )
    }

    pub fn recent_payments(&self, lines: &[(String, i64, String)]) -> Reply {
        let en: Vec<String> = lines.iter().map(|(r, a, i)| format!("• {r}: {} for {i}", kes(*a))).collect();
        let sw: Vec<String> = lines.iter().map(|(r, a, i)| format!("• {r}: {} kwa {i}", kes(*a))).collect();
        self.text(
            format!("These are the payments we have from you:\n{}\nIf you paid something else, please send the M-Pesa code.", en.join("\n")),
            format!("Haya ndiyo malipo tuliyo nayo kutoka kwako:\n{}\nKama ulilipa mengine, tafadhali tuma namba ya muamala ya M-Pesa.", sw.join("\n")),
        )
    }

    pub fn ask_for_code(&self) -> Reply {
        self.text(
            "We can't find that payment yet. Please send the M-Pesa code from your confirmation SMS (like QKJ7RT61SV) and we'll check.".into(),
            "Bado hatujaona malipo hayo. Tafadhali tuma namba ya muamala kutoka SMS ya M-Pesa (mfano QKJ7RT61SV) tuangalie.".into(),
        )
    }

    pub fn code_queued(&self, code: &str) -> Reply {
        self.text(
            format!("Thank you. We'll check payment {code} and get back to you."),
            format!("Asante. Tutaangalia malipo {code} na tutakujibu."),
        )
    }

    pub fn dispute(&self, invoice: Option<&str>) -> Reply {
        let (en, sw) = match invoice {
            Some(i) => (format!("Sorry about that. I've asked the team to look at {i}; they'll get back to you here. We won't send reminders for it meanwhile."),
                        format!("Samahani kwa hilo. Nimewaomba wahusika waangalie {i}; watakujibu hapa. Hatutatuma vikumbusho vyake kwa sasa.")),
            None => ("Sorry about that. I've asked the team to look into it; they'll get back to you here.".to_string(),
                     "Samahani kwa hilo. Nimewaomba wahusika waangalie; watakujibu hapa.".to_string()),
        };
        self.text(en, sw)
    }

    pub fn promise_recorded(&self, when: NaiveDate) -> Reply {
        self.text(
            format!("Thank you! We've noted you'll pay on {}. We'll send a reminder that day.", date(when, Language::En)),
            format!("Asante! Tumeandika kwamba utalipa tarehe {}. Tutakukumbusha siku hiyo.", date(when, Language::Sw)),
        )
    }

    pub fn ask_when(&self) -> Reply {
        self.text(
            "No problem. When will you be able to pay? (for example \"Friday\" or \"15th\")".into(),
            "Sawa. Utaweza kulipa lini? (mfano \"Ijumaa\" au \"tarehe 15\")".into(),
        )
    }

    pub fn opted_out(&self) -> Reply {
        self.text(
            "Done: we won't send you reminders any more. Reply START if you change your mind.".into(),
            "Sawa: hatutakutumia vikumbusho tena. Jibu START ukibadilisha nia.".into(),
        )
    }

    pub fn opted_in(&self) -> Reply {
        self.text("Welcome back: reminders are on again.".into(), "Karibu tena: vikumbusho vimewashwa tena.".into())
    }

    pub fn greeting(&self, name: &str) -> Reply {
        self.with(
            format!("Hello {name}! I can help you pay an invoice, check your balance, or put you through to our team."),
            format!("Habari {name}! Naweza kukusaidia kulipa ankara, kuangalia salio lako, au kukuunganisha na timu yetu."),
            vec![self.b("PAY", "Pay now", "Lipa sasa"), self.b("BALANCE", "My balance", "Salio langu"), self.talk_button()],
        )
    }

    pub fn thanks(&self) -> Reply {
        self.text("You're welcome!".into(), "Karibu!".into())
    }

    pub fn fallback(&self) -> Reply {
        self.with(
            "Sorry, I didn't get that. I can help you pay, check your balance, or put you through to our team.".into(),
            "Samahani, sijaelewa. Naweza kukusaidia kulipa, kuangalia salio, au kukuunganisha na timu yetu.".into(),
            vec![self.b("PAY", "Pay now", "Lipa sasa"), self.b("BALANCE", "My balance", "Salio langu"), self.talk_button()],
        )
    }

    pub fn cancelled_by_customer(&self) -> Reply {
        self.text("Okay, nothing will be charged.".into(), "Sawa, hakuna kitakachotozwa.".into())
    }

    pub fn pin_warning(&self) -> Reply {
        self.text(
            "Please never share your M-Pesa PIN, not even with us. We removed it from this chat. Only enter it on the M-Pesa prompt.".into(),
            "Tafadhali usishiriki PIN yako ya M-Pesa, hata na sisi. Tumeiondoa kwenye chat hii. Iweke tu kwenye ombi la M-Pesa.".into(),
        )
    }

    pub fn please_type(&self) -> Reply {
        self.text(
            "Sorry, I can only read text messages. Please type your message.".into(),
            "Samahani, naweza kusoma ujumbe wa maandishi tu. Tafadhali andika ujumbe wako.".into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reply_is_signed_and_buttons_fit_whatsapp() {
        for lang in [Language::En, Language::Sw] {
            let v = Voice { lang, merchant: "Duka la Mama" };
            let replies = [
                v.confirm("Wanjiku", "INV-1042", 250_000, "2547•••••678", "CONFIRM:1", 15),
                v.confirm_again(12_500, "INV-1042", "CONFIRM2:1"),
                v.no_answer("RETRY:1"),
                v.insufficient(2500),
                v.cancelled("RETRY:1"),
                v.mpesa_down("RETRY:1"),
                v.greeting("Wanjiku"),
                v.fallback(),
                v.balance(&[("INV-1".into(), 2500, NaiveDate::from_ymd_opt(2026, 12, 1).unwrap())], Some(("CONFIRM:2", 250_000))),
            ];
            for r in replies {
                assert!(r.body.ends_with("— Duka la Mama"), "{}", r.body);
                assert!(r.buttons.len() <= 3);
                for b in &r.buttons {
                    assert!(b.title.chars().count() <= 20, "{:?}", b.title);
                }
            }
        }
    }
}
