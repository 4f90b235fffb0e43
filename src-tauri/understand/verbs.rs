//! A tiny Swahili verb analyser for the payment verbs.
//!
//! Swahili verbs stack prefixes: `[neg] subject tense [object] ROOT suffix`, e.g.
//! `ni-ta-ku-lip-a` (I will pay you), `ni-mesha-lip-a` (I have already paid), `si-ja-lip-a`
//! (I haven't paid), `ni-lip-e` (should I pay / let me pay), `ku-lip-a` (to pay). Sheng borrows
//! English roots into the same frame: `nita-clear`, `nisha-pay`, `nime-send`. Typing drops vowels
//! (`nmelipa`, `ntalipa`, `nshalipa`), so the subject may be a bare `n`.
//!
//! Only three roots matter for intent — pay (`lip`, `pay`, `clear`, `settle`), send (`tum`,
//! `send`) and finish (`maliz`: "nimemaliza deni") — and what we need from the prefix is the tense
//! (future = a promise, perfect/past = already paid, subjunctive/infinitive/present = wants to pay
//! now), polarity and person (`mlituma` = *you* sent, not a payment by the customer).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tense {
    Future,
    Past,
    Present,
    Infinitive,
    Imperative,
    Subjunctive,
    Conditional,
    NegFuture,
    NegPast,
    NegPresent,
    NegImperative,
    /// "nitumie", "kunitumia": (you) send *me* — a request, not a payment.
    SendMe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Person {
    First,
    Second,
    Third,
    Unmarked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Root {
    Pay,
    Send,
    Finish,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verb {
    pub tense: Tense,
    pub person: Person,
    pub root: Root,
}

/// (root spelling, root, allowed suffixes, is an English loan root)
const ROOTS: &[(&str, Root, &[&str], bool)] = &[
    ("lip", Root::Pay, &["a", "e", "ia", "ie", "wa", "iwa", "iwe", "we", "ika", "iana", "ii"], false),
    ("tum", Root::Send, &["a", "e", "ia", "ie", "iwa", "wa"], false),
    ("maliz", Root::Finish, &["a", "e", "ia", "ie", "ika"], false),
    ("clear", Root::Pay, &["", "i", "ia"], true),
    ("pay", Root::Pay, &["", "i"], true),
    ("settle", Root::Pay, &[""], true),
    ("sort", Root::Pay, &[""], true),
    ("send", Root::Send, &["", "i"], true),
];

const SUBJECTS: &[(&str, Person)] = &[
    ("ni", Person::First),
    ("tu", Person::First),
    ("n", Person::First),
    ("mu", Person::Second),
    ("u", Person::Second),
    ("m", Person::Second),
    ("wa", Person::Third),
    ("a", Person::Third),
    ("i", Person::Third),
    ("ya", Person::Third),
    ("li", Person::Third),
    ("ki", Person::Third),
    ("zi", Person::Third),
];

const NEG_SUBJECTS: &[(&str, Person)] = &[
    ("hatu", Person::First),
    ("hawa", Person::Third),
    ("ham", Person::Second),
    ("si", Person::First),
    ("hu", Person::Second),
    ("ha", Person::Third),
];

#[derive(Clone, Copy, PartialEq)]
enum Tam {
    Fut,
    Perf,
    Past,
    Pres,
    Cond,
    NegPerf,
    Inf,
}

/// Tense/aspect markers, longest first.
const TAMS: &[(&str, Tam)] = &[
    ("mesha", Tam::Perf),
    ("lisha", Tam::Perf),
    ("ngali", Tam::Cond),
    ("ngeli", Tam::Cond),
    ("nge", Tam::Cond),
    ("sha", Tam::Perf),
    ("me", Tam::Perf),
    ("ta", Tam::Fut),
    ("li", Tam::Past),
    ("ka", Tam::Past),
    ("na", Tam::Pres),
    ("ki", Tam::Cond),
    ("ja", Tam::NegPerf),
    ("ku", Tam::Inf),
    ("a", Tam::Pres),
];

const OBJECTS: &[&str] = &["", "ku", "ki", "i", "wa", "m", "mu", "mw", "ni", "li", "ya", "zi", "u", "tu", "ji", "wa"];

fn object_ok(rest: &str) -> Option<&str> {
    OBJECTS.iter().find(|o| **o == rest).copied()
}

fn parse_prefix(pre: &str, suffix: &str, root: Root, loan: bool) -> Option<(Tense, Person)> {
    let subjunctive_suffix = suffix.ends_with('e');
    // negative imperative / subjunctive: u-si-, m-si-, mu-si-
    for lead in ["usi", "msi", "musi", "tusi"] {
        if let Some(rest) = pre.strip_prefix(lead) {
            if object_ok(rest).is_some() {
                return Some((Tense::NegImperative, Person::Second));
            }
        }
    }
    // negatives
    for (neg, person) in NEG_SUBJECTS {
        if let Some(rest) = pre.strip_prefix(neg) {
            for (tam, t) in TAMS {
                if let Some(r2) = rest.strip_prefix(tam) {
                    if object_ok(r2).is_some() {
                        let tense = match t {
                            Tam::Fut => Tense::NegFuture,
                            Tam::NegPerf | Tam::Inf | Tam::Past => Tense::NegPast,
                            _ => continue,
                        };
                        return Some((tense, *person));
                    }
                }
            }
            if object_ok(rest).is_some() && !loan {
                return Some((Tense::NegPresent, *person));
            }
        }
    }
    // affirmative with subject
    let mut best: Option<(Tense, Person)> = None;
    for (subj, person) in SUBJECTS {
        let Some(rest) = pre.strip_prefix(subj) else { continue };
        for (tam, t) in TAMS {
            let Some(r2) = rest.strip_prefix(tam) else { continue };
            let Some(obj) = object_ok(r2) else { continue };
            let tense = match t {
                Tam::Fut => Tense::Future,
                Tam::Perf | Tam::Past => Tense::Past,
                Tam::Pres => Tense::Present,
                Tam::Cond => Tense::Conditional,
                Tam::NegPerf => continue,
                Tam::Inf => continue,
            };
            if root == Root::Send && obj == "ni" && tense == Tense::Present {
                return Some((Tense::SendMe, *person));
            }
            return Some((tense, *person));
        }
        // no tense marker: subjunctive ("nilipe", "tulipe") or send-me ("nitumie")
        if !loan {
            if let Some(obj) = object_ok(rest) {
                if root == Root::Send && (suffix == "ie" || suffix == "ia") && (obj.is_empty() || obj == "ni") && matches!(*subj, "ni" | "u" | "m") {
                    best.get_or_insert((Tense::SendMe, Person::Second));
                    continue;
                }
                if subjunctive_suffix && obj != "ni" {
                    best.get_or_insert((Tense::Subjunctive, *person));
                } else if subjunctive_suffix && obj == "ni" {
                    // "unilipe", "mnitumie": you … me
                    best.get_or_insert((if root == Root::Send { Tense::SendMe } else { Tense::Subjunctive }, Person::Second));
                }
            }
        }
    }
    if best.is_some() {
        return best;
    }
    // infinitive ku-[obj]-
    if let Some(rest) = pre.strip_prefix("ku") {
        if let Some(obj) = object_ok(rest) {
            if root == Root::Send && obj == "ni" {
                return Some((Tense::SendMe, Person::Unmarked));
            }
            return Some((Tense::Infinitive, Person::Unmarked));
        }
    }
    if pre.is_empty() && !loan {
        return Some((Tense::Imperative, Person::Second));
    }
    // object + imperative with subjunctive ending: "nilipie"? handled above; "nitumie" too
    None
}

/// Analyse a token as one of the payment verbs.
pub(crate) fn analyse(tok: &str) -> Option<Verb> {
    if tok.len() < 3 || tok.len() > 24 || !tok.bytes().all(|b| b.is_ascii_lowercase()) {
        return None;
    }
    for (spelling, root, suffixes, loan) in ROOTS {
        for suf in *suffixes {
            let tail_len = spelling.len() + suf.len();
            if tok.len() < tail_len {
                continue;
            }
            let (pre, tail) = tok.split_at(tok.len() - tail_len);
            if !tail.starts_with(spelling) || &tail[spelling.len()..] != *suf {
                continue;
            }
            if *loan && pre.is_empty() {
                // the bare English word is handled by the English rules
                continue;
            }
            if let Some((tense, person)) = parse_prefix(pre, suf, *root, *loan) {
                return Some(Verb { tense, person, root: *root });
            }
        }
    }
    None
}

/// What kind of auxiliary governs a following infinitive ("nataka kulipa", "nitaweza kulipa")?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Aux {
    Desire,
    Future,
    Neg,
    Past,
}

pub(crate) fn aux_kind(tok: &str) -> Option<Aux> {
    Some(match tok {
        // English
        "want" | "wants" | "wanted" | "like" | "ready" | "let" | "how" | "can" | "could" | "may" | "where" | "help" | "try"
        | "trying" | "tried" | "need" | "able" | "wish" | "allow" | "lets" | "would" | "tryin" | "prefer" | "plan" | "intend" => {
            Aux::Desire
        }
        "will" | "shall" | "going" | "gonna" | "should" => Aux::Future,
        "not" | "never" | "refuse" | "unable" => Aux::Neg,
        "did" | "have" | "has" | "had" | "already" => Aux::Past,
        // Swahili / Sheng
        "nataka" | "ninataka" | "tunataka" | "nilitaka" | "tulitaka" | "natak" | "nilikuwa" | "nilikua" | "tulikuwa" | "naweza"
        | "naeza" | "ninaweza" | "tunaweza" | "twaweza" | "nawezaje" | "naezaje" | "tunawezaje" | "ningependa" | "tungependa"
        | "napenda" | "ningetaka" | "nimejaribu" | "najaribu" | "nilijaribu" | "tumejaribu" | "naomba" | "tunaomba" | "nisaidie"
        | "tusaidie" | "tayari" | "nifanyeje" | "tufanyeje" | "jaribu" | "nahitaji" | "ninahitaji" | "lazima" | "nianze"
        | "naenda" | "niweze" | "nikuje" | "kwenda" | "ningeweza" => Aux::Desire,
        "sitaki" | "hatutaki" | "siwezi" | "hatuwezi" | "sitaweza" | "hatutaweza" | "sijaweza" | "sikuweza" | "sipendi" | "sina"
        | "sitaki." => Aux::Neg,
        t if (t.starts_with("nita") || t.starts_with("tuta") || t.starts_with("nta")) && t.len() > 5 => Aux::Future,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tense(t: &str) -> Option<Tense> {
        analyse(t).map(|v| v.tense)
    }

    #[test]
    fn tenses() {
        assert_eq!(tense("nitalipa"), Some(Tense::Future));
        assert_eq!(tense("ntalipa"), Some(Tense::Future));
        assert_eq!(tense("nitakulipa"), Some(Tense::Future));
        assert_eq!(tense("tutalipa"), Some(Tense::Future));
        assert_eq!(tense("nitaclear"), Some(Tense::Future));
        assert_eq!(tense("nitakutumia"), Some(Tense::Future));
        assert_eq!(tense("nimelipa"), Some(Tense::Past));
        assert_eq!(tense("nmelipa"), Some(Tense::Past));
        assert_eq!(tense("nimeshalipa"), Some(Tense::Past));
        assert_eq!(tense("nmeshalipa"), Some(Tense::Past));
        assert_eq!(tense("nishalipa"), Some(Tense::Past));
        assert_eq!(tense("nshalipa"), Some(Tense::Past));
        assert_eq!(tense("nililipa"), Some(Tense::Past));
        assert_eq!(tense("nilishalipa"), Some(Tense::Past));
        assert_eq!(tense("nimeilipa"), Some(Tense::Past));
        assert_eq!(tense("nimelipia"), Some(Tense::Past));
        assert_eq!(tense("nilituma"), Some(Tense::Past));
        assert_eq!(tense("nimetuma"), Some(Tense::Past));
        assert_eq!(tense("nishapay"), Some(Tense::Past));
        assert_eq!(tense("nimesort"), Some(Tense::Past));
        assert_eq!(tense("nitasort"), Some(Tense::Future));
        assert_eq!(tense("nimeclear"), Some(Tense::Past));
        assert_eq!(tense("tulilipa"), Some(Tense::Past));
        assert_eq!(tense("tumelipa"), Some(Tense::Past));
        assert_eq!(tense("imelipwa"), Some(Tense::Past));
        assert_eq!(tense("nalipa"), Some(Tense::Present));
        assert_eq!(tense("ninalipa"), Some(Tense::Present));
        assert_eq!(tense("kulipa"), Some(Tense::Infinitive));
        assert_eq!(tense("kulipia"), Some(Tense::Infinitive));
        assert_eq!(tense("kuclear"), Some(Tense::Infinitive));
        assert_eq!(tense("lipa"), Some(Tense::Imperative));
        assert_eq!(tense("tuma"), Some(Tense::Imperative));
        assert_eq!(tense("nilipe"), Some(Tense::Subjunctive));
        assert_eq!(tense("tulipe"), Some(Tense::Subjunctive));
        assert_eq!(tense("nitume"), Some(Tense::Subjunctive));
        assert_eq!(tense("nikilipa"), Some(Tense::Conditional));
        assert_eq!(tense("sijalipa"), Some(Tense::NegPast));
        assert_eq!(tense("sikulipa"), Some(Tense::NegPast));
        assert_eq!(tense("sitalipa"), Some(Tense::NegFuture));
        assert_eq!(tense("usitume"), Some(Tense::NegImperative));
        assert_eq!(tense("msinitumie"), Some(Tense::NegImperative));
        assert_eq!(tense("nitumie"), Some(Tense::SendMe));
        assert_eq!(tense("kunitumia"), Some(Tense::SendMe));
        assert_eq!(tense("mnanitumia"), Some(Tense::SendMe));
    }

    #[test]
    fn persons_and_roots() {
        assert_eq!(analyse("mlituma").map(|v| v.person), Some(Person::Second));
        assert_eq!(analyse("ametuma").map(|v| v.person), Some(Person::Third));
        assert_eq!(analyse("nimemaliza").map(|v| v.root), Some(Root::Finish));
    }

    #[test]
    fn non_verbs() {
        for w in ["malipo", "nilipoteza", "nuclear", "unclear", "repay", "pay", "clear", "send", "tumbo", "lipstick", "nipe"] {
            assert_eq!(analyse(w), None, "{w}");
        }
    }
}
