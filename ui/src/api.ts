// The one typed layer over Tauri's IPC. Screens call these functions, never `invoke` directly.
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";

export type InvoiceStatus = "open" | "partially_paid" | "paid" | "disputed" | "cancelled" | "written_off";

export interface Invoice {
  id: number;
  number: string;
  customer_id: number;
  customer_name: string;
  /** Masked, e.g. 2547•••••678. */
  customer_phone: string | null;
  currency: string;
  amount: number;
  balance: number;
  issue_date: string;
  due_date: string;
  status: InvoiceStatus;
  description: string;
}

export interface AppInfo {
  version: string;
  merchant_name: string | null;
  daraja_environment: "simulator" | "sandbox" | "production" | null;
  database: string | null;
  webhook_url: string | null;
  timezone: string | null;
  startup_error: string | null;
}

/** Errors from the core arrive as a stable code and a message for people. */
export interface ApiError {
  code: string;
  message: string;
}

export function isApiError(e: unknown): e is ApiError {
  return typeof e === "object" && e !== null && "code" in e && "message" in e;
}

export function errorMessage(e: unknown): string {
  if (isApiError(e)) return e.message;
  if (e instanceof Error) return e.message;
  return String(e);
}

export type AttemptState =
  | "pending"
  | "sending"
  | "pushed"
  | "unknown"
  | "paid"
  | "failed"
  | "cancelled"
  | "timed_out"
  | "rejected"
  | "needs_review";

export interface Attempt {
  id: number;
  invoice_id: number;
  invoice_number: string;
  /** Masked. */
  phone: string;
  amount: number;
  origin: "chat" | "merchant";
  state: AttemptState;
  result_code: number | null;
  receipt: string | null;
  detail: string;
  created_at: string;
  updated_at: string;
}

export interface LedgerEntry {
  id: number;
  receipt: string | null;
  source: "stk_chat" | "stk_merchant" | "c2b" | "manual";
  invoice_number: string | null;
  customer_name: string | null;
  attempt_id: number | null;
  amount: number;
  applied: number;
  credit: number;
  reference: string;
  paid_at: string;
}

export interface PaymentsView {
  attempts: Attempt[];
  ledger: LedgerEntry[];
}

/** Distinct customers at each stage of the chat funnel. */
export interface Funnel {
  reminded: number;
  replied: number;
  confirmed: number;
  pushed: number;
  paid: number;
}

export interface MonthFigures {
  /** "2026-12". */
  month: string;
  /** Of what fell due in the month, the share paid (by amount, 0–100); null when nothing was due. */
  collection_rate: number | null;
  collected: number;
}

export type AttentionKind =
  | "dispute"
  | "human"
  | "receipt_check"
  | "needs_review"
  | "unmatched_payment"
  | "whatsapp_paused"
  | "mpesa_refused"
  | "event_failed";

/** Something only the merchant can settle. */
export interface AttentionItem {
  kind: AttentionKind;
  id: number;
  title: string;
  detail: string;
  customer_id: number | null;
  customer_name: string | null;
  invoice_number: string | null;
  /** RFC 3339, or "" when unknown. */
  at: string;
}

export interface DashboardView {
  collected_today: number;
  payments_today: number;
  collected_this_month: number;
  owed: number;
  open_invoices: number;
  overdue: number;
  /** Oldest first, ending with this month. */
  months: MonthFigures[];
  funnel: Funnel;
  attention: AttentionItem[];
}

export interface TimelineEntry {
  at: string;
  kind: "change" | "reminder" | "message_in" | "message_out" | "prompt" | "payment";
  title: string;
  detail: string;
}

export type ImportField = "number" | "customer" | "phone" | "amount" | "balance" | "due_date" | "issue_date" | "description";

/** Which header holds each field; "" means "no column for this field", a missing key "find it for me". */
export type Mapping = Partial<Record<ImportField, string | null>>;

export interface RowError {
  /** The line the merchant sees in their spreadsheet. */
  line: number;
  column: string | null;
  reason: string;
}

export interface ImportRow {
  line: number;
  number: string;
  customer_name: string;
  /** Masked. */
  phone: string | null;
  amount: number;
  balance: number | null;
  issue_date: string;
  due_date: string;
  description: string | null;
}

export interface ImportReport {
  created: number;
  updated: number;
  unchanged: number;
  skipped: number;
  warnings: { line: number; invoice: string; message: string }[];
  saved: boolean;
}

export interface ImportPreview {
  source: string;
  headers: string[];
  mapping: Mapping;
  columns_ok: boolean;
  data_rows: number;
  good_rows: number;
  bad_rows: number;
  errors: RowError[];
  errors_total: number;
  sample: ImportRow[];
  /** What "import the valid rows" would do; null when the columns are not understood. */
  plan: ImportReport | null;
}

export type CommitMode = "all_or_nothing" | "valid_rows_only";

export interface PaymentEvent {
  from_state: string | null;
  to_state: string;
  cause: string;
  detail: string;
  at: string;
}

export interface PaymentUpdate {
  attempt_id: number | null;
  invoice_id: number | null;
  state: AttemptState | null;
  credited: number | null;
  receipt: string | null;
  invoice_paid: boolean;
  correction: boolean;
  detail: string;
}

/** One customer's chat, as the inbox lists it. */
export interface ConversationSummary {
  customer_id: number;
  customer_name: string;
  /** Masked, e.g. 2547•••••678. */
  phone: string;
  handled_by: "bot" | "human";
  last_message: string | null;
  /** RFC 3339. */
  last_at: string | null;
  /** The customer wrote within 24 h, so free-form replies are allowed. */
  window_open: boolean;
  opted_out: boolean;
}

export interface ChatMessage {
  id: number;
  direction: "in" | "out";
  kind: string;
  body: string;
  /** accepted | sent | delivered | read | failed; null for messages from the customer. */
  status: string | null;
  at: string;
}

export interface ConversationUpdate {
  customer_id: number;
}

export interface SimCustomer {
  customer_id: number;
  name: string;
  /** Masked. */
  phone: string;
  open_invoices: number;
  balance: number;
}

/** A simulated M-Pesa STK prompt waiting on a customer's phone. */
export interface SimPrompt {
  checkout_request_id: string;
  customer_id: number | null;
  /** Masked. */
  phone: string;
  amount: number;
  account_reference: string;
  business_name: string;
}

export interface SimButton {
  id: string;
  title: string;
}

export interface SimListRow {
  id: string;
  title: string;
  description: string | null;
}

export interface SimMessage {
  from_customer: boolean;
  text: string;
  buttons: SimButton[];
  list: { button: string; rows: SimListRow[] } | null;
  at: string;
}

export interface SimState {
  /** False when real credentials are in use. */
  enabled: boolean;
  customers: SimCustomer[];
  prompts: SimPrompt[];
}

/** How the simulated customer answers the STK prompt. */
export type SimAnswer = "pin" | "wrong_pin" | "insufficient" | "cancel" | "no_answer";

export const api = {
  appInfo: () => invoke<AppInfo>("app_info"),
  listInvoices: () => invoke<Invoice[]>("list_invoices"),
  listPayments: () => invoke<PaymentsView>("list_payments"),
  paymentTimeline: (attemptId: number) => invoke<PaymentEvent[]>("payment_timeline", { attemptId }),
  requestPayment: (invoiceId: number, amount?: number) => invoke<Attempt>("request_payment", { invoiceId, amount: amount ?? null }),
  /** Called on every payment change; returns the function that stops listening. */
  onPaymentUpdated: (handler: (u: PaymentUpdate) => void): Promise<UnlistenFn> =>
    listen<PaymentUpdate>("payment-updated", (e) => handler(e.payload)),

  dashboard: () => invoke<DashboardView>("dashboard"),
  attention: () => invoke<AttentionItem[]>("attention"),
  resolveAttention: (id: number) => invoke<void>("resolve_attention", { id }),
  resumeWhatsappSending: () => invoke<void>("resume_whatsapp_sending"),
  /** Matches a paybill payment nobody could match to one of the merchant's invoices. */
  matchPayment: (unmatchedId: number, invoiceId: number) => invoke<void>("match_payment", { unmatchedId, invoiceId }),
  invoiceTimeline: (invoiceId: number) => invoke<TimelineEntry[]>("invoice_timeline", { invoiceId }),
  /** Errors: `duplicate` (same reference already recorded), `conflict` (paid, disputed…), `invalid`. */
  recordManualPayment: (invoiceId: number, amount: number, method: "cash" | "bank", reference: string) =>
    invoke<void>("record_manual_payment", { invoiceId, amount, method, reference }),
  /** Checks a file; nothing is saved until `importCommit`. */
  importPreview: (name: string, bytes: Uint8Array, mapping: Mapping) =>
    invoke<ImportPreview>("import_preview", { name, bytes: Array.from(bytes), mapping }),
  /** Three made-up invoices to try the simulator with; refused (`not_simulator`) with real M-Pesa details. */
  loadSampleInvoices: () => invoke<ImportReport>("load_sample_invoices"),
  /** Errors: `has_errors` (all-or-nothing with bad rows), `no_preview`. */
  importCommit: (mode: CommitMode) => invoke<ImportReport>("import_commit", { mode }),
  onImportProgress: (handler: (p: { done: number; total: number }) => void): Promise<UnlistenFn> =>
    listen<{ done: number; total: number }>("import-progress", (e) => handler(e.payload)),

  listConversations: () => invoke<ConversationSummary[]>("list_conversations"),
  conversationMessages: (customerId: number) => invoke<ChatMessage[]>("conversation_messages", { customerId }),
  /** A person takes the chat; the bot goes quiet for this customer. */
  takeOver: (customerId: number) => invoke<void>("take_over", { customerId }),
  /** The bot answers this customer again. */
  handBack: (customerId: number) => invoke<void>("hand_back", { customerId }),
  /** Errors: `outside_window` (only templates after 24 h), `empty`, `not_human` (take over first). */
  sendMerchantReply: (customerId: number, body: string) => invoke<void>("send_merchant_reply", { customerId, body }),
  /** Called when a message arrives or changes; returns the function that stops listening. */
  onConversationUpdated: (handler: (u: ConversationUpdate) => void): Promise<UnlistenFn> =>
    listen<ConversationUpdate>("conversation-updated", (e) => handler(e.payload)),

  simState: () => invoke<SimState>("sim_state"),
  simMessages: (customerId: number) => invoke<SimMessage[]>("sim_messages", { customerId }),
  simSendText: (customerId: number, body: string) => invoke<void>("sim_send_text", { customerId, body }),
  /** Taps a reply button or a list row on the simulated phone. */
  simTap: (customerId: number, id: string, title: string) => invoke<void>("sim_tap", { customerId, id, title }),
  simAnswer: (checkoutRequestId: string, answer: SimAnswer) => invoke<void>("sim_answer", { checkoutRequestId, answer }),
};

// ---- Reminders, Reports and Settings ----

/** Errors from a form's save: `field` names the field a validation error belongs to. */
export interface FieldError extends ApiError {
  field?: string;
}

/** The field a save error belongs to, if it is a validation error. */
export function errorField(e: unknown): string | undefined {
  return isApiError(e) && e.code === "invalid" ? (e as FieldError).field : undefined;
}

/** The merchant's reminder schedule. Times are local "HH:MM:SS" in the merchant's timezone. */
export interface ReminderPolicy {
  enabled: boolean;
  /** Days relative to the due date: -3 is three days before, 7 a week late. */
  steps: number[];
  repeat_every_days: number;
  max_repeats: number;
  send_at: string;
  quiet_from: string;
  quiet_until: string;
  skip_sundays: boolean;
}

export interface PlannedInvoice {
  number: string;
  balance: number;
  /** 1 = the schedule's first step. */
  step: number;
  days_from_due: number | null;
}

/** One WhatsApp reminder the schedule would send. */
export interface PlannedReminder {
  /** Local date, YYYY-MM-DD. */
  day: string;
  /** RFC 3339 instant of the send time. */
  at: string;
  customer_name: string;
  invoices: PlannedInvoice[];
}

export interface TemplateDef {
  name: string;
  /** "en" or "sw". */
  language: string;
  category: string;
  /** With {{1}}…{{n}} placeholders. */
  body: string;
  /** What each placeholder holds. */
  params: string[];
  quick_replies: { text: string; payload_prefix: string }[];
}

export interface Aging {
  current: number;
  days_1_30: number;
  days_31_60: number;
  days_61_90: number;
  days_over_90: number;
}

/** The collection report for a period (see README "Reports"). Percentages are 0–100. */
export interface Report {
  from: string;
  to: string;
  invoices_due: number;
  invoices_due_paid: number;
  amount_due: number;
  amount_due_collected: number;
  collection_rate_by_count: number | null;
  collection_rate_by_amount: number | null;
  amount_collected: number;
  dso_days: number | null;
  average_days_to_pay: number | null;
  median_days_to_pay: number | null;
  aging: Aging;
  at_risk_share: number | null;
  cei: number | null;
  funnel: Funnel;
  stk_outcomes: { result_code: number | null; meaning: string; count: number }[];
  sources: { source: string; count: number; amount: number }[];
  reminder_steps: { step: number; sent: number; paid_within_7_days: number; conversion: number | null }[];
}

export type DarajaEnvironment = "simulator" | "sandbox" | "production";

/** What Settings edits; the names follow the config file's keys (`daraja.shortcode`). */
export interface EditableSettings {
  merchant_name: string;
  timezone: string;
  daraja: { environment: DarajaEnvironment; transaction_type: "paybill" | "till"; shortcode: string; party_b: string };
  whatsapp: { phone_number_id: string };
  agent: {
    confirm_threshold: number;
    allow_partial: boolean;
    min_partial: number;
    confirmation_timeout_minutes: number;
    /** "en,sw" answers each customer in theirs; "en" or "sw" keeps to one. */
    languages: string;
    llm_enabled: boolean;
    llm_endpoint: string;
    llm_model: string;
  };
  inbound: { mode: "direct" | "relay"; relay_url: string };
}

/** Settings → Inbound: how WhatsApp and paybill webhooks reach this computer. */
export interface InboundView {
  status: {
    mode: "direct" | "relay";
    relay_url: string | null;
    connected: boolean;
    last_contact: string | null;
    last_error: string | null;
    received: number;
  };
  /** What to paste into Meta's and Daraja's consoles; null without a public address. */
  urls: { whatsapp: string; stk_callback: string; c2b_confirmation: string; c2b_validation: string } | null;
}

export interface InboundTest {
  ok: boolean;
  steps: { step: string; label: string; outcome: "passed" | "failed" | "skipped"; detail: string | null }[];
}

export interface SettingsView {
  /** The config file. */
  path: string;
  values: EditableSettings;
  /** Why the file does not load as it is (the values are then the defaults). */
  problem: string | null;
  /** Keys set by MALIPO_… environment variables, which win over the file. */
  env_overrides: string[];
}

export type SecretName =
  | "daraja_consumer_key"
  | "daraja_consumer_secret"
  | "daraja_passkey"
  | "whatsapp_token"
  | "whatsapp_app_secret"
  | "whatsapp_verify_token"
  | "llm_api_key"
  | "relay_key";

/** Whether a secret is saved. The value itself never reaches the webview. */
export interface SecretStatus {
  name: SecretName;
  saved: boolean;
  from_environment: boolean;
}

export type Service = "daraja" | "whatsapp" | "llm";

export interface TestResult {
  ok: boolean;
  message: string;
}

export interface UpdateInfo {
  current: string;
  available: boolean;
  version: string | null;
  notes: string | null;
}

// One object per screen, beside `api`, so each screen's calls read together.
export const remindersApi = {
  policy: () => invoke<ReminderPolicy>("reminder_policy"),
  /** Errors: `invalid` with `field` (steps, send_at, repeat_every_days). */
  savePolicy: (policy: ReminderPolicy) => invoke<void>("save_reminder_policy", { policy }),
  preview: (days = 7) => invoke<PlannedReminder[]>("reminder_preview", { days }),
  templates: () => invoke<TemplateDef[]>("reminder_templates"),
};

export const reportsApi = {
  /** Local dates YYYY-MM-DD, both included. */
  report: (from: string, to: string) => invoke<Report>("collection_report", { from, to }),
  /** Writes the report as CSV into Downloads; returns the file's path. */
  exportCsv: (from: string, to: string) => invoke<string>("export_report_csv", { from, to }),
};

export const settingsApi = {
  getSettings: () => invoke<SettingsView>("get_settings"),
  /** Errors: `invalid` with `field` = the config key (e.g. `daraja.shortcode`); nothing is written. */
  saveSettings: (values: EditableSettings) => invoke<SettingsView>("save_settings", { values }),
  secretStatus: () => invoke<SecretStatus[]>("secret_status"),
  /** Write-only: the value goes into the OS keyring and is never read back. */
  saveSecret: (name: SecretName, value: string) => invoke<void>("save_secret", { name, value }),
  removeSecret: (name: SecretName) => invoke<void>("remove_secret", { name }),
  /** Tests the saved settings and secrets of one service. */
  testConnection: (service: Service) => invoke<TestResult>("test_connection", { service }),
  restartApp: () => invoke<void>("restart_app"),
  inboundStatus: () => invoke<InboundView>("inbound_status"),
  /** A round trip through the relay (or this computer's public address), step by step. */
  testInbound: () => invoke<InboundTest>("test_inbound"),
  /** Copies the database into its backups folder; returns the file's path. */
  backupNow: () => invoke<string>("backup_now"),
  checkForUpdates: () => invoke<UpdateInfo>("check_for_updates"),
  installUpdate: () => invoke<void>("install_update"),
};
