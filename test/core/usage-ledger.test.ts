// The usage ledger's additions: a settled request adds its reported tokens (or its estimate), and a
// batch's additions are summed per day, end user and model without losing a token or a nano-dollar.
import { describe, expect, it } from "vitest";
import type { Settled } from "../../src/core/budget.ts";
import { ledgerAddition, sumPerRow } from "../../src/core/usage-ledger.ts";

function settled(user: string, model: string, day: string, nanoUsd: number): Settled {
	return {
		reservation: {
			id: "",
			user,
			model,
			estimate: { tokens: 100, nanoUsd: 90 },
			promptTokens: 30,
			day,
			month: day.slice(0, 7),
			reservedAtMs: 0,
		},
		charged: { tokens: 0, nanoUsd },
	};
}

describe("ledger additions", () => {
	it("a request without a report adds its estimate: its prompt, and the rest as output", () => {
		expect(ledgerAddition(settled("", "gpt-4o-mini", "2026-12-01", 90), undefined)).toEqual({
			day: "2026-12-01",
			user: "",
			model: "gpt-4o-mini",
			requests: 1,
			inputTokens: 30,
			cachedInputTokens: 0,
			outputTokens: 70,
			nanoUsd: 90,
		});
	});

	it("a reported request adds what the provider reported", () => {
		const reported = { inputTokens: 12, cachedInputTokens: 4, outputTokens: 7 };
		expect(ledgerAddition(settled("u1", "gpt-4o", "2026-12-01", 55), reported)).toMatchObject({
			requests: 1,
			inputTokens: 12,
			cachedInputTokens: 4,
			outputTokens: 7,
			nanoUsd: 55,
		});
	});

	it("a batch is summed into one addition per day, user and model, with every total kept", () => {
		const reported = { inputTokens: 10, cachedInputTokens: 2, outputTokens: 5 };
		const additions = [
			...Array.from({ length: 40 }, () =>
				ledgerAddition(settled("u1", "gpt-4o-mini", "2026-12-01", 7), reported),
			),
			...Array.from({ length: 10 }, () =>
				ledgerAddition(settled("u2", "gpt-4o-mini", "2026-12-01", 3), undefined),
			),
			ledgerAddition(settled("u1", "gpt-4o", "2026-12-01", 11), reported),
			ledgerAddition(settled("u1", "gpt-4o-mini", "2026-12-02", 13), reported),
		];
		const rows = sumPerRow(additions);
		expect(rows).toHaveLength(4);
		expect(rows[0]).toEqual({
			day: "2026-12-01",
			user: "u1",
			model: "gpt-4o-mini",
			requests: 40,
			inputTokens: 400,
			cachedInputTokens: 80,
			outputTokens: 200,
			nanoUsd: 280,
		});
		expect(rows[1]).toMatchObject({
			user: "u2",
			requests: 10,
			inputTokens: 300,
			outputTokens: 700,
		});
		const total = (field: "requests" | "inputTokens" | "outputTokens" | "nanoUsd") =>
			rows.reduce((sum, row) => sum + row[field], 0);
		expect(total("requests")).toBe(additions.length);
		expect(total("nanoUsd")).toBe(additions.reduce((sum, a) => sum + a.nanoUsd, 0));
		expect(total("inputTokens")).toBe(additions.reduce((sum, a) => sum + a.inputTokens, 0));
	});

	it("a user name that looks like a separator does not merge two rows", () => {
		const a = ledgerAddition(settled("a|b", "m", "2026-12-01", 1), undefined);
		const b = ledgerAddition({ ...settled("a", "b|m", "2026-12-01", 1) }, undefined);
		expect(sumPerRow([a, b])).toHaveLength(2);
	});
});
