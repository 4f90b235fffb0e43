import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor, within } from "@testing-library/preact";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import { Settings } from "./settings";
import type { EditableSettings, SecretName, SecretStatus, SettingsView } from "../api";

const values: EditableSettings = {
  merchant_name: "Mama Mboga",
  timezone: "Africa/Nairobi",
  daraja: { environment: "simulator", transaction_type: "paybill", shortcode: "174379", party_b: "174379" },
  whatsapp: { phone_number_id: "100000000000001" },
  agent: {
    confirm_threshold: 6500,
    allow_partial: true,
    min_partial: 100,
    confirmation_timeout_minutes: 15,
    languages: "en,sw",
    llm_enabled: false,
    llm_endpoint: "http://localhost:11434/v1",
    llm_model: "llama3.1",
  },
  inbound: { mode: "direct", relay_url: "" },
};

const view = (v: EditableSettings = values): SettingsView => ({ path: "/home/amina/.config/malipo/malipo.toml", values: v, problem: null, env_overrides: [] });

/** A pretend backend: records calls; the keyring keeps only whether a secret is saved. */
function backend(over: Record<string, (args: any) => unknown> = {}) {
  const calls: { cmd: string; args: any }[] = [];
  const saved = new Set<SecretName>(["daraja_consumer_key"]);
  mockIPC((cmd, raw) => {
    const args = raw as any;
    calls.push({ cmd, args });
    if (over[cmd]) return over[cmd](args);
    switch (cmd) {
      case "get_settings":
        return view();
      case "save_settings":
        return view((args as { values: EditableSettings }).values);
      case "secret_status":
        return (["daraja_consumer_key", "daraja_consumer_secret", "daraja_passkey", "whatsapp_token", "whatsapp_app_secret", "whatsapp_verify_token", "llm_api_key", "relay_key"] as SecretName[]).map(
          (name): SecretStatus => ({ name, saved: saved.has(name), from_environment: false }),
        );
      case "save_secret":
        saved.add(args.name);
        return null;
      case "remove_secret":
        saved.delete(args.name);
        return null;
      case "inbound_status":
        return { status: { mode: "direct", relay_url: null, connected: false, last_contact: null, last_error: null, received: 0 }, urls: null };
    }
    return null;
  });
  return calls;
}

afterEach(() => {
  cleanup();
  clearMocks();
});

describe("Settings screen", () => {
  it("saves the settings and offers a restart", async () => {
    const calls = backend();
    render(<Settings />);
    const name = (await screen.findByLabelText("Shop name (customers see it in messages)")) as HTMLInputElement;
    expect(name.value).toBe("Mama Mboga");
    fireEvent.input(name, { target: { value: "Duka la Amani" } });
    fireEvent.click(screen.getByLabelText("A till number (Buy Goods)"));
    fireEvent.input(screen.getByLabelText("Till number"), { target: { value: "5123456" } });
    fireEvent.click(screen.getByText("Save settings"));
    await waitFor(() => expect(screen.getByText("Saved. Restart Malipo to apply the changes.")).toBeTruthy());
    const sent = calls.find((c) => c.cmd === "save_settings")!.args.values as EditableSettings;
    expect(sent.merchant_name).toBe("Duka la Amani");
    expect(sent.daraja).toEqual({ environment: "simulator", transaction_type: "till", shortcode: "174379", party_b: "5123456" });
    fireEvent.click(screen.getByText("Restart Malipo"));
    await waitFor(() => expect(calls.some((c) => c.cmd === "restart_app")).toBe(true));
  });

  it("shows a refused value next to its field and says nothing was saved", async () => {
    backend({
      save_settings: () => {
        throw { code: "invalid", field: "daraja.shortcode", message: 'config key `daraja.shortcode` (in malipo.toml): "12ab" is not a 5–7 digit M-Pesa shortcode' };
      },
    });
    render(<Settings />);
    const shortcode = await screen.findByLabelText("Paybill number");
    fireEvent.input(shortcode, { target: { value: "12ab" } });
    fireEvent.click(screen.getByText("Save settings"));
    await waitFor(() => expect(document.getElementById("set-daraja.shortcode-error")?.textContent).toContain("5–7 digit"));
    expect(shortcode.getAttribute("aria-invalid")).toBe("true");
    expect(screen.queryByText(/Restart Malipo to apply/)).toBeNull();
  });

  it("saves a secret without ever showing it, and can remove it", async () => {
    const calls = backend();
    render(<Settings />);
    await waitFor(() => expect(screen.getByTestId("daraja_consumer_key-state").textContent).toBe("Saved"));
    expect(screen.getByTestId("daraja_consumer_secret-state").textContent).toBe("Not saved");
    const input = screen.getByLabelText("Consumer secret") as HTMLInputElement;
    expect(input.type).toBe("password");
    fireEvent.input(input, { target: { value: "s3cr3t-value-123" } });
    const row = input.closest(".secret") as HTMLElement;
    fireEvent.click(within(row).getByText("Save"));
    await waitFor(() => expect(screen.getByTestId("daraja_consumer_secret-state").textContent).toBe("Saved"));
    expect(calls.find((c) => c.cmd === "save_secret")!.args).toEqual({ name: "daraja_consumer_secret", value: "s3cr3t-value-123" });
    expect(input.value).toBe("");
    expect(document.body.innerHTML).not.toContain("s3cr3t-value-123");
    expect(screen.getByText("Saved. Restart Malipo to apply the changes.")).toBeTruthy();

    fireEvent.click(screen.getByLabelText("Remove Consumer secret"));
    await waitFor(() => expect(screen.getByTestId("daraja_consumer_secret-state").textContent).toBe("Not saved"));
    expect(calls.some((c) => c.cmd === "remove_secret" && c.args.name === "daraja_consumer_secret")).toBe(true);
  });

  it("shows the connection test's answer in plain words", async () => {
    backend({ test_connection: (args) => (args.service === "daraja" ? { ok: false, message: "the Safaricom sandbox refused the consumer key or secret." } : null) });
    render(<Settings />);
    const card = (await screen.findByText("M-Pesa (Daraja)")).closest(".card") as HTMLElement;
    fireEvent.click(within(card).getByText("Test connection"));
    await waitFor(() => expect(screen.getByTestId("test-daraja").textContent).toContain("refused the consumer key"));
    expect(screen.getByTestId("test-daraja").className).toBe("test-failed");
  });

  it("checks for updates and installs one", async () => {
    const calls = backend({ check_for_updates: () => ({ current: "0.1.0", available: true, version: "0.2.0", notes: "Faster reports" }) });
    render(<Settings />);
    fireEvent.click(await screen.findByText("Check for updates"));
    await waitFor(() => expect(screen.getByText("Malipo 0.2.0 is ready to install (you have 0.1.0).")).toBeTruthy());
    expect(screen.getByText("Faster reports")).toBeTruthy();
    fireEvent.click(screen.getByText("Install and restart"));
    await waitFor(() => expect(calls.some((c) => c.cmd === "install_update")).toBe(true));
  });

  it("says when Malipo is up to date", async () => {
    backend({ check_for_updates: () => ({ current: "0.1.0", available: false, version: null, notes: null }) });
    render(<Settings />);
    fireEvent.click(await screen.findByText("Check for updates"));
    await waitFor(() => expect(screen.getByText("You have the latest version (0.1.0).")).toBeTruthy());
  });

  it("warns about a settings file with a problem", async () => {
    backend({ get_settings: () => ({ ...view(), problem: "config key `timezone` (in malipo.toml): Mars/Olympus" }) });
    render(<Settings />);
    await waitFor(() => expect(screen.getByText(/Your settings file has a problem: config key `timezone`/)).toBeTruthy());
  });
});

describe("Inbound", () => {
  it("switches to a relay with its address and key, and shows which test step failed", async () => {
    const calls = backend({
      test_inbound: () => ({
        ok: false,
        steps: [
          { step: "reach_relay", label: "Reach the relay", outcome: "passed", detail: null },
          { step: "key_accepted", label: "Relay key accepted", outcome: "failed", detail: "the relay refused the key (401): check it matches MALIPO_RELAY_KEY on the relay" },
          { step: "event_enqueued", label: "Test event queued on the relay", outcome: "skipped", detail: null },
        ],
      }),
    });
    render(<Settings />);
    fireEvent.click(await screen.findByText(/Through a relay/));
    fireEvent.input(screen.getByLabelText("Relay address"), { target: { value: "https://relay.example.co.ke" } });
    expect(screen.getByText(/Relay key/)).toBeTruthy();
    fireEvent.change(screen.getByLabelText("Languages the assistant answers in"), { target: { value: "sw" } });
    fireEvent.click(screen.getByText("Save settings"));
    await waitFor(() => expect(calls.some((c) => c.cmd === "save_settings")).toBe(true));
    const saved = calls.find((c) => c.cmd === "save_settings")!.args.values as EditableSettings;
    expect(saved.inbound).toEqual({ mode: "relay", relay_url: "https://relay.example.co.ke" });
    expect(saved.agent.languages).toBe("sw");

    fireEvent.click(screen.getByText("Test inbound"));
    const steps = await screen.findByRole("list", { name: "Inbound test" });
    expect(steps.textContent).toContain("the relay refused the key (401)");
    expect(screen.getByText(/Inbound does not work yet/)).toBeTruthy();
  });
});

describe("Backup", () => {
  it("backs up on request and says where the copy is", async () => {
    const calls = backend({ backup_now: () => "/home/amina/.local/share/malipo/backups/2026-12-04T20-50-00-manual.db" });
    render(<Settings />);
    fireEvent.click(await screen.findByText("Back up now"));
    await waitFor(() => expect(screen.getByText(/Saved to \/home\/amina\/.local\/share\/malipo\/backups/)).toBeTruthy());
    expect(calls.filter((c) => c.cmd === "backup_now").length).toBe(1);
  });
});
