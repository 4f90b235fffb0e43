//! STOP and its Swahili forms. Only a message that is *just* an opt-out (with polite words around it)
//! counts: "acha" alone is STOP, but "acha nione" ("let me see") is not.

/// Words that may surround an opt-out without changing it.
const FILLERS: &[&str] = &["please", "pls", "plz", "kindly", "now", "tafadhali", "sasa", "bwana", "asante", "thanks", "thank", "you", "ok", "okay", "sawa"];

/// Whole messages (after removing fillers) that opt the customer out.
const OPT_OUT_PHRASES: &[&str] = &[
    "stop",
    "acha",
    "wacha",
    "simamisha",
    "unsubscribe",
    "opt out",
    "optout",
    "stop all",
    "stop messages",
    "stop sending me messages",
    "stop sending messages",
    "stop texting me",
    "usinitumie tena",
    "usinitumie ujumbe tena",
    "usinitumie ujumbe",
    "acha kunitumia ujumbe",
    "acha kunitumia",
    "sitaki ujumbe",
    "sitaki ujumbe tena",
];

const OPT_IN_PHRASES: &[&str] = &["start", "anza", "subscribe", "resume", "endelea"];

/// Which language a STOP form was in, to confirm in the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Sw,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Sw => "sw",
        }
    }
}

fn normalise(text: &str) -> String {
    let lowered = text.to_lowercase();
    let cleaned: String = lowered.chars().map(|c| if c.is_alphanumeric() { c } else { ' ' }).collect();
    cleaned.split_whitespace().filter(|w| !FILLERS.contains(w)).collect::<Vec<_>>().join(" ")
}

/// `Some(language)` when the message is an opt-out.
pub fn opt_out(text: &str) -> Option<Lang> {
    let n = normalise(text);
    if !OPT_OUT_PHRASES.contains(&n.as_str()) {
        return None;
    }
    let swahili = ["acha", "wacha", "simamisha", "usinitumie", "sitaki"].iter().any(|w| n.split(' ').any(|x| x == *w));
    Some(if swahili { Lang::Sw } else { Lang::En })
}

pub fn is_opt_out(text: &str) -> bool {
    opt_out(text).is_some()
}

/// `Some(language)` when the message asks to receive messages again ("START", "ANZA").
pub fn opt_in(text: &str) -> Option<Lang> {
    let n = normalise(text);
    match n.as_str() {
        "anza" | "endelea" => Some(Lang::Sw),
        s if OPT_IN_PHRASES.contains(&s) => Some(Lang::En),
        _ => None,
    }
}

pub fn opt_out_confirmation(lang: Lang, merchant: &str) -> String {
    match lang {
        Lang::En => format!("You will not receive any more reminders from {merchant}. Reply START to receive them again."),
        Lang::Sw => format!("Hutapokea tena vikumbusho kutoka {merchant}. Jibu ANZA kuvipokea tena."),
    }
}

pub fn opt_in_confirmation(lang: Lang, merchant: &str) -> String {
    match lang {
        Lang::En => format!("You will receive reminders from {merchant} again. Reply STOP at any time to stop them."),
        Lang::Sw => format!("Utapokea tena vikumbusho kutoka {merchant}. Jibu ACHA wakati wowote kuvisitisha."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_and_its_swahili_forms_opt_out() {
        for s in ["STOP", "stop", " Stop! ", "stop please", "Please STOP.", "unsubscribe", "Stop sending me messages", "STOP SENDING ME MESSAGES!!"] {
            assert_eq!(opt_out(s), Some(Lang::En), "{s}");
        }
        for s in ["acha", "ACHA", "wacha", "Simamisha", "usinitumie tena", "Tafadhali usinitumie tena", "acha tafadhali 🙏", "usinitumie ujumbe tena"] {
            assert_eq!(opt_out(s), Some(Lang::Sw), "{s}");
        }
    }

    #[test]
    fn ordinary_sentences_that_contain_the_words_do_not() {
        for s in ["acha nione", "acha niangalie kwanza", "don't stop the service", "I will pay, stop asking", "bus stop", "Nataka kulipa", "stopped"] {
            assert_eq!(opt_out(s), None, "{s}");
        }
    }

    #[test]
    fn start_and_anza_opt_back_in() {
        assert_eq!(opt_in("START"), Some(Lang::En));
        assert_eq!(opt_in("anza tafadhali"), Some(Lang::Sw));
        assert_eq!(opt_in("start paying"), None);
    }
}
