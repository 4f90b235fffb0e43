import { describe, expect, it } from "vitest";
import { day, kes, statusLabel, when } from "./format";

describe("format", () => {
  it("writes shillings the Kenyan way", () => {
    expect(kes(12500)).toBe("KES 12,500");
    expect(kes(0)).toBe("KES 0");
    expect(kes(1250000)).toBe("KES 1,250,000");
  });
  it("writes calendar dates without shifting them", () => {
    expect(day("2026-12-01")).toBe("1 Dec 2026");
  });
  it("shows instants in Nairobi time", () => {
    expect(when("2026-12-04T11:05:00Z")).toContain("14:05");
  });
  it("labels statuses for people", () => {
    expect(statusLabel("partially_paid")).toBe("Part paid");
  });
});
