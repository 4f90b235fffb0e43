import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import {
  errorField,
  errorMessage,
  settingsApi,
  type EditableSettings,
  type SecretName,
  type SecretStatus,
  type Service,
  type SettingsView,
  type TestResult,
  type UpdateInfo,
} from "../api";
import { ErrorBox, Loading } from "../components";
import { useLoad } from "../load";
import { InboundPanel } from "./inbound";

const secretLabels: Record<SecretName, string> = {
  daraja_consumer_key: "Consumer key",
  daraja_consumer_secret: "Consumer secret",
  daraja_passkey: "Passkey (Lipa na M-Pesa Online)",
  whatsapp_token: "Access token",
  whatsapp_app_secret: "App secret",
  whatsapp_verify_token: "Webhook verify token",
  llm_api_key: "API key (only if your model server needs one)",
  relay_key: "Relay key (from `malipo relay --new-key`)",
};

const timezones = ["Africa/Nairobi", "Africa/Dar_es_Salaam", "Africa/Kampala"];

type Errors = Record<string, string>;

/** The settings with one value changed at `key` ("agent.min_partial"). */
function withValue(s: EditableSettings, key: string, value: unknown): EditableSettings {
  const [section, name] = key.split(".");
  if (!name) return { ...s, [section]: value };
  const inner = s[section as "daraja" | "whatsapp" | "agent" | "inbound"] as Record<string, unknown>;
  return { ...s, [section]: { ...inner, [name]: value } };
}

/** A labelled field with its error (from the config check) and any environment override. */
function Field(props: { id: string; label: string; error?: string; overridden: boolean; hint?: string; children: ComponentChildren }) {
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      {props.children}
      {props.hint && <div class="sub">{props.hint}</div>}
      {props.overridden && <div class="sub">Set by an environment variable on this computer, which wins over this value.</div>}
      {props.error && (
        <div class="field-error" id={`${props.id}-error`} role="alert">
          {props.error}
        </div>
      )}
    </div>
  );
}

/** One write-only secret: the UI only ever learns whether it is saved. */
function SecretField(props: { status: SecretStatus | undefined; name: SecretName; onChanged: () => void }) {
  const [value, setValue] = useState("");
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<string>();
  const id = `secret-${props.name}`;
  const run = async (action: () => Promise<void>) => {
    setBusy(true);
    setProblem(undefined);
    try {
      await action();
      setValue("");
      props.onChanged();
    } catch (e) {
      setProblem(errorMessage(e));
    } finally {
      setBusy(false);
    }
  };
  const saved = props.status?.saved ?? false;
  return (
    <div class="field secret" data-secret={props.name}>
      <label for={id}>{secretLabels[props.name]}</label>
      <div class="secret-row">
        <input
          id={id}
          type="password"
          autocomplete="off"
          spellcheck={false}
          placeholder={saved ? "Type a new value to replace it" : "Paste it here"}
          value={value}
          onInput={(e) => setValue((e.target as HTMLInputElement).value)}
        />
        <button type="button" class="small" disabled={busy || value.trim() === ""} onClick={() => run(() => settingsApi.saveSecret(props.name, value))}>
          Save
        </button>
        {saved && !props.status?.from_environment && (
          <button type="button" class="small" disabled={busy} onClick={() => run(() => settingsApi.removeSecret(props.name))} aria-label={`Remove ${secretLabels[props.name]}`}>
            Remove
          </button>
        )}
        <span class={saved ? "badge badge-saved" : "badge badge-missing"} data-testid={`${props.name}-state`}>
          {saved ? "Saved" : "Not saved"}
        </span>
      </div>
      {props.status?.from_environment && <div class="sub">Set by an environment variable on this computer.</div>}
      {problem && (
        <div class="field-error" role="alert">
          {problem}
        </div>
      )}
    </div>
  );
}

function TestConnection(props: { service: Service }) {
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<TestResult>();
  const test = async () => {
    setBusy(true);
    setResult(undefined);
    try {
      setResult(await settingsApi.testConnection(props.service));
    } catch (e) {
      setResult({ ok: false, message: errorMessage(e) });
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="test">
      <button type="button" class="secondary" disabled={busy} onClick={test}>
        {busy ? "Testing…" : "Test connection"}
      </button>
      <span class="sub">Uses the saved settings and keys.</span>
      {result && (
        <div class={result.ok ? "test-ok" : "test-failed"} role="status" data-testid={`test-${props.service}`}>
          {result.message}
        </div>
      )}
    </div>
  );
}

function Secrets(props: { names: SecretName[]; statuses: SecretStatus[] | undefined; onChanged: () => void }) {
  return (
    <div class="secrets">
      <div class="sub">Kept in this computer's secure keyring. Malipo never shows them again.</div>
      {props.names.map((n) => (
        <SecretField key={n} name={n} status={props.statuses?.find((s) => s.name === n)} onChanged={props.onChanged} />
      ))}
    </div>
  );
}

/** A copy of everything (invoices, payments, chats) the merchant can keep elsewhere. */
function Backup() {
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<{ ok: boolean; text: string }>();
  const run = async () => {
    setBusy(true);
    setResult(undefined);
    try {
      setResult({ ok: true, text: `Saved to ${await settingsApi.backupNow()}. Copy it to a flash disk or cloud storage to keep it safe.` });
    } catch (e) {
      setResult({ ok: false, text: `Could not back up: ${errorMessage(e)}` });
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="card">
      <h2>Backup</h2>
      <p class="sub">Malipo also keeps a copy before every update. To go back to a backup, see "Backups and updates" in the README.</p>
      <button type="button" class="secondary" disabled={busy} onClick={() => void run()}>
        {busy ? "Backing up…" : "Back up now"}
      </button>
      {result && (
        <p class={result.ok ? "sub" : "field-error"} role={result.ok ? "status" : "alert"}>
          {result.text}
        </p>
      )}
    </div>
  );
}

function Updates() {
  const [state, setState] = useState<"idle" | "checking" | "installing">("idle");
  const [info, setInfo] = useState<UpdateInfo>();
  const [problem, setProblem] = useState<string>();
  const check = async () => {
    setState("checking");
    setProblem(undefined);
    try {
      setInfo(await settingsApi.checkForUpdates());
    } catch (e) {
      setProblem(`Could not check for updates: ${errorMessage(e)}`);
    } finally {
      setState("idle");
    }
  };
  const install = async () => {
    setState("installing");
    setProblem(undefined);
    try {
      await settingsApi.installUpdate();
    } catch (e) {
      setProblem(`Could not install the update: ${errorMessage(e)}`);
      setState("idle");
    }
  };
  return (
    <div class="card">
      <h2>Updates</h2>
      <div class="actions">
        <button type="button" class="secondary" disabled={state !== "idle"} onClick={check}>
          {state === "checking" ? "Checking…" : "Check for updates"}
        </button>
        {info && !info.available && <span role="status">You have the latest version ({info.current}).</span>}
      </div>
      {info?.available && (
        <div class="update" role="status">
          <p>
            Malipo {info.version} is ready to install (you have {info.current}).
          </p>
          {info.notes && <p class="sub">{info.notes}</p>}
          <button type="button" class="primary" disabled={state !== "idle"} onClick={install}>
            {state === "installing" ? "Installing… Malipo will restart" : "Install and restart"}
          </button>
        </div>
      )}
      {problem && <ErrorBox message={problem} />}
    </div>
  );
}

function SettingsForm(props: { view: SettingsView; statuses: SecretStatus[] | undefined; onSecretsChanged: () => void; onSaved: () => void }) {
  const [draft, setDraft] = useState<EditableSettings>(props.view.values);
  const [errors, setErrors] = useState<Errors>({});
  const [problem, setProblem] = useState<string>();
  const [busy, setBusy] = useState(false);
  const set = (key: string, value: unknown) => setDraft((d) => withValue(d, key, value));
  const get = (key: string): unknown => {
    const [section, name] = key.split(".");
    const v = (draft as unknown as Record<string, unknown>)[section];
    return name ? (v as Record<string, unknown>)[name] : v;
  };
  const field = (key: string) => ({ id: `set-${key}`, error: errors[key], overridden: props.view.env_overrides.includes(key) });
  const text = (key: string) => ({
    id: `set-${key}`,
    value: String(get(key) ?? ""),
    "aria-invalid": errors[key] ? true : undefined,
    "aria-describedby": errors[key] ? `set-${key}-error` : undefined,
    onInput: (e: Event) => set(key, (e.target as HTMLInputElement).value),
  });
  const number = (key: string) => ({
    ...text(key),
    type: "number",
    min: "0",
    value: Number.isNaN(get(key)) ? "" : String(get(key)),
    onInput: (e: Event) => set(key, (e.target as HTMLInputElement).value === "" ? NaN : Number((e.target as HTMLInputElement).value)),
  });
  const check = (key: string, label: string) => (
    <label class="check">
      <input type="checkbox" id={`set-${key}`} checked={Boolean(get(key))} onChange={(e) => set(key, (e.target as HTMLInputElement).checked)} />
      {label}
    </label>
  );

  const save = async (e: Event) => {
    e.preventDefault();
    const local: Errors = {};
    for (const key of ["agent.confirm_threshold", "agent.min_partial", "agent.confirmation_timeout_minutes"]) {
      if (!Number.isInteger(get(key))) local[key] = "Write a whole number.";
    }
    setErrors(local);
    setProblem(undefined);
    if (Object.keys(local).length > 0) return;
    setBusy(true);
    try {
      const view = await settingsApi.saveSettings(draft);
      setDraft(view.values);
      props.onSaved();
    } catch (err) {
      const key = errorField(err);
      if (key && document.getElementById(`set-${key}`)) setErrors({ [key]: errorMessage(err) });
      else setProblem(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };

  const env = draft.daraja.environment;
  const till = draft.daraja.transaction_type === "till";
  const zones = timezones.includes(draft.timezone) ? timezones : [draft.timezone, ...timezones];
  return (
    <form onSubmit={save} aria-label="Settings" class="settings">
      <div class="card">
        <h2>Your shop</h2>
        <Field {...field("merchant_name")} label="Shop name (customers see it in messages)">
          <input {...text("merchant_name")} />
        </Field>
        <Field {...field("timezone")} label="Time zone">
          <select {...text("timezone")} onChange={(e) => set("timezone", (e.target as HTMLSelectElement).value)}>
            {zones.map((z) => (
              <option key={z} value={z}>
                {z.replace("Africa/", "").replace("_", " ")}
              </option>
            ))}
          </select>
        </Field>
      </div>

      <div class="card">
        <h2>M-Pesa (Daraja)</h2>
        <fieldset class="radios">
          <legend>Where payments go</legend>
          {(
            [
              ["simulator", "Simulator — pretend money, no account needed"],
              ["sandbox", "Safaricom sandbox — Safaricom's test system"],
              ["production", "Live — real money"],
            ] as const
          ).map(([value, label]) => (
            <label class="check" key={value}>
              <input type="radio" name="daraja-environment" value={value} checked={env === value} onChange={() => set("daraja.environment", value)} />
              {label}
            </label>
          ))}
          {errors["daraja.environment"] && (
            <div class="field-error" role="alert">
              {errors["daraja.environment"]}
            </div>
          )}
        </fieldset>
        <fieldset class="radios">
          <legend>Customers pay into</legend>
          <label class="check">
            <input type="radio" name="daraja-type" checked={!till} onChange={() => set("daraja.transaction_type", "paybill")} />
            A paybill number
          </label>
          <label class="check">
            <input type="radio" name="daraja-type" checked={till} onChange={() => set("daraja.transaction_type", "till")} />
            A till number (Buy Goods)
          </label>
        </fieldset>
        <div class="field-row">
          <Field {...field("daraja.shortcode")} label={till ? "Store number (head office)" : "Paybill number"}>
            <input {...text("daraja.shortcode")} inputMode="numeric" />
          </Field>
          {till && (
            <Field {...field("daraja.party_b")} label="Till number">
              <input {...text("daraja.party_b")} inputMode="numeric" />
            </Field>
          )}
        </div>
        {env !== "simulator" && <p class="hint">Save the three keys from your Daraja app below before restarting, or M-Pesa cannot start.</p>}
        <Secrets names={["daraja_consumer_key", "daraja_consumer_secret", "daraja_passkey"]} statuses={props.statuses} onChanged={props.onSecretsChanged} />
        <TestConnection service="daraja" />
      </div>

      <div class="card">
        <h2>WhatsApp</h2>
        <Field {...field("whatsapp.phone_number_id")} label="Phone number ID" hint="From WhatsApp Manager → API setup. Not your phone number.">
          <input {...text("whatsapp.phone_number_id")} inputMode="numeric" />
        </Field>
        <Secrets names={["whatsapp_token", "whatsapp_app_secret", "whatsapp_verify_token"]} statuses={props.statuses} onChanged={props.onSecretsChanged} />
        <TestConnection service="whatsapp" />
      </div>

      <div class="card">
        <h2>Payment assistant</h2>
        <div class="field-row">
          <Field {...field("agent.confirm_threshold")} label="Ask the customer to confirm twice above (KES)">
            <input {...number("agent.confirm_threshold")} />
          </Field>
          <Field {...field("agent.confirmation_timeout_minutes")} label="A confirmation expires after (minutes)">
            <input {...number("agent.confirmation_timeout_minutes")} />
          </Field>
        </div>
        <Field {...field("agent.languages")} label="Languages the assistant answers in">
          <select {...text("agent.languages")} onChange={(e) => set("agent.languages", (e.target as HTMLSelectElement).value)}>
            <option value="en,sw">English and Swahili — each customer in their own</option>
            <option value="en">English only</option>
            <option value="sw">Swahili only</option>
          </select>
        </Field>
        {check("agent.allow_partial", "Customers may pay part of an invoice")}
        {draft.agent.allow_partial && (
          <Field {...field("agent.min_partial")} label="Smallest part payment (KES)">
            <input {...number("agent.min_partial")} />
          </Field>
        )}
        {check("agent.llm_enabled", "Ask a language model about messages Malipo does not understand")}
        {draft.agent.llm_enabled && (
          <>
            <div class="field-row">
              <Field {...field("agent.llm_endpoint")} label="Model server address">
                <input {...text("agent.llm_endpoint")} />
              </Field>
              <Field {...field("agent.llm_model")} label="Model name">
                <input {...text("agent.llm_model")} />
              </Field>
            </div>
            <Secrets names={["llm_api_key"]} statuses={props.statuses} onChanged={props.onSecretsChanged} />
            <TestConnection service="llm" />
          </>
        )}
      </div>

      <div class="card">
        <h2>Inbound</h2>
        <p class="sub">
          WhatsApp messages and paybill payments reach Malipo by webhook. Payments from the chat never need this: Malipo checks them with M-Pesa itself.
        </p>
        <fieldset class="radios">
          <legend>How they reach this computer</legend>
          <label class="check">
            <input type="radio" name="inbound-mode" checked={draft.inbound.mode === "direct"} onChange={() => set("inbound.mode", "direct")} />
            Direct — this computer's webhook server, behind a tunnel
          </label>
          <label class="check">
            <input type="radio" name="inbound-mode" checked={draft.inbound.mode === "relay"} onChange={() => set("inbound.mode", "relay")} />
            Through a relay — `malipo relay` on a small server
          </label>
        </fieldset>
        {draft.inbound.mode === "relay" && (
          <>
            <Field {...field("inbound.relay_url")} label="Relay address" hint="The relay's https address, e.g. https://relay.example.co.ke">
              <input {...text("inbound.relay_url")} />
            </Field>
            <Secrets names={["relay_key"]} statuses={props.statuses} onChanged={props.onSecretsChanged} />
          </>
        )}
        <InboundPanel />
      </div>

      {problem && <ErrorBox message={problem} />}
      <div class="actions save-bar">
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Saving…" : "Save settings"}
        </button>
        <span class="sub">Saved in {props.view.path}</span>
      </div>
    </form>
  );
}

export function Settings() {
  const view = useLoad(settingsApi.getSettings);
  const secrets = useLoad(settingsApi.secretStatus);
  const [restartNeeded, setRestartNeeded] = useState(false);
  const [restarting, setRestarting] = useState(false);
  const [restartProblem, setRestartProblem] = useState<string>();
  const restart = async () => {
    setRestarting(true);
    try {
      await settingsApi.restartApp();
    } catch (e) {
      setRestartProblem(errorMessage(e));
      setRestarting(false);
    }
  };
  const secretsChanged = () => {
    secrets.reload();
    setRestartNeeded(true);
  };
  return (
    <section aria-labelledby="screen-title">
      <h1 id="screen-title">Settings</h1>
      {restartNeeded && (
        <div class="restart" role="status">
          <span>Saved. Restart Malipo to apply the changes.</span>
          <button type="button" class="primary" disabled={restarting} onClick={restart}>
            {restarting ? "Restarting…" : "Restart Malipo"}
          </button>
        </div>
      )}
      {restartProblem && <ErrorBox message={restartProblem} />}
      {view.data?.problem && (
        <p class="hint" role="alert">
          Your settings file has a problem: {view.data.problem}. The form shows the standard settings; saving replaces the wrong value.
        </p>
      )}
      {secrets.error && <ErrorBox message={`Cannot read the keyring: ${secrets.error}`} onRetry={secrets.reload} />}
      {view.loading && !view.data && <Loading what="your settings" />}
      {view.error && <ErrorBox message={view.error} onRetry={view.reload} />}
      {view.data && (
        <SettingsForm view={view.data} statuses={secrets.data} onSecretsChanged={secretsChanged} onSaved={() => (setRestartNeeded(true), view.reload())} />
      )}
      <Backup />
      <Updates />
    </section>
  );
}
