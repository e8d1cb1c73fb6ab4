// Through the Worker: a runtime tenant's budget — reserved at admission, downgraded past
// downgradeAt (the header says so, the provider gets the mapped model), refused at the limit in
// each provider's own shape with the reset time, and settled with the provider's reported usage:
// whole answers, streams, cut streams, callers who leave, and provider errors.
import { env } from "cloudflare:workers";
import { expect, it, vi } from "vitest";
import type { UsageRow } from "../../src/durable/budget.ts";
import { adminCall, tenantWithKey } from "../support/admin.ts";
import { postToPool } from "../support/gateway.ts";
import { installMockUpstream } from "../support/mock-upstream.ts";

const GPT4O = { model: "gpt-4o", messages: [{ role: "user", content: "Hi" }], max_tokens: 16 };
const SONNET = {
	model: "claude-sonnet-4-5",
	max_tokens: 16,
	messages: [{ role: "user", content: "Hi" }],
};

const today = () => new Date().toISOString().slice(0, 10);

async function usageOf(tenant: string, byUser = false): Promise<UsageRow[]> {
	const day = today();
	const response = await adminCall(
		"GET",
		`/tenants/${tenant}/usage?from=${day}&to=${day}${byUser ? "&by=user" : ""}`,
	);
	expect(response.status).toBe(200);
	return ((await response.json()) as { rows: UsageRow[] }).rows;
}

/** Waits until `requests` requests are settled in the ledger (settlement runs after the answer). */
async function settledUsage(tenant: string, requests: number, byUser = false) {
	await vi.waitFor(
		async () => {
			const rows = await usageOf(tenant, byUser);
			expect(rows.reduce((sum, row) => sum + row.requests, 0)).toBe(requests);
		},
		{ timeout: 3000, interval: 25 },
	);
	return usageOf(tenant, byUser);
}

const tokensOf = (rows: UsageRow[]) =>
	rows.reduce((sum, row) => sum + row.inputTokens + row.outputTokens, 0);

const nextUtcMidnight = () => {
	const now = new Date();
	return Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
};

it("60 concurrent requests: downgraded past downgradeAt, refused past the limit, charged exactly what the provider counted and never past it", async () => {
	const upstream = installMockUpstream();
	const N = 1200;
	const { name, key } = await tenantWithKey({
		budget: { tokensPerDay: N, downgradeAt: 0.5, downgrade: { "gpt-4o": "gpt-4o-mini" } },
	});
	const answers = await Promise.all(
		Array.from({ length: 60 }, () => postToPool("openai", { key, body: GPT4O })),
	);
	const ok = answers.filter((answer) => answer.status === 200);
	const refused = answers.filter((answer) => answer.status === 429);
	expect(ok.length + refused.length).toBe(60);
	expect(ok.length).toBeGreaterThan(10);
	expect(refused.length).toBeGreaterThan(0);
	for (const answer of answers) {
		expect(answer.headers.get("x-tollbooth-budget-remaining-tokens")).toMatch(/^\d+$/);
		expect(answer.headers.get("x-tollbooth-budget-reset")).toBe(
			new Date(nextUtcMidnight()).toISOString(),
		);
		await answer.text();
	}
	const downgraded = ok.filter((a) => a.headers.get("x-tollbooth-model-downgraded-from"));
	expect(downgraded.length).toBeGreaterThan(0);
	expect(downgraded[0]?.headers.get("x-tollbooth-model-downgraded-from")).toBe("gpt-4o");
	// Nothing was sent for a refusal; every downgraded request reached the provider as gpt-4o-mini.
	expect(upstream.sent).toHaveLength(ok.length);
	const models = upstream.sent.map((sent) => (JSON.parse(sent.body) as { model: string }).model);
	expect(models.filter((model) => model === "gpt-4o-mini")).toHaveLength(downgraded.length);

	const rows = await settledUsage(name, ok.length);
	const stats = upstream.mock.stats();
	expect(tokensOf(rows)).toBe(stats.promptTokens + stats.completionTokens);
	expect(tokensOf(rows)).toBeLessThanOrEqual(N);
	expect(rows.map((row) => row.model).sort()).toEqual(["gpt-4o", "gpt-4o-mini"]);
	upstream.restore();
});

it("past the limit: OpenAI's insufficient_quota and Anthropic's rate_limit_error, retry-after until the reset", async () => {
	const upstream = installMockUpstream();
	const { key } = await tenantWithKey({ budget: { tokensPerDay: 30 } });
	expect((await postToPool("openai", { key, body: GPT4O })).status).toBe(200);
	const sent = upstream.sent.length;

	const openai = await postToPool("openai", { key, body: GPT4O });
	expect(openai.status).toBe(429);
	const openaiError = (await openai.json()) as {
		error: { type: string; code: string; message: string };
	};
	expect(openaiError.error).toMatchObject({
		type: "insufficient_quota",
		code: "insufficient_quota",
	});
	expect(openaiError.error.message).toContain("tokensPerDay of the tenant");
	const retryAfter = Number(openai.headers.get("retry-after"));
	const untilReset = (nextUtcMidnight() - Date.now()) / 1000;
	expect(Math.abs(retryAfter - untilReset)).toBeLessThan(5);

	const anthropic = await postToPool("anthropic", { key, body: SONNET, path: "/messages" });
	expect(anthropic.status).toBe(429);
	const anthropicError = (await anthropic.json()) as {
		type: string;
		error: { type: string; message: string };
	};
	expect(anthropicError).toMatchObject({ type: "error", error: { type: "rate_limit_error" } });
	expect(anthropicError.error.message).toContain("Budget exhausted");
	expect(anthropic.headers.get("retry-after")).toBe(openai.headers.get("retry-after"));
	expect(upstream.sent).toHaveLength(sent);
	upstream.restore();
});

it("streams are settled with their reported usage, Anthropic's cache priced as cached", async () => {
	const upstream = installMockUpstream();
	const { name, key } = await tenantWithKey({ budget: { costPerDayUsd: 5 } });
	const openai = await postToPool("openai", { key, body: { ...GPT4O, stream: true } });
	expect(openai.status).toBe(200);
	await openai.text();
	const anthropic = await postToPool("anthropic", {
		key,
		body: { ...SONNET, stream: true },
		path: "/messages",
	});
	expect(anthropic.status).toBe(200);
	await anthropic.text();
	const rows = await settledUsage(name, 2);
	const stats = upstream.mock.stats();
	expect(tokensOf(rows)).toBe(stats.promptTokens + stats.completionTokens);
	const sonnet = rows.find((row) => row.model === "claude-sonnet-4-5");
	expect(sonnet?.costUsd).toBeCloseTo(
		((sonnet?.inputTokens ?? 0) * 3 + (sonnet?.outputTokens ?? 0) * 15) / 1e6,
		9,
	);
	upstream.restore();
});

it("no work, no charge: a provider error costs nothing; a cut stream costs its estimate when nothing was reported", async () => {
	const upstream = installMockUpstream();
	const { name, key } = await tenantWithKey({ budget: { tokensPerDay: 100_000 } });
	const failed = await postToPool("faults-4xx", {
		key,
		body: { ...GPT4O, max_tokens: 0.5 },
	});
	expect(failed.status).toBe(400); // tollbooth's own refusal: never reserved, never sent
	await failed.text();
	const broken = await postToPool("openai", {
		key,
		body: GPT4O,
		headers: { "x-mock-fault": "500" },
	});
	expect(broken.status).toBe(500);
	await broken.text();
	const cut = await postToPool("openai", {
		key,
		body: { ...GPT4O, stream: true },
		headers: { "x-mock-fault": "cut-stream" },
	});
	await cut.text();
	const rows = await settledUsage(name, 2);
	const row = rows[0];
	expect(row).toMatchObject({ model: "gpt-4o", requests: 2 });
	// The 500 charged 0; the cut stream its reservation: the prompt estimate and all 16 output tokens.
	expect(row?.outputTokens).toBe(16);
	upstream.restore();
});

it("a caller who leaves mid-stream is settled once the stream ends", async () => {
	const upstream = installMockUpstream({ chunkDelayMs: 50 });
	const { name, key } = await tenantWithKey({ budget: { tokensPerDay: 100_000 } });
	const response = await postToPool("anthropic", {
		key,
		body: { ...SONNET, stream: true },
		path: "/messages",
	});
	const reader = response.body?.getReader();
	expect((await reader?.read())?.done).toBe(false);
	await reader?.cancel();
	const rows = await settledUsage(name, 1);
	// message_start reported the input: what was generated so far is charged, not the whole reservation.
	expect(rows[0]?.inputTokens).toBeGreaterThan(0);
	expect(rows[0]?.outputTokens).toBeLessThan(16);
	upstream.restore();
});

it("end users: each one's budget inside the tenant's, named by header or body, ledger per user", async () => {
	const upstream = installMockUpstream();
	const { name, key } = await tenantWithKey({
		budget: {
			tokensPerDay: 100_000,
			perUser: { tokensPerDay: 30 },
			users: { vip: { tokensPerDay: 100_000 } },
		},
	});
	expect((await postToPool("openai", { key, body: { ...GPT4O, user: "alice" } })).status).toBe(200);
	const second = await postToPool("openai", {
		key,
		body: GPT4O,
		headers: { "x-tollbooth-user": "alice" },
	});
	expect(second.status).toBe(429);
	expect(((await second.json()) as { error: { message: string } }).error.message).toContain(
		'user "alice"',
	);
	expect(
		(await postToPool("openai", { key, body: { ...GPT4O, safety_identifier: "bob" } })).status,
	).toBe(200);
	for (let i = 0; i < 3; i++) {
		expect((await postToPool("openai", { key, body: { ...GPT4O, user: "vip" } })).status).toBe(200);
	}
	const rows = await settledUsage(name, 5, true);
	expect(Object.fromEntries(rows.map((row) => [row.user, row.requests]))).toEqual({
		alice: 1,
		bob: 1,
		vip: 3,
	});
	upstream.restore();
});

it("a model without a price under a cost budget is refused, never charged zero", async () => {
	const upstream = installMockUpstream();
	const { key } = await tenantWithKey({ budget: { costPerMonthUsd: 10 } });
	const response = await postToPool("openai", { key, body: { ...GPT4O, model: "gpt-unpriced" } });
	expect(response.status).toBe(400);
	expect(((await response.json()) as { error: { message: string } }).error.message).toContain(
		'model "gpt-unpriced" has no price',
	);
	expect(upstream.sent).toHaveLength(0);
	upstream.restore();
});

it("a budget set with PATCH applies to the next request", async () => {
	const upstream = installMockUpstream();
	const { name, key } = await tenantWithKey();
	const before = await postToPool("openai", { key, body: GPT4O });
	expect(before.headers.get("x-tollbooth-budget-remaining-tokens")).toBeNull();
	await before.text();
	expect(
		(await adminCall("PATCH", `/tenants/${name}`, { budget: { tokensPerDay: 10 } })).status,
	).toBe(200);
	expect((await postToPool("openai", { key, body: GPT4O })).status).toBe(429);
	upstream.restore();
});

it("far from its budget, a tenant's requests spend this isolate's allowance: one admission asked, every request charged exactly, the rest given back", async () => {
	const upstream = installMockUpstream();
	const { name, key } = await tenantWithKey({
		budget: { tokensPerDay: 1_000_000, costPerDayUsd: 100 },
	});
	const budget = env.BUDGET.getByName(name);
	for (let i = 0; i < 10; i++) {
		const answer = await postToPool("openai", { key, body: GPT4O });
		expect(answer.status).toBe(200);
		expect(Number(answer.headers.get("x-tollbooth-budget-remaining-tokens"))).toBeGreaterThan(
			990_000,
		);
		await answer.text();
	}
	const during = await budget.status();
	expect(during.admissions).toBe(1);
	expect(during.grants).toHaveLength(1);
	const rows = await settledUsage(name, 10);
	const stats = upstream.mock.stats();
	expect(tokensOf(rows)).toBe(stats.promptTokens + stats.completionTokens);
	// Once its spend window closes, the isolate gives the rest back: only what was used stays.
	await vi.waitFor(
		async () => {
			const after = await budget.status();
			expect(after.grants).toHaveLength(0);
			expect(after.day.reserved.tokens).toBe(0);
			expect(after.day.used.tokens).toBe(tokensOf(rows));
		},
		{ timeout: 5000, interval: 100 },
	);
	upstream.restore();
});

it("a tenant without a budget has its usage in the exact ledger too", async () => {
	const upstream = installMockUpstream();
	const { name, key } = await tenantWithKey();
	for (const user of ["ann", "ann", "ben"]) {
		const answer = await postToPool("openai", { key, body: { ...GPT4O, user } });
		expect(answer.headers.get("x-tollbooth-budget-remaining-tokens")).toBeNull();
		await answer.text();
	}
	const rows = await settledUsage(name, 3, true);
	expect(Object.fromEntries(rows.map((row) => [row.user, row.requests]))).toEqual({
		ann: 2,
		ben: 1,
	});
	const stats = upstream.mock.stats();
	expect(tokensOf(rows)).toBe(stats.promptTokens + stats.completionTokens);
	upstream.restore();
});
