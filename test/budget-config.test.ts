// Budgets and prices in TOLLBOOTH_CONFIG: the same tenant body as the admin API, with defaults, and
// a message naming each bad field.
import { expect, it } from "vitest";
import { parseConfig } from "../src/config.ts";
import { OPENAI_POOL } from "./support/config-pool.ts";

const pool = OPENAI_POOL;
const tenant = { name: "acme", keySha256: ["a".repeat(64)], pools: ["*"] };

it("a configured tenant's budget gets its defaults, and prices are read per model", () => {
	const result = parseConfig({
		pools: [pool],
		tenants: [
			{ ...tenant, budget: { tokensPerDay: 2_000_000, perUser: { tokensPerDay: 100_000 } } },
		],
		prices: { "gpt-4o": { input: 2.5, cachedInput: 1.25, output: 10 } },
	});
	expect(result.ok && result.config.tenants[0]?.budget).toEqual({
		tokensPerDay: 2_000_000,
		perUser: { tokensPerDay: 100_000 },
		downgradeAt: 0.9,
		downgrade: {},
		users: {},
		timeZone: "UTC",
	});
	expect(result.ok && result.config.prices["gpt-4o"]).toEqual({
		input: 2.5,
		cachedInput: 1.25,
		output: 10,
	});
});

it("names every bad budget or price field", () => {
	const result = parseConfig({
		pools: [pool],
		tenants: [
			{
				...tenant,
				budget: {
					tokensPerDay: 1.5,
					timeZone: "Europe/Atlantis",
					downgradeAt: 0,
					perUser: { tokenPerDay: 5 },
				},
			},
		],
		prices: { "gpt-4o": { input: -1, output: 10 } },
	});
	const message = result.ok ? "" : result.message;
	expect(message).toContain("tenants.0.budget.tokensPerDay: must be a whole number");
	expect(message).toContain("tenants.0.budget.timeZone: must be an IANA time zone");
	expect(message).toContain("tenants.0.budget.downgradeAt: must be more than 0");
	expect(message).toContain(
		'tenants.0.budget.perUser: unknown key "tokenPerDay" (did you mean "tokensPerDay"?)',
	);
	expect(message).toContain("prices.gpt-4o.input: must be at least 0");
});
