// Money and dates the way Kenyan merchants read them.

/** 12500 → "KES 12,500". Amounts are whole shillings. */
export function kes(amount: number): string {
  const sign = amount < 0 ? "-" : "";
  return `KES ${sign}${Math.abs(Math.trunc(amount)).toLocaleString("en-KE")}`;
}

/** "2026-12-01" → "1 Dec 2026" (a calendar date, no timezone shift). */
export function day(isoDate: string): string {
  const [y, m, d] = isoDate.split("-").map(Number);
  if (!y || !m || !d) return isoDate;
  const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  return `${d} ${months[m - 1]} ${y}`;
}

/** An instant shown in the merchant's timezone, e.g. "4 Dec 2026, 14:05". */
export function when(isoInstant: string, timeZone = "Africa/Nairobi"): string {
  const t = new Date(isoInstant);
  if (Number.isNaN(t.getTime())) return isoInstant;
  return new Intl.DateTimeFormat("en-GB", {
    timeZone,
    day: "numeric",
    month: "short",
    year: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    hour12: false,
  }).format(t);
}

const statusLabels: Record<string, string> = {
  open: "Open",
  partially_paid: "Part paid",
  paid: "Paid",
  disputed: "Disputed",
  cancelled: "Cancelled",
  written_off: "Written off",
};

export function statusLabel(status: string): string {
  return statusLabels[status] ?? status;
}

const attemptLabels: Record<string, string> = {
  pending: "Waiting to send",
  sending: "Sending",
  pushed: "Prompt on phone",
  unknown: "Checking",
  paid: "Paid",
  failed: "Failed",
  cancelled: "Cancelled",
  timed_out: "No answer",
  rejected: "Refused by M-Pesa",
  needs_review: "Needs review",
};

export function attemptLabel(state: string): string {
  return attemptLabels[state] ?? state;
}

const sourceLabels: Record<string, string> = {
  stk_chat: "Chat (M-Pesa prompt)",
  stk_merchant: "Requested by you",
  c2b: "Paybill / till",
  manual: "Cash or bank",
};

export function sourceLabel(source: string): string {
  return sourceLabels[source] ?? source;
}
